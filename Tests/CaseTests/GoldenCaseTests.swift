import Foundation
import TestSupport
import Testing

/// Golden cases in the style of Miller's regression cases. Each directory
/// `fixtures/cases/<stage>/<NNNN>/` holds:
/// - `cmd`: one bash line, run in a scratch copy of the case directory with the built
///   `lead-*` binaries first on PATH, `REPO` set to the checkout root and `LEAD_NOW` fixed;
/// - `expout`: the expected stdout;
/// - `experr` (optional): the expected stderr, with `"seconds":<n>` masked to `"seconds":0`;
/// - `should-fail` (optional): the command must fail; if the file holds a number, with that status;
/// - `expfiles/` (optional): every file the command creates in the work directory, byte for byte.
///   A case without `expfiles/` must not create files.
/// Other files in the directory are inputs. `make cases-record` rewrites the expected files.
@Suite struct GoldenCaseTests {
    static let cases: [String] = CaseRunner.allCases()

    @Test("golden case", arguments: GoldenCaseTests.cases)
    func goldenCase(_ name: String) throws {
        let result = try CaseRunner.run(name)
        if CaseRunner.recording {
            try CaseRunner.record(name, result)
            return
        }
        let dir = CaseRunner.casesRoot + "/" + name
        let report = "case \(name)\n--- cmd:\n\(result.cmd)\n--- status: \(result.status)\n--- stdout:\n\(result.stdout)\n--- stderr:\n\(result.stderr)"
        let shouldFail = try? String(contentsOfFile: dir + "/should-fail", encoding: .utf8)
        if let shouldFail {
            let wanted = Int32(shouldFail.trimmingCharacters(in: .whitespacesAndNewlines))
            if let wanted {
                #expect(result.status == wanted, "expected exit status \(wanted)\n\(report)")
            } else {
                #expect(result.status != 0, "expected a failure\n\(report)")
            }
        } else {
            #expect(result.status == 0, "expected success\n\(report)")
        }
        let expout = (try? String(contentsOfFile: dir + "/expout", encoding: .utf8)) ?? ""
        #expect(result.stdout == expout, "stdout differs\n--- expected stdout:\n\(expout)\n\(report)")
        if let experr = try? String(contentsOfFile: dir + "/experr", encoding: .utf8) {
            #expect(result.stderr == experr, "stderr differs\n--- expected stderr:\n\(experr)\n\(report)")
        }
        let expected = CaseRunner.expectedFiles(name)
        #expect(Set(result.files.keys) == Set(expected.keys),
                "files created: \(result.files.keys.sorted()), expected: \(expected.keys.sorted())\n\(report)")
        for (path, data) in expected {
            if let actual = result.files[path] {
                #expect(actual == data, "file \(path) differs\n--- expected:\n\(String(decoding: data, as: UTF8.self))\n--- actual:\n\(String(decoding: actual, as: UTF8.self))\n\(report)")
            }
        }
    }
}

/// Runs golden cases and records their expected output.
enum CaseRunner {
    static let repoRoot = Binaries.repoRoot

    static let casesRoot = repoRoot + "/fixtures/cases"

    static var recording: Bool { ProcessInfo.processInfo.environment["LEAD_CASES_RECORD"] == "1" }

    static let binDir = Binaries.directory

    static let reserved: Set<String> = ["cmd", "expout", "experr", "should-fail", "expfiles"]

    /// `<stage>/<NNNN>` for every case directory, sorted.
    static func allCases() -> [String] {
        let fm = FileManager.default
        guard let stages = try? fm.contentsOfDirectory(atPath: casesRoot) else { return [] }
        var names: [String] = []
        for stage in stages.sorted() {
            guard let cases = try? fm.contentsOfDirectory(atPath: casesRoot + "/" + stage) else { continue }
            for c in cases.sorted() where fm.fileExists(atPath: "\(casesRoot)/\(stage)/\(c)/cmd") {
                names.append(stage + "/" + c)
            }
        }
        return names
    }

    struct Result {
        var cmd: String
        var status: Int32
        var stdout: String
        var stderr: String
        /// Files created by the command: path relative to the work directory -> bytes.
        var files: [String: Data]
    }

    static func run(_ name: String) throws -> Result {
        let fm = FileManager.default
        let source = casesRoot + "/" + name
        let work = fm.temporaryDirectory.appendingPathComponent("lead-case-" + name.replacingOccurrences(of: "/", with: "-")
            + "-" + UUID().uuidString).path
        try fm.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: work) }
        var inputs: Set<String> = []
        for entry in try fm.contentsOfDirectory(atPath: source) where !reserved.contains(entry) {
            try fm.copyItem(atPath: source + "/" + entry, toPath: work + "/" + entry)
            inputs.formUnion(try listFiles(work + "/" + entry, relativeTo: work))
        }
        let cmd = try String(contentsOfFile: source + "/cmd", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard fm.isExecutableFile(atPath: binDir + "/lead-flatten") else {
            throw CaseError("no built binaries in \(binDir): run `make build` (or swift build -c release) first")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", cmd]
        process.currentDirectoryURL = URL(fileURLWithPath: work)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env["REPO"] = repoRoot
        env["LEAD_NOW"] = "2026-11-23T06:00:00Z"
        env["LC_ALL"] = "C"
        for name in ["LEAD_STAGES", "SPARK_API_TOKEN", "POSTHOG_API_KEY"] { env.removeValue(forKey: name) }
        process.environment = env
        let outFile = work + "/.stdout", errFile = work + "/.stderr"
        fm.createFile(atPath: outFile, contents: nil)
        fm.createFile(atPath: errFile, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: outFile)
        process.standardError = FileHandle(forWritingAtPath: errFile)
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        let stdout = String(decoding: fm.contents(atPath: outFile) ?? Data(), as: UTF8.self)
        let stderr = mask(String(decoding: fm.contents(atPath: errFile) ?? Data(), as: UTF8.self))
        var files: [String: Data] = [:]
        for path in try listFiles(work, relativeTo: work) where !inputs.contains(path) && path != ".stdout" && path != ".stderr" {
            files[path] = fm.contents(atPath: work + "/" + path) ?? Data()
        }
        return Result(cmd: cmd, status: process.terminationStatus, stdout: stdout, stderr: stderr, files: files)
    }

    /// Masks what legitimately varies between runs: the summary's seconds, and the checkout's
    /// path (rules found beside the binaries are named by it) as `$REPO`.
    static func mask(_ text: String) -> String {
        let text = text.replacingOccurrences(of: repoRoot, with: "$REPO")
        guard let regex = try? NSRegularExpression(pattern: "\"seconds\":[0-9.e+-]+") else { return text }
        return regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text),
                                              withTemplate: "\"seconds\":0")
    }

    static func listFiles(_ path: String, relativeTo root: String) throws -> [String] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return [] }
        let rel = String(path.dropFirst(root.count + 1))
        if !isDir.boolValue { return [rel] }
        var out: [String] = []
        // A store's lock file is how runs take turns, not an output.
        for entry in try fm.contentsOfDirectory(atPath: path) where entry != ".lock" {
            out += try listFiles(path + "/" + entry, relativeTo: root)
        }
        return out
    }

    static func expectedFiles(_ name: String) -> [String: Data] {
        let root = casesRoot + "/" + name + "/expfiles"
        guard let paths = try? listFiles(root, relativeTo: root) else { return [:] }
        var out: [String: Data] = [:]
        for p in paths { out[p] = FileManager.default.contents(atPath: root + "/" + p) }
        return out
    }

    /// Rewrites a case's expected files from an actual run.
    static func record(_ name: String, _ result: Result) throws {
        let fm = FileManager.default
        let dir = casesRoot + "/" + name
        try result.stdout.write(toFile: dir + "/expout", atomically: true, encoding: .utf8)
        if result.stderr.isEmpty {
            try? fm.removeItem(atPath: dir + "/experr")
        } else {
            try result.stderr.write(toFile: dir + "/experr", atomically: true, encoding: .utf8)
        }
        let failing = fm.fileExists(atPath: dir + "/should-fail")
        if result.status != 0 && !failing {
            try "\(result.status)\n".write(toFile: dir + "/should-fail", atomically: true, encoding: .utf8)
        } else if result.status == 0 && failing {
            try fm.removeItem(atPath: dir + "/should-fail")
        } else if failing {
            try "\(result.status)\n".write(toFile: dir + "/should-fail", atomically: true, encoding: .utf8)
        }
        try? fm.removeItem(atPath: dir + "/expfiles")
        for (path, data) in result.files {
            let target = dir + "/expfiles/" + path
            try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            fm.createFile(atPath: target, contents: data)
        }
    }
}

struct CaseError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
