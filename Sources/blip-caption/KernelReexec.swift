import BLIPEngine
import Foundation

/// OpenBLAS picks its kernel when the library loads, so a better kernel for this CPU can only be
/// chosen by setting OPENBLAS_CORETYPE and starting again. Called before the engine does any work;
/// returns only if no re-execution is needed (or it failed, which is logged).
func reexecWithBetterBLASKernelIfNeeded() {
    guard case .reexec(let coreType) = BLASRuntime.kernelDecision() else { return }
    setenv("OPENBLAS_CORETYPE", coreType, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    StandardError().write("blip-caption: could not re-execute with OPENBLAS_CORETYPE=\(coreType) (\(String(cString: strerror(errno)))), continuing with OpenBLAS kernel \(BLASRuntime.coreName)")
}
