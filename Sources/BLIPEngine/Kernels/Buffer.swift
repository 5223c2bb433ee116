/// A fixed-size, zero-initialised float buffer that frees itself: the scratch memory a forward pass
/// reuses from call to call.
final class FloatBuffer: @unchecked Sendable {
    // @unchecked: owned by one forward-pass state object, which is used by one task at a time.
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    /// - Parameter zeroed: false for buffers that are always written before they are read, to skip
    ///   touching every page up front (the 42 MB of cross-attention keys/values of each image).
    init(count: Int, zeroed: Bool = true) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: max(count, 1)) }
    }

    deinit { pointer.deallocate() }
}
