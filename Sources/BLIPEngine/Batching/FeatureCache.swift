import Crypto
import Foundation

/// Vision features of recently encoded images, so that another prompt for the same image (in a
/// later call) skips decoding, resizing and the vision encoder.
///
/// The key is a SHA-256 over everything the features depend on: the image bytes, how they are
/// decoded (format, EXIF switch), the preprocessing config and the model's identity; a cache never
/// answers for other pixels or another model. Bounded by bytes (least recently used entries go
/// first); a cache belongs to one loaded model and goes away with it (a reload starts empty).
public final class FeatureCache: @unchecked Sendable {
    // @unchecked: every field below is guarded by `lock`; entries are immutable.

    /// A cache key: the digest of the image and everything that decides its features.
    public struct Key: Hashable, Sendable {
        let digest: [UInt8]

        /// Hashes the whole image (up to 32 MiB: tens of milliseconds), so it is made on the engine
        /// loop's thread, in the job's look-up, never on the submitter's (the daemon's event loop).
        /// - Parameters:
        ///   - image: the request's image bytes.
        ///   - decoding: how they are decoded (format, raw size, EXIF switch), as text.
        ///   - context: the preprocessing config and the model's identity, as text.
        init(image: [UInt8], decoding: String, context: String) {
            // SHA-256: a cached image's features are only ever served for the very same bytes
            // (a 256-bit digest; no collision is known).
            var hasher = SHA256()
            for part in [context, decoding] {
                hasher.update(data: Array(part.utf8))
                hasher.update(data: [0])  // a separator no UTF-8 text contains
            }
            image.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            digest = Array(hasher.finalize())
        }
    }

    /// Features as the encoder wrote them, (tokens, hidden).
    final class Entry: @unchecked Sendable {
        // @unchecked: written once before it is shared.
        let features: FloatBuffer
        var lastUse: UInt64
        init(features: FloatBuffer, lastUse: UInt64) { (self.features, self.lastUse) = (features, lastUse) }
        var bytes: Int { features.count * MemoryLayout<Float>.size }
    }

    /// What Info reports.
    public struct Statistics: Sendable, Equatable {
        public var capacityBytes: Int
        public var bytes: Int
        public var entries: Int
        public var hits: UInt64
        public var misses: UInt64
    }

    public let capacityBytes: Int
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var bytes = 0
    private var clock: UInt64 = 0
    private var hits: UInt64 = 0
    private var misses: UInt64 = 0

    /// - Parameter capacityBytes: the most feature bytes held; 0 keeps nothing.
    public init(capacityBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
    }

    /// The features stored under `key`, counted as a hit, or `nil`, counted as a miss.
    func lookup(_ key: Key) -> FloatBuffer? {
        lock.withLock {
            clock += 1
            guard let entry = entries[key] else {
                misses += 1
                return nil
            }
            hits += 1
            entry.lastUse = clock
            return entry.features
        }
    }

    /// Stores `features` under `key`, dropping the least recently used entries to stay within
    /// the capacity. Features larger than the whole capacity are not kept.
    func insert(_ features: FloatBuffer, for key: Key) {
        let size = features.count * MemoryLayout<Float>.size
        lock.withLock {
            guard size <= capacityBytes, entries[key] == nil else { return }
            clock += 1
            while bytes + size > capacityBytes, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                bytes -= oldest.value.bytes
                entries[oldest.key] = nil
            }
            entries[key] = Entry(features: features, lastUse: clock)
            bytes += size
        }
    }

    public var statistics: Statistics {
        lock.withLock {
            Statistics(capacityBytes: capacityBytes, bytes: bytes, entries: entries.count, hits: hits, misses: misses)
        }
    }
}
