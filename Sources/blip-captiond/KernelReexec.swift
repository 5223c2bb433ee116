import BLIPEngine
import Foundation

/// OpenBLAS picks its kernel when the library loads, so a better kernel for this CPU can only be
/// chosen by setting OPENBLAS_CORETYPE and starting again. The process keeps its pid, its
/// environment (NOTIFY_SOCKET, LISTEN_FDS/LISTEN_PID) and the sockets systemd passed, so this is
/// invisible to systemd. Returns only if no re-execution is needed or it failed (logged).
func reexecWithBetterBLASKernelIfNeeded() {
    guard case .reexec(let coreType) = BLASRuntime.kernelDecision() else { return }
    setenv("OPENBLAS_CORETYPE", coreType, 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    FileHandle.standardError.write(Data("blip-captiond: could not re-execute with OPENBLAS_CORETYPE=\(coreType) (\(String(cString: strerror(errno)))), continuing with OpenBLAS kernel \(BLASRuntime.coreName)\n".utf8))
}
