/// A call that failed: a status code other than `OK` and a message for people.
///
/// This is the one error type that crosses the wire. Domain errors become one through
/// ``RPCErrorConvertible`` (in one place, so every failure maps to the same code everywhere).
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status code; never `.ok` for a real failure.
    public var code: StatusCode
    /// What went wrong and what to do about it.
    public var message: String

    /// - Parameters:
    ///   - code: The status code to report.
    ///   - message: What went wrong and what to do about it.
    public init(code: StatusCode, message: String) {
        self.code = code
        self.message = message
    }

    /// Maps any error to the one that goes on the wire: an `RPCError` as is, an
    /// ``RPCErrorConvertible`` by its own mapping, and anything else as `INTERNAL`
    /// (an error nobody mapped is a bug in the server, not in the request).
    public init(mapping error: any Error) {
        switch error {
        case let error as RPCError:
            self = error
        case let error as any RPCErrorConvertible:
            self.init(code: error.rpcErrorCode, message: error.rpcErrorMessage)
        default:
            self.init(code: .internal, message: String(describing: error))
        }
    }

    public var description: String { "\(code.name): \(message)" }
}

/// A domain error that knows which wire status reports it.
///
/// Conform engine and server errors in one place, e.g.
/// `extension ImageDecodingError: RPCErrorConvertible { var rpcErrorCode: StatusCode { .invalidArgument } … }`.
public protocol RPCErrorConvertible: Error {
    /// The status code that reports this error.
    var rpcErrorCode: StatusCode { get }
    /// The message the client sees.
    var rpcErrorMessage: String { get }
}

extension RPCErrorConvertible {
    /// By default the client sees the error's description.
    public var rpcErrorMessage: String { String(describing: self) }

    /// This error as it goes on the wire.
    public var rpcError: RPCError { RPCError(code: rpcErrorCode, message: rpcErrorMessage) }
}
