import CPUFeatures
import Testing

@Suite struct CPUFeaturesTests {
    @Test func engineRunsWhereEveryRequiredFlagIsPresent() {
        let all = Set(CPUFeatures.engineRequirements + ["sse2", "avx512f"])
        #expect(CPUFeatures.engineProblem(flags: all) == nil)
    }

    @Test func missingInstructionsAreNamedWithTheWayOut() throws {
        #if arch(x86_64)
        try #require(!CPUFeatures.engineRequirements.isEmpty, "engine built with BLIP_PORTABLE=1: nothing required")
        let flags = Set(CPUFeatures.engineRequirements).subtracting(["avx2", "fma"]).union(["sse2"])
        let problem = try #require(CPUFeatures.engineProblem(flags: flags))
        #expect(problem.contains("avx2, fma"))
        #expect(problem.contains("BLIP_PORTABLE=1"))
        #endif
    }

    @Test func unreadableCPUInfoIsNotHeldAgainstTheCPU() {
        #expect(CPUFeatures.engineProblem(flags: []) == nil)
    }

    @Test func thisMachineCanRunTheEngine() {
        // The suite itself runs engine code; if this fails, every numeric test would die of SIGILL.
        #expect(CPUFeatures.engineProblem() == nil)
    }
}
