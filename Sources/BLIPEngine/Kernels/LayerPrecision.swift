/// What a model's layers are built with for its ``PrecisionPlan``: the decode steps' weight copies,
/// and the oneDNN engine and kind of the products over image tokens.
struct LayerPrecision {
    let steps: PrecisionPlan.StepWeightKind
    let dense: PrecisionPlan.DenseKind?
    let engine: OneDNNEngine?

    static let float32 = LayerPrecision(steps: .float32, dense: nil, engine: nil)

    init(steps: PrecisionPlan.StepWeightKind, dense: PrecisionPlan.DenseKind?, engine: OneDNNEngine?) {
        self.steps = steps
        self.dense = dense
        self.engine = engine
    }

    /// The layers of `plan`; makes the oneDNN engine when its products need one.
    init(_ plan: PrecisionPlan) throws(ModelError) {
        var engine: OneDNNEngine?
        if plan.denseProducts != nil {
            do { engine = try OneDNNEngine() } catch { throw .precisionUnavailable(plan.precision.rawValue, "\(error)") }
        }
        self.init(steps: plan.stepWeights, dense: plan.denseProducts, engine: engine)
    }

    /// `linear` with its weight converted for oneDNN, or itself in float32. The float32 weight's
    /// mapped pages are given back to `store` (every product of the layer goes through oneDNN).
    func denseCopy(of linear: Linear, releasingFrom store: WeightStore) throws(ModelError) -> Linear {
        guard let dense, let engine else { return linear }
        var copy = linear
        do {
            copy.dense = try DenseMatmul(weight: linear.weight, outFeatures: linear.outFeatures, inFeatures: linear.inFeatures,
                                         kind: dense, hasBias: linear.bias != nil, engine: engine)
        } catch {
            throw .precisionUnavailable(dense == .bfloat16 ? "bf16" : "int8", "\(error)")
        }
        store.releaseWeight(of: linear)
        return copy
    }

    /// A product over image tokens as this precision runs it: through oneDNN, or in float32
    /// (OpenBLAS) on the float32 weight itself.
    func imageProduct(_ linear: Linear, store: WeightStore) throws(ModelError) -> Linear {
        dense == nil ? linear : try denseCopy(of: linear, releasingFrom: store)
    }
}
