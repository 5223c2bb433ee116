"""Generates test images and Pillow/transformers reference outputs for the Swift image tests.

Usage: python3 gen_cases.py OUTDIR [--big]
Each <name>.<ext> gets <name>.safetensors with `decoded` (H,W,3 uint8 = convert_to_rgb(Image.open)),
`transposed` (exif_transpose first) and resized_<W>x<H> tensors (Image.resize BICUBIC of `decoded`).
resize.safetensors holds resizes of formula-generated inputs; normalize.safetensors holds
BlipImageProcessorPil pixel_values at size 32.
"""
import io, os, struct, sys
import numpy as np
from PIL import Image, ImageOps
from safetensors.numpy import save_file
from transformers.image_transforms import convert_to_rgb
sys.path.insert(0, os.path.dirname(__file__))
from pngw import write_png, chunk

out = sys.argv[1]
big = "--big" in sys.argv
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(1234)

def pattern(w, h, seed=0):
    """Deterministic input shared with the Swift tests: ((x*7 + y*13 + c*101 + seed) * 2654435761 >> 13) & 255."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = ((x * 7 + y * 13 + c * 101 + seed) * 2654435761) >> 13
    return (v & 255).astype(np.uint8)

def natural(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * ((x // 4 + y // 4) % 2)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)

SIZES = [(13, 7), (31, 43)] + ([(384, 384)] if big else [])

def record(name, data, ext, sizes=SIZES):
    with open(os.path.join(out, f"{name}.{ext}"), "wb") as f:
        f.write(data)
    im = Image.open(io.BytesIO(data))
    dec = convert_to_rgb(im, return_numpy=True)
    im2 = Image.open(io.BytesIO(data))
    tr = convert_to_rgb(ImageOps.exif_transpose(im2), return_numpy=True)
    tensors = {"decoded": np.ascontiguousarray(dec), "transposed": np.ascontiguousarray(tr)}
    pil = Image.fromarray(dec, "RGB")
    for (w, h) in sizes:
        tensors[f"resized_{w}x{h}"] = np.asarray(pil.resize((w, h), Image.BICUBIC))
    save_file(tensors, os.path.join(out, f"{name}.safetensors"))

def jpeg(arr_or_im, **kw):
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    b = io.BytesIO(); im.save(b, "JPEG", **kw); return b.getvalue()

nat = natural(61, 47)
record("jpeg-420", jpeg(nat, quality=90, subsampling=2), "jpg")
record("jpeg-444", jpeg(nat, quality=95, subsampling=0), "jpg")
record("jpeg-422", jpeg(nat, quality=85, subsampling=1), "jpg")
record("jpeg-progressive", jpeg(nat, quality=80, subsampling=2, progressive=True), "jpg")
record("jpeg-odd-420", jpeg(natural(17, 9), quality=75, subsampling=2), "jpg")
record("jpeg-gray", jpeg(Image.fromarray(nat[:, :, 1], "L"), quality=90), "jpg")
record("jpeg-cmyk", jpeg(Image.fromarray(nat).convert("CMYK"), quality=90), "jpg")
if big:
    record("jpeg-large", jpeg(natural(800, 600), quality=92), "jpg")

# EXIF orientation 1-8, little-endian (Pillow's writer) and big-endian (hand-made TIFF).
small = natural(9, 5)
for o in range(1, 9):
    ex = Image.Exif(); ex[0x0112] = o
    record(f"jpeg-exif-le-{o}", jpeg(small, quality=95, exif=ex.tobytes()), "jpg", sizes=[(6, 4)])
def be_exif(o):
    # "Exif\0\0" + MM header + IFD0 with two entries (orientation second) + next-IFD 0.
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHI4s", 0x010F, 2, 4, b"abc\0")           # Make, ASCII inline
    ifd += struct.pack(">HHIH2x", 0x0112, 3, 1, o)                  # Orientation SHORT
    ifd += struct.pack(">I", 0)
    return b"Exif\x00\x00" + b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
for o in (3, 6, 8):
    record(f"jpeg-exif-be-{o}", jpeg(small, quality=95, exif=be_exif(o)), "jpg", sizes=[(6, 4)])
# PNG with an eXIf chunk.
b = io.BytesIO(); ex = Image.Exif(); ex[0x0112] = 6
Image.fromarray(small).save(b, "PNG", exif=ex.tobytes()); record("png-exif-6", b.getvalue(), "png", sizes=[(6, 4)])

# PNG colour types and bit depths.
w, h = 23, 11
def samples(maxv, c):
    return rng.integers(0, maxv + 1, (h, w, c))
for bits in (1, 2, 4, 8, 16):
    record(f"png-gray{bits}", write_png(samples((1 << bits) - 1, 1), 0, bits), "png")
g8 = samples(255, 1); g8[0, :5] = 7
record("png-gray8-trns", write_png(g8, 0, 8, trns=struct.pack(">H", 7)), "png")
g16 = samples(600, 1); g16[0, :5] = 200
record("png-gray16-trns", write_png(g16, 0, 16, trns=struct.pack(">H", 200)), "png")
g2 = samples(3, 1)
record("png-gray2-trns", write_png(g2, 0, 2, trns=struct.pack(">H", 0)), "png")
record("png-gray1-trns", write_png(samples(1, 1), 0, 1, trns=struct.pack(">H", 1)), "png")
record("png-ga8", write_png(samples(255, 2), 4, 8), "png")
record("png-ga16", write_png(samples(65535, 2), 4, 16), "png")
record("png-rgb8", write_png(samples(255, 3), 2, 8), "png")
record("png-rgb16", write_png(samples(65535, 3), 2, 16), "png")
rgb = samples(255, 3); rgb[1, :4] = (10, 20, 30)
record("png-rgb8-trns", write_png(rgb, 2, 8, trns=struct.pack(">HHH", 10, 20, 30)), "png")
rgb16 = samples(65535, 3); rgb16[1, :4] = (2600, 5200, 7700)
record("png-rgb16-trns", write_png(rgb16, 2, 16, trns=struct.pack(">HHH", 10, 20, 30)), "png")
a = samples(255, 4); a[..., 3][0, :6] = (0, 1, 127, 128, 254, 255)
record("png-rgba8", write_png(a, 6, 8), "png")
record("png-rgba16", write_png(samples(65535, 4), 6, 16), "png")
for bits in (1, 2, 4, 8):
    n = 1 << bits
    plte = rng.integers(0, 256, (n, 3))
    idx = samples(n - 1, 1)
    record(f"png-pal{bits}", write_png(idx, 3, bits, plte=plte), "png")
    trns = bytes(rng.integers(0, 256, max(1, n // 2 + (n > 2))).astype(np.uint8))
    record(f"png-pal{bits}-trns", write_png(idx, 3, bits, plte=plte, trns=trns), "png")

# Resize cases over formula inputs: (inW, inH, outW, outH, seed).
rcases = [(1, 1, 40, 40, 0), (50, 300, 24, 24, 1), (300, 50, 24, 24, 2), (61, 47, 384, 384, 3) if big else (61, 47, 97, 90, 3),
          (100, 100, 100, 37, 4), (100, 100, 37, 100, 5), (7, 200, 200, 7, 6), (640, 480, 384, 384, 7) if big else (160, 120, 38, 38, 7),
          (3, 2, 5, 9, 8), (1000, 3, 7, 3, 9),
          (60, 100, 59, 50, 10), (20, 30, 10, 10, 11), (480, 640, 96, 96, 12), (50, 3000, 24, 24, 13), (10, 10, 31, 30, 14)]
rt = {}
for (iw, ih, ow, oh, seed) in rcases:
    rt[f"{iw}x{ih}_{ow}x{oh}_{seed}"] = np.asarray(Image.fromarray(pattern(iw, ih, seed), "RGB").resize((ow, oh), Image.BICUBIC))
save_file(rt, os.path.join(out, "resize.safetensors"))

# Full processor (resize + rescale + normalize) at size 32 on a formula input.
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
proc = BlipImageProcessorPil(size={"height": 32, "width": 32})
inp = pattern(45, 29, 11)
pv = proc(images=Image.fromarray(inp, "RGB"), return_tensors="np")["pixel_values"][0]
save_file({"pixel_values": np.ascontiguousarray(pv.astype(np.float32))}, os.path.join(out, "normalize.safetensors"))
print("ok", len(os.listdir(out)))
