"""Writes interlace-NAME.png and interlace-NAME-adam7.png: the same 13×11 samples, plain and Adam7
interlaced, for the row-by-row PNG decoder's test (issue 13). Run from this folder."""
import struct, zlib
import numpy as np
import sys, os
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "image-unit"))
from pngw import chunk

PASSES = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]  # x0, y0, dx, dy

def pack_row(s, bit_depth):
    s = s.reshape(-1)
    if bit_depth == 16:
        return s.astype(">u2").tobytes()
    if bit_depth == 8:
        return s.astype(np.uint8).tobytes()
    per = 8 // bit_depth
    buf = bytearray((len(s) + per - 1) // per)
    for i, v in enumerate(s):
        buf[i // per] |= int(v) << (8 - bit_depth * (i % per + 1))
    return bytes(buf)

def write(samples, color_type, bit_depth, interlaced, trns=None):
    h, w, _ = samples.shape
    rows = []
    if not interlaced:
        rows = [b"\x00" + pack_row(samples[y], bit_depth) for y in range(h)]
    else:
        for x0, y0, dx, dy in PASSES:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            rows += [b"\x00" + pack_row(sub[y], bit_depth) for y in range(sub.shape[0])]
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlaced else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")

rng = np.random.default_rng(13)
cases = {
    "rgb8": (rng.integers(0, 256, (11, 13, 3)), 2, 8, None),
    "rgba16": (rng.integers(0, 65536, (11, 13, 4)), 6, 16, None),
    "gray2-trns": (rng.integers(0, 4, (11, 13, 1)), 0, 2, struct.pack(">H", 2)),
}
for name, (samples, ct, bd, trns) in cases.items():
    for interlaced in (False, True):
        path = f"interlace-{name}{'-adam7' if interlaced else ''}.png"
        open(path, "wb").write(write(samples, ct, bd, interlaced, trns))
        print(path)
