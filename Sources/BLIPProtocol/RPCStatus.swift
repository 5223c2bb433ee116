/// The outcome of one call, as a response envelope carries it.
public struct RPCStatus: Sendable, Hashable, CustomStringConvertible {
    /// What happened.
    public var code: StatusCode
    /// Human-readable detail: what went wrong and what to do. Empty on success.
    public var message: String

    /// - Parameters:
    ///   - code: The status code.
    ///   - message: Detail for people; empty on success.
    public init(code: StatusCode, message: String = "") {
        self.code = code
        self.message = message
    }

    /// Success with no message.
    public static let ok = RPCStatus(code: .ok)

    /// The status that reports `error`.
    public init(_ error: RPCError) {
        self.init(code: error.code, message: error.message)
    }

    /// The error this status reports, or `nil` when the code is `OK`.
    public var error: RPCError? {
        code == .ok ? nil : RPCError(code: code, message: message)
    }

    public var description: String {
        message.isEmpty ? code.name : "\(code.name): \(message)"
    }
}
