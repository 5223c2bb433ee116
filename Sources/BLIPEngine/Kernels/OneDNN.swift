import CDNNL

/// A oneDNN call that failed: which, and its status.
struct OneDNNError: Error, CustomStringConvertible {
    let call: String
    let status: dnnl_status_t
    var description: String { "oneDNN \(call) failed with status \(status.rawValue)" }
}

/// Throws ``OneDNNError`` unless `status` is success.
@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ call: String) throws(OneDNNError) {
    guard status == dnnl_success else { throw OneDNNError(call: call, status: status) }
}

/// oneDNN's CPU engine: the handle every primitive and memory object of a model is made on.
final class OneDNNEngine: @unchecked Sendable {
    // @unchecked: oneDNN engines are thread-safe.
    let handle: dnnl_engine_t

    init() throws(OneDNNError) {
        var engine: dnnl_engine_t?
        try dnnlCheck(dnnl_engine_create(&engine, dnnl_cpu, 0), "dnnl_engine_create")
        handle = engine!
    }

    deinit { dnnl_engine_destroy(handle) }
}

/// A plain row-major 2-D memory descriptor, `(rows, columns)`; rows may be `DNNL_RUNTIME_DIM_VAL`.
func plainDescriptor(rows: Int64, columns: Int64, type: dnnl_data_type_t, tag: dnnl_format_tag_t = dnnl_ab) throws(OneDNNError) -> dnnl_memory_desc_t {
    var descriptor = dnnl_memory_desc_t()
    var dims: (Int64, Int64) = (rows, columns)
    let status = withUnsafeMutableBytes(of: &dims) { raw in
        dnnl_memory_desc_init_by_tag(&descriptor, 2, raw.baseAddress!.assumingMemoryBound(to: dnnl_dim_t.self), type, tag)
    }
    try dnnlCheck(status, "dnnl_memory_desc_init_by_tag")
    return descriptor
}
