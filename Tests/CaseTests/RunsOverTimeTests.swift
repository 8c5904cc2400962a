import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pipelines run as a user's cron runs them, again and again, from `make`: killed at
/// random moments, two at once, under a loose umask, on the real clock, with people editing
/// leads in between, over more than one day. Each test works in scratch trees of its own.
@Suite(.serialized) struct RunsOverTimeTests {
    /// A staged tree (LOGS and EXPORTS) in a scratch directory.
    struct Tree {
        let root: String
        var logs: String { root + "/local-logs" }
        var exports: String { root + "/exports" }

        static func fresh(_ label: String) throws -> Tree { Tree(root: try Binaries.scratch("runs-" + label)) }
    }

    /// `make` with `arguments` into `tree`, waited for.
    @discardableResult
    static func make(_ arguments: [String], tree: Tree, environment: [String: String] = [:], umask mask: String? = nil) throws -> Binaries.Result {
        try start(arguments, tree: tree, environment: environment, umask: mask).wait()
    }

    /// `make` started in a process group of its own (so a kill reaches every process it started).
    static func start(_ arguments: [String], tree: Tree, environment: [String: String] = [:], umask mask: String? = nil) throws -> Running {
        let command = (mask.map { "umask \($0) && " } ?? "") + "exec make --no-print-directory \"$@\""
        // The tests run inside `swift test`: the binaries are built (make test builds them
        // first), and a build from here would wait forever for the test run's own build lock.
        let argv = ["/bin/sh", "-c", command, "make", "-C", Binaries.repoRoot, "LEAD_PREBUILT=1",
                    "LOGS=\(tree.logs)", "EXPORTS=\(tree.exports)", "BIN=\(Binaries.directory)"] + arguments
        var env = ProcessInfo.processInfo.environment
        for name in ["SPARK_API_TOKEN", "POSTHOG_API_KEY", "NOW", "LEAD_NOW", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "LEAD_STAGES"] {
            env.removeValue(forKey: name)
        }
        for (k, v) in environment { env[k] = v }
        let log = tree.root + "/make-\(UUID().uuidString).log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, "/bin/sh", &actions, &attributes, cArgs, cEnv)
        guard status == 0 else { throw CaseError("cannot start make: \(String(cString: strerror(status)))") }
        return Running(pid: pid, log: log)
    }

    /// A make run in its own process group.
    final class Running {
        let pid: pid_t
        let log: String
        private var status: Int32?
        init(pid: pid_t, log: String) { self.pid = pid; self.log = log }

        func wait() -> Binaries.Result {
            if status == nil {
                var raw: Int32 = 0
                while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
                status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            }
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return Binaries.Result(status: status!, stdout: text, stderr: text)
        }

        /// SIGKILL to every process of the run, then reaped (and what it left running, too).
        func kill() {
            Glibc.kill(-pid, SIGKILL)
            _ = wait()
            // Grandchildren die with the group; give the kernel a moment to close their files.
            for _ in 0..<50 where Glibc.kill(-pid, 0) == 0 { usleep(10_000) }
        }
    }

    /// Every file of the tree, by path, with the tree's own path taken out of its text. Lock
    /// files (how runs take turns) and photo run logs (named by each run's real start) are
    /// not outputs to compare.
    static func snapshot(_ tree: Tree) throws -> [String: String] {
        var out: [String: String] = [:]
        // Records name the tree they were read in (_origin), and the import archive names a
        // copy by its content's hash: both are taken out to compare two trees.
        let hash = try NSRegularExpression(pattern: "[0-9]{8}-[0-9a-f]{12}")
        func plain(_ text: String) -> String {
            let text = text.replacingOccurrences(of: tree.root, with: "TREE")
            return hash.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "DAY-HASH")
        }
        for (base, name) in [(tree.logs, "logs"), (tree.exports, "exports")] {
            guard let walker = FileManager.default.enumerator(atPath: base) else { continue }
            for case let path as String in walker {
                let full = base + "/" + path
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir), !isDir.boolValue else { continue }
                let file = (path as NSString).lastPathComponent
                // Summary logs record when each stage ran and how long it took: logs of the runs, not outputs.
                if file == ".lock" || file == "summaries.jsonl" || (path.contains("/photo-logs/") && file.hasPrefix("run_")) { continue }
                let data = FileManager.default.contents(atPath: full) ?? Data()
                out[plain(name + "/" + path)] = plain(String(decoding: data, as: UTF8.self))
            }
        }
        return out
    }

    /// What a finished run must not leave: temporary files, journals, partial fetches.
    static func leftovers(_ tree: Tree) -> [String] {
        var found: [String] = []
        for base in [tree.logs, tree.exports] {
            guard let walker = FileManager.default.enumerator(atPath: base) else { continue }
            for case let path as String in walker {
                let file = (path as NSString).lastPathComponent
                if file.contains(".tmp-") || file == ".journal" || file.hasSuffix(".partial") || file == "fetch_state.json" {
                    found.append(path)
                }
            }
        }
        return found
    }

    static func differences(_ a: [String: String], _ b: [String: String]) -> [String] {
        Set(a.keys).union(b.keys).sorted().filter { a[$0] != b[$0] }
    }

    // MARK: Kills

    /// Where each pipeline's stores commit: a run is killed at each step of each commit
    /// (`LEAD_CRASH_AT`), since random moments almost never fall inside one.
    static let crashPoints: [String: [String]] = [
        "listings": ["fetch/listings:0", "fetch/listings:1", "fetch/listings:end", "fetch/photos:0", "fetch/photos:1",
                     "cleanup/listings:0", "cleanup/listings:1", "cleanup/listings:2", "cleanup/listings:end"],
        "leads": ["normalize:0", "normalize:1", "normalize:end"],
        "permits": ["fetch/permits:0", "fetch/permits:1", "fetch/permits:end", "export/permits:0", "export/permits:1",
                    "export/permits:4", "export/permits:end"],
        "events": ["export/events:0", "export/events:1", "export/events:3", "export/events:end"],
    ]

    /// Each pipeline killed with SIGKILL at 20 random moments (five trees, each killed four
    /// times, then run to the end), and at every step of its stores' commits, ends
    /// byte-identical to an uninterrupted run, with no temporary file left.
    @Test(arguments: [["listings", "cleanup"], ["leads"], ["permits"], ["events"]])
    func killedRunsEndAsAnUninterruptedOne(_ targets: [String]) throws {
        let reference = try Tree.fresh("ref")
        let started = Date()
        let clean = try RunsOverTimeTests.make(targets, tree: reference)
        let duration = Date().timeIntervalSince(started)
        #expect(clean.status == 0, "\(clean.stdout.suffix(2000))")
        let expected = try RunsOverTimeTests.snapshot(reference)
        var generator = SeededGenerator(seed: UInt64(targets.joined().utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        var moments: [Double] = []
        for _ in 0..<5 {
            let tree = try Tree.fresh("kill")
            for _ in 0..<4 {
                let run = try RunsOverTimeTests.start(targets, tree: tree)
                let moment = Double.random(in: 0.05...max(0.1, duration), using: &generator)
                moments.append(moment)
                Thread.sleep(forTimeInterval: moment)
                run.kill()
            }
            let last = try RunsOverTimeTests.make(targets, tree: tree)
            #expect(last.status == 0, "after kills at \(moments): \(last.stdout.suffix(2000))")
            let actual = try RunsOverTimeTests.snapshot(tree)
            let diff = RunsOverTimeTests.differences(expected, actual)
            #expect(diff.isEmpty, "\(targets) killed at \(moments.suffix(4)) s differs from an uninterrupted run in \(diff.prefix(5))")
            #expect(RunsOverTimeTests.leftovers(tree).isEmpty, "left behind: \(RunsOverTimeTests.leftovers(tree))")
        }
        for point in RunsOverTimeTests.crashPoints[targets[0]] ?? [] {
            let tree = try Tree.fresh("crash")
            let crashed = try RunsOverTimeTests.make(targets, tree: tree, environment: ["LEAD_CRASH_AT": point])
            #expect(crashed.status != 0, "\(point) was never reached: \(crashed.stdout.suffix(500))")
            let rerun = try RunsOverTimeTests.make(targets, tree: tree)
            #expect(rerun.status == 0, "after a crash at \(point): \(rerun.stdout.suffix(2000))")
            let diff = RunsOverTimeTests.differences(expected, try RunsOverTimeTests.snapshot(tree))
            #expect(diff.isEmpty, "\(targets) crashed at \(point) differs from an uninterrupted run in \(diff.prefix(5))")
            #expect(RunsOverTimeTests.leftovers(tree).isEmpty, "crashed at \(point), left behind: \(RunsOverTimeTests.leftovers(tree))")
        }
    }

    // MARK: Two at once

    @Test func twoMakeLeadsAtOnceEndWithEveryLead() throws {
        let reference = try Tree.fresh("ref-leads")
        #expect(try RunsOverTimeTests.make(["leads"], tree: reference).status == 0)
        let tree = try Tree.fresh("two")
        let first = try RunsOverTimeTests.start(["leads"], tree: tree)
        let second = try RunsOverTimeTests.start(["leads"], tree: tree)
        let a = first.wait(), b = second.wait()
        #expect(a.status == 0 && b.status == 0, "\(a.stdout.suffix(1500))\n---\n\(b.stdout.suffix(1500))")
        #expect((a.stdout + b.stdout).contains("waiting for"), "one run waited for the other's lock")
        let expected = try RunsOverTimeTests.snapshot(reference), actual = try RunsOverTimeTests.snapshot(tree)
        for file in ["logs/leads/leads.jsonl", "logs/expired/gps/all_gps_expired_listings_with_expansions.jsonl",
                     "logs/closed/gps/all_gps_closed_listings_with_expansions.jsonl",
                     "logs/expired/gps/flattened_gps_expired_listings.jsonl", "exports/lists/hot-foreclosures.csv"] {
            #expect(actual[file] == expected[file], "\(file) differs after two runs at once")
        }
        #expect(RunsOverTimeTests.leftovers(tree).isEmpty)
    }

    /// Two imports deduped into one master at once (the lead-normalize of the issue, by hand):
    /// the second waits for the first, and the master keeps every lead of both.
    @Test func twoDedupesIntoOneMasterKeepBothImports() throws {
        let dir = try Binaries.scratch("two-dedupes")
        for (name, count, offset) in [("a", 20_000, 0), ("b", 20_000, 100_000)] {
            let leads = (0..<count).map { n in #"{"property_address":"\#(n + offset + 1) MAIN ST","property_zip":"78701","owner_name":"OWNER \#(name) \#(n)"}"# }
            try (leads.joined(separator: "\n") + "\n").write(toFile: dir + "/\(name).jsonl", atomically: true, encoding: .utf8)
        }
        let args = { (input: String) in ["--dedupe", "--master", "m.jsonl", "--logs", "logs", "--now", "2026-11-23T06:00:00Z", input, "-o", "m.jsonl"] }
        let first = try Binaries.start("lead-normalize", args("a.jsonl"), in: dir)
        let second = try Binaries.start("lead-normalize", args("b.jsonl"), in: dir)
        let a = first.wait(), b = second.wait()
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\n\(b.stderr)")
        let master = try String(contentsOfFile: dir + "/m.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(master.count == 40_000, "the master holds \(master.count) leads of 40,000")
    }

    @Test func aSecondRunWithNoWaitNamesTheHolder() throws {
        let tree = try Tree.fresh("nowait")
        try FileManager.default.createDirectory(atPath: tree.logs + "/leads", withIntermediateDirectories: true)
        // Hold the leads store's lock as a chain of stages would.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: Binaries.repoRoot + "/scripts/locked.sh")
        holder.arguments = [tree.logs + "/leads", "--", "sleep", "5"]
        try holder.run()
        Thread.sleep(forTimeInterval: 0.5)
        try "{\"property_address\":\"1 MAIN ST\",\"property_zip\":\"78701\"}\n".write(toFile: tree.root + "/in.jsonl", atomically: true, encoding: .utf8)
        let refused = try Binaries.run("lead-normalize", ["--dedupe", "--master", tree.logs + "/leads/leads.jsonl", "--logs", tree.logs,
                                                          "--no-wait", "in.jsonl", "-o", tree.logs + "/leads/leads.jsonl"], in: tree.root)
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("is locked by pid \(holder.processIdentifier)") && refused.stderr.contains("sleep 5"), "\(refused.stderr)")
        holder.terminate()
        holder.waitUntilExit()
    }

    // MARK: Modes

    @Test func everyFileIsPrivateUnderALooseUmask() throws {
        let tree = try Tree.fresh("umask")
        let run = try RunsOverTimeTests.make(["pipelines"], tree: tree, umask: "022")
        #expect(run.status == 0, "\(run.stdout.suffix(2000))")
        var loose: [String] = []
        var count = 0
        for base in [tree.logs, tree.exports] {
            let walker = FileManager.default.enumerator(atPath: base)!
            for case let path as String in walker {
                var st = stat()
                guard lstat(base + "/" + path, &st) == 0 else { continue }
                let mode = Int(st.st_mode & 0o777)
                let isDir = (st.st_mode & S_IFMT) == S_IFDIR
                count += 1
                if mode != (isDir ? 0o700 : 0o600) { loose.append("\(path) \(String(mode, radix: 8))") }
            }
        }
        #expect(count > 300)
        #expect(loose.isEmpty, "not private: \(loose.prefix(10))")
    }

    // MARK: The clock

    @Test func aLiveFetchAsksForTodaysWindowAndTheNightlyJobRunsOnToday() throws {
        let server = try TestHTTPServer { request, _ in
            .json(#"{"D":{"Success":true,"Results":[{"Id":"L1","StandardFields":{"ListingKey":"L1","StandardStatus":"Expired","StatusChangeTimestamp":"2026-11-01T12:00:00Z","City":"Mesa"}}],"Pagination":{"TotalPages":1,"CurrentPage":1}}}"#)
        }
        defer { server.stop() }
        let tree = try Tree.fresh("live")
        let run = try RunsOverTimeTests.make(["SOURCE=spark", "BASE_URL=\(server.baseURL)", "expired-gps"], tree: tree,
                                             environment: ["SPARK_API_TOKEN": "live-token"])
        #expect(run.status == 0, "\(run.stdout.suffix(2000))")
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let windowStart = formatter.string(from: Date().addingTimeInterval(-90 * 86_400))
        let filter = server.requests.first?.query("_filter") ?? ""
        #expect(filter.hasSuffix("StatusChangeTimestamp Ge \(windowStart)T00:00:00Z"), "\(filter)")

        // The nightly rescore without NOW runs on today, not on the fixtures' clock.
        let leads = try Tree.fresh("rescore")
        #expect(try RunsOverTimeTests.make(["leads"], tree: leads).status == 0)
        let before = try String(contentsOfFile: leads.logs + "/leads/leads.jsonl", encoding: .utf8)
        #expect(try RunsOverTimeTests.make(["rescore"], tree: leads).status == 0)
        let after = try String(contentsOfFile: leads.logs + "/leads/leads.jsonl", encoding: .utf8)
        // The age of each lead's scored assignments, by address_key and tag.
        func ages(_ text: String) -> [String: Int] {
            var out: [String: Int] = [:]
            for line in text.split(separator: "\n") {
                let object = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                for term in object["score_breakdown"] as? [[String: Any]] ?? [] {
                    if let age = term["age_days"] as? Int, let tag = term["tag"] as? String { out["\(object["address_key"] ?? "")|\(tag)"] = age }
                }
            }
            return out
        }
        let fixtureDay = formatter.date(from: "2026-11-23")!
        // Whole days of age: the clock moved on by d days and some, so each age grew by d or d+1.
        let daysSince = Int(Date().timeIntervalSince(fixtureDay.addingTimeInterval(6 * 3600)) / 86_400)
        let old = ages(before), new = ages(after)
        let common = Set(old.keys).intersection(new.keys)
        #expect(common.count > 10 && daysSince >= 1)
        #expect(common.allSatisfy { (daysSince...(daysSince + 1)).contains(new[$0]! - old[$0]!) },
                "every assignment still scored aged by \(daysSince) days or a day more")
    }

    // MARK: Human edits

    @Test func anEditSurvivesMakeLeadsAndIsInTheHistory() throws {
        let tree = try Tree.fresh("edit")
        #expect(try RunsOverTimeTests.make(["leads"], tree: tree).status == 0)
        let listings = tree.logs + "/expired/gps/flattened_gps_expired_listings.jsonl"
        let key = try String(contentsOfFile: listings, encoding: .utf8).split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["ListingKey"] as? String
        }.first!
        let set = try Binaries.run("lead-tag", ["set", key, "leadStatus=contacted", "skipTraced=true", "--by", "ana",
                                                "--logs", tree.logs, "--now", "2026-11-24T10:00:00Z"], in: tree.root)
        #expect(set.status == 0, "\(set.stderr)")
        // The next day's runs: a refresh of the listings and make leads.
        try FileManager.default.removeItem(atPath: tree.logs + "/expired/gps/all_gps_expired_listings_with_expansions.jsonl")
        let again = try RunsOverTimeTests.make(["leads"], tree: tree)
        #expect(again.status == 0, "\(again.stdout.suffix(2000))")
        func lead(_ path: String) throws -> [String: Any]? {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }.first { $0["ListingKey"] as? String == key }
        }
        for path in [tree.logs + "/leads/leads.jsonl", listings] {
            let record = try lead(path)
            #expect(record?["leadStatus"] as? String == "contacted" && record?["skipTraced"] as? Bool == true, "\(path)")
            let history = record?["status_history"] as? [[String: Any]] ?? []
            #expect(history.contains { $0["field"] as? String == "leadStatus" && $0["new"] as? String == "contacted" && $0["by"] as? String == "ana" },
                    "\(path): \(history)")
        }
    }

    // MARK: Permits over days

    @Test func theRetryQueueDrainsAfterAnotherDailyRun() throws {
        let tree = try Tree.fresh("retry")
        let reasoners = Binaries.repoRoot + "/fixtures/permits/reasoners/"
        let day1 = try RunsOverTimeTests.make(["permits", "REASONER=\(reasoners)flaky.sh", "REASONER_TIMEOUT=1"], tree: tree)
        #expect(day1.status == 0, "\(day1.stdout.suffix(2000))")
        let queue = tree.exports + "/pending_retry/retry_queue.csv"
        let queued = try String(contentsOfFile: queue, encoding: .utf8).split(separator: "\n").count - 1
        #expect(queued > 10)
        // The next day: new permits arrive (the Austin files are fetched from the watermark's
        // day again) and are scored; the queue's permits are not in that run's input.
        try FileManager.default.removeItem(atPath: tree.logs + "/permits/raw-austin-fixtures.jsonl")
        let day2 = try RunsOverTimeTests.make(["permits", "PERMITS_NOW=2016-03-15T06:00:00Z", "REASONER=\(reasoners)steady.sh"], tree: tree)
        #expect(day2.status == 0, "\(day2.stdout.suffix(2000))")
        let stillQueued = try String(contentsOfFile: queue, encoding: .utf8).split(separator: "\n").count - 1
        #expect(stillQueued > 0, "permits of day 1 wait in the queue after day 2")
        let retry = try RunsOverTimeTests.make(["permits-retry", "REASONER=\(reasoners)steady.sh"], tree: tree)
        #expect(retry.status == 0, "\(retry.stdout.suffix(2000))")
        #expect(retry.stdout.contains("\"retry_queue\":\(stillQueued)") && retry.stdout.contains("\"scored\":\(stillQueued)"), "\(retry.stdout.suffix(1500))")
        #expect(try String(contentsOfFile: queue, encoding: .utf8).split(separator: "\n").count == 1, "the queue is empty")
    }
}

extension RunsOverTimeTests {
    /// A reasoner that prints stray lines (progress, and now and then an answer for the permit
    /// before) never shifts an answer onto another permit: each permit gets the answer the
    /// reasoner computed for it (its id's checksum) or -1.
    @Test func aChattyReasonerGivesEveryPermitItsOwnAnswer() throws {
        let dir = try Binaries.scratch("chatty")
        let permits = (0..<30).map { n in
            #"{"permit_id":"P-\#(n * 7919 % 1000)","city":"Austin","category":"roof","issued_at":"2016-03-10","owner_name":"X"}"#
        }
        try (permits.joined(separator: "\n") + "\n").write(toFile: dir + "/tagged.jsonl", atomically: true, encoding: .utf8)
        let result = try Binaries.run("lead-score", ["permits", "--now", "2016-03-14T06:00:00Z", "--reasoner",
                                                     Binaries.repoRoot + "/fixtures/permits/reasoners/chatty.sh", "--reasoner-timeout", "5",
                                                     "tagged.jsonl", "-o", "scored.jsonl"], in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let scored = try String(contentsOfFile: dir + "/scored.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(scored.count == 30)
        var own = 0, retried = 0
        for permit in scored {
            let id = permit["permit_id"] as! String
            let score = permit["score"] as! Int
            if score == -1 { retried += 1; continue }
            let sum = Process()
            sum.executableURL = URL(fileURLWithPath: "/bin/sh")
            sum.arguments = ["-c", "printf '%s' \"$1\" | cksum | cut -d' ' -f1", "sh", id]
            let pipe = Pipe()
            sum.standardOutput = pipe
            try sum.run()
            sum.waitUntilExit()
            let checksum = Int(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines))!
            #expect(score == checksum % 101, "permit \(id) got another permit's answer (\(score))")
            own += 1
        }
        #expect(retried > 0 && own > 15, "stray lines cost their permits a retry (\(retried)), the rest got their own answers (\(own))")
    }
}

