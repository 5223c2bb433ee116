/// The logits processors transformers builds in `_get_logits_processor` for the parameters BLIP
/// exposes, applied to one row in the same order: repetition penalty, no-repeat-n-gram, bad words,
/// minimum length. (transformers adds a `MinNewTokensLengthLogitsProcessor` as well when
/// `min_new_tokens` is set, but it also rewrites `min_length` to prompt + `min_new_tokens`, so the two
/// processors mask the same steps and one check suffices.)
///
/// Greedy decoding and sampling apply them to the logits; beam search applies them to the
/// log-probabilities (log-softmax first), as transformers does.
struct LogitsProcessing {
    let repetitionPenalty: Float
    let noRepeatNgramSize: Int
    /// Single-token bad words: always forbidden.
    let bannedTokens: [Int32]
    /// Multi-token bad words: the last token is forbidden when the sequence ends with the others.
    let bannedSequences: [[Int32]]
    /// `[SEP]` is forbidden while the sequence (prefix included) is shorter than this.
    let minLength: Int
    let eosTokenID: Int32

    /// - Parameter badWordIDs: already validated (non-empty, in the vocabulary).
    init(repetitionPenalty: Float, noRepeatNgramSize: Int, badWordIDs: [[Int32]], minLength: Int, eosTokenID: Int32) {
        self.repetitionPenalty = repetitionPenalty
        self.noRepeatNgramSize = noRepeatNgramSize
        // transformers drops a bad word that is exactly the EOS token (so it cannot prevent stopping),
        // but keeps multi-token bad words that contain it.
        let kept = badWordIDs.filter { $0 != [eosTokenID] }
        self.bannedTokens = kept.filter { $0.count == 1 }.map { $0[0] }
        self.bannedSequences = kept.filter { $0.count > 1 }
        self.minLength = minLength
        self.eosTokenID = eosTokenID
    }

    /// Processes one row of scores in place.
    /// - Parameters:
    ///   - scores: vocabulary-size scores for the token after `sequence`.
    ///   - sequence: the row's tokens so far, prefix included.
    ///   - scratch: reusable storage (avoids an allocation per row and step).
    func apply(to scores: UnsafeMutableBufferPointer<Float>, sequence: [Int32], scratch: inout [Float]) {
        if repetitionPenalty != 1 {
            applyRepetitionPenalty(scores, sequence, &scratch)
        }
        if noRepeatNgramSize > 0 {
            banRepeatedNgrams(scores, sequence)
        }
        if !bannedTokens.isEmpty || !bannedSequences.isEmpty {
            banBadWords(scores, sequence)
        }
        if sequence.count < minLength {
            scores[Int(eosTokenID)] = -.infinity
        }
    }

    /// transformers gathers the scores of all tokens in the sequence, penalizes them, and scatters them
    /// back, so a token that occurs several times is penalized once, from its original score.
    private func applyRepetitionPenalty(_ scores: UnsafeMutableBufferPointer<Float>, _ sequence: [Int32],
                                        _ gathered: inout [Float]) {
        gathered.removeAll(keepingCapacity: true)
        for token in sequence { gathered.append(scores[Int(token)]) }
        let penalty = repetitionPenalty
        for (token, score) in zip(sequence, gathered) {
            scores[Int(token)] = score < 0 ? score * penalty : score / penalty
        }
    }

    /// Forbids every token that would complete an n-gram already in the sequence: each earlier window
    /// whose first n-1 tokens equal the sequence's last n-1 tokens bans its n-th token.
    private func banRepeatedNgrams(_ scores: UnsafeMutableBufferPointer<Float>, _ sequence: [Int32]) {
        let n = noRepeatNgramSize
        let length = sequence.count
        guard length >= n else { return }
        let suffixStart = length - (n - 1)
        sequence.withUnsafeBufferPointer { tokens in
            for start in 0...(length - n) {
                var matches = true
                for offset in 0..<(n - 1) where tokens[start + offset] != tokens[suffixStart + offset] {
                    matches = false
                    break
                }
                if matches { scores[Int(tokens[start + n - 1])] = -.infinity }
            }
        }
    }

    private func banBadWords(_ scores: UnsafeMutableBufferPointer<Float>, _ sequence: [Int32]) {
        for token in bannedTokens { scores[Int(token)] = -.infinity }
        for word in bannedSequences {
            let prefixLength = word.count - 1
            guard prefixLength <= sequence.count else { continue }  // longer than the context: ignored
            if sequence[(sequence.count - prefixLength)...].elementsEqual(word[..<prefixLength]) {
                scores[Int(word[prefixLength])] = -.infinity
            }
        }
    }
}
