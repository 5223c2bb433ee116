#!/usr/bin/env python3
"""Peers' side of the precision benchmark: how fast and how exact other runtimes are, per precision,
on the same model and images. Prints one JSON object on stdout (seconds; relative errors against
PyTorch fp32); progress goes to stderr.

    precision_peers.py --model DIR --images DIR [--threads 2] [--runs 3] [--tokens 20] [--no-openvino]

Peers: pytorch_fp32, pytorch_bf16 (model.to(torch.bfloat16)), openvino_fp32 (ov.convert_model of the
vision model, INFERENCE_PRECISION_HINT f32) and openvino_int8 (NNCF post-training quantisation with
model_type TRANSFORMER, i.e. SmoothQuant, calibrated on the --images pixel values, as OpenVINO's BLIP
notebook does). Every peer reports `vision_seconds` (median of --runs, after a warm-up, vision encoder
alone, batch 1, the first image) and `rel_error_mean`/`rel_error_max`: ||f - f32|| / ||f32|| of the
encoder output (last_hidden_state, after post_layernorm) over every .jpg/.jpeg/.png in --images.
PyTorch also reports `caption_seconds` (generate, beam 3 × --tokens new tokens); bf16 also reports the
decoder's teacher-forced top-1 agreement with fp32's greedy tokens and the share of identical greedy
captions. On a CPU without AVX-512 BF16 or AMX, PyTorch emulates bf16 (minutes per image of the
full-size model): pytorch_bf16 is skipped there.
"""
import argparse
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

from pytorch_reference import median_time  # this folder is on sys.path (the script's own)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def log(message):
    print(message, file=sys.stderr, flush=True)


def cpu_info():
    name, flags = "", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not name:
                name = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    return {"model": name, **{flag: flag in flags for flag in ("avx512_bf16", "avx512_vnni", "amx_bf16")}}


def rel_errors(features, reference):
    """||f - ref|| / ||ref|| (Frobenius, float64) per image → mean and max."""
    import numpy as np
    errors = []
    for f, ref in zip(features, reference):
        f, ref = np.asarray(f, dtype=np.float64), np.asarray(ref, dtype=np.float64)
        assert f.shape == ref.shape, (f.shape, ref.shape)
        errors.append(float(np.linalg.norm(f - ref) / np.linalg.norm(ref)))
    return {"rel_error_mean": statistics.fmean(errors), "rel_error_max": max(errors)}


def load_pixels(model_dir, images_dir):
    """(names, [1×3×S×S float32 tensors]) through transformers' PIL image processor."""
    from PIL import Image
    try:
        from transformers import BlipImageProcessorPil as Processor  # transformers 5: the PIL path
    except ImportError:
        from transformers import BlipImageProcessor as Processor  # 4.x: the "slow" processor is PIL
    processor = Processor.from_pretrained(model_dir)
    names, pixels = [], []
    for path in sorted(p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            with Image.open(path) as im:
                image = im.convert("RGB")
        except OSError as e:
            log(f"skipping {path.name}: {e}")
            continue
        names.append(path.name)
        pixels.append(processor(images=image, return_tensors="pt")["pixel_values"])
    if not pixels:
        sys.exit(f"no readable .jpg/.jpeg/.png images in {images_dir}")
    return names, pixels


def pytorch_peer(model, pixels, dtype, runs, tokens):
    """Vision time, features for every image and beam-3 caption time for one dtype."""
    import torch
    pixels = [px.to(dtype) for px in pixels]
    first = pixels[0]
    with torch.inference_mode():
        features = [model.vision_model(pixel_values=px).last_hidden_state.float().numpy() for px in pixels]
        vision = median_time(lambda: model.vision_model(pixel_values=first), runs)
        lengths = []

        def caption():
            ids = model.generate(pixel_values=first, num_beams=3, max_new_tokens=tokens,
                                 min_new_tokens=tokens)
            lengths.append(ids.shape[1] - 1)

        caption_seconds = median_time(caption, runs)
    assert set(lengths) == {tokens}, f"beam 3 generated {lengths} tokens, not {tokens}"
    return {"vision_seconds": vision, "caption_seconds": caption_seconds}, features


def greedy_tokens(model, pixels, dtype, tokens):
    import torch
    with torch.inference_mode():
        return [model.generate(pixel_values=px.to(dtype), num_beams=1, max_new_tokens=tokens)[0]
                for px in pixels]


def teacher_forced_agreement(model, pixels, sequences, dtype):
    """Share of steps whose argmax equals the given (fp32 greedy) token: one forward per image with
    input_ids = the whole sequence; position i predicts token i + 1."""
    import torch
    agree = steps = 0
    with torch.inference_mode():
        for px, seq in zip(pixels, sequences):
            logits = model(pixel_values=px.to(dtype), input_ids=seq[None]).logits[0, :-1]
            agree += int((logits.argmax(-1) == seq[1:]).sum())
            steps += seq.numel() - 1
    return agree / steps, steps


def openvino_peers(model, pixels, reference, threads, runs):
    """openvino_fp32 and openvino_int8 as OpenVINO's BLIP notebooks make them: convert_model of the
    vision model with an example input, then nncf.quantize(model_type=TRANSFORMER) of that model."""
    import nncf
    import openvino as ov
    import torch

    arrays = [px.numpy() for px in pixels]
    with torch.no_grad():
        ov_model = ov.convert_model(model.vision_model, example_input=pixels[0])
    core = ov.Core()

    def measure(ov_model, config):
        compiled = core.compile_model(ov_model, "CPU", {"INFERENCE_NUM_THREADS": threads, **config})
        request = compiled.create_infer_request()
        output = compiled.output(0)  # last_hidden_state
        features = [request.infer({0: a})[output].copy() for a in arrays]
        precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # what it ran at
        return {"vision_seconds": median_time(lambda: request.infer({0: arrays[0]}), runs),
                **rel_errors(features, reference), "inference_precision": precision}

    peers = {}
    log("openvino fp32")
    peers["openvino_fp32"] = measure(ov_model, {"INFERENCE_PRECISION_HINT": "f32"})
    log(f"openvino int8: nncf.quantize on {len(arrays)} calibration images")
    int8_model = nncf.quantize(ov_model, nncf.Dataset(arrays), subset_size=len(arrays),
                               model_type=nncf.ModelType.TRANSFORMER)
    peers["openvino_int8"] = measure(int8_model, {})  # precision hint left at the default, as the notebook
    peers["openvino_int8"]["calibration_images"] = len(arrays)
    return peers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="BlipForConditionalGeneration folder")
    ap.add_argument("--images", required=True, help="folder of .jpg/.jpeg/.png images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--no-openvino", action="store_true")
    args = ap.parse_args()

    # Libraries print progress bars and notices on stdout (NNCF's, OpenVINO's C++ side): send fd 1 to
    # stderr while working and keep the real stdout for the JSON.
    stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    import torch
    torch.set_num_threads(args.threads)
    import transformers
    from transformers import BlipForConditionalGeneration

    out = {"cpu": cpu_info(), "torch": torch.__version__, "transformers": transformers.__version__,
           "threads": args.threads, "runs": args.runs, "tokens": args.tokens}
    model = BlipForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    names, pixels = load_pixels(args.model, args.images)
    out["images"] = names
    out["timing_image"] = names[0]
    log(f"{len(names)} images, {args.threads} threads")

    log("pytorch fp32")
    out["pytorch_fp32"], reference = pytorch_peer(model, pixels, torch.float32, args.runs, args.tokens)
    out["pytorch_fp32"].update(rel_error_mean=0.0, rel_error_max=0.0)
    greedy32 = greedy_tokens(model, pixels, torch.float32, args.tokens)
    self_agreement, _ = teacher_forced_agreement(model, pixels, greedy32, torch.float32)
    if self_agreement != 1.0:  # fp32 teacher-forced must reproduce its own greedy tokens
        log(f"warning: fp32 teacher-forced agreement with its own greedy tokens is {self_agreement}")

    if args.no_openvino:
        out["openvino"] = "skipped (--no-openvino)"
    else:
        try:
            import nncf
            import openvino
            out["openvino"], out["nncf"] = openvino.__version__, nncf.__version__
        except ImportError as e:
            out["openvino"] = f"unavailable: {e}"
            log(out["openvino"])
        else:
            try:
                out.update(openvino_peers(model, pixels, reference, args.threads, args.runs))
            except Exception as e:  # keep the PyTorch figures; say what failed
                traceback.print_exc()
                out["openvino_error"] = f"{type(e).__name__}: {e}"

    cpu = out["cpu"]
    if not (cpu["avx512_bf16"] or cpu["amx_bf16"]):
        # Emulated bf16 takes minutes per image of the full-size model (measured on a Zen 3).
        out["pytorch_bf16"] = "skipped: this CPU has no AVX-512 BF16 or AMX, so PyTorch emulates bf16"
        print(json.dumps(out, sort_keys=True), file=stdout, flush=True)
        return
    log("pytorch bf16")
    model.to(torch.bfloat16)  # last: the OpenVINO peers were made from the fp32 weights
    bf16, features = pytorch_peer(model, pixels, torch.bfloat16, args.runs, args.tokens)
    bf16.update(rel_errors(features, reference))
    bf16["top1_agreement"], bf16["steps"] = teacher_forced_agreement(model, pixels, greedy32, torch.bfloat16)
    greedy16 = greedy_tokens(model, pixels, torch.bfloat16, args.tokens)
    bf16["identical_captions"] = statistics.fmean(
        float(torch.equal(a, b)) for a, b in zip(greedy32, greedy16))
    out["pytorch_bf16"] = bf16

    print(json.dumps(out, sort_keys=True), file=stdout, flush=True)


if __name__ == "__main__":
    main()
