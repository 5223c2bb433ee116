import Testing
@testable import BLIPProtocol

@Test func statusCodesHaveGRPCNumbersAndNames() {
    let expected: [(UInt32, String)] = [
        (0, "OK"), (1, "CANCELLED"), (2, "UNKNOWN"), (3, "INVALID_ARGUMENT"), (4, "DEADLINE_EXCEEDED"),
        (5, "NOT_FOUND"), (6, "ALREADY_EXISTS"), (7, "PERMISSION_DENIED"), (8, "RESOURCE_EXHAUSTED"),
        (9, "FAILED_PRECONDITION"), (10, "ABORTED"), (11, "OUT_OF_RANGE"), (12, "UNIMPLEMENTED"),
        (13, "INTERNAL"), (14, "UNAVAILABLE"), (15, "DATA_LOSS"), (16, "UNAUTHENTICATED"),
    ]
    #expect(StatusCode.allCases.count == expected.count)
    for (raw, name) in expected {
        let code = StatusCode(rawValue: raw)
        #expect(code?.name == name)
        #expect(StatusCode(name: name) == code)
    }
    #expect(StatusCode(rawValue: 17) == nil)
}

private struct QueueFull: RPCErrorConvertible {
    var rpcErrorCode: StatusCode { .resourceExhausted }
    var rpcErrorMessage: String { "queue is full (8 calls); retry later" }
}

private struct Unmapped: Error {}

@Test func errorsMapToRPCErrorsInOnePlace() {
    #expect(RPCError(mapping: QueueFull()) == RPCError(code: .resourceExhausted, message: "queue is full (8 calls); retry later"))
    #expect(RPCError(mapping: RPCError(code: .notFound, message: "x")) == RPCError(code: .notFound, message: "x"))
    #expect(RPCError(mapping: Unmapped()).code == .internal)
    let decoding = MessageDecodingError.malformed(message: "CaptionRequest", byteCount: 3)
    #expect(RPCError(mapping: decoding).code == .invalidArgument)
    #expect(RPCStatus(RPCError(code: .aborted, message: "m")).error == RPCError(code: .aborted, message: "m"))
    #expect(RPCStatus.ok.error == nil)
}

@Test func methodNamesAreTheWireNames() {
    #expect(RPCMethod.caption.rawValue == "/blip.v1.Captioner/Caption")
    #expect(RPCMethod.info.rawValue == "/blip.v1.Captioner/Info")
    #expect(RPCMethod.healthCheck.rawValue == "/blip.v1.Health/Check")
    #expect(RPCMethod.caption.service == "blip.v1.Captioner")
    #expect(RPCMethod.healthCheck.service == "blip.v1.Health")
    #expect(RPCMethod(rawValue: "/blip.v1.Captioner/Nope") == nil)
}
