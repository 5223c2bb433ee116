import BLIPTestSupport
import Testing

/// Under scripts/test.sh (`BLIP_TESTS_REQUIRE_TOOLS=1`) every tool the tests use is present, since
/// the command installs them: one failure naming each missing tool, beside the failures of the
/// tests that needed it. Elsewhere a missing tool only makes those tests report themselves skipped.
@Suite struct RequiredToolTests {
    @Test(arguments: RequiredTool.allCases)
    func presentUnderTheTestCommand(tool: RequiredTool) {
        #expect(tool.isPresent || !RequiredTool.mustBePresent,
                "\(tool.rawValue) is missing, though scripts/test.sh installs it (scripts/install-deps.sh --test, scripts/test-requirements.txt)")
    }
}
