import Foundation
import TestSupport
import Testing

/// The parts of the stage contract that need a running process: a stage killed mid-run leaves
/// no half-written output, every stage explains itself with `--help`, and exit statuses.
@Suite(.serialized) struct StageContractTests {
    let fm = FileManager.default

    func scratch() throws -> String {
        let dir = fm.temporaryDirectory.appendingPathComponent("lead-contract-" + UUID().uuidString).path
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func tempFiles(in dir: String) throws -> [String] {
        try fm.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
    }

    /// Starts `lead-flatten json -o out.jsonl` reading a pipe, feeds it records, waits until its
    /// temporary output exists, then sends `signal` while it waits for more input.
    func killMidRun(_ signal: Int32, in dir: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CaseRunner.binDir + "/lead-flatten")
        process.arguments = ["json", "-o", "out.jsonl", "-q"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let input = Pipe()
        process.standardInput = input
        try process.run()
        var batch = ""
        for i in 0..<20_000 { batch += "{\"id\":\(i),\"owner\":{\"name\":\"n\(i)\"}}\n" }
        input.fileHandleForWriting.write(Data(batch.utf8))
        let deadline = Date().addingTimeInterval(10)
        while try tempFiles(in: dir).isEmpty && Date() < deadline { usleep(10_000) }
        #expect(try !tempFiles(in: dir).isEmpty, "the stage should be writing its temporary output")
        usleep(100_000)
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        try? input.fileHandleForWriting.close()
        return process
    }

    @Test func terminatedStageLeavesNoOutputAndNoTemporaryFile() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        let process = try killMidRun(SIGTERM, in: dir)
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(!fm.fileExists(atPath: dir + "/out.jsonl"))
        #expect(try tempFiles(in: dir).isEmpty)
    }

    @Test func killedStageKeepsThePreviousOutputAndTheNextRunCleansUp() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try "previous run\n".write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        _ = try killMidRun(SIGKILL, in: dir)
        #expect(try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8) == "previous run\n")
        #expect(try tempFiles(in: dir).count == 1, "SIGKILL cannot be caught: the temporary file stays behind")

        try "{\"id\":1}\n".write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        let rerun = try run(["json", "in.jsonl", "-o", "out.jsonl"], in: dir)
        #expect(rerun.status == 0)
        #expect(try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8) == "{\"id\":1}\n")
        #expect(try tempFiles(in: dir).isEmpty, "the next run removes a dead process's temporary file")
    }

    @Test func writingToDevNullDoesNotReplaceIt() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try "{\"id\":1}\n".write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        let result = try run(["json", "in.jsonl", "-o", "/dev/null"], in: dir)
        #expect(result.status == 0)
        var st = stat()
        #expect(stat("/dev/null", &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR)
    }

    @Test(arguments: [["json"], ["csv"]]) func helpHasAnExample(_ subcommand: [String]) throws {
        let result = try run(subcommand + ["--help"], in: NSTemporaryDirectory())
        #expect(result.status == 0)
        #expect(result.stdout.contains("Example"), "\(result.stdout)")
        #expect(result.stdout.contains("--output"))
    }

    /// A provider file that is not UTF-8 is named as such, with the option that reads it; with
    /// the option, the same file loses nothing.
    @Test func aFileThatIsNotUTF8NamesTheEncodingToUse() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        fm.createFile(atPath: dir + "/owners.csv", contents: Data(Array("id,owner\n1,Ann\n2,Jos".utf8) + [0xE9] + Array(" Pe".utf8) + [0xF1, 0x61, 10]))
        let plain = try run(["csv", "owners.csv", "-o", "out.jsonl"], in: dir)
        #expect(plain.status == 0)
        #expect(plain.stderr.contains("owners.csv:3: invalid UTF-8 in field 2; the file is read as UTF-8 (--encoding utf8); a Windows-1252 or Latin-1 export reads with --encoding cp1252"), "\(plain.stderr)")
        let rejects = try String(contentsOfFile: dir + "/out.rejects.jsonl", encoding: .utf8)
        #expect(rejects.contains(#""line":3"#) && rejects.contains("raw_base64"))
        let decoded = try run(["csv", "--encoding", "cp1252", "owners.csv", "-o", "out.jsonl"], in: dir)
        #expect(decoded.status == 0 && decoded.stderr.contains(#""rejected":0"#), "\(decoded.stderr)")
        #expect(try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8).contains(#"{"id":"2","owner":"Jos\#u{E9} Pe\#u{F1}a"}"#))
        let unknown = try run(["csv", "--encoding", "ebcdic", "owners.csv"], in: dir)
        #expect(unknown.status == 2 && unknown.stderr.contains("cp1252"), "\(unknown.stderr)")
    }

    @Test func usageErrorsExitTwo() throws {
        let result = try run(["json", "--no-such-option"], in: NSTemporaryDirectory())
        #expect(result.status == 2)
        #expect(result.stderr.contains("no-such-option"))
        let missing = try run(["nosuchcommand"], in: NSTemporaryDirectory())
        #expect(missing.status == 2)
    }

    func run(_ arguments: [String], in dir: String, binary: String = "lead-flatten") throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CaseRunner.binDir + "/" + binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
