import BlipProtoC
import CProtobufC

/// The `DecodingOptions` message's fields, found by the table's names in protobuf-c's descriptor:
/// reading and writing a field is the same code for every option, so a row is all an option needs.
enum DecodingOptionFields {
    /// The descriptor of the field `option` names. Every row has one (a test checks the table against
    /// the descriptor both ways); a missing one is a build that pairs another proto with this table.
    static func descriptor(_ option: DecodingOption) -> ProtobufCFieldDescriptor {
        withUnsafePointer(to: blip__v1__decoding_options__descriptor) { message in
            guard let field = protobuf_c_message_descriptor_get_field_by_name(message, option.rawValue) else {
                preconditionFailure("captioner.proto's DecodingOptions has no field \(option.rawValue)")
            }
            return field.pointee
        }
    }

    /// The field names and numbers of the message, as protoc-c compiled them.
    static var protoFields: [(name: String, number: UInt32)] {
        let message = blip__v1__decoding_options__descriptor
        return (0..<Int(message.n_fields)).map { i in
            let field = message.fields[i]
            return (String(cString: field.name), field.id)
        }
    }

    /// Whether the field's protobuf type and label are the ones the row's kind reads and writes.
    static func kindMatches(_ option: DecodingOption) -> Bool {
        let field = descriptor(option)
        let repeated = field.label == PROTOBUF_C_LABEL_REPEATED
        let typeMatches = switch option.row.kind {
        case .count: field.type == PROTOBUF_C_TYPE_UINT32 && !repeated
        case .real: field.type == PROTOBUF_C_TYPE_DOUBLE && !repeated
        case .flag: field.type == PROTOBUF_C_TYPE_BOOL && !repeated
        case .seed: field.type == PROTOBUF_C_TYPE_UINT64 && !repeated
        case .words: field.type == PROTOBUF_C_TYPE_STRING && repeated
        }
        return typeMatches && field.id == option.row.field
    }

    /// The value of `option` in the C struct at `message`; `nil` when unset.
    static func read(_ option: DecodingOption, from message: UnsafeRawPointer) throws(MessageDecodingError) -> OptionValue? {
        let field = descriptor(option)
        let value = message + Int(field.offset)
        if option.row.kind == .words {
            let count = message.load(fromByteOffset: Int(field.quantifier_offset), as: Int.self)
            guard count > 0, let strings = value.load(as: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?.self) else { return nil }
            var words: [String] = []
            for i in 0..<count {
                words.append(try ProtobufC.string(strings[i], message: "DecodingOptions", field: option.rawValue))
            }
            return .words(words)
        }
        guard message.load(fromByteOffset: Int(field.quantifier_offset), as: protobuf_c_boolean.self) != 0 else { return nil }
        switch option.row.kind {
        case .count: return .count(Int(value.load(as: UInt32.self)))
        case .real: return .real(value.load(as: Double.self))
        case .flag: return .flag(value.load(as: protobuf_c_boolean.self) != 0)
        case .seed: return .seed(value.load(as: UInt64.self))
        case .words: return nil
        }
    }

    /// Sets `option` to `value` in the C struct at `message`; strings are copied into `arena`.
    static func write(_ value: OptionValue, of option: DecodingOption, to message: UnsafeMutableRawPointer, in arena: CArena) {
        let field = descriptor(option)
        let target = message + Int(field.offset)
        let presence = Int(field.quantifier_offset)
        switch value {
        case .count(let v): target.storeBytes(of: UInt32(v), as: UInt32.self)
        case .real(let v): target.storeBytes(of: v, as: Double.self)
        case .flag(let v): target.storeBytes(of: v ? 1 : 0, as: protobuf_c_boolean.self)
        case .seed(let v): target.storeBytes(of: v, as: UInt64.self)
        case .words(let words):
            message.storeBytes(of: words.count, toByteOffset: presence, as: Int.self)
            target.storeBytes(of: arena.array(words.map { Optional(arena.cString($0)) }),
                              as: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?.self)
            return
        }
        message.storeBytes(of: 1, toByteOffset: presence, as: protobuf_c_boolean.self)
    }
}
