#!/usr/bin/env python3
"""Combines blip-bench and pytorch_reference.py JSON into the side-by-side table of docs/performance.md.

    report.py --config MODEL/config.json --engine E.json --pytorch P.json \
              [--engine-ready E1.json ...] [--pytorch-ready P1.json ...] [--daemon-ready D.json]

--daemon-ready is ready_time.py's output (blip-captiond start → READY=1); its row is printed when
the file exists.

Machine limits come from the probes blip-bench took in the same run: FLOP-bound stages at the sgemm
rate, per-step decoding at the read bandwidth (every decoder weight read once per step, plus the
cross-attention keys/values of every layer).
"""
import argparse
import json
import os
import statistics


def limits(cfg, probe_gflops, probe_gbs, new_tokens):
    v, t = cfg["vision_config"], cfg["text_config"]
    h, m, p = v["hidden_size"], v["intermediate_size"], v["patch_size"]
    side = v["image_size"] // p
    tokens = side * side + 1
    vision_flops = 2 * side * side * 3 * p * p * h + v["num_hidden_layers"] * (
        2 * tokens * h * (3 * h + h + 2 * m) + 4 * tokens * tokens * h)
    th, tm, tl, vocab = t["hidden_size"], t["intermediate_size"], t["num_hidden_layers"], t["vocab_size"]
    eh = t.get("encoder_hidden_size", h)
    cross_flops = tl * 2 * 2 * tokens * eh * th
    step_weight_bytes = 4 * (tl * (6 * th * th + 2 * th * tm) + th * th + vocab * th)
    cross_kv_bytes = 4 * tl * 2 * tokens * th
    step_bytes = step_weight_bytes + cross_kv_bytes
    gf, bw = probe_gflops * 1e9, probe_gbs * 1e9
    lim = {
        "weights_only_s": step_weight_bytes / bw,
        "vision_s": vision_flops / gf,
        "cross_kv_s": cross_flops / gf,
        "greedy_step_s": step_bytes / bw,
        "beam3_step_s": step_bytes / bw,  # weights read once for all beams
    }
    lim["caption_greedy_s"] = lim["vision_s"] + lim["cross_kv_s"] + new_tokens * lim["greedy_step_s"]
    lim["caption_beam3_s"] = lim["vision_s"] + lim["cross_kv_s"] + new_tokens * lim["beam3_step_s"]
    notes = {
        "vision_s": f"{vision_flops / 1e9:.0f} GFLOP",
        "cross_kv_s": f"{cross_flops / 1e9:.1f} GFLOP",
        "greedy_step_s": f"reads {step_bytes / 1e6:.0f} MB",
        "beam3_step_s": f"reads {step_bytes / 1e6:.0f} MB",
    }
    return lim, notes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--pytorch", required=True)
    ap.add_argument("--engine-ready", nargs="*", default=[])
    ap.add_argument("--pytorch-ready", nargs="*", default=[])
    ap.add_argument("--daemon-ready", help="ready_time.py JSON: blip-captiond start → READY=1 (row shown if it exists)")
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--baseline", help="blip-bench JSON of an earlier build, shown as a 'before' column")
    ap.add_argument("--bf16", help="blip-bench --precision bf16 JSON: a second table for the bfloat16 decoder weights")
    args = ap.parse_args()
    cfg = json.load(open(args.config))
    e, p = json.load(open(args.engine)), json.load(open(args.pytorch))
    lim, notes = limits(cfg, e["sgemm_gflops"], e["bandwidth_gbs"], args.tokens)
    b = json.load(open(args.baseline)) if args.baseline else None

    def ready(files):
        return statistics.median(json.load(open(f))["ready_s"] for f in files) if files else None

    rows = [
        ("image decode + preprocess", "decode_preprocess_s"),
        ("vision encoder", "vision_s"),
        ("cross-attention K/V (12 layers)", "cross_kv_s"),
        ("one greedy decode step", "greedy_step_s"),
        ("one beam-3 decode step", "beam3_step_s"),
        (f"caption, greedy, {args.tokens} new tokens", "caption_greedy_s"),
        (f"caption, beam 3, {args.tokens} new tokens", "caption_beam3_s"),
    ]
    print(f"machine: {e['cpu']}, {e['threads']} BLAS threads, OpenBLAS core {e['openblas_core']}; "
          f"probes this run: sgemm {e['sgemm_gflops']:.0f} GFLOP/s, read bandwidth {e['bandwidth_gbs']:.1f} GB/s")
    print(f"PyTorch {p.get('torch')} / transformers {p.get('transformers')}, {p.get('threads')} threads, fp32\n")
    extra_head = " engine before | before ÷ now |" if b else ""
    print("| stage | engine | PyTorch | PyTorch ÷ engine | machine limit | engine ÷ limit |" + extra_head)
    print("| --- | --- | --- | --- | --- | --- |" + (" --- | --- |" if b else ""))

    def before(key, ev, scale=1.0, unit=None):
        if not b:
            return ""
        bv = b.get(key)
        if bv is None:
            return " — | — |"
        shown = f"{bv * scale:.2f} {unit}" if unit else fmt(bv)
        return f" {shown} | {bv / ev:.2f}× |"

    def fmt(s):
        return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"

    for name, key in rows:
        ev, pv = e.get(key), p.get(key)
        if ev is None or pv is None:
            continue
        if key in lim:
            limit = f"{fmt(lim[key])}" + (f" ({notes[key]})" if key in notes else "")
            ratio = f"{ev / lim[key]:.2f}×"
        else:
            limit, ratio = "—", "—"
        print(f"| {name} | {fmt(ev)} | {fmt(pv)} | {pv / ev:.2f}× | {limit} | {ratio} |" + before(key, ev))
    er, pr = ready(args.engine_ready), ready(args.pytorch_ready)
    if er is not None and pr is not None:
        print(f"| process start → model ready | {fmt(er)} | {fmt(pr)} (import + load) | {pr / er:.2f}× | — | — |"
              + (" — | — |" if b else ""))
    if args.daemon_ready and os.path.exists(args.daemon_ready):
        dr = json.load(open(args.daemon_ready))["median_s"]
        print(f"| process start → READY=1 (daemon, warm-up included) | {fmt(dr)} | — | — | — | — |"
              + (" — | — |" if b else ""))
    gb = 1 << 30
    print(f"| peak RSS (after beam-3 captions) | {e['peak_rss_bytes'] / gb:.2f} GiB | {p['peak_rss_bytes'] / gb:.2f} GiB "
          f"| {p['peak_rss_bytes'] / e['peak_rss_bytes']:.2f}× | — | — |"
          + before("peak_rss_bytes", e["peak_rss_bytes"], 1 / gb, "GiB"))

    if "batch4_beam3_step_s" in e:
        four = e["batch4_beam3_step_s"]
        print(f"\nConcurrent captions (StepBatcher): one step of 4 beam-3 captions together (12 rows) {fmt(four)}"
              f" = {four / e['beam3_step_s']:.2f}× one caption's beam-3 step (4 separate steps: 4.00×); "
              f"limit {fmt(lim['beam3_step_s'] + 3 * (lim['beam3_step_s'] - lim['weights_only_s']))}"
              f" (weights once, 4 images' cross-attention keys/values). Peak RSS with the 4 sessions: "
              f"{e.get('peak_rss_batch4_bytes', 0) / gb:.2f} GiB.")

    if args.bf16:
        h = json.load(open(args.bf16))
        wlim = lim["weights_only_s"] / 2 + (lim["beam3_step_s"] - lim["weights_only_s"])
        print("\n`--precision bf16` decode steps (bfloat16 decoder weights), same run; limit: half the decoder weight bytes + the image's keys/values\n")
        print("| stage | fp32 | bf16 | fp32 ÷ bf16 | bf16 limit | bf16 ÷ limit |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, key in [("one greedy decode step", "greedy_step_s"), ("one beam-3 decode step", "beam3_step_s"),
                          ("one step of 4 beam-3 captions together", "batch4_beam3_step_s"),
                          (f"caption, greedy, {args.tokens} new tokens", "caption_greedy_s"),
                          (f"caption, beam 3, {args.tokens} new tokens", "caption_beam3_s")]:
            if key not in h or key not in e:
                continue
            limit = {"greedy_step_s": wlim, "beam3_step_s": wlim}.get(key)
            lim_text = f"{fmt(limit)} | {h[key] / limit:.2f}×" if limit else "— | —"
            print(f"| {name} | {fmt(e[key])} | {fmt(h[key])} | {e[key] / h[key]:.2f}× | {lim_text} |")
        print(f"| peak RSS (after beam-3 captions) | {e['peak_rss_bytes'] / gb:.2f} GiB | {h['peak_rss_bytes'] / gb:.2f} GiB "
              f"| {e['peak_rss_bytes'] / h['peak_rss_bytes']:.2f}× | — | — |")


if __name__ == "__main__":
    main()
