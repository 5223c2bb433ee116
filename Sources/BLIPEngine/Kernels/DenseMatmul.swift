import CDNNL

/// `y (rows, n) = x (rows, k) · Wᵀ + bias` for the many rows of image tokens, through oneDNN's matmul
/// in a reduced precision (``PrecisionPlan/DenseKind``). W is converted once, at load, into the
/// reduced format and reordered into the blocked layout oneDNN chose for this CPU; the float32
/// rows are converted per call into the caller's ``MatmulScratch``.
///
/// - int8: W per output channel, symmetric, `w ≈ s_w[n] · q[n, k]`, q in ±127; each input row per
///   token, asymmetric over its range (which includes 0), `x ≈ s_x[r] · (u[r, k] − z[r])`, u in
///   0…2^bits − 1 (u8, what every x86 int8 instruction multiplies) — a GELU output's range
///   [−0.17, max] gets every level. oneDNN sums `u · q` exactly in int32; the epilogue removes the zero point,
///   `Σ (u − z)·q = C − z·Σ_k q[n, k]`, and scales: `y = s_x[r]·s_w[n]·(C − z·Σq) + bias`. Integer
///   sums are exact whatever the blocking or thread split, so a row's result does not depend on
///   the other rows of the product.
/// - bf16: W and the input rows rounded to bfloat16 (nearest even), products accumulated in
///   float32 by oneDNN, bias and residual added by it (its `sum` post-op) straight into y.
final class DenseMatmul: @unchecked Sendable {
    // @unchecked: immutable after init; oneDNN primitives may execute from several threads at once.
    let kind: PrecisionPlan.DenseKind
    let outFeatures: Int
    let inFeatures: Int
    private let engine: OneDNNEngine
    private let primitive: dnnl_primitive_t
    /// bf16 only: the same product adding to what y holds (a residual connection).
    private let accumulatingPrimitive: dnnl_primitive_t?
    private let weights: dnnl_memory_t
    /// int8 only, (n): each output channel's weight scale, and `Σ_k q[n, k]`.
    private let scales: UnsafeMutablePointer<Float>?
    private let weightSums: UnsafeMutablePointer<Int32>?

    /// Converts `weight` (n, k) row-major (PyTorch's layout) for `kind`; `hasBias`: whether calls pass
    /// a bias (bf16 adds it inside oneDNN's product, so the primitive is made for it or not).
    init(weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int, kind: PrecisionPlan.DenseKind,
         hasBias: Bool = true, engine: OneDNNEngine) throws(OneDNNError) {
        self.kind = kind
        self.engine = engine
        outFeatures = n
        inFeatures = k
        let runtime = Int64.min  // DNNL_RUNTIME_DIM_VAL: the row count is given per call
        let (sourceType, weightType, outputType): (dnnl_data_type_t, dnnl_data_type_t, dnnl_data_type_t)
        switch kind {
        case .int8: (sourceType, weightType, outputType) = (dnnl_u8, dnnl_s8, dnnl_s32)
        case .bfloat16: (sourceType, weightType, outputType) = (dnnl_bf16, dnnl_bf16, dnnl_f32)
        }
        var source = try plainDescriptor(rows: runtime, columns: Int64(k), type: sourceType)
        var anyWeights = try plainDescriptor(rows: Int64(k), columns: Int64(n), type: weightType, tag: dnnl_format_tag_any)
        var output = try plainDescriptor(rows: runtime, columns: Int64(n), type: outputType)
        var bias = try plainDescriptor(rows: 1, columns: Int64(n), type: dnnl_f32)
        let withBias = kind == .bfloat16 && hasBias

        func makePrimitive(accumulating: Bool) throws(OneDNNError) -> (dnnl_primitive_t, dnnl_primitive_desc_t) {
            var description = dnnl_matmul_desc_t()
            let initialised = withBias ? dnnl_matmul_desc_init(&description, &source, &anyWeights, &bias, &output)
                                  : dnnl_matmul_desc_init(&description, &source, &anyWeights, nil, &output)
            try dnnlCheck(initialised, "dnnl_matmul_desc_init")
            var attributes: dnnl_primitive_attr_t?
            try dnnlCheck(dnnl_primitive_attr_create(&attributes), "dnnl_primitive_attr_create")
            defer { dnnl_primitive_attr_destroy(attributes) }
            if accumulating {
                var postOps: dnnl_post_ops_t?
                try dnnlCheck(dnnl_post_ops_create(&postOps), "dnnl_post_ops_create")
                defer { dnnl_post_ops_destroy(postOps) }
                try dnnlCheck(dnnl_post_ops_append_sum(postOps, 1), "dnnl_post_ops_append_sum")
                try dnnlCheck(dnnl_primitive_attr_set_post_ops(attributes, postOps), "dnnl_primitive_attr_set_post_ops")
            }
            var pd: dnnl_primitive_desc_t?
            try dnnlCheck(dnnl_primitive_desc_create(&pd, &description, attributes, engine.handle, nil), "dnnl_primitive_desc_create (matmul)")
            var p: dnnl_primitive_t?
            let status = dnnl_primitive_create(&p, pd)
            if status != dnnl_success { dnnl_primitive_desc_destroy(pd); throw OneDNNError(call: "dnnl_primitive_create", status: status) }
            return (p!, pd!)
        }

        let (plain, pd) = try makePrimitive(accumulating: false)
        defer { dnnl_primitive_desc_destroy(pd) }
        primitive = plain
        accumulatingPrimitive = kind == .bfloat16 ? try makePrimitive(accumulating: true).0 : nil

        // The weights: converted into a plain (n, k) buffer — oneDNN's (k, n) with tag `ba` —, then
        // reordered into the layout the primitive chose.
        let chosen = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0)!
        var reordered: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&reordered, chosen, engine.handle, UnsafeMutableRawPointer(bitPattern: -1)), "dnnl_memory_create (weights)")
        weights = reordered!
        let elementBytes = kind == .bfloat16 ? 2 : 1
        let plainBuffer = UnsafeMutableRawPointer.allocate(byteCount: n * k * elementBytes, alignment: 64)
        defer { plainBuffer.deallocate() }
        switch kind {
        case .int8:
            let s = UnsafeMutablePointer<Float>.allocate(capacity: n)
            let sums = UnsafeMutablePointer<Int32>.allocate(capacity: n)
            let q = plainBuffer.bindMemory(to: Int8.self, capacity: n * k)
            Self.quantizeWeights(weight, outFeatures: n, inFeatures: k, into: q, scales: s, sums: sums)
            scales = s
            weightSums = sums
        case .bfloat16:
            let b = plainBuffer.bindMemory(to: BFloat16.self, capacity: n * k)
            for i in 0..<(n * k) { b[i] = BFloat16(weight[i]) }
            scales = nil
            weightSums = nil
        }
        var plainWeights = try plainDescriptor(rows: Int64(k), columns: Int64(n), type: weightType, tag: dnnl_ba)
        try reorder(from: &plainWeights, plainBuffer, to: chosen)
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        if let accumulatingPrimitive { dnnl_primitive_destroy(accumulatingPrimitive) }
        dnnl_memory_destroy(weights)
        scales?.deallocate()
        weightSums?.deallocate()
    }

    /// Per output channel: `s = max|w| / 127`, `q = round(w / s)` (nearest even), and `Σ q` (the
    /// zero points' share of the accumulators).
    static func quantizeWeights(_ weight: UnsafePointer<Float>, outFeatures n: Int, inFeatures k: Int,
                                into q: UnsafeMutablePointer<Int8>, scales: UnsafeMutablePointer<Float>,
                                sums: UnsafeMutablePointer<Int32>) {
        let limit: Float = 127
        Parallel.forChunks(count: n, granularity: 1, minimumChunk: 16) { range in
            for o in range {
                let row = weight + o * k
                var largest: Float = 0
                for i in 0..<k { largest = max(largest, abs(row[i])) }
                let scale = largest > 0 ? largest / limit : 1
                var sum: Int32 = 0
                for i in 0..<k {
                    let v = Int8(max(-limit, min(limit, (row[i] / scale).rounded(.toNearestOrEven))))
                    q[o * k + i] = v
                    sum += Int32(v)
                }
                scales[o] = scale
                sums[o] = sum
            }
        }
    }

    private func reorder(from source: inout dnnl_memory_desc_t, _ data: UnsafeMutableRawPointer,
                         to destination: UnsafePointer<dnnl_memory_desc_t>) throws(OneDNNError) {
        var from: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&from, &source, engine.handle, data), "dnnl_memory_create (plain weights)")
        defer { dnnl_memory_destroy(from) }
        var pd: dnnl_primitive_desc_t?
        try dnnlCheck(dnnl_reorder_primitive_desc_create(&pd, &source, engine.handle, destination, engine.handle, nil), "dnnl_reorder_primitive_desc_create")
        defer { dnnl_primitive_desc_destroy(pd) }
        var reorder: dnnl_primitive_t?
        try dnnlCheck(dnnl_primitive_create(&reorder, pd), "dnnl_primitive_create (reorder)")
        defer { dnnl_primitive_destroy(reorder) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: from), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: weights)]
        try run(reorder!, &args)
    }

    /// Executes `primitive` on a stream of its own. int8 runs on this thread's share of the cores
    /// (an encode lane's): its integer sums are exact however oneDNN splits them. bf16 always runs on
    /// every engine thread, lane or not: oneDNN may split a float sum between threads, and a
    /// caption's features must be the same bits alone or encoded beside others.
    private func run(_ primitive: dnnl_primitive_t, _ args: inout [dnnl_exec_arg_t]) throws(OneDNNError) {
        omp_set_num_threads(Int32(kind == .bfloat16 ? Parallel.available : Parallel.workers))
        var stream: dnnl_stream_t?
        try dnnlCheck(dnnl_stream_create(&stream, engine.handle, dnnl_stream_default_flags.rawValue), "dnnl_stream_create")
        defer { dnnl_stream_destroy(stream) }
        let count = Int32(args.count)
        try dnnlCheck(args.withUnsafeBufferPointer { dnnl_primitive_execute(primitive, stream, count, $0.baseAddress) }, "dnnl_primitive_execute")
        try dnnlCheck(dnnl_stream_wait(stream), "dnnl_stream_wait")
    }

    /// x (rows, k) and y (rows, n), both dense; `accumulate` adds the result to y; `epilogue` runs
    /// on y's new rows (GELU after the bias, as `Linear`'s float32 path).
    func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
               accumulate: Bool, then epilogue: Linear.Epilogue, scratch: MatmulScratch) {
        precondition(scratch.fits(rows: rows, inputs: inFeatures, outputs: outFeatures), "matmul scratch too small")
        guard rows > 0 else { return }
        do {
            switch kind {
            case .int8(let bits):
                try int8(x, rows: rows, into: y, bias: bias, accumulate: accumulate, levels: Float((1 << bits) - 1), scratch: scratch)
            case .bfloat16: try bfloat16(x, rows: rows, into: y, bias: bias, accumulate: accumulate, scratch: scratch)
            }
        } catch {
            // Shapes and types were checked when the primitive was made; a failure now is a oneDNN
            // fault (out of memory for its scratchpad), which the engine cannot answer correctly.
            fatalError("\(error)")
        }
        if case .gelu = epilogue {
            let n = outFeatures
            Parallel.forChunks(count: rows, granularity: 1, minimumChunk: 8) { range in
                for r in range { geluInPlace(y + r * n, count: n) }
            }
        }
    }

    private func int8(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                      accumulate: Bool, levels: Float, scratch: MatmulScratch) throws(OneDNNError) {
        let k = inFeatures, n = outFeatures
        let quantized = scratch.inputs.bindMemory(to: UInt8.self, capacity: rows * k)
        let rowScales = scratch.rowScales, zeroPoints = scratch.rowZeroPoints
        Parallel.forChunks(count: rows, granularity: 1, minimumChunk: 8) { range in
            for r in range {
                (rowScales[r], zeroPoints[r]) = quantizeRow(x + r * k, count: k, levels: levels, into: quantized + r * k)
            }
        }
        var source = try plainDescriptor(rows: Int64(rows), columns: Int64(k), type: dnnl_u8)
        var output = try plainDescriptor(rows: Int64(rows), columns: Int64(n), type: dnnl_s32)
        var sourceMemory: dnnl_memory_t?, outputMemory: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&sourceMemory, &source, engine.handle, UnsafeMutableRawPointer(quantized)), "dnnl_memory_create (source)")
        defer { dnnl_memory_destroy(sourceMemory) }
        try dnnlCheck(dnnl_memory_create(&outputMemory, &output, engine.handle, UnsafeMutableRawPointer(scratch.accumulators)), "dnnl_memory_create (output)")
        defer { dnnl_memory_destroy(outputMemory) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: sourceMemory), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: weights),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: outputMemory)]
        try run(primitive, &args)
        let scales = scales!, weightSums = weightSums!, sums = scratch.accumulators
        Parallel.forChunks(count: rows, granularity: 1, minimumChunk: 8) { range in
            for r in range {
                dequantizeRow(sums + r * n, count: n, rowScale: rowScales[r], zeroPoint: zeroPoints[r], weightScales: scales,
                              weightSums: weightSums, bias: bias, into: y + r * n, accumulate: accumulate)
            }
        }
    }

    private func bfloat16(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                          accumulate: Bool, scratch: MatmulScratch) throws(OneDNNError) {
        let k = inFeatures, n = outFeatures
        let rounded = scratch.inputs.bindMemory(to: BFloat16.self, capacity: rows * k)
        Parallel.forChunks(count: rows * k, granularity: 64, minimumChunk: 1 << 14) { range in
            for i in range { rounded[i] = BFloat16(x[i]) }
        }
        var source = try plainDescriptor(rows: Int64(rows), columns: Int64(k), type: dnnl_bf16)
        var output = try plainDescriptor(rows: Int64(rows), columns: Int64(n), type: dnnl_f32)
        var biasDescriptor = try plainDescriptor(rows: 1, columns: Int64(n), type: dnnl_f32)
        var sourceMemory: dnnl_memory_t?, outputMemory: dnnl_memory_t?, biasMemory: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&sourceMemory, &source, engine.handle, UnsafeMutableRawPointer(rounded)), "dnnl_memory_create (source)")
        defer { dnnl_memory_destroy(sourceMemory) }
        try dnnlCheck(dnnl_memory_create(&outputMemory, &output, engine.handle, UnsafeMutableRawPointer(y)), "dnnl_memory_create (output)")
        defer { dnnl_memory_destroy(outputMemory) }
        var args = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: sourceMemory), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: weights),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: outputMemory)]
        if let bias {
            try dnnlCheck(dnnl_memory_create(&biasMemory, &biasDescriptor, engine.handle, UnsafeMutableRawPointer(mutating: bias)), "dnnl_memory_create (bias)")
            args.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: biasMemory))
        }
        defer { if biasMemory != nil { dnnl_memory_destroy(biasMemory) } }
        try run(accumulate ? accumulatingPrimitive! : primitive, &args)
    }
}

/// Quantises one row asymmetrically over its range (widened to include 0) into u8 values 0…levels:
/// `x ≈ scale · (u − zeroPoint)`; returns the scale and the zero point.
@inline(__always)
func quantizeRow(_ x: UnsafePointer<Float>, count k: Int, levels: Float, into out: UnsafeMutablePointer<UInt8>) -> (Float, Int32) {
    var low = Float8(repeating: 0), high = Float8(repeating: 0)
    var i = 0
    while i + 8 <= k {
        let v = x.load8(i)
        // The mutating `replace(with:where:)` compiles to one blend (see VectorMath.swift).
        low.replace(with: v, where: v .< low)
        high.replace(with: v, where: v .> high)
        i += 8
    }
    var lowest = low.min(), highest = high.max()
    while i < k { lowest = min(lowest, x[i]); highest = max(highest, x[i]); i += 1 }
    let scale = highest > lowest ? (highest - lowest) / levels : 1
    let inverse = 1 / scale
    let zero = (-lowest * inverse).rounded(.toNearestOrEven)
    let zeros = Float8(repeating: zero), bottom = Float8(repeating: 0), top = Float8(repeating: levels)
    i = 0
    while i + 8 <= k {
        // Clamped as floats: `replace` on integer lanes is scalarised, on float lanes one min/max.
        var f = x.load8(i) * inverse + zeros
        f.replace(with: bottom, where: f .< bottom)
        f.replace(with: top, where: f .> top)
        let u = roundedIntegers(f)
        UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: u), as: SIMD8<UInt8>.self)
        i += 8
    }
    while i < k {
        out[i] = UInt8(max(0, min(levels, (x[i] * inverse + zero).rounded(.toNearestOrEven))))
        i += 1
    }
    return (scale, Int32(zero))
}

/// One output row of the int8 product: `y = s_x·s_w[o]·(C[o] − z·Σq[o]) + bias[o]`, or added to y.
@inline(__always)
func dequantizeRow(_ c: UnsafePointer<Int32>, count n: Int, rowScale: Float, zeroPoint: Int32,
                   weightScales: UnsafePointer<Float>, weightSums: UnsafePointer<Int32>, bias: UnsafePointer<Float>?,
                   into y: UnsafeMutablePointer<Float>, accumulate: Bool) {
    let z = SIMD8<Int32>(repeating: zeroPoint), sx = Float8(repeating: rowScale)
    var o = 0
    while o + 8 <= n {
        let raw = UnsafeRawPointer(c + o).loadUnaligned(as: SIMD8<Int32>.self)
        let sums = UnsafeRawPointer(weightSums + o).loadUnaligned(as: SIMD8<Int32>.self)
        var v = floats(raw &- z &* sums) * (sx * weightScales.load8(o))
        if let bias { v += bias.load8(o) }
        if accumulate { v += y.load8(o) }
        y.store8(v, o)
        o += 8
    }
    while o < n {
        var v = Float(c[o] &- zeroPoint &* weightSums[o]) * (rowScale * weightScales[o])
        if let bias { v += bias[o] }
        y[o] = accumulate ? y[o] + v : v
        o += 1
    }
}
