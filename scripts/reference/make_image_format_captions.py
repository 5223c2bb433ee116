#!/usr/bin/env python3
"""Captions of the image-format fixtures (issue 22: "captions token-identical on the tiny fixtures").

For one or two fixtures per format in Tests/Fixtures/image-formats/ (written by
make_image_format_fixtures.py), transformers' captions on the tiny model tiny-a, computed exactly as
make_fixtures.py computes its goldens: `ImageOps.exif_transpose(Image.open(f))` (HEIC through
pillow-heif, AVIF through Pillow 13's own plugin), `BlipProcessor` on that image (which converts to
RGB, compositing alpha over white), `generate()` with the parameters of make_fixtures.py's
`greedy_default` and `greedy_prompt` cases (`run_case`, reused from there).

Writes Tests/Fixtures/image-formats/captions-tiny-a.json: a list of cases in generation.json's
layout (name, image, params, sequences, texts, scores, greedy_margins, prompt_length).
Run with the reference venv plus pillow-heif:
    python3 scripts/reference/make_image_format_captions.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import BlipProcessor
from transformers.image_transforms import convert_to_rgb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import PROMPT, load_model, pixel_values_by_hand, resize_like_processor, run_case  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FORMATS = REPO / "Tests/Fixtures/image-formats"
MODEL = "tiny-a"

# One fixture per format and kind the issue names, plus the orientation cases (the engine applies
# an orientation inside its resize; these check that against exif_transpose-then-resize).
IMAGES = [
    "webp_lossy.webp", "webp_lossless_alpha.webp", "webp_exif6.webp",
    "gif_palette.gif", "bmp_rgb24.bmp", "tiff_rgb_lzw.tif", "tiff_orientation6.tif",
    "heic_rgb.heic", "heic_rgba.heic", "avif_rgb.avif", "avif_rgba.avif", "avif_orientation6.avif",
]
CASES = [("greedy_default", {}), ("greedy_prompt", {"prompt": PROMPT})]


def main() -> None:
    import pillow_heif
    pillow_heif.register_heif_opener()
    mdir = REPO / "Tests/Fixtures/models" / MODEL
    model = load_model(mdir)
    processor = BlipProcessor.from_pretrained(mdir)
    size = model.config.vision_config.image_size
    cases = []
    for name in IMAGES:
        transposed = ImageOps.exif_transpose(Image.open(FORMATS / name))
        pv = processor(images=transposed, return_tensors="pt").pixel_values
        by_hand = pixel_values_by_hand(resize_like_processor(convert_to_rgb(transposed, return_numpy=True), size))
        assert np.array_equal(pv[0].numpy(), by_hand), f"{name}: processor differs from the recipe"
        for case_name, params in CASES:
            with torch.no_grad():
                result = run_case(model, processor, pv, dict(params))
            result.pop("texts_no_cleanup")
            cases.append({"name": case_name, "image": name, **result})
            print(f"{name:28} {case_name:15} min margin {min(result['greedy_margins']):.4f}  {result['texts'][0]!r}")
    out = FORMATS / f"captions-{MODEL}.json"
    out.write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
