import CHEIF

/// Decodes the primary image of a HEIF/HEIC file with libheif (Debian's, which decodes HEVC
/// through libde265), as `pillow-heif` does: libheif applies the container's rotation and mirror
/// (`irot`, `imir`) and crop, converts to 8-bit interleaved RGB (RGBA when there is alpha, which
/// transformers composites over white). The result is within a couple of levels of `pillow-heif`'s,
/// not identical (the YCbCr → RGB conversion differs between libheif versions).
///
/// Hostile input: the size the container declares is checked before decoding. libheif 1.15 decodes
/// in one call that cannot be interrupted, so the deadline is checked before and after it only.
/// Memory: libheif's YCbCr planes (1.5–3 bytes a pixel), its RGB(A) image (3–4) and the result (3).
enum HEIFDecoder {
    static func decode(_ bytes: [UInt8], limits: ImageLimits, stopCheck: ImageStopCheck = .none) throws(ImageError) -> RGBImage {
        guard let ctx = heif_context_alloc() else { throw .unsupported(format: "HEIC", detail: "heif_context_alloc failed") }
        defer { heif_context_free(ctx) }
        // libheif refuses larger sides itself; the pixel count is checked below.
        heif_context_set_maximum_image_size_limit(ctx, Int32(min(limits.maxPixels, Int(Int32.max))))
        // `without_copy`: libheif reads the caller's bytes, alive for the whole closure.
        return try bytes.withUnsafeBufferPointer { (raw) throws(ImageError) -> RGBImage in
            try check(heif_context_read_from_memory_without_copy(ctx, raw.baseAddress, raw.count, nil))
            var handle: OpaquePointer? = nil
            try check(heif_context_get_primary_image_handle(ctx, &handle))
            guard let handle else { throw .corrupt(format: "HEIC", detail: "no primary image") }
            defer { heif_image_handle_release(handle) }
            // The coded size (`ispe`) is what the HEVC decoder allocates; the displayed size (after
            // a crop or rotation) is what is returned. Both within the limits.
            try limits.check(width: Int(heif_image_handle_get_ispe_width(handle)), height: Int(heif_image_handle_get_ispe_height(handle)))
            let (w, h) = (Int(heif_image_handle_get_width(handle)), Int(heif_image_handle_get_height(handle)))
            try limits.check(width: w, height: h)
            let alpha = heif_image_handle_has_alpha_channel(handle) != 0
            try stopCheck.check()

            var image: OpaquePointer? = nil
            try check(heif_decode_image(handle, &image, heif_colorspace_RGB,
                                        alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, nil))
            guard let image else { throw .corrupt(format: "HEIC", detail: "no decoded image") }
            defer { heif_image_release(image) }
            try stopCheck.check()
            var stride: Int32 = 0
            guard let plane = heif_image_get_plane_readonly(image, heif_channel_interleaved, &stride) else {
                throw .corrupt(format: "HEIC", detail: "no interleaved plane")
            }
            let (dw, dh) = (Int(heif_image_get_width(image, heif_channel_interleaved)), Int(heif_image_get_height(image, heif_channel_interleaved)))
            guard dw == w, dh == h, Int(stride) >= w * (alpha ? 4 : 3) else {
                throw .corrupt(format: "HEIC", detail: "decoded \(dw)x\(dh), header says \(w)x\(h)")
            }
            var rgb = [UInt8](repeating: 0, count: w * h * 3)
            rgb.withUnsafeMutableBufferPointer { d in
                for y in 0..<h {
                    let s = plane + y * Int(stride), o = d.baseAddress! + 3 * w * y
                    if alpha {
                        for x in 0..<w {
                            for c in 0..<3 { o[3 * x + c] = PillowPixelMath.overWhite(s[4 * x + c], alpha: s[4 * x + 3]) }
                        }
                    } else {
                        o.update(from: s, count: 3 * w)
                    }
                }
            }
            return RGBImage(width: w, height: h, pixels: rgb)
        }
    }

    /// Whether this libheif can decode HEVC (Debian's links libde265).
    static var canDecodeHEVC: Bool { heif_have_decoder_for_format(heif_compression_HEVC) != 0 }

    private static func check(_ e: heif_error) throws(ImageError) {
        guard e.code != heif_error_Ok else { return }
        let message = e.message.map { String(cString: $0) } ?? "libheif error \(e.code.rawValue)"
        switch e.code {
        case heif_error_Unsupported_feature, heif_error_Unsupported_filetype:
            throw .unsupported(format: "HEIC", detail: message)
        case heif_error_Memory_allocation_error where e.subcode == heif_suberror_Security_limit_exceeded:
            throw .unsupported(format: "HEIC", detail: "over libheif's security limits: \(message)")
        default:
            throw .corrupt(format: "HEIC", detail: message)
        }
    }
}
