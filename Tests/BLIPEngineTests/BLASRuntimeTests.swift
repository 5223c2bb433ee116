import Testing
@testable import BLIPEngine

@Suite("OpenBLAS kernel selection")
struct BLASRuntimeTests {
    static let avx512: Set<String> = ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]

    @Test func genericKernelOnAVX512PicksSkylakeX() {
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: Self.avx512, currentCore: "Prescott") == "SkylakeX")
    }

    @Test func genericKernelOnAVX2PicksHaswell() {
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["avx", "avx2", "fma"], currentCore: "Prescott") == "Haswell")
    }

    @Test func recognisedKernelIsKept() {
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: Self.avx512, currentCore: "SkylakeX") == nil)
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["avx2", "fma"], currentCore: "Zen") == nil)
    }

    @Test func oldCPUKeepsGenericKernel() {
        #expect(BLASRuntime.recommendedCoreType(cpuFlags: ["sse2", "sse3"], currentCore: "Prescott") == nil)
    }

    @Test func explicitSettingIsHonoured() {
        #expect(BLASRuntime.kernelDecision(environment: ["OPENBLAS_CORETYPE": "Prescott"]) == .keep)
    }

    @Test func reducedPrecisionsMakeOpenMPThreadsSleepUnlessTheUserChose() {
        let zen = ["OPENBLAS_CORETYPE": "Zen"]
        #expect(BLASRuntime.environmentChanges(for: .float32, environment: zen).isEmpty)
        #expect(BLASRuntime.environmentChanges(for: .int8, environment: zen) == ["OMP_WAIT_POLICY": "PASSIVE"])
        #expect(BLASRuntime.environmentChanges(for: .bfloat16, environment: zen) == ["OMP_WAIT_POLICY": "PASSIVE"])
        #expect(BLASRuntime.environmentChanges(for: .int8, environment: zen.merging(["OMP_WAIT_POLICY": "ACTIVE"]) { $1 }).isEmpty)
    }

    @Test func runtimeReportsAKernelAndThreads() {
        #expect(!BLASRuntime.coreName.isEmpty)
        #expect(BLASRuntime.threads >= 1)
    }
}
