#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// An external scorer: a long-running command (`sh -c CMD`) that reads one JSON line per
/// request on its stdin and writes one JSON line per answer on its stdout. It is started once
/// and reused; when it times out or dies it is killed and started again for the next request,
/// so one bad answer costs one request, never the run.
public final class ReasonerProcess {
    public let command: String
    public let timeout: Double
    private var pid: pid_t = 0
    private var toChild: Int32 = -1
    private var fromChild: Int32 = -1
    private var pending: [UInt8] = []
    public private(set) var starts = 0

    public init(command: String, timeout: Double) {
        self.command = command
        self.timeout = timeout
        signal(SIGPIPE, SIG_IGN)
    }

    deinit { stop() }

    /// Why an answer could not be had.
    public enum Failure: Error, CustomStringConvertible {
        case start(String), timeout(Double), exited(String), write(String)
        public var description: String {
            switch self {
            case .start(let why): return "could not start the reasoner: \(why)"
            case .timeout(let s): return "no answer within \(formatSeconds(s))"
            case .exited(let how): return "the reasoner \(how)"
            case .write(let why): return "could not send the permit: \(why)"
            }
        }
    }

    /// Sends one line (no newline in it) and waits for one line back.
    public func ask(_ line: String) -> Result<String, Failure> {
        if pid == 0 {
            if let problem = start() { return .failure(.start(problem)) }
        }
        var bytes = Array(line.utf8)
        bytes.append(10)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { write(toChild, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let why = errnoText()
                let how = reap()
                stop()
                return .failure(how.map { .exited($0) } ?? .write(why))
            }
            done += n
        }
        let deadline = monotonicNow() + timeout
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let answer = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return .success(answer)
            }
            let left = deadline - monotonicNow()
            if left <= 0 {
                stop()
                return .failure(.timeout(timeout))
            }
            var poller = pollfd(fd: fromChild, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(left, 1) * 1000) + 1)
            if ready < 0 && errno != EINTR {
                stop()
                return .failure(.exited("could not be read: \(errnoText())"))
            }
            if ready <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { read(fromChild, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let how = waitForExit()
                stop()
                return .failure(.exited(how))
            }
            pending.append(contentsOf: chunk[..<n])
        }
    }

    /// Starts the command; nil, or why it could not start.
    private func start() -> String? {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else { return errnoText() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        for fd in input + output { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv: [String] = ["/bin/sh", "-c", command]
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        // Its own process group, so that a stop kills whatever the command started too.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var child: pid_t = 0
        let status = posix_spawn(&child, "/bin/sh", &actions, &attributes, &cArgs, environ)
        close(input[0])
        close(output[1])
        guard status == 0 else {
            close(input[1])
            close(output[0])
            return String(cString: strerror(status))
        }
        pid = child
        toChild = input[1]
        fromChild = output[0]
        _ = fcntl(toChild, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fromChild, F_SETFD, FD_CLOEXEC)
        pending = []
        starts += 1
        return nil
    }

    /// How the child ended, if it has.
    private func reap() -> String? {
        var status: Int32 = 0
        guard pid != 0, waitpid(pid, &status, WNOHANG) == pid else { return nil }
        kill(-pid, SIGKILL)
        pid = 0
        return ReasonerProcess.describe(status)
    }

    private func waitForExit() -> String {
        // The child closed its stdout: it is gone or going.
        for _ in 0..<50 {
            if let how = reap() { return how }
            usleep(10_000)
        }
        return "closed its output"
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "was killed by signal \(signal)"
    }

    /// Stops the child (closes its input, kills it, reaps it).
    public func stop() {
        if toChild >= 0 { close(toChild); toChild = -1 }
        if fromChild >= 0 { close(fromChild); fromChild = -1 }
        if pid != 0 {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            pid = 0
        }
        pending = []
    }
}
