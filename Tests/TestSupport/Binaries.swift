import Foundation

/// The checkout and the built stage binaries, for tests that run stages as subprocesses.
public enum Binaries {
    public static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// `LEAD_BIN`, else the release build, else the debug build.
    public static let directory: String = {
        if let dir = ProcessInfo.processInfo.environment["LEAD_BIN"], !dir.isEmpty { return dir }
        for config in ["release", "debug"] {
            let dir = repoRoot + "/.build/" + config
            if FileManager.default.isExecutableFile(atPath: dir + "/lead-flatten") { return dir }
        }
        return repoRoot + "/.build/release"
    }()

    /// The outcome of a finished stage process.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String

        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// Runs `lead-<stage>` with `arguments` in `directory` and waits for it.
    public static func run(_ binary: String, _ arguments: [String], in directory: String,
                           environment: [String: String] = [:], stdin: String? = nil) throws -> Result {
        let process = try start(binary, arguments, in: directory, environment: environment, stdin: stdin)
        return process.wait()
    }

    /// A started stage process.
    public final class Running: @unchecked Sendable {
        public let process: Process
        let out: Pipe
        let err: Pipe
        private var outData = Data()
        private var errData = Data()
        private let group = DispatchGroup()

        init(process: Process, out: Pipe, err: Pipe) {
            self.process = process
            self.out = out
            self.err = err
            group.enter()
            DispatchQueue.global().async {
                self.outData = out.fileHandleForReading.readDataToEndOfFile()
                self.group.leave()
            }
            group.enter()
            DispatchQueue.global().async {
                self.errData = err.fileHandleForReading.readDataToEndOfFile()
                self.group.leave()
            }
        }

        public func wait() -> Result {
            process.waitUntilExit()
            group.wait()
            return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                          stderr: String(decoding: errData, as: UTF8.self))
        }
    }

    public static func start(_ binary: String, _ arguments: [String], in directory: String,
                             environment: [String: String] = [:], stdin: String? = nil) throws -> Running {
        let process = Process()
        // A stage by name (lead-<stage>), or any program by absolute path (/usr/bin/make).
        process.executableURL = URL(fileURLWithPath: binary.hasPrefix("/") ? binary : Binaries.directory + "/" + binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "SPARK_API_TOKEN")
        env.removeValue(forKey: "POSTHOG_API_KEY")
        env["LEAD_STAGES"] = repoRoot + "/stages"
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        if let stdin {
            let input = Pipe()
            process.standardInput = input
            try process.run()
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        } else {
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            try process.run()
        }
        return Running(process: process, out: out, err: err)
    }

    /// A fresh scratch directory, removed when the test process exits (kept when
    /// `LEAD_KEEP_SCRATCH` is set, to look into a failure): a test run leaves nothing in /tmp.
    public static func scratch(_ label: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lead-\(label)-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        ScratchDirectories.shared.add(dir)
        return dir
    }
}

/// The scratch directories of this test process, removed at its exit.
final class ScratchDirectories: @unchecked Sendable {
    static let shared: ScratchDirectories = {
        let dirs = ScratchDirectories()
        if ProcessInfo.processInfo.environment["LEAD_KEEP_SCRATCH"] == nil {
            atexit { ScratchDirectories.shared.removeAll() }
        }
        return dirs
    }()

    private let lock = NSLock()
    private var dirs: [String] = []

    func add(_ dir: String) {
        lock.lock()
        dirs.append(dir)
        lock.unlock()
    }

    func removeAll() {
        lock.lock()
        let all = dirs
        dirs.removeAll()
        lock.unlock()
        for dir in all { try? FileManager.default.removeItem(atPath: dir) }
    }
}
