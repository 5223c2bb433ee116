"""Minimal PNG writer for test images of every colour type / bit depth (with optional tRNS, PLTE)."""
import struct, zlib
import numpy as np

def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)

def write_png(samples, color_type, bit_depth, plte=None, trns=None, extra=b""):
    """samples: (H, W, C) integer array of raw sample values (palette indices for type 3)."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    h, w, c = samples.shape
    rows = []
    for y in range(h):
        s = samples[y].reshape(-1)
        if bit_depth == 16:
            raw = s.astype(">u2").tobytes()
        elif bit_depth == 8:
            raw = s.astype(np.uint8).tobytes()
        else:
            per = 8 // bit_depth
            n = (len(s) + per - 1) // per
            buf = bytearray(n)
            for i, v in enumerate(s):
                buf[i // per] |= int(v) << (8 - bit_depth * (i % per + 1))
            raw = bytes(buf)
        rows.append(b"\x00" + raw)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if plte is not None:
        out += chunk(b"PLTE", bytes(np.asarray(plte, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += extra
    out += chunk(b"IDAT", zlib.compress(b"".join(rows)))
    out += chunk(b"IEND", b"")
    return out
