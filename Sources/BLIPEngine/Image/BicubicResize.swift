/// Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, bit for bit (libImaging/Resample.c).
///
/// Separable: two one-dimensional passes with an 8-bit intermediate. The cubic
/// kernel (a = −0.5, support 2) is stretched by the downscale factor so downscaling averages
/// (antialiasing); upscaling uses the plain kernel. Each output's weights are normalised to sum
/// to 1 in double precision, then turned into 22-bit fixed point with Pillow's rounding, and each
/// sum is rounded and clipped to 0...255. A pass whose dimension does not change is skipped.
/// The pass order follows Pillow 13 (see `resize`).
public enum BicubicResize {
    /// Resizes `image` to `width`×`height` (aspect ratio not preserved).
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        precondition(width > 0 && height > 0, "resize target must be positive")
        if image.width == width && image.height == height { return image }

        let needHorizontal = width != image.width
        let needVertical = height != image.height
        let vertical = Coefficients(inSize: image.height, outSize: height)

        // Pillow 13 (python-pillow/Pillow#9549) runs the vertical pass first when the height
        // shrinks by more than twice as many pixels as the width; earlier Pillow always went
        // horizontal first. The order changes rounding of the 8-bit intermediate, so it is
        // reproduced exactly.
        let heightDrop = image.height - height, widthDrop = image.width - width
        let horizontalFirst = !(heightDrop > 0 && heightDrop > 2 * widthDrop)

        if !horizontalFirst {
            var current = resampleVertical(image, rowOffset: 0, coefficients: vertical)
            if needHorizontal {
                let horizontal = Coefficients(inSize: image.width, outSize: width)
                current = resampleHorizontal(current, rows: 0..<height, coefficients: horizontal)
            }
            return current
        }
        guard needHorizontal else {
            return resampleVertical(image, rowOffset: 0, coefficients: vertical)
        }
        // Only the source rows the vertical pass will read are resampled horizontally.
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[2 * height - 2] + vertical.bounds[2 * height - 1]
        let horizontal = Coefficients(inSize: image.width, outSize: width)
        let current = resampleHorizontal(image, rows: firstRow..<lastRow, coefficients: horizontal)
        guard needVertical else { return current }
        return resampleVertical(current, rowOffset: firstRow, coefficients: vertical)
    }

    /// Per-output-pixel filter windows: output `i` reads inputs `bounds[2i] ..< bounds[2i] + bounds[2i+1]`
    /// with weights `weights[i*taps ..< i*taps + bounds[2i+1]]` (fixed point, `precisionBits`).
    struct Coefficients {
        static let precisionBits: Int32 = 32 - 8 - 2
        let taps: Int
        var bounds: [Int]
        var weights: [Int32]

        init(inSize: Int, outSize: Int) {
            let support = 2.0  // bicubic
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1.0)
            let scaledSupport = support * filterScale
            let taps = Int(scaledSupport.rounded(.up)) * 2 + 1
            self.taps = taps
            var bounds = [Int](repeating: 0, count: 2 * outSize)
            var weights = [Int32](repeating: 0, count: outSize * taps)
            var k = [Double](repeating: 0, count: taps)
            let invFilterScale = 1.0 / filterScale
            let one = Double(1 << Self.precisionBits)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                // C's (int) cast truncates toward zero, as Swift's Int(_:) does.
                let xmin = max(Int(center - scaledSupport + 0.5), 0)
                let xmax = min(Int(center + scaledSupport + 0.5), inSize) - xmin
                var sum = 0.0
                for x in 0..<xmax {
                    let w = Self.cubic((Double(x + xmin) - center + 0.5) * invFilterScale)
                    k[x] = w
                    sum += w
                }
                for x in 0..<xmax {
                    let w = sum != 0 ? k[x] / sum : k[x]
                    // Pillow rounds half away from zero, then truncates.
                    weights[xx * taps + x] = w < 0 ? Int32(-0.5 + w * one) : Int32(0.5 + w * one)
                }
                bounds[2 * xx] = xmin
                bounds[2 * xx + 1] = xmax
            }
            self.bounds = bounds
            self.weights = weights
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

    static func resampleHorizontal(_ image: RGBImage, rows: Range<Int>, coefficients c: Coefficients) -> RGBImage {
        let outW = c.bounds.count / 2
        let inStride = image.width * 3
        var out = [UInt8](repeating: 0, count: outW * rows.count * 3)
        let half: Int32 = 1 << (Coefficients.precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.bounds.withUnsafeBufferPointer { bounds in
                    c.weights.withUnsafeBufferPointer { weights in
                        for (oy, y) in rows.enumerated() {
                            let line = src.baseAddress! + y * inStride
                            let outLine = dst.baseAddress! + oy * outW * 3
                            for xx in 0..<outW {
                                let xmin = bounds[2 * xx], n = bounds[2 * xx + 1]
                                let k = weights.baseAddress! + xx * c.taps
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
        return RGBImage(width: outW, height: rows.count, pixels: out)
    }

    /// `rowOffset` is the source row that `image`'s row 0 corresponds to.
    static func resampleVertical(_ image: RGBImage, rowOffset: Int, coefficients c: Coefficients) -> RGBImage {
        let outH = c.bounds.count / 2
        let rowLength = image.width * 3
        var out = [UInt8](repeating: 0, count: rowLength * outH)
        // One accumulator row, reused: summing whole rows keeps the inner loop contiguous.
        var acc = [Int32](repeating: 0, count: rowLength)
        let half: Int32 = 1 << (Coefficients.precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                acc.withUnsafeMutableBufferPointer { acc in
                    for yy in 0..<outH {
                        let ymin = c.bounds[2 * yy] - rowOffset, n = c.bounds[2 * yy + 1]
                        for i in 0..<rowLength { acc[i] = half }
                        for y in 0..<n {
                            let w = c.weights[yy * c.taps + y]
                            let line = src.baseAddress! + (ymin + y) * rowLength
                            for i in 0..<rowLength { acc[i] &+= Int32(line[i]) &* w }
                        }
                        let outLine = dst.baseAddress! + yy * rowLength
                        for i in 0..<rowLength { outLine[i] = clip8(acc[i]) }
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: outH, pixels: out)
    }
}
