extension DecodeLoop {
    /// Where a job's encode stands: the pieces the loop runs one per iteration.
    enum EncodeStage {
        /// Hash the image and look it up in the feature cache.
        case lookup
        /// Decode the file (the deadline and a cancel are checked inside, every few thousand PNG rows).
        case decode
        /// Resize to the model's input size, applying the EXIF orientation found while decoding
        /// (2...8, or nil) to the result as if applied before (``BicubicResize/resize(_:orientation:width:height:stopCheck:)``:
        /// no full-size rotated copy). The deadline and a cancel are checked after every block of outputs.
        case resize(RGBImage, orientation: Int?)
        /// Rescale and normalise into the model's pixel values.
        case normalize(RGBImage)
        /// Patch embedding, class token, positions.
        case embed
        /// Vision layer `n` (0-based).
        case layer(Int)
        /// `post_layernorm` into the features.
        case finish
        /// Project the features for cross-attention.
        case project(FloatBuffer)
        /// Done: the decoder's memory of the image.
        case ready(ImageMemory)

        /// For logs and tests: "lookup", "layer 3", ….
        var name: String {
            switch self {
            case .lookup: "lookup"
            case .decode: "decode"
            case .resize: "resize"
            case .normalize: "normalize"
            case .embed: "embed"
            case .layer(let n): "layer \(n)"
            case .finish: "finish"
            case .project: "project"
            case .ready: "ready"
            }
        }

        /// The stages that run on a `VisionState`.
        var needsVisionState: Bool {
            switch self {
            case .embed, .layer, .finish: true
            default: false
            }
        }
    }

    /// A submitted job, owned by the loop's thread once taken in.
    final class Job: @unchecked Sendable {
        // @unchecked: after `submit` only the loop's thread touches it (and one lane at a time),
        // except `cancellation`, which is thread-safe.
        let id: UInt64
        let image: [UInt8]
        let format: ImageFormat?
        let applyEXIFOrientation: Bool
        let prompts: [PreparedPrompt]
        let deadline: ContinuousClock.Instant?
        /// Raised by ``DecodeLoop/cancel(_:)`` on the canceller's thread; polled inside image work.
        let cancellation = CancellationFlag()
        let completion: @Sendable (Result<CaptionJobResult, any Error>) -> Void
        let onText: (@Sendable (Int, String) -> Void)?
        let submitted = ContinuousClock.now

        var stage = EncodeStage.lookup
        /// The image's feature-cache key: made in the look-up (when there is a cache), kept to
        /// store the features under once encoded.
        var cacheKey: FeatureCache.Key?
        var vision: VisionState?
        var pixels: FloatBuffer?
        var failure: (any Error)?
        var textStart: ContinuousClock.Instant?
        var timings = CaptionTimings()
        var captions: [[CaptionCandidate]?]
        var isFinished = false

        init(id: UInt64, image: [UInt8], format: ImageFormat?, applyEXIFOrientation: Bool, prompts: [PreparedPrompt],
             deadline: ContinuousClock.Instant?,
             onText: (@Sendable (Int, String) -> Void)?,
             completion: @escaping @Sendable (Result<CaptionJobResult, any Error>) -> Void) {
            self.id = id
            self.image = image
            self.format = format
            self.applyEXIFOrientation = applyEXIFOrientation
            self.prompts = prompts
            self.deadline = deadline
            self.completion = completion
            self.onText = onText
            captions = Array(repeating: nil, count: prompts.count)
        }

        /// Hashes the image into ``cacheKey`` and returns the features cached under it; `nil` for a
        /// miss or when there is no cache.
        private func cachedFeatures(engine: Engine, afterCacheKey: (@Sendable (UInt64) -> Void)?) -> FloatBuffer? {
            guard let cache = engine.cache else { return nil }
            let decoding = "\(format.map { "\($0)" } ?? "auto") exif=\(applyEXIFOrientation)"
            let key = FeatureCache.Key(image: image, decoding: decoding, context: engine.cacheContext)
            cacheKey = key
            afterCacheKey?(id)
            return cache.lookup(key)
        }

        /// What stops this job's image decode and resize in the middle: its deadline, its cancel.
        var stopCheck: ImageStopCheck { ImageStopCheck(deadline: deadline, cancellation: cancellation) }

        /// Runs the current stage and moves to the next; a failure is left in ``failure``.
        /// `afterCacheKey` is ``DecodeLoop/afterCacheKey``.
        func advanceEncode(engine: Engine, clock: ContinuousClock, afterCacheKey: (@Sendable (UInt64) -> Void)?) {
            let start = clock.now
            if case .lookup = stage { timings.queueWait = (start - submitted).seconds }
            let model = engine.model
            let vc = model.config.vision
            do {
                switch stage {
                case .lookup:
                    if let features = cachedFeatures(engine: engine, afterCacheKey: afterCacheKey) {
                        timings.featureCacheHit = true
                        stage = .project(features)
                    } else {
                        stage = .decode
                    }
                case .decode:
                    let (decoded, orientation) = try ImageDecoder.decodeUnoriented(
                        image, format: format, applyEXIFOrientation: applyEXIFOrientation,
                        limits: engine.imageLimits, stopCheck: stopCheck)
                    stage = .resize(decoded, orientation: orientation)
                    timings.decode += (clock.now - start).seconds
                case .resize(let decoded, let orientation):
                    let s = model.preprocessor.imageSize
                    stage = .normalize(try BicubicResize.resize(decoded, orientation: orientation ?? 1, width: s, height: s,
                                                                stopCheck: stopCheck))
                    timings.decode += (clock.now - start).seconds
                case .normalize(let resized):
                    let s = model.preprocessor.imageSize
                    let pixels = FloatBuffer(count: 3 * s * s, zeroed: false)
                    engine.normalizer.normalize(resized, into: UnsafeMutableBufferPointer(start: pixels.pointer, count: pixels.count))
                    self.pixels = pixels
                    stage = .embed
                    timings.decode += (clock.now - start).seconds
                case .embed:
                    model.vision.embed(pixels: pixels!.pointer, state: vision!)
                    pixels = nil
                    stage = vc.numHiddenLayers > 0 ? .layer(0) : .finish
                    timings.vision += (clock.now - start).seconds
                case .layer(let n):
                    model.vision.runLayer(n, state: vision!)
                    stage = n + 1 < vc.numHiddenLayers ? .layer(n + 1) : .finish
                    timings.vision += (clock.now - start).seconds
                case .finish:
                    let features = FloatBuffer(count: vc.tokenCount * vc.hiddenSize, zeroed: false)
                    model.vision.finish(into: features.pointer, state: vision!)
                    if let key = cacheKey { engine.cache?.insert(features, for: key) }
                    stage = .project(features)
                    timings.vision += (clock.now - start).seconds
                case .project(let features):
                    stage = .ready(model.makeMemory(features: features.pointer))
                    timings.text += (clock.now - start).seconds
                case .ready:
                    break
                }
            } catch ImageError.deadlineExceeded {
                failure = CaptionJobError.deadlineExceeded
            } catch ImageError.cancelled {
                failure = CaptionJobError.cancelled
            } catch {
                failure = error
            }
        }
    }
}
