#!/usr/bin/env python3
"""Fixtures for the checkpoint formats the engine reads besides model.safetensors (issue 22).

Writes Tests/Fixtures/checkpoints/ (or --out):

  tiny-base/          a tiny model with the structure of Salesforce/blip-image-captioning-base
                      (see BASE below), in two forms of the same weights:
    pytorch_model.bin   torch.save(model.state_dict()) as transformers 4.x wrote it: PyTorch's zip
                        format, tied weights sharing one storage (decoder.weight = word embeddings,
                        decoder.bias = predictions.bias), and the int64 buffer
                        text_decoder.bert.embeddings.position_ids (1, 64) the hub files carry, saved
                        from an expand()ed arange (stride (0, 1)) as 4.x did
    model.safetensors   save_pretrained of the same model (tied tensors written once)
    config.json, preprocessor_config.json, tokenizer_config.json, special_tokens_map.json
                        hub layout; the tests add Tests/Fixtures/vocab.txt (not duplicated here)
    generation.json     transformers' generate() on the safetensors form, in the format of
                        golden/<model>/generation.json (make_fixtures.py); the script checks the
                        .bin loaded by transformers gives the same
  hostile/
    os-system.bin       a zip laid out as torch.save writes it whose data.pkl calls posix.system
                        (REDUCE) to create /tmp/blip-captiond-pickle-ran: a loader that executes
                        pickles would create that file
    builtins-eval.bin   the same with builtins.eval reached by STACK_GLOBAL (protocol 4)
    legacy.bin          torch.save(..., _use_new_zipfile_serialization=False): the pre-1.6 format
    deflated.bin        a state dict in torch's layout whose entries are deflate-compressed

Mixed element types on purpose: the word embeddings (and so the tied LM decoder) are float16, the
LM bias bfloat16, everything else float32 — the .bin then holds FloatStorage, HalfStorage,
BFloat16Storage and LongStorage. Small: the (30524, 4) embedding dominates (~0.3 MB per form).
Deterministic apart from torch.save's serialization id (a random entry torch ≥ 2.3 writes).

    python3 scripts/reference/make_checkpoint_fixtures.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import shutil
import sys
import zipfile
from pathlib import Path

import torch

import transformers
from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fx  # noqa: E402  (shared: randomize, cases, hub-style files)

REPO = Path(__file__).resolve().parents[2]
MARKER = "/tmp/blip-captiond-pickle-ran"

# Salesforce/blip-image-captioning-base's config.json lists, besides bookkeeping, only
# text_config.num_attention_heads = 12: its vision model is BlipVisionConfig's defaults (hidden 768,
# 12 layers, 12 heads, ffn 3072, image 384, patch 16) and its text model the defaults (hidden 768,
# 12 layers, ffn 3072, vocab 30524). What distinguishes it from -large for the engine is therefore
# sizes it reads from config.json: the vision width equals the text width (cross-attention key and
# value matrices are square, encoder_hidden_size = 768), vision and text have the same head count, and
# the vision tower is the default one. The tiny model keeps those relations scaled down: vision and
# text width 4, 2 heads each, patch 16, and a hub-style config.json that, like base's, leaves
# encoder_hidden_size out.
BASE = dict(seed=5005, sep_bias=6.0,
            text=dict(hidden_size=4, num_hidden_layers=2, num_attention_heads=2, intermediate_size=12,
                      max_position_embeddings=64),
            vision=dict(hidden_size=4, num_hidden_layers=2, num_attention_heads=2, intermediate_size=12,
                        image_size=64, patch_size=16))
IMAGES = ["astronaut_q90_420.jpg", "rocket.png", "gray_moon.png"]
CASE_NAMES = ["greedy_default", "greedy_prompt", "beam3_lp1", "beam3_return2", "project_default",
              "project_default_prompt", "greedy_repetition1.3"]


def build(out: Path, vocab: Path) -> BlipForConditionalGeneration:
    spec = BASE
    text = dict(spec["text"], vocab_size=fx.VOCAB_SIZE, tie_word_embeddings=True)
    cfg = BlipConfig(text_config=text, vision_config=dict(spec["vision"]), tie_word_embeddings=True)
    assert cfg.text_config.encoder_hidden_size == cfg.text_config.hidden_size
    torch.manual_seed(spec["seed"])
    model = BlipForConditionalGeneration(cfg).eval()
    fx.randomize(model, spec["seed"], spec["sep_bias"], True)
    emb = model.text_decoder.bert.embeddings.word_embeddings
    head = model.text_decoder.cls.predictions
    assert head.decoder.weight is emb.weight and head.decoder.bias is head.bias
    with torch.no_grad():
        emb.weight.data = emb.weight.data.half()      # tied: the decoder's weight is the same Parameter
        head.bias.data = head.bias.data.bfloat16()

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # The safetensors form, as transformers 5 writes it (tied tensors once).
    model.save_pretrained(out)
    (out / "model.safetensors").chmod(0o644)
    (out / "generation_config.json").unlink()
    fx.write_json(out / "config.json", fx.hub_style_config(cfg, "float32"))

    # The .bin as transformers 4.x wrote it: the whole state dict, tied entries sharing storage,
    # plus the position_ids buffer (persistent in 4.x).
    state = model.state_dict()
    for key in ("text_decoder.cls.predictions.decoder.weight", "text_decoder.cls.predictions.decoder.bias"):
        assert key in state, f"state_dict lacks {key}"
    assert state["text_decoder.cls.predictions.decoder.weight"].untyped_storage().data_ptr() == \
        state["text_decoder.bert.embeddings.word_embeddings.weight"].untyped_storage().data_ptr()
    state["text_decoder.bert.embeddings.position_ids"] = \
        torch.arange(spec["text"]["max_position_embeddings"]).expand((1, -1))
    torch.save(state, out / "pytorch_model.bin")

    for name, body in (("tokenizer_config.json", fx.HUB_TOKENIZER_CONFIG),
                       ("special_tokens_map.json", fx.HUB_SPECIAL_TOKENS_MAP)):
        fx.write_json(out / name, body)
    size = spec["vision"]["image_size"]
    fx.write_json(out / "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "image_mean": fx.CLIP_MEAN, "image_std": fx.CLIP_STD,
        "image_processor_type": "BlipImageProcessor", "processor_class": "BlipProcessor", "size": size,
    })
    return model


def loaded(folder: Path, files: list[str], vocab: Path, scratch: Path) -> Path:
    """A model folder holding `files` of `folder` plus vocab.txt."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for f in files:
        shutil.copy(folder / f, scratch / f)
    shutil.copy(vocab, scratch / "vocab.txt")
    return scratch


def goldens(folder: Path, vocab: Path, images: Path, scratch: Path) -> list[dict]:
    common = ["config.json", "preprocessor_config.json", "tokenizer_config.json", "special_tokens_map.json"]
    st = loaded(folder, common + ["model.safetensors"], vocab, scratch / "st")
    bn = loaded(folder, common + ["pytorch_model.bin"], vocab, scratch / "bin")
    model = fx.load_model(st)
    from_bin = fx.load_model(bn)
    sd_a, sd_b = model.state_dict(), from_bin.state_dict()
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), f"{k}: the .bin loads differently from the safetensors"
    processor = BlipProcessor.from_pretrained(st)
    assert len(processor.tokenizer) == fx.VOCAB_SIZE
    cases = []
    for img in IMAGES:
        transposed, _ = fx.decode_for_processor(images / img)
        pv = processor(images=transposed, return_tensors="pt").pixel_values
        for name, params in fx.CASES:
            if name not in CASE_NAMES:
                continue
            result = fx.run_case(model, processor, pv, dict(params))
            again = fx.run_case(from_bin, processor, pv, dict(params))
            assert again["sequences"] == result["sequences"], f"{img}/{name}: .bin and safetensors differ"
            cases.append({"name": name, "image": img, **result})
    return cases


def hostile_zip(path: Path, pickle_bytes: bytes, prefix: str = "archive",
                compression: int = zipfile.ZIP_STORED, storages: dict[str, bytes] | None = None) -> None:
    """A zip with torch.save's entry names around the given data.pkl."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        z.writestr(f"{prefix}/data.pkl", pickle_bytes)
        z.writestr(f"{prefix}/byteorder", "little")
        for key, data in (storages or {}).items():
            z.writestr(f"{prefix}/data/{key}", data)
        z.writestr(f"{prefix}/version", "3\n")


class _System:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class _Eval:
    def __reduce__(self):
        return (eval, (f"open({MARKER!r}, 'w').close()",))


def hostile(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    system = pickle.dumps({"text_decoder.bert.embeddings.word_embeddings.weight": _System()}, protocol=2)
    assert b"posix\nsystem" in system, system
    hostile_zip(out / "os-system.bin", system)
    evil = pickle.dumps({"x": _Eval()}, protocol=4)
    assert b"builtins" in evil and b"eval" in evil
    hostile_zip(out / "builtins-eval.bin", evil)
    small = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    torch.save(small, out / "legacy.bin", _use_new_zipfile_serialization=False)
    buffer = io.BytesIO()
    torch.save(small, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z, \
            zipfile.ZipFile(out / "deflated.bin", "w", compression=zipfile.ZIP_DEFLATED) as d:
        for info in z.infolist():
            d.writestr(info.filename, z.read(info.filename))
    assert not os.path.exists(MARKER)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "Tests" / "Fixtures" / "checkpoints")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/blip-checkpoint-fixtures"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    fixtures = REPO / "Tests" / "Fixtures"
    vocab = fixtures / "vocab.txt"

    folder = args.out / "tiny-base"
    build(folder, vocab)
    cases = goldens(folder, vocab, fixtures / "images", args.scratch)
    fx.write_json(folder / "generation.json", cases)
    hostile(args.out / "hostile")

    texts = {c["texts"][0] for c in cases}
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: {len(cases)} cases, "
          f"{len(texts)} distinct first texts")
    for f in sorted(args.out.rglob("*")):
        if f.is_file():
            print(f"  {f.relative_to(args.out)}  {f.stat().st_size:,} bytes")
    print(f"total {sum(f.stat().st_size for f in args.out.rglob('*') if f.is_file()):,} bytes")


if __name__ == "__main__":
    main()
