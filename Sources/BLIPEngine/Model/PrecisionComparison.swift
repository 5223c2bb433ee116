/// How far a reduced ``Precision`` is from fp32: the measures `blip-bench --precision-report` prints
/// and the precision tests bound.
public enum PrecisionComparison {
    /// ‖x − reference‖ / ‖reference‖ (Frobenius), in double precision.
    public static func relativeError(_ x: UnsafeBufferPointer<Float>, reference: [Float]) -> Double {
        precondition(x.count == reference.count, "compared buffers differ in size")
        var difference = 0.0, norm = 0.0
        for i in 0..<x.count {
            let d = Double(x[i]) - Double(reference[i])
            difference += d * d
            norm += Double(reference[i]) * Double(reference[i])
        }
        return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
    }

    /// The decoder of `model`, given image `features` (tokens, hidden), teacher-forced on `tokens`
    /// (`[DEC]`, then a reference's tokens): at each position, whether its argmax is the reference's
    /// next token. Returns the steps whose argmax matched, and the steps (`tokens.count − 1`).
    public static func teacherForcedAgreement(model: BlipModel, features: UnsafePointer<Float>,
                                              tokens: [Int32]) throws -> (agreeing: Int, steps: Int) {
        guard tokens.count > 1 else { return (0, 0) }
        let session = model.makeSession(features: features, maxRows: 1, maxLength: tokens.count)
        var agreeing = 0
        for position in 0..<(tokens.count - 1) {
            let logits = try session.step([tokens[position]])
            var best = 0
            for v in 1..<logits.count where logits[v] > logits[best] { best = v }
            if Int32(best) == tokens[position + 1] { agreeing += 1 }
        }
        return (agreeing, tokens.count - 1)
    }

    /// Generation parameters whose greedy caption is the plain argmax at every step (no minimum
    /// length, no penalties): the reference tokens for ``teacherForcedAgreement(model:features:tokens:)``,
    /// with which fp32 agrees with itself at every step.
    public static func argmaxParameters(newTokens: Int) -> GenerationParameters {
        var p = GenerationParameters()
        p.numBeams = 1
        p.maxNewTokens = newTokens
        p.minLength = 0
        p.repetitionPenalty = 1
        p.noRepeatNgramSize = 0
        return p
    }
}
