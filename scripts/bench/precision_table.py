#!/usr/bin/env python3
"""The table of scripts/bench/precision.sh: blip-bench --precision-report beside precision_peers.py,
then the issue's targets with the figures that meet or miss them.

    precision_table.py --engine ENGINE.json --peers PEERS.json
"""
import argparse
import json


def pct(x):
    return f"{100 * x:.1f}%"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True)
    ap.add_argument("--peers", required=True)
    args = ap.parse_args()
    e = json.load(open(args.engine))
    p = json.load(open(args.peers))
    cpu = p.get("cpu", {})
    flags = ", ".join(k for k in ("avx512_bf16", "avx512_vnni", "amx_bf16") if cpu.get(k)) or "no AVX-512 BF16/VNNI, no AMX"
    print(f"CPU: {e.get('cpu')} ({flags}); {e.get('threads')} threads; {e.get('images')} images\n")
    print("| | path | vision encoder | beam-3 × 20 caption | encoder rel. error mean / max | teacher-forced top-1 | captions identical to fp32 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in ("fp32", "bf16", "int8"):
        r = e[name]
        print(f"| this engine {name} | {r['instruction_path']} | {r['vision_s']:.3f} s | {r['caption_s']:.3f} s | "
              f"{pct(r['encoder_rel_error_mean'])} / {pct(r['encoder_rel_error_max'])} | "
              f"{pct(r['top1_agreement'])} of {r['steps']} | {pct(r['identical_captions'])} |")
    for name, label in (("pytorch_fp32", "PyTorch fp32"), ("pytorch_bf16", "PyTorch bf16"),
                        ("openvino_fp32", "OpenVINO fp32"), ("openvino_int8", "OpenVINO int8 (NNCF)")):
        r = p.get(name)
        if not isinstance(r, dict):
            continue
        caption = f"{r['caption_seconds']:.3f} s" if "caption_seconds" in r else "—"
        vision = f"{r['vision_seconds']:.3f} s" if "vision_seconds" in r else "not timed"
        top1 = f"{pct(r['top1_agreement'])} of {r['steps']}" if "top1_agreement" in r else "—"
        identical = pct(r["identical_captions"]) if "identical_captions" in r else "—"
        print(f"| {label} | — | {vision} | {caption} | "
              f"{pct(r['rel_error_mean'])} / {pct(r['rel_error_max'])} | {top1} | {identical} |")

    print("\nTargets (issue 21; the vision targets are for CPUs with AVX-512 BF16/VNNI):")
    f32, b16, i8 = e["fp32"], e["bf16"], e["int8"]
    rows = []
    if isinstance(p.get("openvino_int8"), dict):
        ov8 = p["openvino_int8"]
        rows.append(("int8 vision ≤ OpenVINO int8's time", f"{i8['vision_s']:.3f} s vs {ov8['vision_seconds']:.3f} s",
                     i8["vision_s"] <= ov8["vision_seconds"]))
        rows.append(("int8 encoder error ≤ ½ OpenVINO int8's (mean)",
                     f"{pct(i8['encoder_rel_error_mean'])} vs {pct(ov8['rel_error_mean'])}",
                     i8["encoder_rel_error_mean"] <= ov8["rel_error_mean"] / 2))
    if isinstance(p.get("openvino_fp32"), dict):
        ov = p["openvino_fp32"]
        rows.append(("fp32 vision ≤ OpenVINO fp32's time", f"{f32['vision_s']:.3f} s vs {ov['vision_seconds']:.3f} s",
                     f32["vision_s"] <= ov["vision_seconds"]))
    rows.append(("bf16 vision ≤ 0.55 × our fp32", f"{b16['vision_s'] / f32['vision_s']:.2f}×", b16["vision_s"] <= 0.55 * f32["vision_s"]))
    if isinstance(p.get("pytorch_bf16"), dict):
        pb = p["pytorch_bf16"]
        rows.append(("bf16 encoder error ≤ 2 × PyTorch bf16's (mean)",
                     f"{pct(b16['encoder_rel_error_mean'])} vs {pct(pb['rel_error_mean'])}",
                     b16["encoder_rel_error_mean"] <= 2 * pb["rel_error_mean"]))
        rows.append(("bf16 top-1 ≥ PyTorch bf16's", f"{pct(b16['top1_agreement'])} vs {pct(pb['top1_agreement'])}",
                     b16["top1_agreement"] >= pb["top1_agreement"]))
    rows.append(("int8 top-1 ≥ 90%", pct(i8["top1_agreement"]), i8["top1_agreement"] >= 0.9))
    pt = p.get("pytorch_fp32", {}).get("caption_seconds")
    if pt:
        for name, r, factor in (("int8", i8, 4), ("bf16", b16, 2.5), ("fp32", f32, 2)):
            rows.append((f"{name} beam-3 caption ≥ {factor}× PyTorch fp32's speed", f"{pt / r['caption_s']:.2f}×",
                         pt / r["caption_s"] >= factor))
    for name, r in (("bf16", b16), ("int8", i8)):
        rows.append((f"{name} not slower than fp32 (vision, caption)",
                     f"{r['vision_s'] / f32['vision_s']:.2f}×, {r['caption_s'] / f32['caption_s']:.2f}×",
                     r["vision_s"] <= f32["vision_s"] * 1.02 and r["caption_s"] <= f32["caption_s"] * 1.02))
    print("\n| target | measured | met |\n| --- | --- | --- |")
    for name, value, met in rows:
        print(f"| {name} | {value} | {'yes' if met else '**no**'} |")


if __name__ == "__main__":
    main()
