/// Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, bit for bit (libImaging/Resample.c).
///
/// Separable: two one-dimensional passes with an 8-bit intermediate. The cubic
/// kernel (a = −0.5, support 2) is stretched by the downscale factor so downscaling averages
/// (antialiasing); upscaling uses the plain kernel. Each output's weights are normalised to sum
/// to 1 in double precision, then turned into 22-bit fixed point with Pillow's rounding, and each
/// sum is rounded and clipped to 0...255. A pass whose dimension does not change is skipped.
/// The pass order follows Pillow 13 (see `resize`).
///
/// Memory is bounded by the output, not the input: the filter windows (two integers per output)
/// are computed up front, but the weights (one per input in each output's window: about 4×
/// the input size for a large downscale) are computed for a block of outputs at a time, at most
/// ``Coefficients/blockBytes`` of them. Each output's weights depend only on its own position, so
/// blocks change nothing in the result.
public enum BicubicResize {
    /// Resizes `image` to `width`×`height` (aspect ratio not preserved).
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        // Nothing to stop on: nothing can throw.
        (try? resize(image, width: width, height: height, stopCheck: .none))!
    }

    /// Resizes `image` to `width`×`height`, checking `stopCheck` (deadline, cancellation) after
    /// every block of outputs.
    /// - Throws: ``ImageError/deadlineExceeded`` or ``ImageError/cancelled``.
    public static func resize(_ image: RGBImage, width: Int, height: Int, stopCheck: ImageStopCheck) throws(ImageError) -> RGBImage {
        try resize(image, width: width, height: height, stopCheck: stopCheck, blockBytes: Coefficients.blockBytes)
    }

    /// Resizes `image` as it would look after EXIF orientation `orientation` (1...8, as
    /// ``EXIFOrientation/apply(_:to:)`` and Pillow's `exif_transpose` do it) to `width`×`height`,
    /// bit for bit what `resize(EXIFOrientation.apply(orientation, to: image), …)` gives, without
    /// the full-size rotated copy: each pass of the oriented image is a pass of the same weights
    /// along the matching axis of `image` (the window mirrored where the orientation flips that
    /// axis), the pass order is the one Pillow picks for the oriented size, and only the
    /// `width`×`height` result is rotated. The sums are exact integers and each output's inputs are
    /// the same pixels with the same weights, so the result is identical.
    /// - Throws: ``ImageError/deadlineExceeded`` or ``ImageError/cancelled``.
    public static func resize(_ image: RGBImage, orientation: Int, width: Int, height: Int,
                              stopCheck: ImageStopCheck) throws(ImageError) -> RGBImage {
        try resize(image, orientation: orientation, width: width, height: height, stopCheck: stopCheck,
                   blockBytes: Coefficients.blockBytes)
    }

    static func resize(_ image: RGBImage, orientation o: Int, width: Int, height: Int, stopCheck: ImageStopCheck,
                       blockBytes: Int) throws(ImageError) -> RGBImage {
        guard (2...8).contains(o) else {
            return try resize(image, width: width, height: height, stopCheck: stopCheck, blockBytes: blockBytes)
        }
        precondition(width > 0 && height > 0, "resize target must be positive")
        // The oriented image's x runs along the source's y for 5...8; `flipX`/`flipY`: the oriented
        // image's x/y runs against the source axis it follows (the table in EXIFOrientation.apply).
        let swaps = o >= 5
        let flipX = [2, 3, 6, 7].contains(o), flipY = [3, 4, 7, 8].contains(o)
        let (ow, oh) = swaps ? (image.height, image.width) : (image.width, image.height)
        if ow == width && oh == height { return EXIFOrientation.apply(o, to: image) }

        // Pillow's decisions, made on the oriented size (see `resize` above).
        let heightDrop = oh - height, widthDrop = ow - width
        let horizontalFirst = !(heightDrop > 0 && heightDrop > 2 * widthDrop)
        let needHorizontal = width != ow, needVertical = height != oh

        // The oriented image's passes as passes over `image`: (along the source's x?, coefficients).
        let horizontalPass = (alongSourceX: !swaps,
                              c: Coefficients(inSize: ow, outSize: width, blockBytes: blockBytes, mirrored: flipX))
        let verticalPass = (alongSourceX: swaps,
                            c: Coefficients(inSize: oh, outSize: height, blockBytes: blockBytes, mirrored: flipY))
        var passes: [(alongSourceX: Bool, c: Coefficients)] = []
        if horizontalFirst {
            if needHorizontal { passes.append(horizontalPass) }
            if needVertical { passes.append(verticalPass) }
        } else {
            passes.append(verticalPass)
            if needHorizontal { passes.append(horizontalPass) }
        }
        var current = image
        for pass in passes {
            current = pass.alongSourceX
                ? try resampleHorizontal(current, rows: 0..<current.height, coefficients: pass.c, stopCheck: stopCheck)
                : try resampleVertical(current, rowOffset: 0, coefficients: pass.c, stopCheck: stopCheck)
        }
        // `current` is the result laid out as the source is; mirrored windows already reversed the
        // flipped axes' outputs, so the orientation's own mapping puts every pixel in place.
        return EXIFOrientation.apply(o, to: current)
    }

    /// `blockBytes`: the weights computed at once (tests use tiny blocks to show they change nothing).
    static func resize(_ image: RGBImage, width: Int, height: Int, stopCheck: ImageStopCheck,
                       blockBytes: Int) throws(ImageError) -> RGBImage {
        precondition(width > 0 && height > 0, "resize target must be positive")
        if image.width == width && image.height == height { return image }

        let needHorizontal = width != image.width
        let needVertical = height != image.height
        let vertical = Coefficients(inSize: image.height, outSize: height, blockBytes: blockBytes)

        // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height
        // shrinks by more than twice as many pixels as the width; earlier Pillow always went
        // horizontal first. The order changes rounding of the 8-bit intermediate, so it is
        // reproduced exactly.
        let heightDrop = image.height - height, widthDrop = image.width - width
        let horizontalFirst = !(heightDrop > 0 && heightDrop > 2 * widthDrop)

        if !horizontalFirst {
            var current = try resampleVertical(image, rowOffset: 0, coefficients: vertical, stopCheck: stopCheck)
            if needHorizontal {
                let horizontal = Coefficients(inSize: image.width, outSize: width, blockBytes: blockBytes)
                current = try resampleHorizontal(current, rows: 0..<height, coefficients: horizontal, stopCheck: stopCheck)
            }
            return current
        }
        guard needHorizontal else {
            return try resampleVertical(image, rowOffset: 0, coefficients: vertical, stopCheck: stopCheck)
        }
        // Only the source rows the vertical pass will read are resampled horizontally.
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[2 * height - 2] + vertical.bounds[2 * height - 1]
        let horizontal = Coefficients(inSize: image.width, outSize: width, blockBytes: blockBytes)
        let current = try resampleHorizontal(image, rows: firstRow..<lastRow, coefficients: horizontal, stopCheck: stopCheck)
        guard needVertical else { return current }
        return try resampleVertical(current, rowOffset: firstRow, coefficients: vertical, stopCheck: stopCheck)
    }

    /// Per-output-pixel filter windows: output `i` reads inputs `bounds[2i] ..< bounds[2i] + bounds[2i+1]`;
    /// its weights (fixed point, `precisionBits`) come from ``weights(for:into:scratch:)``.
    struct Coefficients {
        static let precisionBits: Int32 = 32 - 8 - 2
        /// Most bytes of weights computed at once, by default.
        static let blockBytes = 1 << 20
        let taps: Int
        let blockBytes: Int
        let inSize: Int
        let scale: Double
        let filterScale: Double
        let scaledSupport: Double
        /// Output `i` is Pillow's output `outSize - 1 - i` read from the input reversed (the
        /// window mirrored, the weights in reverse order): a pass over an axis that an EXIF
        /// orientation flips.
        let mirrored: Bool
        var bounds: [Int]

        init(inSize: Int, outSize: Int, blockBytes: Int = Coefficients.blockBytes, mirrored: Bool = false) {
            self.blockBytes = blockBytes
            let support = 2.0  // bicubic
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1.0)
            let scaledSupport = support * filterScale
            self.taps = Int(scaledSupport.rounded(.up)) * 2 + 1
            self.inSize = inSize
            self.scale = scale
            self.filterScale = filterScale
            self.scaledSupport = scaledSupport
            self.mirrored = mirrored
            var bounds = [Int](repeating: 0, count: 2 * outSize)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                // C's (int) cast truncates toward zero, as Swift's Int(_:) does.
                let xmin = max(Int(center - scaledSupport + 0.5), 0)
                let xmax = min(Int(center + scaledSupport + 0.5), inSize) - xmin
                let i = mirrored ? outSize - 1 - xx : xx
                bounds[2 * i] = mirrored ? inSize - xmin - xmax : xmin
                bounds[2 * i + 1] = xmax
            }
            self.bounds = bounds
        }

        var outSize: Int { bounds.count / 2 }

        /// Outputs per block of weights.
        var blockSize: Int { max(1, blockBytes / (4 * taps)) }

        /// The blocks of outputs, in order.
        var blocks: StrideTo<Int> { stride(from: 0, to: outSize, by: blockSize) }

        /// Fills `weights[(xx - range.lowerBound) * taps + x]` for the outputs `xx` in `range`.
        func weights(for range: Range<Int>, into weights: inout [Int32], scratch k: inout [Double]) {
            if weights.count < range.count * taps { weights = [Int32](repeating: 0, count: range.count * taps) }
            if k.count < taps { k = [Double](repeating: 0, count: taps) }
            let invFilterScale = 1.0 / filterScale
            let one = Double(1 << Self.precisionBits)
            for i in range {
                // Pillow's output `xx`, its window starting at `xmin` of Pillow's input order.
                let xx = mirrored ? outSize - 1 - i : i
                let xmax = bounds[2 * i + 1]
                let xmin = mirrored ? inSize - bounds[2 * i] - xmax : bounds[2 * i]
                let center = (Double(xx) + 0.5) * scale
                var sum = 0.0
                for x in 0..<xmax {
                    let w = Self.cubic((Double(x + xmin) - center + 0.5) * invFilterScale)
                    k[x] = w
                    sum += w
                }
                let row = (i - range.lowerBound) * taps
                for x in 0..<xmax {
                    let w = sum != 0 ? k[x] / sum : k[x]
                    // Pillow rounds half away from zero, then truncates.
                    weights[row + (mirrored ? xmax - 1 - x : x)] = w < 0 ? Int32(-0.5 + w * one) : Int32(0.5 + w * one)
                }
            }
        }

        /// Keys' cubic convolution kernel with a = −0.5, written in Pillow's operation order.
        @inline(__always)
        static func cubic(_ x0: Double) -> Double {
            let a = -0.5
            let x = x0 < 0 ? -x0 : x0
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }

    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        UInt8(clamping: sum >> Coefficients.precisionBits)
    }

    static func resampleHorizontal(_ image: RGBImage, rows: Range<Int>, coefficients c: Coefficients,
                                   stopCheck: ImageStopCheck) throws(ImageError) -> RGBImage {
        let outW = c.outSize
        let inStride = image.width * 3
        var out = [UInt8](repeating: 0, count: outW * rows.count * 3)
        let half: Int32 = 1 << (Coefficients.precisionBits - 1)
        var weights: [Int32] = [], k: [Double] = []
        for blockStart in c.blocks {
            let block = blockStart..<min(blockStart + c.blockSize, outW)
            c.weights(for: block, into: &weights, scratch: &k)
            image.pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    c.bounds.withUnsafeBufferPointer { bounds in
                        weights.withUnsafeBufferPointer { weights in
                            for (oy, y) in rows.enumerated() {
                                let line = src.baseAddress! + y * inStride
                                let outLine = dst.baseAddress! + oy * outW * 3
                                for xx in block {
                                    let xmin = bounds[2 * xx], n = bounds[2 * xx + 1]
                                    let k = weights.baseAddress! + (xx - block.lowerBound) * c.taps
                                    var s0 = half, s1 = half, s2 = half
                                    var p = line + 3 * xmin
                                    for x in 0..<n {
                                        let w = k[x]
                                        s0 &+= Int32(p[0]) &* w
                                        s1 &+= Int32(p[1]) &* w
                                        s2 &+= Int32(p[2]) &* w
                                        p += 3
                                    }
                                    outLine[3 * xx] = clip8(s0)
                                    outLine[3 * xx + 1] = clip8(s1)
                                    outLine[3 * xx + 2] = clip8(s2)
                                }
                            }
                        }
                    }
                }
            }
            try stopCheck.check()
        }
        return RGBImage(width: outW, height: rows.count, pixels: out)
    }

    /// `rowOffset` is the source row that `image`'s row 0 corresponds to.
    static func resampleVertical(_ image: RGBImage, rowOffset: Int, coefficients c: Coefficients,
                                 stopCheck: ImageStopCheck) throws(ImageError) -> RGBImage {
        let outH = c.outSize
        let rowLength = image.width * 3
        var out = [UInt8](repeating: 0, count: rowLength * outH)
        // One accumulator row, reused: summing whole rows keeps the inner loop contiguous.
        var acc = [Int32](repeating: 0, count: rowLength)
        let half: Int32 = 1 << (Coefficients.precisionBits - 1)
        var weights: [Int32] = [], k: [Double] = []
        for blockStart in c.blocks {
            let block = blockStart..<min(blockStart + c.blockSize, outH)
            c.weights(for: block, into: &weights, scratch: &k)
            image.pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    acc.withUnsafeMutableBufferPointer { acc in
                        weights.withUnsafeBufferPointer { weights in
                            for yy in block {
                                let ymin = c.bounds[2 * yy] - rowOffset, n = c.bounds[2 * yy + 1]
                                let k = weights.baseAddress! + (yy - block.lowerBound) * c.taps
                                for i in 0..<rowLength { acc[i] = half }
                                for y in 0..<n {
                                    let w = k[y]
                                    let line = src.baseAddress! + (ymin + y) * rowLength
                                    for i in 0..<rowLength { acc[i] &+= Int32(line[i]) &* w }
                                }
                                let outLine = dst.baseAddress! + yy * rowLength
                                for i in 0..<rowLength { outLine[i] = clip8(acc[i]) }
                            }
                        }
                    }
                }
            }
            try stopCheck.check()
        }
        return RGBImage(width: image.width, height: outH, pixels: out)
    }
}
