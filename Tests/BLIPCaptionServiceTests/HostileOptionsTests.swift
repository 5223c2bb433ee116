@testable import BLIPEngine
import BLIPProtocol
import BLIPServer
import Foundation
import Testing
@testable import BLIPCaptionService

/// Issue 13: options are checked at the precision they arrive in (doubles), and text limits count
/// bytes and tokens, not grapheme clusters.
@Suite struct HostileOptionsTests {
    /// (option, value): each must be refused naming the option and quoting the value as sent.
    static let refused: [(String, DecodingOptions, String)] = [
        ("temperature", DecodingOptions(temperature: 1e-300), "1e-300"),
        ("temperature", DecodingOptions(temperature: 1.4e-45), "1.4e-45"),
        ("temperature", DecodingOptions(temperature: 1e39), "1e+39"),
        ("temperature", DecodingOptions(temperature: .infinity), "inf"),
        ("temperature", DecodingOptions(temperature: .nan), "nan"),
        ("top_p", DecodingOptions(topP: 1e-300), "1e-300"),
        ("repetition_penalty", DecodingOptions(repetitionPenalty: 5e-324), "5e-324"),
        ("length_penalty", DecodingOptions(lengthPenalty: -1e-320), "-1e-320"),
        ("length_penalty", DecodingOptions(lengthPenalty: -.infinity), "-inf"),
    ]

    @Test(arguments: refused.indices)
    func doublesThatNoFloatHoldsAreRefusedByName(_ index: Int) {
        let (option, options, value) = Self.refused[index]
        do {
            let p = try EngineCaptionService.parameters(options, prompt: nil)
            _ = try p.validated(maxPositions: 512, limits: GenerationLimits())
            Issue.record("\(option) \(value) was accepted")
        } catch {
            #expect(error.parameter == option)
            #expect(error.description.contains(value), "\(error)")
        }
    }

    @Test func normalFloatsAndZeroStillPass() throws {
        let options = DecodingOptions(lengthPenalty: 0, repetitionPenalty: 1e-30, temperature: 1e-30, topP: 1e-30)
        let p = try EngineCaptionService.parameters(options, prompt: nil)
        #expect(p.temperature == Float(1e-30) && p.lengthPenalty == 0)
        #expect(try p.validated(maxPositions: 512, limits: GenerationLimits()) == p)
    }

    /// The daemon's path: a request with such an option is INVALID_ARGUMENT before any work.
    @Test func aRequestWithASubnormalTemperatureIsInvalidArgument() throws {
        let request = CaptionRequest(image: .init(data: [1]), options: DecodingOptions(doSample: true, temperature: 1.4e-45))
        do {
            _ = try EngineCaptionService.job(request, deadline: nil)
            Issue.record("temperature 1.4e-45 was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("temperature"), "\(error.message)")
        }
    }

    /// 40 punctuation marks are 40 bytes (within the byte limit) but 40 tokens: over the
    /// bad-word token limit (32), refused before any image work.
    @Test func aBadWordOfTooManyTokensIsRefused() async throws {
        let service = try EngineCaptionServiceTests.service()
        let image = CaptionRequest.Image(data: try EngineCaptionServiceTests.image("chelsea_q95_444.jpg"))
        let word = String(repeating: "!", count: 40)
        let request = CaptionRequest(image: image, options: DecodingOptions(numBeams: 1, maxNewTokens: 2, badWords: [word]))
        do {
            _ = try await service.caption(request, timeout: .seconds(60))
            Issue.record("a bad word of 40 tokens was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message == "bad_words must be words of at most 32 tokens, got a word of 40 tokens", "\(error.message)")
        }
        // 32 tokens is the limit itself and passes.
        let fits = CaptionRequest(image: image, options: DecodingOptions(numBeams: 1, maxNewTokens: 2,
                                                                          badWords: [String(repeating: "!", count: 32)]))
        _ = try await service.caption(fits, timeout: .seconds(60))
    }

    /// The issue's attack: 64 bad words of one grapheme cluster each but thousands of code points.
    @Test func oneGraphemeOfThousandsOfCodePointsIsRefusedByBytes() async throws {
        let service = try EngineCaptionServiceTests.service()
        let grapheme = "e" + String(repeating: "\u{301}", count: 5000)
        #expect(grapheme.count == 1)
        let request = CaptionRequest(image: .init(data: try EngineCaptionServiceTests.image("chelsea_q95_444.jpg")),
                                     options: DecodingOptions(numBeams: 1, maxNewTokens: 2, badWords: Array(repeating: grapheme, count: 64)))
        let start = ContinuousClock.now
        do {
            _ = try await service.caption(request, timeout: .seconds(60))
            Issue.record("64 bad words of 10,001 bytes each were accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message == "bad_words must be words of at most 512 UTF-8 bytes, got a word of 10001 bytes", "\(error.message)")
        }
        #expect(ContinuousClock.now - start < .seconds(1))
    }
}
