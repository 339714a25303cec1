"""``dcgan-tfx generate``: images from an exported generator, as a PNG grid or a folder of PNGs.

Wire it in with ``trainer.cli.register(subparsers)``; TensorFlow is imported only when it runs.
"""
from __future__ import annotations

import argparse
import math
import os


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``generate`` sub-command to an argparse ``subparsers`` object; returns its parser."""
    p = subparsers.add_parser(
        "generate", help="generate images with an exported generator SavedModel",
        description="Generate NUM images (uint8 RGB 64x64) with the SavedModel's `generate` "
                    "signature. The same model, NUM and SEED always give the same images.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="generator SavedModel folder")
    p.add_argument("--num", type=int, default=16, help="number of images (default 16)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="PATH ending in .png: one grid image; otherwise a folder of PNGs")
    p.add_argument("--ncols", type=int, default=0, help="grid columns (default: ceil(sqrt(NUM)))")
    p.set_defaults(handler=generate_command)
    return p


def generate_command(args: argparse.Namespace) -> int:
    """Run ``generate``; prints what was written.

    Returns:
      0.
    Raises:
      ValueError: ``--num`` < 1 or ``--ncols`` < 0 (checked before the model is loaded; the
        ``dcgan-tfx`` main turns it into exit code 2), or a model without the generate signature.
      FileNotFoundError: no SavedModel in ``model_dir``.
    """
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    if args.ncols < 0:
        raise ValueError(f"--ncols must be >= 0 (0: ceil(sqrt(NUM))), got {args.ncols}")
    from PIL import Image

    from trainer.export import generate_images, save_grid_png

    images = generate_images(args.model_dir, args.num, args.seed)
    if args.out.lower().endswith(".png"):
        ncols = args.ncols or math.ceil(math.sqrt(args.num))
        save_grid_png(images, args.out, ncols)
        print(f"wrote a {args.num}-image grid to {args.out}")
    else:
        os.makedirs(args.out, exist_ok=True)
        for i, img in enumerate(images):
            Image.fromarray(img, mode="RGB").save(os.path.join(args.out, f"{i:05d}.png"))
        print(f"wrote {args.num} PNGs to {args.out}")
    return 0
