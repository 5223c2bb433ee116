import Testing

/// Checks a decode-step product kernel (the bfloat16 and int8 `skinnyProduct`s) for 1…5 rows: each
/// output within 1e-4 of the float64 sum over the weights the packed matrix holds, `weight(o, i)`.
/// `product(rows, y)` computes `y (rows, n) = x[..<rows] · Wᵀ + bias`.
func expectDecodeStepProduct(outFeatures n: Int, inFeatures k: Int, bias: [Float], x: [Float],
                             weight: (Int, Int) -> Float,
                             sourceLocation: SourceLocation = #_sourceLocation,
                             product: (_ rows: Int, _ y: UnsafeMutablePointer<Float>) -> Void) {
    for rows in 1...5 {
        var y = [Float](repeating: 0, count: rows * n)
        y.withUnsafeMutableBufferPointer { product(rows, $0.baseAddress!) }
        for r in 0..<rows {
            for o in 0..<n {
                var expected = Double(bias[o])
                for i in 0..<k { expected += Double(weight(o, i)) * Double(x[r * k + i]) }
                #expect(abs(Double(y[r * n + o]) - expected) < 1e-4, "rows \(rows): row \(r) output \(o)", sourceLocation: sourceLocation)
            }
        }
    }
}
