import Foundation
import Testing
import TestSupport

/// The pipelines under Apache Spark (`make spark-permits|spark-leads|spark-events`, pyspark in
/// local mode; scripts/deps.sh test installs it) and sharded under make (`make -j2 SHARDS=2`)
/// leave the plain targets' outputs: the same stage files, master, analytics, tier files and
/// lists (compared sorted where a stage groups by key), and the same rejects, each naming
/// the file and line its record was first read from.
@Suite("Scale-out: Spark and make -j shards equal the plain targets", .serialized)
struct SparkTests {
    typealias Tree = RunsOverTimeTests.Tree

    /// Every JSONL, JSON and CSV file of a tree, by path under it, its lines sorted, with the
    /// tree's own path and the import archive's content hashes (which name that path) taken out;
    /// not the run's summary log, the import archive or the photo run logs.
    static func contents(_ tree: Tree, skipping skipped: [String] = []) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        let fm = FileManager.default
        let hash = try NSRegularExpression(pattern: "[0-9]{8}-[0-9a-f]{12}")
        for top in ["local-logs", "exports"] {
            let base = tree.root + "/" + top
            guard let paths = fm.enumerator(atPath: base)?.allObjects as? [String] else { continue }
            for relative in paths where [".jsonl", ".json", ".csv"].contains(where: relative.hasSuffix)
                && !relative.hasPrefix("_previous") && !relative.contains("/imports/") && !relative.hasSuffix("summaries.jsonl")
                // Photo run logs are named by the wall clock.
                && !relative.contains("photo-logs/")
                && !skipped.contains(where: relative.contains) {
                let text = try String(contentsOfFile: base + "/" + relative, encoding: .utf8).replacingOccurrences(of: tree.root, with: "TREE")
                let plain = hash.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "HASH")
                out[top + "/" + relative] = plain.split(separator: "\n").map(String.init).sorted()
            }
        }
        return out
    }

    static func expectSame(_ plain: [String: [String]], _ other: [String: [String]], _ label: String) {
        #expect(Set(plain.keys) == Set(other.keys), "\(label): files \(Set(plain.keys).symmetricDifference(other.keys).sorted().prefix(5))")
        for (path, lines) in plain.sorted(by: { $0.key < $1.key }) {
            guard let theirs = other[path] else { continue }
            #expect(lines == theirs, "\(label): \(path) differs: \(Set(lines).symmetricDifference(theirs).sorted().prefix(2))")
        }
    }

    static func pysparkInstalled() throws -> Bool {
        let probe = try Binaries.run("/usr/bin/env", ["python3", "-c", "import pyspark"], in: "/tmp")
        if probe.status != 0 { Issue.record("no pyspark: install it with scripts/deps.sh test (pip install pyspark)") }
        return probe.status == 0
    }

    @Test(arguments: [("permits", "permits"), ("leads", "leads"), ("events", "events")])
    func underSparkAPipelineLeavesWhatThePlainTargetLeaves(_ plainTarget: String, _ pipeline: String) throws {
        guard try SparkTests.pysparkInstalled() else { return }
        let plain = try Tree.fresh("plain-" + pipeline), spark = try Tree.fresh("spark-" + pipeline)
        let p = try RunsOverTimeTests.make([plainTarget], tree: plain)
        #expect(p.status == 0, "\(p.stdout.suffix(1500))")
        let s = try RunsOverTimeTests.make(["spark-" + pipeline], tree: spark)
        #expect(s.status == 0, "\(s.stdout.suffix(3000))")
        #expect(s.stdout.contains("spark-run.py"), "the chain ran under Spark")
        let a = try SparkTests.contents(plain), b = try SparkTests.contents(spark)
        #expect(a.count > 5, "\(a.keys.sorted())")
        SparkTests.expectSame(a, b, "spark-" + pipeline)
        // The rejects of a stage after the first name where their records were first read.
        if pipeline == "leads" {
            let rejects = b["local-logs/leads/normalized.rejects.jsonl"] ?? []
            #expect(!rejects.isEmpty && rejects.allSatisfy { $0.contains(#""origin":"TREE/local-logs/leads/imported/"#) || $0.contains(#""origin":"fixtures/leads/"#) },
                    "\(rejects.prefix(2))")
        }
    }

    @Test(arguments: ["leads", "events"])
    func inShardsUnderMakeAPipelineLeavesWhatThePlainTargetLeaves(_ pipeline: String) throws {
        let plain = try Tree.fresh("plain-make-" + pipeline), sharded = try Tree.fresh("shards-" + pipeline)
        #expect(try RunsOverTimeTests.make([pipeline], tree: plain).status == 0)
        let s = try RunsOverTimeTests.make(["-j2", pipeline, "SHARDS=2"], tree: sharded)
        #expect(s.status == 0, "\(s.stdout.suffix(3000))")
        #expect(s.stdout.contains("--shard 2/2"), "the stages ran in two shards")
        if pipeline == "events" {
            #expect(s.stdout.contains("lead-export events --force --shard 2/2") && s.stdout.contains("--join-shards 2"), "the export ran in two shards, joined")
        }
        SparkTests.expectSame(try SparkTests.contents(plain, skipping: ["/shards/"]), try SparkTests.contents(sharded, skipping: ["/shards/"]), "SHARDS=2 " + pipeline)
    }
}
