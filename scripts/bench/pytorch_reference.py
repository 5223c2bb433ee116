#!/usr/bin/env python3
"""PyTorch/transformers side of scripts/bench/run.sh: the same stages as blip-bench, same model, same
image, 2 threads, fp32. Prints one JSON object (seconds; peak RSS in bytes) on stdout.

    pytorch_reference.py --model DIR --image FILE [--runs N] [--tokens N] [--load-only]
"""
import time

T0 = time.perf_counter()  # before importing torch: "ready" includes import + load

import argparse
import json
import os
import statistics


def seconds_since_start():
    """Process age from /proc (10 ms resolution), the same clock blip-bench reads."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - float(fields[19]) / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def median_time(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--load-only", action="store_true")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    import transformers
    from transformers import BlipForConditionalGeneration, BlipImageProcessor
    from PIL import Image

    model = BlipForConditionalGeneration.from_pretrained(args.model, dtype=torch.float32).eval()
    processor = BlipImageProcessor.from_pretrained(args.model)
    out = {"ready_s": seconds_since_start(), "import_load_s": time.perf_counter() - T0,
           "torch": torch.__version__, "transformers": transformers.__version__,
           "threads": torch.get_num_threads()}
    if args.load_only:
        out["peak_rss_bytes"] = peak_rss_bytes()
        print(json.dumps(out, sort_keys=True))
        return

    runs, n = args.runs, args.tokens
    with open(args.image, "rb") as f:
        image_bytes = f.read()

    def preprocess():
        import io
        img = Image.open(io.BytesIO(image_bytes)).convert("RGB")
        return processor(images=img, return_tensors="pt")["pixel_values"]

    with torch.inference_mode():
        out["decode_preprocess_s"] = median_time(preprocess, runs)
        pixels = preprocess()
        out["vision_s"] = median_time(lambda: model.vision_model(pixel_values=pixels), runs)
        features = model.vision_model(pixel_values=pixels)[0]

        layers = model.text_decoder.bert.encoder.layer

        def cross_kv():
            for layer in layers:
                layer.crossattention.self.key(features)
                layer.crossattention.self.value(features)

        out["cross_kv_s"] = median_time(cross_kv, runs)

        bos = model.config.text_config.bos_token_id

        def step_times(rows):
            # As generate() drives it: every row starts with [DEC] (beam search expands the input
            # to all beams first), then one token per row per step with the KV cache.
            times = []
            for _ in range(runs):
                enc = features.expand(rows, -1, -1)
                o = model.text_decoder(input_ids=torch.full((rows, 1), bos), encoder_hidden_states=enc,
                                       use_cache=True)
                cache = o.cache
                tokens = torch.arange(1037, 1037 + rows).view(rows, 1)
                for _ in range(1, 1 + n):
                    t = time.perf_counter()
                    o = model.text_decoder(input_ids=tokens, encoder_hidden_states=enc, cache=cache,
                                           use_cache=True)
                    cache = o.cache
                    times.append(time.perf_counter() - t)
            return statistics.median(times)

        out["greedy_step_s"] = step_times(1)
        out["beam3_step_s"] = step_times(3)

        for key, beams in (("caption_greedy_s", 1), ("caption_beam3_s", 3)):
            lengths = []

            def caption():
                px = preprocess()
                ids = model.generate(pixel_values=px, num_beams=beams, min_new_tokens=n, max_new_tokens=n)
                lengths.append(ids.shape[1] - 1)

            out[key] = median_time(caption, runs)
            assert set(lengths) == {n}, f"{key}: generated {lengths}, not {n} tokens"

    out["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
