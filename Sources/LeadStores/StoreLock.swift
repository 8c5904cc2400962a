#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// The lock of one or more store directories: `<dir>/.lock`, held with `flock` for as long
/// as the run that took it lives (the kernel drops it when the process ends, however it
/// ends, so a killed run never leaves a store locked). While it is held the file names the
/// holder (`pid 4242 lead-normalize --dedupe ... since 2026-12-01T09:00:00Z`), so a second run
/// can say whom it waits for; it is emptied on release.
///
/// Directories are locked in one order (their real paths, sorted), so two runs that lock
/// overlapping sets never deadlock. A directory named in `LEAD_LOCKS` (colon-separated real
/// paths) is held by the process that started this one (`scripts/locked.sh` around a chain
/// of stages) and is not locked again.
public final class StoreLock {
    /// The real paths of the directories locked, sorted.
    public let directories: [String]
    /// Those of them held by the process that started this one (`LEAD_LOCKS`).
    public private(set) var inherited: Set<String> = []
    private var descriptors: [Int32]

    /// The lock file name inside a store directory.
    public static let fileName = ".lock"

    private init(directories: [String], descriptors: [Int32]) {
        self.directories = directories
        self.descriptors = descriptors
    }

    deinit { release() }

    /// Locks `directories` (created when missing). When another run holds one, `onWait` is
    /// told who and the call blocks until it is free, or with `wait: false` fails with a usage
    /// error (exit 2) naming the holder.
    public static func acquire(_ directories: [String], holder: String, wait: Bool,
                               environment: [String: String], onWait: (String) -> Void) throws(StageError) -> StoreLock {
        var real: [String] = []
        for dir in directories {
            try AtomicFiles.makeDirectories(dir)
            guard let path = realPath(dir) else { throw .io("\(dir): cannot resolve: \(errnoText())") }
            if !real.contains(path) { real.append(path) }
        }
        real.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let inherited = Set((environment["LEAD_LOCKS"] ?? "").split(separator: ":").map(String.init))
        // Released (emptied and closed) if a later directory cannot be had.
        let lock = StoreLock(directories: real, descriptors: [])
        lock.inherited = inherited.intersection(real)
        for dir in real where !inherited.contains(dir) {
            let path = dir + "/" + fileName
            let fd = AtomicFiles.createPrivate(path, flags: O_RDWR | O_CREAT | O_CLOEXEC)
            guard fd >= 0 else { throw .io("\(path): cannot open the lock file: \(errnoText())") }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                guard errno == EWOULDBLOCK else { close(fd); throw .io("\(path): cannot lock: \(errnoText())") }
                let who = currentHolder(fd)
                guard wait else { close(fd); throw .usage("\(dir) is locked by \(who) (--no-wait)") }
                onWait("waiting for \(dir): locked by \(who)")
                while flock(fd, LOCK_EX) != 0 {
                    guard errno == EINTR else { close(fd); throw .io("\(path): cannot lock: \(errnoText())") }
                }
            }
            lock.descriptors.append(fd)
            var text = Array((holder + "\n").utf8)
            _ = ftruncate(fd, 0)
            _ = text.withUnsafeMutableBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        return lock
    }

    /// Empties the lock files and lets them go.
    public func release() {
        for fd in descriptors {
            _ = ftruncate(fd, 0)
            close(fd)
        }
        descriptors.removeAll()
    }

    /// Who holds the lock at `fd`, as its file says.
    static func currentHolder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingSpaces : ""
        return text.isEmpty ? "another run" : text
    }

    /// `pid N <command line> since <time>`: this process, as a lock file names it.
    public static func describeThisProcess(now: Timestamp) -> String {
        var words: [String] = []
        if let bytes = try? ByteSource.readAll("/proc/self/cmdline") {
            words = bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if let first = words.first { words[0] = String(first.split(separator: "/").last ?? Substring(first)) }
        }
        var command = words.joined(separator: " ")
        if command.count > 200 { command = String(command.prefix(200)) + "..." }
        return "pid \(getpid()) \(command.isEmpty ? "lead" : command) since \(now.iso8601)"
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
