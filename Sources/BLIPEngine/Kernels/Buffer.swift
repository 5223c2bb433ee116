/// A fixed-size, zero-initialised float buffer that frees itself: the scratch memory a forward pass
/// reuses from call to call.
final class FloatBuffer: @unchecked Sendable {
    // @unchecked: owned by one forward-pass state object, which is used by one task at a time.
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}
