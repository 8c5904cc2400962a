import Foundation
import TestSupport
import Testing

/// The parts of the stage contract that need a running process: a stage killed mid-run leaves
/// no half-written output, every stage explains itself with `--help`, and exit statuses.
@Suite(.serialized) struct StageContractTests {
    let fm = FileManager.default

    func scratch() throws -> String { try Binaries.scratch("contract") }

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
        #expect(try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8) == "{\"id\":1,\"_origin\":\"in.jsonl:1\"}\n")
        #expect(try tempFiles(in: dir).isEmpty, "the next run removes a dead process's temporary file")
    }

    /// A reader that stops early (`| head`) ends the stage with status 0 while its workers are
    /// still parsing: nothing they call may belong to the process's static state, which exit
    /// destroys (simdjson's UTF-8 check did: "pure virtual method called", status 134, in about
    /// one run in three before the tape builder had a check of its own).
    @Test func aReaderThatStopsEarlyEndsTheStageCleanly() throws {
        let dir = try scratch()
        var lines = ""
        for i in 1...200_000 { lines += "{\"id\":\(i),\"o\":{\"n\":\(i)}}\n" }
        try lines.write(toFile: dir + "/many.jsonl", atomically: true, encoding: .utf8)
        var statuses: [String] = []
        for _ in 0..<20 {
            let run = try Binaries.run("/bin/bash", ["-c", "\"$0\" json many.jsonl | head -2 > /dev/null; echo ${PIPESTATUS[0]}",
                                                     CaseRunner.binDir + "/lead-flatten"], in: dir)
            statuses.append(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + (run.stderr.isEmpty ? "" : ": " + (run.stderr.split(separator: "\n").first.map(String.init) ?? "")))
        }
        #expect(statuses.allSatisfy { $0 == "0" }, "\(statuses)")
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
        #expect(try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8).contains(#"{"id":"2","owner":"Jos\#u{E9} Pe\#u{F1}a","_origin":"owners.csv:3"}"#))
        let unknown = try run(["csv", "--encoding", "ebcdic", "owners.csv"], in: dir)
        #expect(unknown.status == 2 && unknown.stderr.contains("cp1252"), "\(unknown.stderr)")
    }

    /// Processes side by side in one directory (xargs -P, RDD.pipe), each writing to stdout:
    /// with --shard (or LEAD_SHARD) each keeps its own rejects, and a process without rejects
    /// never removes a rejects file another process wrote meanwhile.
    @Test func shardsKeepTheirOwnRejects() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try "{\"id\":1}\nnot json 1\n".write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        try "{\"id\":2}\nnot json 2\nnot json 3\n".write(toFile: dir + "/b.jsonl", atomically: true, encoding: .utf8)
        try "{\"id\":3}\n".write(toFile: dir + "/c.jsonl", atomically: true, encoding: .utf8)
        let a = try run(["json", "--shard", "1/3", "a.jsonl"], in: dir)
        let b = try run(["json", "b.jsonl"], in: dir, environment: ["LEAD_SHARD": "2/3"])
        let c = try run(["json", "--shard", "3/3", "c.jsonl"], in: dir)
        #expect(a.status == 0 && b.status == 0 && c.status == 0, "\(a.stderr)\(b.stderr)")
        let one = try String(contentsOfFile: dir + "/lead-flatten.rejects.shard-1-of-3.jsonl", encoding: .utf8)
        let two = try String(contentsOfFile: dir + "/lead-flatten.rejects.shard-2-of-3.jsonl", encoding: .utf8)
        #expect(one.split(separator: "\n").count == 1 && two.split(separator: "\n").count == 2)
        #expect(!fm.fileExists(atPath: dir + "/lead-flatten.rejects.shard-3-of-3.jsonl"))
        #expect(b.stderr.contains(#""rejects":"lead-flatten.rejects.shard-2-of-3.jsonl""#), "\(b.stderr)")
        let bad = try run(["json", "--shard", "4/3", "c.jsonl"], in: dir)
        #expect(bad.status == 2 && bad.stderr.contains("i/n"), "\(bad.stderr)")

        // Unsharded, one directory: a run without rejects that started before another
        // process wrote its rejects leaves them.
        let slow = Process()
        slow.executableURL = URL(fileURLWithPath: CaseRunner.binDir + "/lead-flatten")
        slow.arguments = ["json", "-q", "-o", "slow.jsonl"]
        slow.currentDirectoryURL = URL(fileURLWithPath: dir)
        let input = Pipe()
        slow.standardInput = input
        try slow.run()
        input.fileHandleForWriting.write(Data("{\"id\":5}\n".utf8))
        usleep(200_000)
        let writer = try run(["json", "a.jsonl"], in: dir)
        #expect(writer.status == 0 && fm.fileExists(atPath: dir + "/lead-flatten.rejects.jsonl"))
        try input.fileHandleForWriting.close()
        slow.waitUntilExit()
        #expect(slow.terminationStatus == 0)
        #expect(fm.fileExists(atPath: dir + "/lead-flatten.rejects.jsonl"), "the slower run without rejects left the other's")
        try "{\"id\":4}\n".write(toFile: dir + "/d.jsonl", atomically: true, encoding: .utf8)
        let later = try run(["json", "d.jsonl"], in: dir)
        #expect(later.status == 0 && !fm.fileExists(atPath: dir + "/lead-flatten.rejects.jsonl"), "a later run without rejects removes the earlier run's file")
    }

    /// `make install PREFIX=...` puts the stages and their rules where an installed stage
    /// finds them, run from any directory without the checkout.
    @Test func installedStagesFindTheirRules() throws {
        let prefix = try scratch()
        let elsewhere = try scratch()
        defer { try? fm.removeItem(atPath: prefix); try? fm.removeItem(atPath: elsewhere) }
        let install = try run(["--no-print-directory", "-C", Binaries.repoRoot, "install", "PREFIX=\(prefix)", "LEAD_PREBUILT=1",
                               "BIN=\(CaseRunner.binDir)"], in: elsewhere, binary: "/usr/bin/make", environment: ["MAKEFLAGS": ""])
        #expect(install.status == 0, "\(install.stderr)")
        #expect(fm.isExecutableFile(atPath: prefix + "/bin/lead-tier"))
        #expect(fm.fileExists(atPath: prefix + "/share/leadetl/stages/tier/tiers.csv"))
        let scored = #"{"permit_id":"P1","score":85,"trade_group":"luxury_outdoor","category":"pool"}"# + "\n"
        try scored.write(toFile: elsewhere + "/scored.jsonl", atomically: true, encoding: .utf8)
        let tier = try run(["--now", "2016-03-14T06:00:00Z", "scored.jsonl"], in: elsewhere, binary: prefix + "/bin/lead-tier",
                           environment: ["LEAD_STAGES": ""])
        #expect(tier.status == 0 && tier.stdout.contains(#""tier":"A""#), "\(tier.stderr)")
        #expect(fm.fileExists(atPath: prefix + "/share/bash-completion/completions/lead-tier"))
        #expect(fm.fileExists(atPath: prefix + "/share/zsh/site-functions/_lead-fetch"))
        #expect(fm.fileExists(atPath: prefix + "/share/fish/vendor_completions.d/lead-export.fish"))
        let uninstall = try run(["--no-print-directory", "-C", Binaries.repoRoot, "uninstall", "PREFIX=\(prefix)", "LEAD_PREBUILT=1",
                                 "BIN=\(CaseRunner.binDir)"], in: elsewhere, binary: "/usr/bin/make", environment: ["MAKEFLAGS": ""])
        #expect(uninstall.status == 0 && !fm.fileExists(atPath: prefix + "/bin/lead-tier") && !fm.fileExists(atPath: prefix + "/share/leadetl"),
                "\(uninstall.stderr)")
    }

    /// A CSV split by lines (as Spark or split(1) would) flattens chunk by chunk to what the
    /// whole file gives, and a reject names the line of the original file.
    @Test func headerlessChunksOfACSV() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        var lines = ["id,owner,city"]
        for n in 1...9 { lines.append(n == 6 ? "6,Owner 6" : "\(n),Owner \(n),Austin") }
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/all.csv", atomically: true, encoding: .utf8)
        try (lines[0] + "\n").write(toFile: dir + "/header.csv", atomically: true, encoding: .utf8)
        try (lines[1...4].joined(separator: "\n") + "\n").write(toFile: dir + "/part-1.csv", atomically: true, encoding: .utf8)
        try (lines[5...9].joined(separator: "\n") + "\n").write(toFile: dir + "/part-2.csv", atomically: true, encoding: .utf8)
        let whole = try run(["csv", "all.csv", "--rejects", "whole.rejects.jsonl"], in: dir)
        let one = try run(["csv", "--header-from", "header.csv", "--first-line", "2", "--input-name", "all.csv", "--shard", "1/2", "part-1.csv"], in: dir)
        let two = try run(["csv", "--header-from", "header.csv", "--first-line", "6", "--input-name", "all.csv", "--shard", "2/2", "part-2.csv"], in: dir)
        #expect(whole.status == 0 && one.status == 0 && two.status == 0, "\(one.stderr)\(two.stderr)")
        // Records and their origins (all.csv:N) are the whole file's.
        #expect(one.stdout + two.stdout == whole.stdout && whole.stdout.split(separator: "\n").count == 8)
        #expect(whole.stdout.contains(#""_origin":"all.csv:10""#))
        #expect(two.stderr.contains("all.csv:7:") && whole.stderr.contains("all.csv:7:"), "the broken row is line 7 of the file: \(two.stderr)")
        #expect(!fm.fileExists(atPath: dir + "/lead-flatten.rejects.shard-1-of-2.jsonl"))
        #expect(try String(contentsOfFile: dir + "/lead-flatten.rejects.shard-2-of-2.jsonl", encoding: .utf8).contains(#""line":7"#))
        let bad = try run(["csv", "--header-from", "header.csv", "--first-line", "0", "part-1.csv"], in: dir)
        #expect(bad.status == 2 && bad.stderr.contains("--first-line"), "\(bad.stderr)")
    }

    /// Mapped CSV rows are written on every processor: the output, the rejects (rows that do
    /// not read, rows with too few fields, values the map cannot read, permits without an id)
    /// and which row of a permit wins are those of a one-thread run, across many batches.
    @Test func mappedRowsOnSeveralWorkersAreAOneThreadRun() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        var leads = ["Address,City,State,Zip,Owner,Value,Note,_extra"]
        var permits = ["id,address,description,value,note"]
        var badLeads = 0, noID = 0, replacing = 0
        for n in 1...9_000 {
            if [5, 6, 7].contains(n % 997) { badLeads += 1 }
            if n % 1_013 == 3 { noID += 1 }
            if n % 1_013 == 4 && n > 3_000 && (n - 3_000) % 1_013 != 3 { replacing += 1 }
            switch n % 997 {
            case 5: leads.append("\(n) Oak St,Austin,TX,78701,Owner \(n),lots,x,y")          // not money
            case 6: leads.append("\(n) Oak St,Austin,TX")                                    // too few fields
            case 7: leads.append("\(n) O\"ak St,Austin,TX,78701,Owner,1,x,y")               // a stray quote
            default: leads.append("\(n) Oak St,Austin,TX,78701,\"Owner, \(n)\",\(n)00,\"a \"\"q\"\" \(n)\",e\(n)")
            }
            switch n % 1_013 {
            case 3: permits.append(",\(n) Elm St,roof,1,x")                                   // no id
            case 4: permits.append("P\(n - 3000),\(n) Elm St,again,2,replaces an earlier row")
            default: permits.append("P\(n),\(n) Elm St,roof \(n),\(n),\"note, \(n)\"")
            }
        }
        try (leads.joined(separator: "\n") + "\n").write(toFile: dir + "/leads.csv", atomically: true, encoding: .utf8)
        try (permits.joined(separator: "\n") + "\n").write(toFile: dir + "/permits.csv", atomically: true, encoding: .utf8)
        try """
        field,column,format
        property_address,Address
        property_city,City
        property_state,State
        property_zip,Zip
        owner_name,Owner
        est_value,Value,money
        """.write(toFile: dir + "/leads-test.csv", atomically: true, encoding: .utf8)
        try """
        field,column,format
        permit_id,id
        property_address,address
        project_description,description
        job_value,value,money
        """.write(toFile: dir + "/permits-test.csv", atomically: true, encoding: .utf8)
        for (kind, input) in [("leads", "leads.csv"), ("permits", "permits.csv")] {
            var runs: [(String, String, String)] = []
            for threads in ["1", "4"] {
                let result = try run([kind, "--map", "\(kind)-test.csv", "--logs", "logs-\(threads)", "--no-keep", input,
                                      "--rejects", "rejects-\(threads).jsonl", "--now", "2026-12-01T00:00:00Z"]
                                     .filter { kind == "leads" || $0 != "--no-keep" },
                                     in: dir, environment: ["LEAD_THREADS": threads])
                #expect(result.status == 0, "\(result.stderr)")
                runs.append((result.stdout, try String(contentsOfFile: dir + "/rejects-\(threads).jsonl", encoding: .utf8),
                             kind == "permits" ? try String(contentsOfFile: dir + "/logs-\(threads)/permits/replaced-test.jsonl", encoding: .utf8) : ""))
            }
            #expect(runs[0].0 == runs[1].0 && runs[0].1 == runs[1].1 && runs[0].2 == runs[1].2, "\(kind): 4 workers differ from 1")
            let rejected = runs[1].1.split(separator: "\n")
            let out = runs[1].0.split(separator: "\n")
            if kind == "leads" {
                #expect(badLeads == 30 && rejected.count == badLeads && out.count == 9_000 - badLeads, "\(rejected.count) rejects, \(out.count) leads")
                #expect(out[0].contains(#""owner_name":"Owner, 1""#) && out[0].contains(#""Note":"a \"q\" 1","_extra":"e1","import_file":"leads.csv","import_line":2,"_origin":"leads.csv:2"}"#),
                        "\(out[0])")
            } else {
                // Rows without an id are rejected; a later row of a permit replaces the earlier one,
                // which then comes out in the place of its last row.
                #expect(noID == 9 && replacing == 6 && rejected.count == noID && out.count == 9_000 - noID - replacing,
                        "\(rejected.count) rejects, \(out.count) permits")
                #expect(out.last!.contains(#""permit_id":"P9000""#) && runs[1].2.split(separator: "\n").count == replacing)
                #expect(!out[0..<3_000].contains { $0.contains(#""permit_id":"P43""#) } && out[3_000...].contains { $0.contains(#""permit_id":"P43""#) && $0.contains(#""property_address":"3043 Elm St""#) })
                #expect(out[0].contains(#""note":"note, 1","_origin":"permits.csv:2"}"#), "\(out[0])")
            }
            // Rejects keep the input's order.
            let lines = rejected.compactMap { text -> Int? in
                (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["line"] as? Int
            }
            #expect(lines.count == rejected.count && lines == lines.sorted(), "\(lines)")
        }
    }

    /// A stage that reads stdin twice copies it to a temporary file first; what it rejects is
    /// still located in stdin, not in that file (gone when the stage ends).
    @Test func rejectsOfSpooledStdinNameStdin() throws {
        let dir = try scratch()
        defer { try? fm.removeItem(atPath: dir) }
        try "field,column\nproperty_address,Address\n".write(toFile: dir + "/leads-s.csv", atomically: true, encoding: .utf8)
        let runs = [
            try Binaries.run("lead-export", ["csv", "-", "--rejects", "export.rejects.jsonl"], in: dir, stdin: "{\"a\":1}\nnot json\n"),
            try Binaries.run("lead-flatten", ["leads", "--map", "leads-s.csv", "--no-keep", "-", "--rejects", "flatten.rejects.jsonl"], in: dir,
                             stdin: "Address\n1 Oak St\n2 O\"ak St\n"),
        ]
        for (result, rejects) in zip(runs, ["export.rejects.jsonl", "flatten.rejects.jsonl"]) {
            #expect(result.status == 0 && result.stderr.contains("stdin:"), "\(result.stderr)")
            let text = try String(contentsOfFile: dir + "/" + rejects, encoding: .utf8)
            #expect(text.contains(#""origin":"stdin:"#) && !text.contains(".tmp"), "\(text)")
        }
    }

    @Test(arguments: ["lead-fetch", "lead-flatten", "lead-normalize", "lead-tag", "lead-score", "lead-tier", "lead-export", "lead-cleanup", "lead-diff"])
    func everyStageSaysItsVersion(_ binary: String) throws {
        let result = try run(["--version"], in: NSTemporaryDirectory(), binary: binary)
        // One version for the project: the VERSION file, which StageKit's LeadETL.version repeats.
        let version = try String(contentsOfFile: Binaries.repoRoot + "/VERSION", encoding: .utf8)
        #expect(result.status == 0 && result.stdout == version, "\(result.stdout)\(result.stderr)")
    }

    @Test func usageErrorsExitTwo() throws {
        let result = try run(["json", "--no-such-option"], in: NSTemporaryDirectory())
        #expect(result.status == 2)
        #expect(result.stderr.contains("no-such-option"))
        let missing = try run(["nosuchcommand"], in: NSTemporaryDirectory())
        #expect(missing.status == 2)
    }

    func run(_ arguments: [String], in dir: String, binary: String = "lead-flatten", environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        let process = Process()
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.executableURL = URL(fileURLWithPath: binary.hasPrefix("/") ? binary : CaseRunner.binDir + "/" + binary)
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
