/// transformers' `early_stopping` for beam search.
enum BeamEarlyStopping: Sendable {
    /// `False` (the default): stop when the best running beam, scored at its current length, cannot beat
    /// the worst of the `numBeams` finished sequences.
    case heuristic
    /// `True`: stop as soon as `numBeams` sequences are finished.
    case whenAllFinished
    /// `"never"`: like `heuristic`, but with a positive length penalty the running beam is scored at the
    /// maximum length (the canonical beam search bound).
    case never
}
