import Foundation
import TestSupport
import Testing

/// A city is added to `make permits` as a user adds one: a column map and a row of
/// stages/fetch/permit-sources.csv, in a copy of the project, with no edit to the Makefile.
@Suite(.serialized) struct PermitSourcesTests {
    /// A copy of the project's Makefile, scripts, rules and permit fixtures.
    static func project() throws -> String {
        let root = try Binaries.scratch("new-city")
        for item in ["Makefile", "scripts", "stages"] {
            try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/" + item, toPath: root + "/" + item)
        }
        try FileManager.default.createDirectory(atPath: root + "/fixtures", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/fixtures/permits", toPath: root + "/fixtures/permits")
        return root
    }

    static func make(_ arguments: [String], in root: String) throws -> Binaries.Result {
        try Binaries.run("/usr/bin/make", ["--no-print-directory", "-C", root, "LEAD_PREBUILT=1", "BIN=\(Binaries.directory)",
                                           "LOGS=\(root)/local-logs", "EXPORTS=\(root)/exports"] + arguments,
                         in: root, environment: ["LEAD_STAGES": root + "/stages", "MAKEFLAGS": "", "NOW": "", "LEAD_NOW": ""])
    }

    /// A Windows-1252 export with two date layouts in one column, CRLF line ends and the
    /// contractor on every row.
    static let springfield: [UInt8] = Array("Permit No,Site Address,Site Zip,Work,Desc,Issued,Value,Contractor Name,Contractor Phone\r\n".utf8)
        + Array("SP-1,12 Elm St,62701,Reroof,Tear off and re-roof house ".utf8) + [0x96] + Array(" 30 sq,2016-03-09,12000,Jos".utf8) + [0xE9]
        + Array(" Roofing,217-555-0100\r\n".utf8)
        + Array("SP-2,14 Oak St,62702,Water Heater,Replace 50 gal water heater,03/10/16,1800,Caf".utf8) + [0xE9]
        + Array(" Plumbing,217-555-0101\r\n".utf8)
        + Array("SP-3,16 Ash St,62702,Fence,New 6 ft cedar fence,10 March 2016,2500,,\r\n".utf8)

    static let map = """
        # Springfield permits (a city added by a test).
        field,column,format
        permit_id,Permit No
        city,\"\"\"Springfield\"\"\"
        property_address,Site Address
        property_city,\"\"\"Springfield\"\"\"
        property_state,\"\"\"IL\"\"\"
        property_zip,Site Zip
        project_description,Desc
        permit_type,Work
        job_value,Value,money
        issued_at,Issued,date:yyyy-MM-dd|MM/dd/yy
        contractor_name,Contractor Name
        contractor_phone,Contractor Phone

        """

    @Test func aNewCityIsOneMapAndOneRow() throws {
        let root = try PermitSourcesTests.project()
        try FileManager.default.createDirectory(atPath: root + "/fixtures/permits/springfield", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: root + "/fixtures/permits/springfield/week.csv", contents: Data(PermitSourcesTests.springfield))
        try PermitSourcesTests.map.write(toFile: root + "/stages/flatten/permits-springfield.csv", atomically: true, encoding: .utf8)
        let row = "springfield-files,files,fixtures/permits/springfield,Issued,date:yyyy-MM-dd|MM/dd/yy,,,permits-springfield.csv,cp1252\n"
        let sources = root + "/stages/fetch/permit-sources.csv"
        try (try String(contentsOfFile: sources, encoding: .utf8) + row).write(toFile: sources, atomically: true, encoding: .utf8)

        let run = try PermitSourcesTests.make(["permits"], in: root)
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        #expect(run.stdout.contains("--source springfield-files"), "the new row is fetched")
        // The third row's date reads under neither pattern: rejected, naming file and line.
        let rejects = try String(contentsOfFile: root + "/local-logs/permits/raw-springfield-files.rejects.jsonl", encoding: .utf8)
        #expect(rejects.contains(#""line":4"#) && rejects.contains("'10 March 2016' does not match yyyy-MM-dd|MM/dd/yy"), "\(rejects)")
        // Both readable permits reach the exports, decoded from Windows-1252, with their contractor.
        var exported: [String] = []
        for file in try FileManager.default.subpathsOfDirectory(atPath: root + "/exports") where file.hasSuffix(".csv") {
            let text = try String(contentsOfFile: root + "/exports/" + file, encoding: .utf8)
            exported += text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("SP-") }
            if file.hasSuffix("tier_c.csv") || file.hasSuffix("tier_b.csv") {
                #expect(text.hasPrefix("permit_id,city,property_address,owner_name,project_description,market_value,days_old,is_absentee,score,tier,trade_group,category,reasoning,ideal_contractor,contact_priority,flags,scored_at,contractor_name,contractor_phone\n"), "\(file)")
            }
        }
        #expect(exported.count == 2, "\(exported)")
        #expect(exported.contains { $0.hasPrefix("SP-1,Springfield,12 ELM ST,") && $0.contains("re-roof house \u{2013} 30 sq") && $0.hasSuffix(",Jos\u{E9} Roofing,217-555-0100") }, "\(exported)")
        #expect(exported.contains { $0.hasPrefix("SP-2,") && $0.hasSuffix(",Caf\u{E9} Plumbing,217-555-0101") }, "\(exported)")
        // Offline, the live rows are not asked for; PERMIT_SOURCES picks rows by name.
        #expect(!run.stdout.contains("--source austin "))
        let one = try PermitSourcesTests.make(["-n", "permits", "PERMIT_SOURCES=springfield-files", "LOGS=\(root)/dry-run"], in: root)
        #expect(one.status == 0 && !one.stdout.contains("flattened-austin-fixtures") && one.stdout.contains("flattened-springfield-files"), "\(one.stdout)")
        let live = try PermitSourcesTests.make(["-n", "permits", "PERMITS_LIVE=1", "LOGS=\(root)/dry-run"], in: root)
        #expect(live.stdout.contains("--source austin ") && live.stdout.contains("permits-austin-live.csv") && live.stdout.contains("--source dallas "), "\(live.stdout)")
    }

    /// `make -j2 permits SHARDS=2` leaves what `make permits` leaves: the same stage files,
    /// byte for byte, the same exports tree, and every shard's rejects gathered.
    @Test func twoShardsLeaveWhatOneRunLeaves() throws {
        let root = try PermitSourcesTests.project()
        try FileManager.default.createDirectory(atPath: root + "/fixtures/permits/springfield", withIntermediateDirectories: true)
        // A permit whose address has no house number: flattened, then rejected by normalize.
        try "Permit No,Site Address,Site Zip,Work,Desc,Issued,Value,Contractor Name,Contractor Phone\nSP-9,Elm Street,62701,Reroof,Re-roof,2016-03-09,9000,,\n"
            .write(toFile: root + "/fixtures/permits/springfield/week.csv", atomically: true, encoding: .utf8)
        try PermitSourcesTests.map.write(toFile: root + "/stages/flatten/permits-springfield.csv", atomically: true, encoding: .utf8)
        let sources = root + "/stages/fetch/permit-sources.csv"
        try (try String(contentsOfFile: sources, encoding: .utf8) + "springfield-files,files,fixtures/permits/springfield,Issued,date:yyyy-MM-dd|MM/dd/yy,,,permits-springfield.csv,\n")
            .write(toFile: sources, atomically: true, encoding: .utf8)
        func make(_ args: [String], _ tree: String) throws -> Binaries.Result {
            try Binaries.run("/usr/bin/make", ["--no-print-directory", "-C", root, "LEAD_PREBUILT=1", "BIN=\(Binaries.directory)",
                                               "LOGS=\(root)/\(tree)/logs", "EXPORTS=\(root)/\(tree)/exports"] + args,
                             in: root, environment: ["LEAD_STAGES": root + "/stages", "MAKEFLAGS": "", "NOW": "", "LEAD_NOW": ""])
        }
        let plain = try make(["permits"], "plain")
        let sharded = try make(["-j2", "permits", "SHARDS=2"], "sharded")
        #expect(plain.status == 0 && sharded.status == 0, "\(sharded.stderr.suffix(1500))")
        #expect(sharded.stdout.contains("lead-tier --schema permits-tiered --shard 2/2"), "the stages ran in two shards")
        let fm = FileManager.default
        // Byte for byte, but for the tree's name in each record's _origin.
        func stageFile(_ tree: String, _ file: String) throws -> String {
            try String(contentsOfFile: root + "/\(tree)/logs/permits/" + file, encoding: .utf8).replacingOccurrences(of: root + "/\(tree)/", with: "TREE/")
        }
        for file in ["normalized.jsonl", "tagged.jsonl", "scored.jsonl", "tiered.jsonl"] {
            #expect(try stageFile("plain", file) == stageFile("sharded", file), "\(file)")
        }
        let exports = try fm.subpathsOfDirectory(atPath: root + "/plain/exports").filter { $0.hasSuffix(".csv") }.sorted()
        let shardedExports = try fm.subpathsOfDirectory(atPath: root + "/sharded/exports").filter { $0.hasSuffix(".csv") }.sorted()
        #expect(exports.count > 10 && exports == shardedExports)
        for file in exports { #expect(fm.contentsEqual(atPath: root + "/plain/exports/" + file, andPath: root + "/sharded/exports/" + file), "\(file)") }
        // The rejected permit is in the gathered rejects, with its reason, raw record and
        // origin: the line of the city's file it was first read from (its line in the
        // shard's part of the input differs).
        func rejects(_ tree: String) throws -> [String] {
            try String(contentsOfFile: root + "/\(tree)/logs/permits/normalized.rejects.jsonl", encoding: .utf8).split(separator: "\n")
                .map { String($0.components(separatedBy: #""origin":"#)[1]).replacingOccurrences(of: root + "/\(tree)/", with: "TREE/") }
        }
        let one = try rejects("plain"), two = try rejects("sharded")
        #expect(one.count == 1 && two == one, "\(two)")
        #expect(one.first?.hasPrefix(#""TREE/logs/permits/raw-springfield-files.jsonl:"#) == true || one.first?.contains("springfield") == true, "\(one)")

        // The export ran in two shards, by trade, and their join left the store and report of
        // one process; so does a second day, when every kept permit is re-aged.
        #expect(sharded.stdout.contains("lead-export permits --shard 2/2") && sharded.stdout.contains("--join-shards 2"), "\(sharded.stdout.suffix(2000))")
        func same(_ day: String) throws {
            for file in ["permits.jsonl", "report.json"] {
                #expect(try stageFile("plain", file).replacingOccurrences(of: "sharded", with: "plain")
                        == stageFile("sharded", file).replacingOccurrences(of: "sharded", with: "plain"), "\(day): \(file)")
            }
            let a = try fm.subpathsOfDirectory(atPath: root + "/plain/exports").filter { $0.hasSuffix(".csv") }.sorted()
            #expect(a == (try fm.subpathsOfDirectory(atPath: root + "/sharded/exports").filter { $0.hasSuffix(".csv") }.sorted()), "\(day)")
            for file in a { #expect(fm.contentsEqual(atPath: root + "/plain/exports/" + file, andPath: root + "/sharded/exports/" + file), "\(day): \(file)") }
            #expect(!fm.fileExists(atPath: root + "/sharded/logs/permits/shards/1-of-2/report.json"), "the join used up the parts")
        }
        try same("day 1")
        let later = "PERMITS_NOW=2016-03-29T06:00:00Z"
        #expect(try make(["permits", later], "plain").status == 0)
        let again = try make(["-j2", "permits", "SHARDS=2", later], "sharded")
        #expect(again.status == 0, "\(again.stderr.suffix(1500))")
        try same("day 2")

        // A part that read another store than the join finds is refused, and nothing changes:
        // a run between the shards and the join fails the join instead of being lost.
        let bin = Binaries.directory, logs = root + "/sharded/logs", exportsDir = root + "/sharded/exports"
        let tiered = root + "/sharded/logs/permits/tiered.jsonl", env = ["LEAD_STAGES": root + "/stages"]
        let now = "--now=2016-03-30T06:00:00Z"
        for i in 1...2 {
            let r = try Binaries.run(bin + "/lead-export", ["permits", "-q", now, "--shard", "\(i)/2", "--dir", exportsDir, "--logs", logs, tiered], in: root, environment: env)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let id = try #require(try stageFile("sharded", "tiered.jsonl").split(separator: "\n").first?.components(separatedBy: #""permit_id":""#)[1].split(separator: "\"").first)
        let between = try Binaries.run(bin + "/lead-export", ["sold", "-q", now, "--permit-id", String(id), "--to", "A Buyer", "--price", "25",
                                                              "--dir", exportsDir, "--logs", logs], in: root, environment: env)
        #expect(between.status == 0, "\(between.stderr)")
        let storeBetween = try stageFile("sharded", "permits.jsonl")
        let join = try Binaries.run(bin + "/lead-export", ["permits", "-q", now, "--join-shards", "2", "--dir", exportsDir, "--logs", logs], in: root, environment: env)
        #expect(join.status != 0 && join.stderr.contains("changed after shard 1 of 2 read it"), "\(join.stderr)")
        #expect(try stageFile("sharded", "permits.jsonl") == storeBetween)
        // A join at another clock than its shards', or with a shard missing, is refused too.
        let clock = try Binaries.run(bin + "/lead-export", ["permits", "-q", "--now=2016-04-01T06:00:00Z", "--join-shards", "2", "--dir", exportsDir, "--logs", logs], in: root, environment: env)
        #expect(clock.status == 2 && clock.stderr.contains("shard 1 ran at 2016-03-30T06:00:00Z"), "\(clock.stderr)")
        let missing = try Binaries.run(bin + "/lead-export", ["permits", "-q", now, "--join-shards", "3", "--dir", exportsDir, "--logs", logs], in: root, environment: env)
        #expect(missing.status == 2 && missing.stderr.contains("no part of shard 1 of 3"), "\(missing.stderr)")
        // Shards on the real clock each read their own instant: the join refuses them. A join
        // on the real clock takes the clock its shards were given.
        for i in 1...2 {
            let r = try Binaries.run(bin + "/lead-export", ["permits", "-q", "--shard", "\(i)/2", "--dir", exportsDir, "--logs", logs, tiered], in: root, environment: env)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let live = try Binaries.run(bin + "/lead-export", ["permits", "-q", "--join-shards", "2", "--dir", exportsDir, "--logs", logs], in: root, environment: env)
        #expect(live.status == 2 && live.stderr.contains("give every shard one --now"), "\(live.stderr)")
        for i in 1...2 {
            let r = try Binaries.run(bin + "/lead-export", ["permits", "-q", now, "--shard", "\(i)/2", "--dir", exportsDir, "--logs", logs, tiered], in: root, environment: env)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let adopted = try Binaries.run(bin + "/lead-export", ["permits", "-q", "--join-shards", "2", "--dir", exportsDir, "--logs", logs], in: root, environment: env)
        #expect(adopted.status == 0, "\(adopted.stderr)")
        #expect(try stageFile("sharded", "report.json").contains(#""run_at": "2016-03-30T06:00:00Z""#))

        // Every shard reads every line: one that is not a record (it has no trade to shard by)
        // is rejected once, by shard 1, with its line.
        let bad = root + "/tiered-bad.jsonl"
        try (try String(contentsOfFile: tiered, encoding: .utf8) + "not json\n").write(toFile: bad, atomically: true, encoding: .utf8)
        for i in 1...2 {
            let r = try Binaries.run(bin + "/lead-export", ["permits", "-q", now, "--shard", "\(i)/2", "--dir", exportsDir, "--logs", logs, bad], in: root, environment: env)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let lines = try String(contentsOfFile: tiered, encoding: .utf8).split(separator: "\n").count
        let first = try String(contentsOfFile: root + "/lead-export.rejects.shard-1-of-2.jsonl", encoding: .utf8)
        #expect(first.split(separator: "\n").count == 1 && first.contains(#""line":\#(lines + 1),"#) && first.contains("invalid JSON"), "\(first)")
        #expect(!fm.fileExists(atPath: root + "/lead-export.rejects.shard-2-of-2.jsonl"))
    }
}
