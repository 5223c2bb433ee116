import BlipProtoC
import CProtobufC

/// A JSON value, as ``ProtoJSON`` builds it: objects keep their keys in the proto's field order and
/// are written with sorted keys.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.text == b.text }

    /// The members of an object; `nil` for other values.
    public var members: [(key: String, value: JSONValue)]? { if case .object(let m) = self { m } else { nil } }

    /// One line of JSON, object keys sorted; NaN and infinities as the strings "nan", "inf", "-inf".
    public var text: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .integer(let i): "\(i)"
        case .unsigned(let u): "\(u)"
        case .number(let d):
            d.isNaN ? "\"nan\"" : d.isInfinite ? (d > 0 ? "\"inf\"" : "\"-inf\"")
                : d == d.rounded() && abs(d) < 1e15 ? "\(Int64(d))" : "\(d)"
        case .string(let s): Self.quoted(s)
        case .array(let values): "[" + values.map(\.text).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.sorted { $0.key < $1.key }.map { Self.quoted($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A blip.v1 message as JSON whose keys are the field names of proto/blip/v1, every field present,
/// read through protobuf-c's descriptors (so a field added to the proto appears without code here):
/// an unset field is `null`, a repeated field a list, a sub-message an object, an enum its value's
/// name, bytes their count.
public enum ProtoJSON {
    /// `InfoResponse` as JSON.
    public static func object(_ info: InfoResponse) -> JSONValue {
        object(info.encoded(), descriptor: blip__v1__info_response__descriptor)
    }

    /// The field names of `InfoResponse` and its sub-messages by path ("" for the top level,
    /// "limits", "counters.requests_by_status"), as protoc-c compiled them.
    public static var infoResponseFields: [String: [String]] {
        withUnsafePointer(to: blip__v1__info_response__descriptor) { fieldNames($0, path: "") }
    }

    static func fieldNames(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>, path: String) -> [String: [String]] {
        var names: [String: [String]] = [path: []]
        for i in 0..<Int(descriptor.pointee.n_fields) {
            let field = descriptor.pointee.fields[i]
            let name = String(cString: field.name)
            names[path, default: []].append(name)
            if field.type == PROTOBUF_C_TYPE_MESSAGE, let sub = field.descriptor {
                names.merge(fieldNames(sub.assumingMemoryBound(to: ProtobufCMessageDescriptor.self),
                                       path: path.isEmpty ? name : path + "." + name)) { a, _ in a }
            }
        }
        return names
    }

    static func object(_ bytes: [UInt8], descriptor: ProtobufCMessageDescriptor) -> JSONValue {
        withUnsafePointer(to: descriptor) { descriptor in
            let message = bytes.withUnsafeBufferPointer { buffer in
                withUnsafePointer(to: UInt8(0)) { empty in
                    protobuf_c_message_unpack(descriptor, nil, buffer.count, buffer.baseAddress ?? empty)
                }
            }
            // The bytes come from this module's own encoder: they always unpack.
            guard let message else { preconditionFailure("protobuf-c cannot unpack a message this module encoded") }
            defer { protobuf_c_message_free_unpacked(message, nil) }
            return object(UnsafeRawPointer(message), descriptor: descriptor)
        }
    }

    static func object(_ message: UnsafeRawPointer, descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = []
        for i in 0..<Int(descriptor.pointee.n_fields) {
            let field = descriptor.pointee.fields[i]
            members.append((String(cString: field.name), value(of: field, in: message)))
        }
        return .object(members)
    }

    static func value(of field: ProtobufCFieldDescriptor, in message: UnsafeRawPointer) -> JSONValue {
        let at = message + Int(field.offset)
        if field.label == PROTOBUF_C_LABEL_REPEATED {
            let count = message.load(fromByteOffset: Int(field.quantifier_offset), as: Int.self)
            guard count > 0, let elements = at.load(as: UnsafeRawPointer?.self) else { return .array([]) }
            return .array((0..<count).map { element(field, elements + $0 * stride(of: field)) })
        }
        switch field.type {
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE:
            // Pointers: NULL is unset.
            guard at.load(as: UnsafeRawPointer?.self) != nil else { return .null }
        default:
            if field.label == PROTOBUF_C_LABEL_OPTIONAL,
               message.load(fromByteOffset: Int(field.quantifier_offset), as: protobuf_c_boolean.self) == 0 {
                return .null
            }
        }
        return element(field, at)
    }

    /// The size of one element of a repeated field in protobuf-c's array.
    static func stride(of field: ProtobufCFieldDescriptor) -> Int {
        switch field.type {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_UINT64,
             PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE: 8
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE: MemoryLayout<UnsafeRawPointer>.stride
        case PROTOBUF_C_TYPE_BYTES: MemoryLayout<ProtobufCBinaryData>.stride
        default: 4
        }
    }

    /// One value of `field` stored at `at` (for a message or string field: the pointer to it).
    static func element(_ field: ProtobufCFieldDescriptor, _ at: UnsafeRawPointer) -> JSONValue {
        switch field.type {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32: .integer(Int64(at.load(as: Int32.self)))
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64: .integer(at.load(as: Int64.self))
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32: .unsigned(UInt64(at.load(as: UInt32.self)))
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64: .unsigned(at.load(as: UInt64.self))
        case PROTOBUF_C_TYPE_FLOAT: .number(Double(at.load(as: Float.self)))
        case PROTOBUF_C_TYPE_DOUBLE: .number(at.load(as: Double.self))
        case PROTOBUF_C_TYPE_BOOL: .bool(at.load(as: protobuf_c_boolean.self) != 0)
        case PROTOBUF_C_TYPE_ENUM:
            enumName(at.load(as: Int32.self), field.descriptor?.assumingMemoryBound(to: ProtobufCEnumDescriptor.self))
        case PROTOBUF_C_TYPE_STRING:
            at.load(as: UnsafePointer<CChar>?.self).map { .string(String(cString: $0)) } ?? .null
        case PROTOBUF_C_TYPE_BYTES: .unsigned(UInt64(at.load(as: ProtobufCBinaryData.self).len))
        case PROTOBUF_C_TYPE_MESSAGE:
            at.load(as: UnsafeRawPointer?.self).map {
                object($0, descriptor: field.descriptor!.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
            } ?? .null
        default: .null
        }
    }

    static func enumName(_ value: Int32, _ descriptor: UnsafePointer<ProtobufCEnumDescriptor>?) -> JSONValue {
        guard let descriptor, let entry = protobuf_c_enum_descriptor_get_value(descriptor, value) else { return .integer(Int64(value)) }
        return .string(String(cString: entry.pointee.name))
    }
}
