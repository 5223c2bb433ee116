#!/usr/bin/env python3
"""Large photo-like JPEGs for the big-photo benchmark (issue 22; Tests/BLIPEngineTests/BigPhotoBenchmark.swift).

Not fixtures: hundreds of megapixels, written to a scratch folder and never committed.

    python scripts/reference/make_big_photos.py /tmp/big-photos

writes 48mp.jpg (8000x6000), 48mp-rot6.jpg (the same with EXIF orientation 6) and 200mp.jpg
(16320x12240, above Pillow's 178,956,970-pixel refusal threshold), quality 90, 4:2:0 (Pillow's
default): a smooth colour gradient with a wave and Gaussian noise, so the entropy-coded size is
photo-like (a flat image would compress to almost nothing).
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def make(width: int, height: int, path: Path, orientation: int | None = None) -> None:
    rng = np.random.default_rng(22)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    pixels = np.empty((height, width, 3), np.uint8)
    for c, (a, b) in enumerate([(200, 40), (60, 150), (120, 90)]):
        plane = a * x + b * y + 30 * np.sin(12 * x + 7 * y + c)
        plane += rng.normal(0, 8, (height, width)).astype(np.float32)
        pixels[..., c] = np.clip(plane, 0, 255).astype(np.uint8)
        del plane
    Image.MAX_IMAGE_PIXELS = None  # the 200 MP image is above Pillow's own threshold
    image = Image.fromarray(pixels)
    del pixels
    options = {"quality": 90}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    image.save(path, "JPEG", **options)
    print(f"{path}: {width}x{height}, {path.stat().st_size} bytes")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/big-photos")
    out.mkdir(parents=True, exist_ok=True)
    make(8000, 6000, out / "48mp.jpg")
    make(8000, 6000, out / "48mp-rot6.jpg", orientation=6)
    make(16320, 12240, out / "200mp.jpg")


if __name__ == "__main__":
    main()
