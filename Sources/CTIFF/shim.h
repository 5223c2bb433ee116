#pragma once
#include <stdbool.h>
#include <tiffio.h>

// TIFFGetField and TIFFSetField are variadic, which Swift cannot call: one typed wrapper per use.
static inline bool TIFFGetField_u32(TIFF *tif, int tag, uint32_t *v) { return TIFFGetField(tif, tag, v) == 1; }
static inline bool TIFFGetField_u16(TIFF *tif, int tag, uint16_t *v) { return TIFFGetField(tif, tag, v) == 1; }
static inline bool TIFFGetFieldDefaulted_u16(TIFF *tif, int tag, uint16_t *v) {
    return TIFFGetFieldDefaulted(tif, tag, v) == 1;
}
static inline bool TIFFGetField_colormap(TIFF *tif, uint16_t **r, uint16_t **g, uint16_t **b) {
    return TIFFGetField(tif, TIFFTAG_COLORMAP, r, g, b) == 1;
}
static inline bool TIFFGetFieldDefaulted_extrasamples(TIFF *tif, uint16_t *count, uint16_t **types) {
    return TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, count, types) == 1;
}
static inline bool TIFFSetField_i32(TIFF *tif, int tag, int v) { return TIFFSetField(tif, tag, v) == 1; }
