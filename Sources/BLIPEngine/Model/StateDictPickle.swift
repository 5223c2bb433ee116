/// The state dict a `torch.save`d `data.pkl` describes, read by a pickle machine that knows only
/// what a state dict is made of. Nothing in the pickle is ever executed: the only "globals" are
/// `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` (and `_rebuild_parameter`) and
/// the storage types, each interpreted here; any other global or opcode is refused with an error
/// naming it (`posix.system`, `builtins.eval`, `INST`, …) before anything else happens.
///
/// What it yields: tensor name → storage (key in the archive's `data/` folder, element type,
/// element count), offset, shape and strides, as `_rebuild_tensor_v2` would receive them.
/// Memory, stack, memo and nesting are bounded.
struct StateDictPickle {
    enum StorageType: String, Sendable {
        case float = "FloatStorage", half = "HalfStorage", bfloat16 = "BFloat16Storage"
        case long = "LongStorage", int = "IntStorage", byte = "ByteStorage"

        var dtype: SafeTensorsDType {
            switch self {
            case .float: .f32
            case .half: .f16
            case .bfloat16: .bf16
            case .long: .i64
            case .int: .i32
            case .byte: .u8
            }
        }
    }

    struct Storage: Equatable {
        var key: String
        var type: StorageType
        var elementCount: Int
    }

    struct Tensor: Equatable {
        var storage: Storage
        var offset: Int
        var shape: [Int]
        var strides: [Int]
    }

    /// Name → tensor, in the order of the pickle.
    let tensors: [(name: String, tensor: Tensor)]

    static let maxStack = 1 << 20
    static let maxMemo = 1 << 22
    static let maxDepth = 64
    static let maxDimensions = 16

    /// Values on the machine's stack. Containers live in `Machine`'s arenas and are referred to by
    /// index, so no value holds another and nothing here recurses.
    enum Value: Equatable {
        case none
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
        case tuple(Int)
        case list(Int)
        case dict(Int)
        case global(Global)
        case storage(Storage)
        case tensor(Tensor)
    }

    enum Global: Equatable {
        case orderedDict
        case rebuildTensor
        case rebuildParameter
        case storageType(StorageType)
    }

    /// - Throws: `ModelError.unsafeCheckpoint` for a global or opcode a state dict does not use;
    ///   `.badCheckpoint` for a malformed pickle (truncated, stack underflow, bad memo index,
    ///   nesting too deep, a top level that is not a dict of tensors).
    init(_ bytes: [UInt8], path: String) throws(ModelError) {
        var machine = Machine(bytes: bytes, path: path)
        let top = try machine.run()
        guard case .dict(let d) = top else {
            throw .badCheckpoint(path, "the pickle holds \(machine.describe(top)), not a state dict (a dict of tensors)")
        }
        var tensors: [(String, Tensor)] = []
        var seen = Set<String>()
        for (key, value) in machine.dicts[d] {
            guard case .string(let name) = key else {
                throw .badCheckpoint(path, "the state dict has a key that is \(machine.describe(key)), not a tensor name")
            }
            guard case .tensor(let tensor) = value else {
                throw .badCheckpoint(path, "state dict entry \(name.safeForMessage) is \(machine.describe(value)), not a tensor")
            }
            guard seen.insert(name).inserted else { throw .badCheckpoint(path, "tensor \(name.safeForMessage) appears twice") }
            tensors.append((name, tensor))
        }
        self.tensors = tensors
    }

    struct Machine {
        let bytes: [UInt8]
        let path: String
        var at = 0
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]
        var tuples: [[Value]] = []
        var lists: [[Value]] = []
        var dicts: [[(Value, Value)]] = []
        /// Nesting depth of each container, by arena.
        var tupleDepth: [Int] = [], listDepth: [Int] = [], dictDepth: [Int] = []
        /// Dicts made by `OrderedDict()`: BUILD may set their attributes (`_metadata`), ignored.
        var orderedDicts = Set<Int>()

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
        }

        func fail(_ detail: String) -> ModelError { .badCheckpoint(path, "its pickle (data.pkl) \(detail)") }

        mutating func take(_ n: Int) throws(ModelError) -> ArraySlice<UInt8> {
            guard n >= 0, n <= bytes.count - at else { throw fail("ends in the middle of an instruction at byte \(at) (truncated)") }
            defer { at += n }
            return bytes[at..<(at + n)]
        }

        mutating func uint(_ n: Int) throws(ModelError) -> UInt64 {
            try take(n).reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func line() throws(ModelError) -> String {
            guard let end = bytes[at...].prefix(256).firstIndex(of: 0x0A) else { throw fail("has an unterminated GLOBAL at byte \(at)") }
            defer { at = end + 1 }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }

        mutating func push(_ v: Value) throws(ModelError) {
            guard stack.count < StateDictPickle.maxStack else { throw fail("needs a stack deeper than \(StateDictPickle.maxStack)") }
            stack.append(v)
        }

        mutating func pop() throws(ModelError) -> Value {
            guard stack.count > (marks.last ?? 0) else { throw fail("pops an empty stack at byte \(at)") }
            return stack.removeLast()
        }

        /// The values above the last MARK, which is removed.
        mutating func popMark() throws(ModelError) -> [Value] {
            guard let m = marks.popLast(), m <= stack.count else { throw fail("has no MARK to close at byte \(at)") }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }

        func depth(of v: Value) -> Int {
            switch v {
            case .tuple(let i): tupleDepth[i]
            case .list(let i): listDepth[i]
            case .dict(let i): dictDepth[i]
            default: 0
            }
        }

        mutating func makeTuple(_ items: [Value]) throws(ModelError) -> Value {
            let d = 1 + (items.map(depth(of:)).max() ?? 0)
            guard d <= StateDictPickle.maxDepth else { throw fail("nests containers deeper than \(StateDictPickle.maxDepth)") }
            tuples.append(items)
            tupleDepth.append(d)
            return .tuple(tuples.count - 1)
        }

        mutating func deepen(_ container: Value, by child: Value) throws(ModelError) {
            let d = depth(of: child) + 1
            guard d <= StateDictPickle.maxDepth else { throw fail("nests containers deeper than \(StateDictPickle.maxDepth)") }
            switch container {
            case .list(let i): listDepth[i] = max(listDepth[i], d)
            case .dict(let i): dictDepth[i] = max(dictDepth[i], d)
            default: break
            }
        }

        func describe(_ v: Value) -> String {
            switch v {
            case .none: "None"
            case .bool: "a bool"
            case .int: "an int"
            case .float: "a float"
            case .string: "a string"
            case .tuple: "a tuple"
            case .list: "a list"
            case .dict: "a dict"
            case .global: "a function"
            case .storage: "a storage"
            case .tensor: "a tensor"
            }
        }

        mutating func global(module: String, name: String) throws(ModelError) -> Global {
            switch (module, name) {
            case ("collections", "OrderedDict"): return .orderedDict
            case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensor
            case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
            case ("torch", _):
                if let type = StorageType(rawValue: name) { return .storageType(type) }
                if name.hasSuffix("Storage") {
                    throw .badCheckpoint(path, "it holds torch.\(name.safeForMessage) tensors; weights must be float32, float16 or bfloat16 (FloatStorage, HalfStorage, BFloat16Storage)")
                }
            default: break
            }
            throw .unsafeCheckpoint(path, "calls \(module.safeForMessage).\(name.safeForMessage)")
        }

        mutating func memoIndex(_ v: UInt64) throws(ModelError) -> Int {
            guard v < UInt64(StateDictPickle.maxMemo) else { throw fail("uses memo index \(v), beyond \(StateDictPickle.maxMemo)") }
            return Int(v)
        }

        mutating func put(_ index: Int) throws(ModelError) {
            guard let top = stack.last else { throw fail("memoizes an empty stack at byte \(at)") }
            guard memo.count < StateDictPickle.maxMemo || memo[index] != nil else { throw fail("memoizes more than \(StateDictPickle.maxMemo) values") }
            memo[index] = top
        }

        mutating func get(_ index: Int) throws(ModelError) {
            guard let v = memo[index] else { throw fail("reads memo entry \(index), never stored") }
            try push(v)
        }

        func int(_ v: Value, _ what: String) throws(ModelError) -> Int {
            guard case .int(let i) = v else { throw fail("gives \(describe(v)) for \(what)") }
            return i
        }

        func ints(_ v: Value, _ what: String) throws(ModelError) -> [Int] {
            guard case .tuple(let t) = v else { throw fail("gives \(describe(v)) for \(what)") }
            guard tuples[t].count <= StateDictPickle.maxDimensions else { throw fail("gives \(tuples[t].count) dimensions for \(what)") }
            var out: [Int] = []
            for item in tuples[t] { out.append(try int(item, what)) }
            return out
        }

        /// `persistent_load` of torch's zip format: `("storage", StorageType, key, location, numel)`.
        func storage(_ pid: Value) throws(ModelError) -> Storage {
            guard case .tuple(let t) = pid, tuples[t].count == 5, tuples[t][0] == .string("storage") else {
                throw fail("has a persistent id that is not a (\"storage\", type, key, location, size) tuple")
            }
            let items = tuples[t]
            guard case .global(.storageType(let type)) = items[1] else { throw fail("has a persistent id whose storage type is \(describe(items[1]))") }
            guard case .string(let key) = items[2], !key.isEmpty, key.count <= 64, !key.contains("/"), key != "..", key != "." else {
                throw fail("has a storage key that is not a plain name")
            }
            guard case .string = items[3] else { throw fail("has a storage location that is \(describe(items[3]))") }
            let count = try int(items[4], "a storage size")
            guard count >= 0 else { throw fail("has a storage of \(count) elements") }
            return Storage(key: key, type: type, elementCount: count)
        }

        mutating func reduce(_ callable: Value, _ args: Value) throws(ModelError) -> Value {
            guard case .global(let g) = callable else { throw fail("calls \(describe(callable)) (REDUCE) at byte \(at)") }
            guard case .tuple(let t) = args else { throw fail("calls with \(describe(args)) as arguments") }
            let a = tuples[t]
            switch g {
            case .orderedDict:
                guard a.isEmpty else { throw fail("calls OrderedDict with arguments") }
                dicts.append([])
                dictDepth.append(1)
                orderedDicts.insert(dicts.count - 1)
                return .dict(dicts.count - 1)
            case .rebuildTensor:
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                guard a.count == 6 || a.count == 7 else { throw fail("calls _rebuild_tensor_v2 with \(a.count) arguments") }
                guard case .storage(let storage) = a[0] else { throw fail("calls _rebuild_tensor_v2 on \(describe(a[0])), not a storage") }
                let offset = try int(a[1], "a storage offset")
                let shape = try ints(a[2], "a tensor shape"), strides = try ints(a[3], "tensor strides")
                guard shape.count == strides.count else { throw fail("gives a shape of \(shape.count) dimensions with \(strides.count) strides") }
                return .tensor(Tensor(storage: storage, offset: offset, shape: shape, strides: strides))
            case .rebuildParameter:
                // (data, requires_grad, backward_hooks)
                guard a.count == 3, case .tensor = a[0] else { throw fail("calls _rebuild_parameter without a tensor") }
                return a[0]
            case .storageType(let type):
                throw .unsafeCheckpoint(path, "calls torch.\(type.rawValue)() (constructs a storage instead of loading one)")
            }
        }

        /// Runs to STOP and returns the value it leaves.
        mutating func run() throws(ModelError) -> Value {
            while true {
                let opAt = at
                let op = try take(1).first!
                switch op {
                case 0x80: // PROTO
                    let v = try uint(1)
                    guard v >= 2, v <= 5 else { throw fail("declares pickle protocol \(v)") }
                case 0x95: _ = try uint(8) // FRAME: a length hint
                case 0x2E: // STOP
                    let v = try pop()
                    guard stack.isEmpty, marks.isEmpty else { throw fail("stops with values left on its stack") }
                    return v
                case 0x28: // MARK
                    guard marks.count < StateDictPickle.maxStack else { throw fail("nests MARKs too deeply") }
                    marks.append(stack.count)
                case 0x7D: // EMPTY_DICT
                    dicts.append([]); dictDepth.append(1)
                    try push(.dict(dicts.count - 1))
                case 0x5D: // EMPTY_LIST
                    lists.append([]); listDepth.append(1)
                    try push(.list(lists.count - 1))
                case 0x29: try push(try makeTuple([])) // EMPTY_TUPLE
                case 0x74: try push(try makeTuple(try popMark())) // TUPLE
                case 0x85, 0x86, 0x87: // TUPLE1-3
                    let n = Int(op - 0x84)
                    guard stack.count >= n else { throw fail("pops an empty stack at byte \(opAt)") }
                    var items: [Value] = []
                    for _ in 0..<n { items.insert(try pop(), at: 0) }
                    try push(try makeTuple(items))
                case 0x58, 0x8C, 0x8D: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                    let width = op == 0x8C ? 1 : op == 0x58 ? 4 : 8
                    let n = try uint(width)
                    guard n <= UInt64(bytes.count - at) else { throw fail("has a string of \(n) bytes past its end (truncated)") }
                    guard let s = String(validating: try take(Int(n)), as: UTF8.self) else { throw fail("has a string that is not UTF-8") }
                    try push(.string(s))
                case 0x4B: try push(.int(Int(try uint(1)))) // BININT1
                case 0x4D: try push(.int(Int(try uint(2)))) // BININT2
                case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
                case 0x8A: // LONG1: little-endian two's complement of n bytes
                    let n = Int(try uint(1))
                    guard n <= 8 else { throw fail("has an integer of \(n) bytes") }
                    let raw = try take(n)
                    var v: UInt64 = raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
                    if n > 0, n < 8, raw.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }
                    try push(.int(Int(Int64(bitPattern: v))))
                case 0x4E: try push(.none) // NONE
                case 0x88: try push(.bool(true)) // NEWTRUE
                case 0x89: try push(.bool(false)) // NEWFALSE
                case 0x47: try push(.float(Double(bitPattern: try uint(8).byteSwapped))) // BINFLOAT, big-endian
                case 0x63: // GLOBAL "module\nname\n"
                    let module = try line(), name = try line()
                    try push(.global(try global(module: module, name: name)))
                case 0x93: // STACK_GLOBAL
                    let name = try pop(), module = try pop()
                    guard case .string(let m) = module, case .string(let n) = name else { throw fail("has a STACK_GLOBAL without two strings") }
                    try push(.global(try global(module: m, name: n)))
                case 0x51: try push(.storage(try storage(try pop()))) // BINPERSID
                case 0x52: // REDUCE
                    let args = try pop(), callable = try pop()
                    try push(try reduce(callable, args))
                case 0x62: // BUILD: only an OrderedDict's attributes (the state dict's _metadata), ignored
                    let state = try pop()
                    guard case .dict(let d) = stack.last ?? .none, orderedDicts.contains(d) else {
                        throw fail("sets the state of \(describe(stack.last ?? .none)) (BUILD); only an OrderedDict's may be set")
                    }
                    guard case .dict = state else { throw fail("sets an OrderedDict's state to \(describe(state))") }
                case 0x73, 0x75: // SETITEM, SETITEMS
                    let items: [Value]
                    if op == 0x73 {
                        let v = try pop(), k = try pop()
                        items = [k, v]
                    } else {
                        items = try popMark()
                    }
                    guard items.count % 2 == 0 else { throw fail("has SETITEMS with an odd number of values") }
                    guard case .dict(let d) = stack.last ?? .none else { throw fail("sets items of \(describe(stack.last ?? .none))") }
                    for i in stride(from: 0, to: items.count, by: 2) {
                        try deepen(.dict(d), by: items[i + 1])
                        dicts[d].append((items[i], items[i + 1]))
                    }
                case 0x61, 0x65: // APPEND, APPENDS
                    let items = op == 0x61 ? [try pop()] : try popMark()
                    guard case .list(let l) = stack.last ?? .none else { throw fail("appends to \(describe(stack.last ?? .none))") }
                    for item in items { try deepen(.list(l), by: item) }
                    lists[l].append(contentsOf: items)
                case 0x71: try put(try memoIndex(try uint(1))) // BINPUT
                case 0x72: try put(try memoIndex(try uint(4))) // LONG_BINPUT
                case 0x94: try put(memo.count) // MEMOIZE
                case 0x68: try get(try memoIndex(try uint(1))) // BINGET
                case 0x6A: try get(try memoIndex(try uint(4))) // LONG_BINGET
                default:
                    throw .unsafeCheckpoint(path, "uses opcode \(Self.opcodeName(op)) at byte \(opAt)")
                }
            }
        }

        static func opcodeName(_ op: UInt8) -> String {
            let names: [UInt8: String] = [
                0x69: "INST", 0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x50: "PERSID", 0x82: "EXT1",
                0x83: "EXT2", 0x84: "EXT4", 0x32: "DUP", 0x30: "POP", 0x31: "POP_MARK", 0x49: "INT", 0x4C: "LONG",
                0x46: "FLOAT", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE",
                0x67: "GET", 0x70: "PUT", 0x6C: "LIST", 0x64: "DICT", 0x8B: "LONG4", 0x42: "BINBYTES",
                0x43: "SHORT_BINBYTES", 0x8E: "BINBYTES8", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
                0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
            ]
            let hex = "0x" + String(op, radix: 16, uppercase: true)
            return names[op].map { "\($0) (\(hex))" } ?? hex
        }
    }
}
