import BLIPProtocol
import BLIPTestSupport
import Foundation
import Testing
@testable import BLIPEngine

/// Replays the fuzzers' committed inputs (fuzz/corpus/<target>/, where a crash found by
/// scripts/fuzz.sh is committed once fixed) through the same code and invariants as the
/// fuzz targets, without the fuzzer, so every past crash stays a regression test of `swift test`.
struct FuzzCorpusReplayTests {
    static let corpus = PackagePaths.root.appendingPathComponent("fuzz/corpus")

    static func inputs(_ target: String) throws -> [(String, [UInt8])] {
        let folder = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { ($0, Array(try Data(contentsOf: folder.appendingPathComponent($0)))) }
    }

    @Test func frameAndEnvelope() throws {
        let inputs = try Self.inputs("FuzzFrame")
        #expect(!inputs.isEmpty)
        var envelopes = 0
        for (_, bytes) in inputs {
            var decoder = FrameDecoder(maxFrameBytes: 1 << 16)
            decoder.append(Array(bytes.dropFirst()))
            while let frame = try? decoder.nextFrame() {
                guard let envelope = try? Envelope(decoding: frame) else { continue }
                envelopes += 1
                #expect(try Envelope(decoding: envelope.encoded()) == envelope)
            }
        }
        #expect(envelopes >= 3)
    }

    @Test func captionRequestAndValidation() throws {
        for (name, bytes) in try Self.inputs("FuzzCaptionRequest") {
            guard let request = try? CaptionRequest(decoding: bytes) else { continue }
            #expect(try CaptionRequest(decoding: request.encoded()) == request, "\(name)")
        }
    }

    @Test(arguments: [("FuzzJPEG", ImageFormat.jpeg), ("FuzzPNG", .png)])
    func images(_ target: String, _ format: ImageFormat) throws {
        let limits = ImageLimits(maxBytes: 1 << 20, maxPixels: 1 << 20)
        var decoded = 0
        for (name, bytes) in try Self.inputs(target) {
            guard let image = try? ImageDecoder.decode(bytes, format: format, applyEXIFOrientation: true, limits: limits) else { continue }
            decoded += 1
            #expect(image.pixels.count == image.width * image.height * 3, "\(name)")
        }
        #expect(decoded >= 4, "the seeds are valid images")
    }

    @Test func exif() throws {
        var found: [Int] = []
        for (_, bytes) in try Self.inputs("FuzzEXIF") {
            if let o = EXIFOrientation.fromJPEG(bytes) { found.append(o) }
            _ = bytes.withUnsafeBufferPointer { EXIFOrientation.fromTIFF($0) }
        }
        #expect(Set(found).isSuperset(of: [3, 6, 8]))
    }

    @Test func safeTensorsHeader() throws {
        for (name, bytes) in try Self.inputs("FuzzSafeTensors") where bytes.count >= 4 {
            let dataLength = bytes[0..<4].reduce(0) { $0 << 8 | Int($1) }
            guard let parsed = try? SafeTensorsFile.parseHeader(Data(bytes[4...]), dataLength: dataLength, path: name) else { continue }
            for entry in parsed.entries.values {
                #expect(entry.range.upperBound <= dataLength, "\(name): \(entry)")
            }
        }
    }

    /// FuzzCheckpoint's inputs: a mode byte (even: a data.pkl alone, odd: a whole pytorch_model.bin).
    @Test func pytorchCheckpoints() throws {
        var read = 0
        for (name, bytes) in try Self.inputs("FuzzCheckpoint") where !bytes.isEmpty {
            let body = Array(bytes.dropFirst())
            if bytes[0] & 1 == 0 {
                if (try? StateDictPickle(body, path: name)) != nil { read += 1 }
                continue
            }
            guard let parsed = try? TorchCheckpoint.parse(ArrayByteSource(bytes: body, path: name), path: name) else { continue }
            read += 1
            for entry in parsed.entries.values {
                #expect(entry.range.upperBound <= body.count && entry.range.count == entry.elementCount * entry.dtype.byteSize, "\(name): \(entry)")
            }
        }
        #expect(read >= 3, "the seeds include valid checkpoints")
    }

    @Test func tokenizerRoundTrip() throws {
        let tokenizer = try WordPieceTokenizer(vocabularyFile: PackagePaths.root.appendingPathComponent("Tests/Fixtures/vocab.txt"))
        let special = Set(tokenizer.specialIDs.all)
        for (name, bytes) in try Self.inputs("FuzzTokenizer") {
            let ids = tokenizer.encode(String(decoding: bytes, as: UTF8.self))
            #expect(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize })
            if !ids.contains(where: special.contains) {
                #expect(tokenizer.encode(tokenizer.decode(ids)) == ids, "\(name)")
            }
        }
    }
}
