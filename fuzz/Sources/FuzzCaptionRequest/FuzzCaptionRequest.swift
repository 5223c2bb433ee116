import BLIPEngine
import BLIPProtocol

/// A Caption payload → CaptionRequest → the daemon's option mapping → GenerationParameters.validated.
/// Invariants: no crash; parameters that pass validation are inside the ranges generation relies on.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCaptionRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let request = try? CaptionRequest(decoding: bytes) else { return 0 }
    let again = try? CaptionRequest(decoding: request.encoded())
    precondition(again != nil, "a decoded CaptionRequest does not decode after re-encoding")
    let o = request.options
    // The mapping of Sources/blip-captiond/EngineCaptionService.parameters (an executable target,
    // so it cannot be imported): keep the two in step.
    var p = GenerationParameters()
    p.prompt = request.prompt
    p.doSample = o.doSample ?? false
    p.numBeams = o.numBeams.map { Int($0) } ?? GenerationParameters.defaultNumBeams(doSample: p.doSample)
    p.maxNewTokens = o.maxNewTokens.map { Int($0) }
    p.minNewTokens = o.minNewTokens.map { Int($0) }
    p.maxLength = o.maxLength.map { Int($0) }
    p.minLength = o.minLength.map { Int($0) }
    if let v = o.lengthPenalty { p.lengthPenalty = Float(v) }
    if let v = o.repetitionPenalty { p.repetitionPenalty = Float(v) }
    if let v = o.noRepeatNgramSize { p.noRepeatNgramSize = Int(v) }
    if let v = o.numReturnSequences { p.numReturnSequences = Int(v) }
    if let v = o.earlyStopping { p.earlyStopping = v }
    if let v = o.temperature { p.temperature = Float(v) }
    if let v = o.topK { p.topK = Int(v) }
    if let v = o.topP { p.topP = Float(v) }
    p.seed = o.seed
    p.badWords = o.badWords
    let limits = GenerationLimits()
    guard let valid = try? p.validated(maxPositions: 512, limits: limits) else { return 0 }
    precondition((1...limits.maxBeams).contains(valid.numBeams))
    precondition(valid.numReturnSequences >= 1 && valid.numReturnSequences <= limits.maxBeams)
    precondition(valid.temperature.isFinite && valid.temperature > 0)
    precondition(valid.topP > 0 && valid.topP <= 1)
    precondition(valid.repetitionPenalty.isFinite && valid.repetitionPenalty > 0)
    precondition(valid.lengthPenalty.isFinite)
    precondition((valid.maxNewTokens ?? 1) >= 1 && (valid.maxNewTokens ?? 1) < 512)
    return 0
}
