import Testing
@testable import BLIPEngine

/// The engine resizes an EXIF-oriented image without rotating it at full size first
/// (``BicubicResize/resize(_:orientation:width:height:stopCheck:)``); the result must be the bytes
/// that rotating first and then resizing (Pillow's `exif_transpose` then `resize`, checked against
/// Pillow elsewhere) gives, for every orientation, both pass orders, upscaling and downscaling.
@Suite struct OrientedResizeTests {
    /// (source width, height, target width, height): downscales both ways, tall and wide sources
    /// (one of the two orientations of each takes Pillow 13's vertical-first order), mixed up/down,
    /// one axis unchanged, and the identity size.
    static let shapes: [(Int, Int, Int, Int)] = [
        (37, 23, 16, 16), (13, 97, 16, 16), (97, 13, 16, 16), (20, 9, 5, 24), (9, 20, 31, 7),
        (40, 16, 16, 10), (16, 40, 16, 10), (12, 12, 12, 12), (30, 18, 18, 30),
    ]

    static func noise(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        let pixels = (0..<(width * height * 3)).map { _ -> UInt8 in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 32)
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test(arguments: 1...8)
    func orientedResizeEqualsRotateThenResize(_ orientation: Int) throws {
        for (i, (w, h, ow, oh)) in Self.shapes.enumerated() {
            let image = Self.noise(width: w, height: h, seed: UInt64(orientation * 100 + i))
            let want = BicubicResize.resize(EXIFOrientation.apply(orientation, to: image), width: ow, height: oh)
            for blockBytes in [BicubicResize.Coefficients.blockBytes, 40] {  // 40: a few outputs per block
                let got = try BicubicResize.resize(image, orientation: orientation, width: ow, height: oh,
                                                   stopCheck: .none, blockBytes: blockBytes)
                #expect(imageDifference(got, want) == nil,
                        "orientation \(orientation), \(w)x\(h) → \(ow)x\(oh), blocks of \(blockBytes) B: \(imageDifference(got, want) ?? "")")
            }
        }
    }

    /// A photo-sized case: the 384×384 the engine makes from a 4:3 image of each orientation.
    @Test func aCameraShapedImageAtTheModelSize() throws {
        let image = Self.noise(width: 1200, height: 900, seed: 7)
        for orientation in [3, 6, 8] {
            let want = BicubicResize.resize(EXIFOrientation.apply(orientation, to: image), width: 384, height: 384)
            let got = try BicubicResize.resize(image, orientation: orientation, width: 384, height: 384, stopCheck: .none)
            #expect(imageDifference(got, want) == nil, "orientation \(orientation): \(imageDifference(got, want) ?? "")")
        }
    }
}
