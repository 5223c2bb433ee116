import BLIPCaptionService
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
    // The daemon's own mapping from wire options to engine parameters (a double no Float can
    // hold is refused there, as the daemon refuses it).
    guard let p = try? EngineCaptionService.parameters(request.options, prompt: request.prompt) else { return 0 }
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
