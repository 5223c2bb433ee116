#!/usr/bin/env python3
"""Small test images in every format and variant the engine reads besides JPEG and PNG (issue 22:
WebP, GIF, BMP, TIFF, HEIC, AVIF), with the pixels Pillow 13 gives for each.

Writes Tests/Fixtures/image-formats/:
  <name>                   the image (64x48 or smaller), written by Pillow or, for the variants
                           Pillow cannot write (4-bit, 16-bit and RLE BMP, OS/2 headers, odd GIF
                           frames), by the small writers below
  <name>.safetensors       decoded         uint8 (H,W,3)  ImageOps.exif_transpose(Image.open(f)) then
                                                          transformers' convert_to_rgb
                           decoded_noexif  uint8 (H,W,3)  convert_to_rgb(Image.open(f)), only when the file
                                                          carries an orientation
  index.json               per file: format, notes, tolerance (0, or 2 for HEIC/AVIF, whose decoders
                           differ in version between Pillow's wheels and Debian)

HEIC files are read through pillow-heif (register_heif_opener), AVIF through Pillow's own plugin.
Run with the reference venv (scripts/reference/README.md) plus pillow-heif:
    python3 scripts/reference/make_image_format_fixtures.py
Deterministic for a given Pillow / pillow-heif (the encoders' output is fixed by their versions).
"""
from __future__ import annotations

import argparse
import io
import json
import struct
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageOps, features
from safetensors.numpy import save_file
from transformers.image_transforms import convert_to_rgb

REPO = Path(__file__).resolve().parents[2]
W, H = 64, 48


def base_images() -> tuple[Image.Image, Image.Image]:
    """A 64x48 photo (chelsea, from the existing fixtures) and the same with a radial alpha ramp."""
    photo = Image.open(REPO / "Tests/Fixtures/images/chelsea_q95_444.jpg").convert("RGB").resize((W, H), Image.BICUBIC)
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.sqrt((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / np.hypot(W / 2, H / 2)
    alpha = np.clip(255 * (1.2 - r * 1.3), 0, 255).astype(np.uint8)
    alpha[:, :6] = 0  # fully transparent columns: their colour must not leak
    rgba = photo.copy()
    rgba.putalpha(Image.fromarray(alpha))
    return photo, rgba


def exif_orientation(o: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = o
    return exif.tobytes()


# ------------------------------------------------------------------------------------------- BMP


def bmp(width: int, height: int, bits: int, rows: list[bytes], *, palette: list[tuple[int, int, int]] | None = None,
        compression: int = 0, masks: tuple[int, ...] | None = None, top_down: bool = False, header: int = 40,
        raw_data: bytes | None = None) -> bytes:
    """A BMP file: BITMAPFILEHEADER, an info header of `header` bytes (12, 40, 56 or 124), optional
    BITFIELDS masks after a 40-byte header, palette, then `rows` (file order, each padded to 4 bytes)
    or `raw_data` (RLE)."""
    pal = b""
    if palette is not None:
        entry = 3 if header == 12 else 4
        pal = b"".join(bytes((b, g, r)) + (b"" if entry == 3 else b"\0") for r, g, b in palette)
    if raw_data is None:
        stride = ((width * bits + 31) >> 3) & ~3
        data = b"".join(r.ljust(stride, b"\0") for r in rows)
    else:
        data = raw_data
    if header == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, bits)
    else:
        h = (-height & 0xFFFFFFFF) if top_down else height
        info = struct.pack("<IiIHHIIiiII", header, width, h, 1, bits, compression, len(data), 2835, 2835,
                           len(palette) if palette else 0, 0)
        if header > 40:
            m = (masks or (0, 0, 0, 0)) + (0,) * 4
            info += struct.pack("<IIII", *m[:4])
            info = info.ljust(header, b"\0")
    extra = struct.pack("<" + "I" * len(masks), *masks) if (masks and header == 40) else b""
    offset = 14 + len(info) + len(extra) + len(pal)
    head = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
    return head + info + extra + pal + data


def rle8(rows: list[list[int]]) -> bytes:
    """RLE8 with encoded runs, one absolute run per row where values vary, a delta and an early EOL."""
    out = bytearray()
    for y, row in enumerate(rows):
        x = 0
        if y == 3:
            out += bytes((0, 2, 5, 0))  # delta: 5 right (Pillow appends zeros)
            x = 5
        while x < len(row):
            run = 1
            while x + run < len(row) and row[x + run] == row[x] and run < 255:
                run += 1
            if run >= 3:
                out += bytes((run, row[x]))
                x += run
            else:
                lit = row[x:x + min(8, len(row) - x)]
                if len(lit) < 3:
                    for v in lit:
                        out += bytes((1, v))
                else:
                    out += bytes((0, len(lit))) + bytes(lit)
                    if len(lit) % 2:
                        out += b"\0"
                x += len(lit)
            if y == 5 and x > len(row) // 2:
                break  # early end of line: the rest of the row is index 0
        out += b"\0\0"
    out += b"\0\1"
    return bytes(out)


def rle4(rows: list[list[int]]) -> bytes:
    """RLE4: encoded runs of alternating pairs and absolute runs."""
    out = bytearray()
    for row in rows:
        x = 0
        while x < len(row):
            n = min(6, len(row) - x)
            if x % 12 == 0 and n >= 4:
                vals = row[x:x + n]
                packed = bytes(((vals[i] << 4) | (vals[i + 1] if i + 1 < n else 0)) for i in range(0, n, 2))
                out += bytes((0, n)) + packed
                if len(packed) % 2:
                    out += b"\0"
            else:
                out += bytes((n, (row[x] << 4) | row[min(x + 1, len(row) - 1)]))
            x += n
        out += b"\0\0"
    out += b"\0\1"
    return bytes(out)


def make_bmps(photo: Image.Image, rgba: Image.Image, add) -> None:
    arr = np.asarray(photo)
    w, h = 40, 30
    small = np.asarray(photo.resize((w, h)))
    bottom_up = list(range(h - 1, -1, -1))

    photo.save(buf := io.BytesIO(), "BMP"); add("bmp_rgb24.bmp", buf.getvalue(), "24-bit, bottom-up (Pillow's writer)")
    rgba.save(buf := io.BytesIO(), "BMP"); add("bmp_rgba32.bmp", buf.getvalue(), "32-bit BGRA with BITFIELDS, alpha over white (Pillow's writer)")
    photo.quantize(256).save(buf := io.BytesIO(), "BMP"); add("bmp_p8.bmp", buf.getvalue(), "8-bit palette (Pillow's writer)")
    photo.convert("L").save(buf := io.BytesIO(), "BMP"); add("bmp_l8.bmp", buf.getvalue(), "8-bit grey palette: read as grey levels")
    photo.convert("1").save(buf := io.BytesIO(), "BMP"); add("bmp_1bit.bmp", buf.getvalue(), "1-bit black and white")

    # 1-bit with two colours (not grey): a real palette.
    bits1 = (small.mean(axis=2) > 110).astype(np.uint8)
    rows = [np.packbits(bits1[y]).tobytes() for y in bottom_up]
    add("bmp_p1_colour.bmp", bmp(w, h, 1, rows, palette=[(200, 30, 40), (20, 60, 220)]), "1-bit, two-colour palette")

    # 4-bit palette of 12 colours (indices 12..15 are past the palette: black).
    q4 = photo.resize((w, h)).quantize(16)
    idx = np.asarray(q4)
    pal = [tuple(q4.getpalette()[3 * i:3 * i + 3]) for i in range(12)]
    rows = [bytes(((idx[y, x] << 4) | (idx[y, x + 1] if x + 1 < w else 0)) for x in range(0, w, 2)) for y in bottom_up]
    add("bmp_p4.bmp", bmp(w, h, 4, rows, palette=pal), "4-bit palette of 12 colours; indices past it read black")

    # 16-bit 5-5-5 (no BITFIELDS) and 5-6-5 (BITFIELDS), 32-bit BGRX, top-down 24-bit, OS/2 header.
    def px555(p): return ((p[0] >> 3) << 10) | ((p[1] >> 3) << 5) | (p[2] >> 3)
    def px565(p): return ((p[0] >> 3) << 11) | ((p[1] >> 2) << 5) | (p[2] >> 3)
    rows = [b"".join(struct.pack("<H", px555(small[y, x])) for x in range(w)) for y in bottom_up]
    add("bmp_rgb555.bmp", bmp(w, h, 16, rows), "16-bit 5-5-5")
    rows = [b"".join(struct.pack("<H", px565(small[y, x])) for x in range(w)) for y in bottom_up]
    add("bmp_rgb565.bmp", bmp(w, h, 16, rows, compression=3, masks=(0xF800, 0x7E0, 0x1F)), "16-bit 5-6-5 BITFIELDS (masks after a 40-byte header)")
    rows = [b"".join(bytes((small[y, x, 2], small[y, x, 1], small[y, x, 0], 77)) for x in range(w)) for y in bottom_up]
    add("bmp_bgrx32.bmp", bmp(w, h, 32, rows), "32-bit without BITFIELDS: the fourth byte is ignored")
    rows = [b"".join(bytes((small[y, x, 2], small[y, x, 1], small[y, x, 0])) for x in range(w)) for y in range(h)]
    add("bmp_topdown24.bmp", bmp(w, h, 24, rows, top_down=True), "24-bit top-down (negative height)")
    rows = [b"".join(bytes((small[y, x, 2], small[y, x, 1], small[y, x, 0])) for x in range(w)) for y in bottom_up]
    add("bmp_os2_24.bmp", bmp(w, h, 24, rows, header=12), "OS/2 1.x 12-byte header, 24-bit")
    a = np.asarray(rgba.resize((w, h)))
    rows = [b"".join(bytes((a[y, x, 3], a[y, x, 2], a[y, x, 1], a[y, x, 0])) for x in range(w)) for y in bottom_up]
    add("bmp_abgr32_v5.bmp", bmp(w, h, 32, rows, compression=3, masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF), header=124),
        "32-bit ABGR BITFIELDS in a V5 header")

    # RLE8 and RLE4 from a 16-colour quantisation.
    q = photo.resize((w, h)).quantize(16)
    idx = np.asarray(q)
    pal16 = [tuple(q.getpalette()[3 * i:3 * i + 3]) for i in range(16)]
    add("bmp_rle8.bmp", bmp(w, h, 8, [], palette=pal16, compression=1, raw_data=rle8([list(map(int, idx[y])) for y in bottom_up])),
        "RLE8: encoded and absolute runs, a delta, an early end of line")
    add("bmp_rle4.bmp", bmp(w, h, 4, [], palette=pal16, compression=2, raw_data=rle4([list(map(int, idx[y])) for y in bottom_up])),
        "RLE4: encoded pairs and absolute runs")


# ------------------------------------------------------------------------------------------- GIF


def gif_with_screen(data: bytes, screen: tuple[int, int], left: int, top: int) -> bytes:
    """`data` (a one-frame GIF) with its logical screen set to `screen` and the frame moved to (left, top)."""
    b = bytearray(data)
    struct.pack_into("<HH", b, 6, *screen)
    flags = b[10]
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while b[i] == 0x21:  # skip extensions
        i += 2
        while b[i]:
            i += b[i] + 1
        i += 1
    assert b[i] == 0x2C
    struct.pack_into("<HH", b, i + 1, left, top)
    return bytes(b)


def make_gifs(photo: Image.Image, rgba: Image.Image, add) -> None:
    p = photo.quantize(256)
    p.save(buf := io.BytesIO(), "GIF", interlace=False); add("gif_palette.gif", buf.getvalue(), "256-colour palette, one frame")
    p.save(buf := io.BytesIO(), "GIF", interlace=True); add("gif_interlaced.gif", buf.getvalue(), "interlaced rows")
    photo.convert("L").save(buf := io.BytesIO(), "GIF"); add("gif_grey.gif", buf.getvalue(), "grey: identity palette, Pillow mode L")
    t = photo.quantize(255)
    ta = np.asarray(t).copy()
    ta[np.asarray(rgba)[:, :, 3] < 128] = 255
    ti = Image.fromarray(ta, "P")
    ti.putpalette(t.getpalette()[:765] + [0, 255, 0])
    ti.save(buf := io.BytesIO(), "GIF", transparency=255); add("gif_transparency.gif", buf.getvalue(), "transparent index 255 (green): white")
    small = photo.resize((40, 30)).quantize(8)
    small.save(buf := io.BytesIO(), "GIF", transparency=0)
    add("gif_offset_frame.gif", gif_with_screen(buf.getvalue(), (52, 40), 7, 5),
        "40x30 frame at (7, 5) on a 52x40 screen, transparent index 0: the rest of the screen is white")
    small.save(buf := io.BytesIO(), "GIF")
    add("gif_frame_past_screen.gif", gif_with_screen(buf.getvalue(), (30, 20), 4, 3),
        "40x30 frame at (4, 3) on a 30x20 screen: Pillow grows the image to 44x33, index 0 outside the frame")
    frames = [photo.quantize(64), photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).quantize(64)]
    frames[0].save(buf := io.BytesIO(), "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    add("gif_animated.gif", buf.getvalue(), "two frames: the first is decoded")


# ------------------------------------------------------------------------------------------- WebP, TIFF, HEIC, AVIF


def make_webps(photo: Image.Image, rgba: Image.Image, add) -> None:
    for name, im, kw, note in [
        ("webp_lossy.webp", photo, dict(quality=80), "lossy VP8"),
        ("webp_lossless.webp", photo, dict(lossless=True), "lossless VP8L"),
        ("webp_lossy_alpha.webp", rgba, dict(quality=80), "lossy with an ALPH chunk, over white"),
        ("webp_lossless_alpha.webp", rgba, dict(lossless=True), "lossless with alpha, over white"),
        ("webp_exif6.webp", photo.transpose(Image.Transpose.ROTATE_90), dict(quality=85, exif=exif_orientation(6)),
         "EXIF chunk, Orientation 6"),
    ]:
        im.save(buf := io.BytesIO(), "WEBP", **kw)
        add(name, buf.getvalue(), note)
    frames = [rgba, photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("RGBA")]
    frames[0].save(buf := io.BytesIO(), "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    add("webp_animated.webp", buf.getvalue(), "animated, two frames: the first is decoded")


def make_tiffs(photo: Image.Image, rgba: Image.Image, add) -> None:
    for name, im, kw, note in [
        ("tiff_rgb_raw.tif", photo, {}, "RGB, uncompressed"),
        ("tiff_rgb_lzw.tif", photo, dict(compression="tiff_lzw"), "RGB, LZW"),
        ("tiff_rgb_deflate.tif", photo, dict(compression="tiff_adobe_deflate"), "RGB, Deflate"),
        ("tiff_rgb_packbits.tif", photo, dict(compression="packbits"), "RGB, PackBits"),
        ("tiff_rgb_jpeg.tif", photo, dict(compression="jpeg", quality=90), "YCbCr in JPEG (libjpeg converts to RGB)"),
        ("tiff_rgba_lzw.tif", rgba, dict(compression="tiff_lzw"), "RGBA (unassociated alpha), LZW, over white"),
        ("tiff_l8_deflate.tif", photo.convert("L"), dict(compression="tiff_adobe_deflate"), "grey 8-bit"),
        ("tiff_la8.tif", rgba.convert("LA"), {}, "grey + alpha"),
        ("tiff_1bit_g4.tif", photo.convert("1"), dict(compression="group4"), "bilevel, CCITT G4"),
        ("tiff_p8_lzw.tif", photo.quantize(200), dict(compression="tiff_lzw"), "palette 8-bit"),
        ("tiff_cmyk.tif", photo.convert("CMYK"), {}, "CMYK (Pillow's cmyk2rgb)"),
        ("tiff_i16.tif", Image.fromarray(np.asarray(photo.convert("L")).astype("<u2") * 3), {},
         "grey 16-bit (Pillow I;16: clipped at 255 on conversion)"),
        ("tiff_orientation6.tif", photo.transpose(Image.Transpose.ROTATE_90), dict(exif=exif_orientation(6)),
         "Orientation tag 6: Pillow applies it on load"),
    ]:
        im.save(buf := io.BytesIO(), "TIFF", **kw)
        add(name, buf.getvalue(), note)
    photo.save(buf := io.BytesIO(), "TIFF", save_all=True, append_images=[photo.transpose(Image.Transpose.FLIP_TOP_BOTTOM)])
    add("tiff_multipage.tif", buf.getvalue(), "two pages: the first is decoded")


def make_heifs(photo: Image.Image, rgba: Image.Image, add) -> None:
    import pillow_heif
    pillow_heif.register_heif_opener()
    photo.save(buf := io.BytesIO(), "HEIF", quality=90); add("heic_rgb.heic", buf.getvalue(), "HEVC 4:2:0 (pillow-heif, x265)", 2)
    rgba.save(buf := io.BytesIO(), "HEIF", quality=90); add("heic_rgba.heic", buf.getvalue(), "HEVC with an alpha image, over white", 2)


def make_avifs(photo: Image.Image, rgba: Image.Image, add) -> None:
    photo.save(buf := io.BytesIO(), "AVIF", quality=90); add("avif_rgb.avif", buf.getvalue(), "AV1 4:2:0 (Pillow's AVIF)", 2)
    rgba.save(buf := io.BytesIO(), "AVIF", quality=90); add("avif_rgba.avif", buf.getvalue(), "AV1 with alpha, over white", 2)
    photo.transpose(Image.Transpose.ROTATE_90).save(buf := io.BytesIO(), "AVIF", quality=90, exif=exif_orientation(6))
    add("avif_orientation6.avif", buf.getvalue(), "EXIF Orientation 6, which Pillow writes as irot/imir", 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "Tests/Fixtures/image-formats")
    args = ap.parse_args()
    print(f"Pillow {PIL.__version__}, avif {features.version('avif')}, webp {features.version('webp')}, "
          f"libtiff {features.version('libtiff')}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    photo, rgba = base_images()
    index = {}

    def add(name: str, data: bytes, notes: str, tolerance: int = 0) -> None:
        (out / name).write_bytes(data)
        raw = Image.open(out / name)
        fmt = raw.format
        tensors = {"decoded": np.ascontiguousarray(convert_to_rgb(ImageOps.exif_transpose(raw), return_numpy=True))}
        raw = Image.open(out / name)
        orientation = raw.getexif().get(0x0112)
        if orientation and orientation != 1:
            tensors["decoded_noexif"] = np.ascontiguousarray(convert_to_rgb(raw, return_numpy=True))
        save_file(tensors, str(out / f"{name}.safetensors"))
        index[name] = {"format": fmt, "mode": raw.mode, "notes": notes, "tolerance": tolerance,
                       "decoded_size": list(tensors["decoded"].shape[1::-1]), "orientation": orientation}

    make_bmps(photo, rgba, add)
    make_gifs(photo, rgba, add)
    make_webps(photo, rgba, add)
    make_tiffs(photo, rgba, add)
    make_heifs(photo, rgba, add)
    make_avifs(photo, rgba, add)
    (out / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(index)} images, {total} bytes in {out}")


if __name__ == "__main__":
    main()
