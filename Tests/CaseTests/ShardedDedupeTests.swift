import Foundation
import TestSupport
import Testing

/// `lead-normalize --dedupe --shard i/n`: n shards, each over the whole input and master,
/// give exactly the leads (and merge log) of one run, each shard writing its part.
@Suite struct ShardedDedupeTests {
    static let streets = ["MAIN ST", "Oak Street", "ELM ST", "Pine Avenue", "CEDAR LN", "Maple Dr", "WALNUT ST", "Birch Rd"]

    static func leads(_ range: Range<Int>, respelt: Bool, source: String) -> String {
        range.map { n in
            let street = streets[n % streets.count]
            let line = "\(100 + n) \(respelt ? street.lowercased() : street)"
            return #"{"property_address":"\#(line)","property_city":"Austin","property_state":"TX","property_zip":"787\#(String(format: "%02d", n % 40))","owner_name":"Owner \#(n)","source":"\#(source)","tags":[{"tag":"Vacant","assigned_at":"2026-10-0\#(1 + n % 9)T00:00:00Z"}]}"#
        }.joined(separator: "\n") + "\n"
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func threeShardsGiveTheLeadsOfOneRun() throws {
        let dir = try Binaries.scratch("sharded-dedupe")
        try ShardedDedupeTests.leads(0..<300, respelt: false, source: "first").write(toFile: dir + "/first.jsonl", atomically: true, encoding: .utf8)
        // The second list: 200 of the same houses respelt, 100 new, and 20 repeated within it.
        try (ShardedDedupeTests.leads(100..<400, respelt: true, source: "second") + ShardedDedupeTests.leads(380..<400, respelt: false, source: "second"))
            .write(toFile: dir + "/second.jsonl", atomically: true, encoding: .utf8)
        let now = ["--now", "2026-11-23T06:00:00Z"]
        let base = try Binaries.run("lead-normalize", ["--dedupe", "--logs", "base", "first.jsonl", "-o", "master.jsonl"] + now, in: dir)
        #expect(base.status == 0, "\(base.stderr)")
        let single = try Binaries.run("lead-normalize", ["--dedupe", "--master", "master.jsonl", "--logs", "one", "second.jsonl", "-o", "one/leads.jsonl"] + now, in: dir)
        #expect(single.status == 0, "\(single.stderr)")
        var shardLeads: [String] = [], shardLog: [String] = [], sizes: [Int] = []
        for i in 1...3 {
            let run = try Binaries.run("lead-normalize", ["--dedupe", "--shard", "\(i)/3", "--master", "master.jsonl", "--logs", "s\(i)",
                                                          "second.jsonl", "-o", "s\(i)/leads.jsonl"] + now, in: dir)
            #expect(run.status == 0 && run.stderr.contains(#""shard":"\#(i)/3""#), "\(run.stderr)")
            let part = try lines(dir + "/s\(i)/leads.jsonl")
            sizes.append(part.count)
            shardLeads += part
            shardLog += try lines(dir + "/s\(i)/leads/dedupe.jsonl")
        }
        let oneLeads = try lines(dir + "/one/leads.jsonl")
        #expect(oneLeads.count == 400, "300 from the master and 100 new")
        #expect(shardLeads.sorted() == oneLeads.sorted(), "the shards' leads together are the single run's")
        #expect(shardLog.sorted() == (try lines(dir + "/one/leads/dedupe.jsonl")).sorted(), "and so are their merges")
        #expect(sizes.allSatisfy { $0 > 80 }, "the keys spread over the shards: \(sizes)")
    }

    /// Past the memory budget (LEAD_MEMORY) the incoming leads and the master are sorted by
    /// key on disk and merged: the same leads, merge log, rejects and counts as holding the
    /// keys, the master now in key order; with --existing-only and with shards too.
    @Test func pastTheMemoryBudgetTheSameLeadsComeOutInKeyOrder() throws {
        let dir = try Binaries.scratch("dedupe-budget")
        // Enough leads that a 300 KB budget (half of it held) writes several runs, for each shard too.
        try ShardedDedupeTests.leads(0..<6_000, respelt: false, source: "first").write(toFile: dir + "/first.jsonl", atomically: true, encoding: .utf8)
        try (ShardedDedupeTests.leads(3_000..<9_000, respelt: true, source: "second") + ShardedDedupeTests.leads(8_500..<9_000, respelt: false, source: "second")
             + "not json\n" + #"{"property_address":"","owner_name":"nobody"}"# + "\n")
            .write(toFile: dir + "/second.jsonl", atomically: true, encoding: .utf8)
        let now = ["--now", "2026-11-23T06:00:00Z"]
        let small = ["LEAD_MEMORY": "300K"]
        let base = try Binaries.run("lead-normalize", ["--dedupe", "--logs", "base", "first.jsonl", "-o", "master.jsonl"] + now, in: dir)
        #expect(base.status == 0, "\(base.stderr)")
        func counts(_ stderr: String) -> String {
            // The run's summary without its timing and the runs written to disk.
            let summary = stderr.split(separator: "\n").last { $0.hasPrefix("{\"stage\"") }.map(String.init) ?? ""
            return summary.replacingOccurrences(of: #","runs_on_disk":\d+"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #","seconds":[0-9.]+"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #","rejects":"[^"]*""#, with: "", options: .regularExpression)
        }
        for (name, extra) in [("plain", [String]()), ("existing", ["--existing-only"]), ("shard", ["--shard", "2/3"])] {
            let held = try Binaries.run("lead-normalize", ["--dedupe", "--master", "master.jsonl", "--logs", "held-\(name)", "second.jsonl",
                                                           "-o", "held-\(name)/leads.jsonl", "--rejects", "held-\(name)/rejects.jsonl"] + extra + now, in: dir)
            let sorted = try Binaries.run("lead-normalize", ["--dedupe", "--master", "master.jsonl", "--logs", "sorted-\(name)", "second.jsonl",
                                                             "-o", "sorted-\(name)/leads.jsonl", "--rejects", "sorted-\(name)/rejects.jsonl"] + extra + now,
                                          in: dir, environment: small)
            #expect(held.status == sorted.status, "\(name): \(held.stderr)\n\(sorted.stderr)")
            #expect(!held.stderr.contains("runs_on_disk"), "\(name): within the budget nothing is sorted on disk")
            let runs = sorted.stderr.firstMatch(of: /"runs_on_disk":(\d+)/).map { Int($0.1)! } ?? 0
            #expect(runs >= 2, "\(name): \(sorted.stderr)")
            #expect(counts(held.stderr) == counts(sorted.stderr), "\(name)")
            let heldLeads = try lines(dir + "/held-\(name)/leads.jsonl"), sortedLeads = try lines(dir + "/sorted-\(name)/leads.jsonl")
            #expect(heldLeads.count > 1_000 && heldLeads.sorted() == sortedLeads.sorted(), "\(name): the same leads")
            let keys = sortedLeads.map { $0.firstMatch(of: /"address_key":"([^"]*)"/).map { String($0.1) } ?? "" }
            #expect(keys == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }, "\(name): in key order")
            #expect(try lines(dir + "/held-\(name)/leads/dedupe.jsonl").sorted() == (try lines(dir + "/sorted-\(name)/leads/dedupe.jsonl")).sorted(),
                    "\(name): the same merges")
            // (A shard that rejects nothing writes no rejects file.)
            func rejects(_ run: String) throws -> [String] {
                let path = dir + "/\(run)-\(name)/rejects.jsonl"
                return FileManager.default.fileExists(atPath: path) ? try lines(path).sorted() : []
            }
            #expect(try rejects("held") == rejects("sorted"), "\(name): the same rejects")
        }
    }
}
