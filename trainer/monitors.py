"""Training-health monitors and a small KID, in plain numpy (no TensorFlow, testable alone).

``TrainingMonitor.update`` is called once per epoch with the epoch's mean losses and the fixed-noise
sample batch; it returns warnings (also logged by ``trainer/train.py`` and written to
``training_summary.json``). The three failure patterns are the classic ones described for GANs
(Goodfellow 2016, "NIPS 2016 Tutorial: GANs", sections 5.1; Salimans et al. 2016):

* ``discriminator_overpowering``: d_loss below ``d_loss_floor`` for ``patience`` epochs in a row;
  D separates real from fake perfectly and G's gradients vanish.
* ``mode_collapse``: the fixed-noise batch's diversity (mean pairwise RMS distance, pixel units
  of [-1, 1]) has fallen below ``collapse_ratio`` times its best value so far.
* ``generator_stalled``: the fixed-noise images moved less than ``stall_tolerance`` (mean absolute
  change per pixel) for ``patience`` epochs, or mean D(G(z)) stayed below ``fooled_floor``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


def mean_pairwise_distance(images: np.ndarray) -> float:
    """Mean RMS distance over all unordered pairs of a batch.

    Args:
      images: float [N, ...] (e.g. [N, 64, 64, 3] in [-1, 1]), N >= 2.
    Returns:
      mean over i < j of sqrt(mean((x_i - x_j)**2)), in the images' units (0 = all identical).
    Raises:
      ValueError: N < 2.
    """
    x = np.asarray(images, np.float64).reshape(len(images), -1)
    if len(x) < 2:
        raise ValueError("need at least two images for a pairwise distance")
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0) / x.shape[1]
    iu = np.triu_indices(len(x), k=1)
    return float(np.mean(np.sqrt(d2[iu])))


def pixel_features(images_u8: np.ndarray, size: int = 8) -> np.ndarray:
    """A cheap, offline feature for in-training KID: box-downsampled pixels.

    Args:
      images_u8: uint8 [N, H, W, 3] with H, W divisible by ``size``.
    Returns:
      float64 [N, size * size * 3] in [0, 1]. Not Inception: its KID only tracks progress within
      one run and is not comparable with published KID values.
    """
    x = np.asarray(images_u8, np.float64) / 255.0
    n, h, w, c = x.shape
    if h % size or w % size:
        raise ValueError(f"image size {h}x{w} is not divisible by {size}")
    x = x.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))
    return x.reshape(n, -1)


def kernel_inception_distance(real_feats: np.ndarray, fake_feats: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3.

    The KID estimator of Binkowski et al. 2018 ("Demystifying MMD GANs", eq. 4), one subset.

    Args:
      real_feats: float [m, d]; fake_feats: float [n, d]; m, n >= 2.
    Returns:
      KID (float; can be slightly negative, 0 = same distribution).
    Raises:
      ValueError: fewer than 2 rows or mismatched d.
    """
    x = np.asarray(real_feats, np.float64)
    y = np.asarray(fake_feats, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise ValueError(f"need [m, d] and [n, d] with m, n >= 2; got {x.shape}, {y.shape}")
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


@dataclass(frozen=True)
class MonitorThresholds:
    """Thresholds of ``TrainingMonitor`` (defaults are rules of thumb, not tuned values)."""

    d_loss_floor: float = 0.05        # BCE; ln 2 = 0.69 is a D at chance
    patience: int = 3                 # epochs in a row
    collapse_ratio: float = 0.5       # diversity / best diversity so far
    collapse_warmup: int = 2          # epochs before the collapse check starts
    stall_tolerance: float = 1e-3     # mean |change| per pixel between epochs, [-1, 1] units
    fooled_floor: float = 0.02        # mean D(G(z)) below this: G gets almost no signal


@dataclass
class TrainingMonitor:
    """Per-epoch health checks. ``history`` and ``warnings`` are JSON-serialisable."""

    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)
    history: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    _prev_samples: np.ndarray | None = None
    _best_diversity: float = 0.0

    def update(self, epoch: int, metrics: dict[str, float],
               fixed_samples: np.ndarray | None = None) -> list[dict]:
        """Record one epoch and return the warnings it raised.

        Args:
          epoch: 0-based epoch index.
          metrics: at least "d_loss", "g_loss", "d_fake" (mean D(G(z)) in (0, 1)).
          fixed_samples: float32 [N, 64, 64, 3] in [-1, 1], G(fixed noise) after the epoch.
        Returns:
          list of {"epoch", "kind", "message"} dicts (possibly empty).
        """
        t = self.thresholds
        row = {"epoch": epoch, **{k: float(v) for k, v in metrics.items()}}
        if fixed_samples is not None and len(fixed_samples) >= 2:
            samples = np.asarray(fixed_samples, np.float32)
            row["diversity"] = mean_pairwise_distance(samples)
            if self._prev_samples is not None and self._prev_samples.shape == samples.shape:
                row["sample_change"] = float(np.mean(np.abs(samples - self._prev_samples)))
            self._prev_samples = samples
        self.history.append(row)
        new: list[dict] = []
        recent = self.history[-t.patience:]
        full = len(recent) == t.patience

        if full and all(r["d_loss"] < t.d_loss_floor for r in recent):
            new.append(self._warn(epoch, "discriminator_overpowering",
                                  f"d_loss < {t.d_loss_floor} for {t.patience} epochs "
                                  f"(now {row['d_loss']:.4f}): D wins, G's gradients vanish"))
        if "diversity" in row:
            if (len(self.history) > t.collapse_warmup and self._best_diversity > 0
                    and row["diversity"] < t.collapse_ratio * self._best_diversity):
                new.append(self._warn(epoch, "mode_collapse",
                                      f"fixed-noise diversity {row['diversity']:.4f} < "
                                      f"{t.collapse_ratio} x best {self._best_diversity:.4f}"))
            self._best_diversity = max(self._best_diversity, row["diversity"])
        if full and all("sample_change" in r and r["sample_change"] < t.stall_tolerance
                        for r in recent):
            new.append(self._warn(epoch, "generator_stalled",
                                  f"fixed-noise images changed < {t.stall_tolerance} per pixel "
                                  f"for {t.patience} epochs"))
        elif full and all(r.get("d_fake", 1.0) < t.fooled_floor for r in recent):
            new.append(self._warn(epoch, "generator_stalled",
                                  f"mean D(G(z)) < {t.fooled_floor} for {t.patience} epochs"))
        return new

    def _warn(self, epoch: int, kind: str, message: str) -> dict:
        item = {"epoch": epoch, "kind": kind, "message": message}
        self.warnings.append(item)
        return item

    def state(self) -> dict:
        """JSON-serialisable snapshot: thresholds, per-epoch history, warnings."""
        return {"thresholds": dataclasses.asdict(self.thresholds), "history": self.history,
                "warnings": self.warnings}

    def restore(self, state: dict) -> None:
        """Take history and warnings back from ``state()`` output (after a resume)."""
        self.history = list(state.get("history", []))
        self.warnings = list(state.get("warnings", []))
        divs = [r["diversity"] for r in self.history if "diversity" in r]
        self._best_diversity = max(divs) if divs else 0.0


FeatureFn = Callable[[np.ndarray], np.ndarray]
