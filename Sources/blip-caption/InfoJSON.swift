import BLIPClient
import Foundation

/// `blip-caption info --json`: the whole `InfoResponse` as one JSON object on one line, its keys
/// the field names of proto/blip/v1/captioner.proto, all of them, read from the proto's
/// descriptors (``ProtoJSON``). A field the daemon leaves unset (`defaults.max_new_tokens`,
/// `defaults.seed`) is `null`. One change for people: `counters.requests_by_status` is an object
/// keyed by status name (`{"OK": 12, "INVALID_ARGUMENT": 1}`) rather than the wire's list of
/// `{code, count}`.
enum InfoJSON {
    static func encoded(_ info: InfoResponse) -> Data {
        Data(object(info).text.utf8)
    }

    static func object(_ info: InfoResponse) -> JSONValue {
        let byStatus = JSONValue.object(info.counters.requestsByStatus.map { (key: $0.key.name, value: .unsigned($0.value)) })
        return replacing(ProtoJSON.object(info), at: ["counters", "requests_by_status"], with: byStatus)
    }

    static func replacing(_ value: JSONValue, at path: ArraySlice<String>, with replacement: JSONValue) -> JSONValue {
        guard let key = path.first else { return replacement }
        guard let members = value.members else { return value }
        return .object(members.map { $0.key == key ? ($0.key, replacing($0.value, at: path.dropFirst(), with: replacement)) : $0 })
    }
}
