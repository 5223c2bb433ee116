import BlipProtoC

/// What every frame carries: one call's request, its response, or a cancel, tagged with the
/// client's call id (several calls share a connection; responses come in any order).
public struct Envelope: Sendable, Hashable {
    /// What an envelope is.
    public enum Kind: UInt32, Sendable, Hashable {
        /// Client → server: starts call ``Envelope/callID`` of ``Envelope/method``.
        case request = 1
        /// Server → client: the one reply to call ``Envelope/callID``.
        case response = 2
        /// Client → server: asks the server to abandon call ``Envelope/callID``.
        case cancel = 3
    }

    /// Chosen by the client: unique among its calls in flight, never 0. A response with id 0
    /// is about the connection (e.g. a frame that was not an envelope), not about a call.
    public var callID: UInt64
    public var kind: Kind
    /// The full method name (an ``RPCMethod`` raw value); responses echo it.
    public var method: String
    /// How long the client waits for the response, counted from when the server reads the
    /// request; `nil` means no deadline. Sent in whole microseconds, rounded up.
    public var timeout: Duration?
    /// The request or response message's protobuf bytes; empty on failures and cancels.
    public var payload: [UInt8]
    /// The outcome, on responses; `nil` elsewhere. A response without one means `OK`.
    public var status: RPCStatus?

    /// - Parameters:
    ///   - callID: The call this envelope belongs to.
    ///   - kind: Request, response or cancel.
    ///   - method: The full method name.
    ///   - timeout: The request's deadline, `nil` for none.
    ///   - payload: The message's protobuf bytes.
    ///   - status: The outcome, on responses.
    public init(
        callID: UInt64, kind: Kind, method: String = "", timeout: Duration? = nil,
        payload: [UInt8] = [], status: RPCStatus? = nil
    ) {
        self.callID = callID
        self.kind = kind
        self.method = method
        self.timeout = timeout
        self.payload = payload
        self.status = status
    }

    /// A request for `method` carrying `message`.
    public static func request(
        callID: UInt64, method: RPCMethod, message: some WireMessage, timeout: Duration? = nil
    ) -> Envelope {
        Envelope(callID: callID, kind: .request, method: method.rawValue, timeout: timeout,
                 payload: message.encoded())
    }

    /// The successful response to `request`, carrying `message`.
    public static func response(to request: Envelope, message: some WireMessage) -> Envelope {
        Envelope(callID: request.callID, kind: .response, method: request.method,
                 payload: message.encoded(), status: .ok)
    }

    /// The failed response to call `callID` of `method`.
    public static func failure(callID: UInt64, method: String = "", error: RPCError) -> Envelope {
        Envelope(callID: callID, kind: .response, method: method, status: RPCStatus(error))
    }

    /// A cancel for call `callID`.
    public static func cancel(callID: UInt64) -> Envelope {
        Envelope(callID: callID, kind: .cancel)
    }

    /// The response's outcome (``status``, or `OK` when absent).
    public var responseStatus: RPCStatus { status ?? .ok }

    /// ``timeout`` in whole microseconds, as it goes on the wire (0 = none). Rounded up, so a
    /// tiny timeout stays a deadline; a non-positive one becomes 1 µs (already expired).
    public var timeoutMicroseconds: UInt64 {
        guard let timeout else { return 0 }
        let (seconds, attoseconds) = timeout.components
        guard seconds > 0 || (seconds == 0 && attoseconds > 0) else { return 1 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000)
        let fraction = UInt64((attoseconds + 999_999_999_999) / 1_000_000_000_000)
        guard !overflow, whole <= UInt64.max - fraction else { return UInt64.max }
        return max(whole + fraction, 1)
    }
}
