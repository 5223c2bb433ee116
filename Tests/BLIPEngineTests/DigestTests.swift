import Foundation
import Testing
@testable import BLIPEngine

/// The engine's two SHA-256s (swift-crypto's) are the standard digest over the documented bytes:
/// the expected values were computed with Python's `hashlib`, independently of the engine.
@Suite struct DigestTests {
    /// A feature-cache key hashes the context, a zero byte, the decoding, a zero byte, the image.
    @Test func aFeatureCacheKeyIsTheSHA256OfContextDecodingAndImage() {
        let key = FeatureCache.Key(image: Array("abc".utf8), decoding: "dec", context: "ctx")
        // hashlib.sha256(b"ctx\x00dec\x00abc")
        #expect(key.digest.hex == "7f7e24e5fe681083b9d80fc998b2104b88839057b665008a60fa7237fea122fe")
        #expect(key != FeatureCache.Key(image: Array("abc".utf8), decoding: "de", context: "ctx"))
    }

    /// The weights' header digest (the model revision without a hub snapshot) is unchanged by the
    /// switch to swift-crypto: the first 16 hex digits of the SHA-256 of the length and the header.
    @Test func theWeightsHeaderDigestIsTheSHA256OfTheHeader() throws {
        let file = try SafeTensorsFile(url: Fixtures.modelFolder("tiny-a").weights)
        // b = open("model.safetensors", "rb").read(); n = struct.unpack("<Q", b[:8])[0]
        // hashlib.sha256(b[:8 + n]).hexdigest()[:16]
        #expect(file.headerDigest == "00dc0cdf9638d2d4")
    }
}

private extension Array where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
