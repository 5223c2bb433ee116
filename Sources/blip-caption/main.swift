import BLIPEngine
import Foundation

// OpenBLAS picks its kernel when the library loads, so a better kernel for this CPU can only be
// chosen by setting OPENBLAS_CORETYPE and starting again. Do that before anything else.
if case .reexec(let coreType) = BLASRuntime.kernelDecision() {
    setenv("OPENBLAS_CORETYPE", coreType, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    FileHandle.standardError.write(Data("blip-caption: could not re-execute with OPENBLAS_CORETYPE=\(coreType) (\(String(cString: strerror(errno)))), continuing with OpenBLAS kernel \(BLASRuntime.coreName)\n".utf8))
}

BlipCaptionCommand.main()
