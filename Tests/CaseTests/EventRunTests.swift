import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The events pipeline run after run over the fixture exports: the numbers of the seed's
/// worked example, reruns of a window, --force, and a run killed half-way.
@Suite(.serialized) struct EventRunTests {
    static let runs = [("fixtures/events/export-1.jsonl", "2025-01-16T12:30:00Z"), ("fixtures/events/export-2.json", "2025-01-18T00:00:00Z")]
    static let files = ["leads.jsonl", "listing_analytics.jsonl", "listings.jsonl", "analytics_parts.jsonl", "state.json"]

    /// fetch, flatten and score one run into `dir`/run.
    func prepare(_ run: Int, in dir: String) throws {
        let (export, now) = EventRunTests.runs[run]
        let steps: [(String, [String])] = [
            ("lead-fetch", ["events", "--from", Binaries.repoRoot + "/" + export, "--state", "events/state.json", "-o", "fetched.jsonl"]),
            ("lead-flatten", ["events", "fetched.jsonl", "-o", "flattened-\(run).jsonl"]),
            ("lead-score", ["events", "flattened-\(run).jsonl", "-o", "scored-\(run).jsonl"]),
        ]
        for (binary, arguments) in steps {
            let result = try Binaries.run(binary, arguments + ["--now", now, "-q"], in: dir)
            #expect(result.status == 0, "\(binary): \(result.stderr)")
        }
    }

    @discardableResult
    func apply(_ run: Int, in dir: String, force: Bool = false) throws -> Binaries.Result {
        try Binaries.run("lead-export", ["events", "--dir", "events", "scored-\(run).jsonl", "--now", EventRunTests.runs[run].1, "-q"]
                         + (force ? ["--force"] : []), in: dir)
    }

    func snapshot(_ dir: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for file in EventRunTests.files {
            out[file] = (try? String(contentsOfFile: dir + "/events/" + file, encoding: .utf8)) ?? "(none)"
        }
        return out
    }

    func rows(_ dir: String, _ file: String) throws -> [[String: Any]] {
        try String(contentsOfFile: dir + "/events/" + file, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    /// Stored parts are read on every processor, straight from their text when it has the
    /// shape the stage writes and through a record when it does not (an escaped string, a
    /// float hour, null counts, missing lists, repeated keys, a list with other values, an
    /// unknown key): either way a part reads as a record reads it, and is written back so.
    @Test func storedPartsOfEveryShapeReadAsRecordsReadThem() throws {
        let dir = try Binaries.scratch("events-parts")
        try prepare(0, in: dir)
        #expect(try apply(0, in: dir).status == 0)
        let stored = [
            #"{"listing_id":"zz-1","date":"2025-01-10","hour":5,"run_id":"old","total_views":3,"viewers":["a","b"],"impressions":1,"shares":2,"share_breakdown":{"email":1,"whatsapp":1},"saves":0,"total_leads":1,"phone_leads":1,"message_leads":0,"email_leads":0,"appointment_leads":0,"seekers":["s"],"first_at":"2025-01-10T05:01:00Z","last_at":"2025-01-10T05:59:00Z"}"#,
            #"{"listing_id":"zz-1","date":"2025-01-10","hour":7,"run_id":"old","total_views":1,"viewers":["aA"]}"#,
            #"{"listing_id":"zz-2","date":"2025-01-10","hour":6.0,"run_id":"old","total_views":null,"saves":2}"#,
            #"{"listing_id":"zz-3","date":"2025-01-10","hour":1,"run_id":"old","total_views":4,"total_views":9,"viewers":[1,"v",null],"note":"hi","share_breakdown":{"x":1,"x":3}}"#,
        ]
        let parts = dir + "/events/analytics_parts.jsonl"
        try (try String(contentsOfFile: parts, encoding: .utf8) + stored.joined(separator: "\n") + "\n")
            .write(toFile: parts, atomically: true, encoding: .utf8)
        try prepare(1, in: dir)
        for threads in ["1", "3"] {
            let result = try Binaries.run("lead-export", ["events", "--dir", "events", "scored-1.jsonl", "--now", EventRunTests.runs[1].1,
                                                          "-q", "--force"], in: dir, environment: ["LEAD_THREADS": threads])
            #expect(result.status == 0, "\(result.stderr)")
            let written = try String(contentsOfFile: parts, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"zz-") }
            #expect(written == [
                #"{"listing_id":"zz-1","date":"2025-01-10","hour":5,"run_id":"old","total_views":3,"viewers":["a","b"],"impressions":1,"shares":2,"share_breakdown":{"email":1,"whatsapp":1},"saves":0,"total_leads":1,"phone_leads":1,"message_leads":0,"email_leads":0,"appointment_leads":0,"seekers":["s"],"first_at":"2025-01-10T05:01:00Z","last_at":"2025-01-10T05:59:00Z"}"#,
                #"{"listing_id":"zz-1","date":"2025-01-10","hour":7,"run_id":"old","total_views":1,"viewers":["aA"],"impressions":0,"shares":0,"share_breakdown":{},"saves":0,"total_leads":0,"phone_leads":0,"message_leads":0,"email_leads":0,"appointment_leads":0,"seekers":[],"first_at":null,"last_at":null}"#,
                #"{"listing_id":"zz-2","date":"2025-01-10","hour":6,"run_id":"old","total_views":0,"viewers":[],"impressions":0,"shares":0,"share_breakdown":{},"saves":2,"total_leads":0,"phone_leads":0,"message_leads":0,"email_leads":0,"appointment_leads":0,"seekers":[],"first_at":null,"last_at":null}"#,
                #"{"listing_id":"zz-3","date":"2025-01-10","hour":1,"run_id":"old","total_views":4,"viewers":["v"],"impressions":0,"shares":0,"share_breakdown":{"x":3},"saves":0,"total_leads":0,"phone_leads":0,"message_leads":0,"email_leads":0,"appointment_leads":0,"seekers":[],"first_at":null,"last_at":null}"#,
            ].map { Substring($0) }, "\(threads) threads: \(written)")
        }
        // A stored line that does not read stops the run, naming the file and line, and
        // changes nothing.
        let before = try snapshot(dir)
        try (try String(contentsOfFile: parts, encoding: .utf8) + #"{"listing_id":"zz-9","date":"2025-01-10"}"# + "\n")
            .write(toFile: parts, atomically: true, encoding: .utf8)
        let broken = try snapshot(dir)
        let bad = try Binaries.run("lead-export", ["events", "--dir", "events", "scored-1.jsonl", "--now", EventRunTests.runs[1].1, "-q", "--force"], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("analytics_parts.jsonl:") && bad.stderr.contains("without listing_id, date, hour or run_id"), "\(bad.stderr)")
        #expect(try snapshot(dir) == broken && broken != before)
    }

    /// Both runs, in a fresh directory.
    func twoRuns() throws -> String {
        let dir = try Binaries.scratch("events")
        for run in 0..<2 {
            try prepare(run, in: dir)
            let result = try apply(run, in: dir)
            #expect(result.status == 0, "\(result.stderr)")
        }
        return dir
    }

    /// Past the memory budget the scoring's lead groups and the export's hours go through a
    /// sort on disk: both runs score and leave every file byte for byte as within the budget,
    /// the second merging into the parts of the first.
    @Test func pastTheMemoryBudgetTheRunsLeaveTheSameFiles() throws {
        let held = try twoRuns()
        let dir = try Binaries.scratch("events-budget")
        for run in 0..<2 {
            try prepare(run, in: dir)
            // The scoring's lead groups through the sort on disk too: the same scored stream.
            let scored = try Binaries.run("lead-score", ["events", "flattened-\(run).jsonl", "-o", "scored-small-\(run).jsonl",
                                                         "--now", EventRunTests.runs[run].1], in: dir, environment: ["LEAD_MEMORY": "1"])
            #expect(scored.status == 0 && scored.stderr.contains("\"runs_on_disk\":"), "\(scored.stderr)")
            #expect(try String(contentsOfFile: dir + "/scored-small-\(run).jsonl", encoding: .utf8)
                    == String(contentsOfFile: dir + "/scored-\(run).jsonl", encoding: .utf8))
            let result = try Binaries.run("lead-export", ["events", "--dir", "events", "scored-\(run).jsonl", "--now", EventRunTests.runs[run].1],
                                          in: dir, environment: ["LEAD_MEMORY": "1"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("\"runs_on_disk\":"), "run \(run): the hours went through the sort: \(result.stderr)")
        }
        #expect(try snapshot(dir) == snapshot(held))
    }

    /// The export's workers read an engagement row's listing, viewer, channel and time off the
    /// tape only when each is a plain string or null; the same values written otherwise (a
    /// listing id as a number, escaped strings) go to the reading thread whole and must count
    /// exactly as the plain ones do.
    @Test func engagementRowsWrittenOtherwiseCountTheSame() throws {
        let plain = try Binaries.scratch("events-plain")
        try prepare(0, in: plain)
        #expect(try apply(0, in: plain).status == 0)
        let dir = try Binaries.scratch("events-awkward")
        try prepare(0, in: dir)
        let lines = try String(contentsOfFile: dir + "/scored-0.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        var changed = 0
        let awkward = lines.map { line -> String in
            guard !line.contains("\"kind\":\"lead\""), !line.contains("\"kind\":\"run\"") else { return line }
            changed += 1
            return line.replacingOccurrences(of: "\"listing_id\":\"512\"", with: "\"listing_id\":512")
                .replacingOccurrences(of: "\"listing_id\":\"l", with: "\"listing_id\":\"\\u006c")
                .replacingOccurrences(of: "\"seeker_id\":\"s", with: "\"seeker_id\":\"\\u0073")
                .replacingOccurrences(of: "\"timestamp\":\"2", with: "\"timestamp\":\"\\u0032")
        }
        #expect(changed > 50 && lines.contains { $0.contains("\"listing_id\":\"512\"") })
        try (awkward.joined(separator: "\n") + "\n").write(toFile: dir + "/scored-0.jsonl", atomically: true, encoding: .utf8)
        #expect(try apply(0, in: dir).status == 0)
        #expect(try snapshot(dir) == snapshot(plain))
    }

    @Test func theSeedsExampleAndTheSplitHour() throws {
        let dir = try twoRuns()
        let leads = try rows(dir, "leads.jsonl")
        let john = leads.filter { $0["listing_id"] as? String == "listing-123" && $0["seeker_id"] as? String == "seeker-456" }
        #expect(john.count == 2, "one lead record per run in which the seeker acted")
        #expect(john.first?["total_actions"] as? Int == 2 && john.first?["lead_score"] as? Int == 60)
        #expect(john.last?["lead_score"] as? Int == 60, "direct message 20 + appointment 40 in the second run")
        let analytics = try rows(dir, "listing_analytics.jsonl")
        func hour(_ listing: String, _ date: String, _ h: Int) -> [String: Any]? {
            analytics.first { $0["listing_id"] as? String == listing && $0["date"] as? String == date && $0["hour"] as? Int == h }
        }
        let ten = hour("listing-123", "2025-01-15", 10)
        #expect(ten?["phone_leads"] as? Int == 2 && ten?["total_leads"] as? Int == 2 && ten?["unique_leads"] as? Int == 1)
        // 12:00 on the 16th: half in each run. Views by 463, 464, 465 then 464, 466; leads by
        // 463 (phone) then 463 (phone) and 464 (appointment).
        let split = hour("listing-123", "2025-01-16", 12)
        #expect(split?["total_views"] as? Int == 5 && split?["unique_views"] as? Int == 4)
        #expect(split?["total_leads"] as? Int == 3 && split?["unique_leads"] as? Int == 2 && split?["appointment_leads"] as? Int == 1)
        #expect(split?["conversion_rate"] as? Double == 60)
        // Hour boundaries and time zones.
        #expect(hour("listing-204", "2025-01-16", 12)?["total_views"] as? Int == 1 && hour("listing-204", "2025-01-16", 13) != nil)
        #expect(hour("listing-377", "2025-01-15", 14)?["email_leads"] as? Int == 2, "09:50 at UTC-5 counts at 14:00 UTC")
        #expect(hour("listing-123", "2025-01-15", 23) != nil, "00:15 at UTC+1 on the 16th is 23:15 on the 15th")
        // listings.jsonl sums the analytics rows' counts; its unique counts are the distinct
        // viewers and seekers over the raw events of both runs, and its last activity the
        // last event's time.
        var events: [[String: Any]] = []
        for run in 0..<2 {
            events += try String(contentsOfFile: dir + "/flattened-\(run).jsonl", encoding: .utf8).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
        let listings = try rows(dir, "listings.jsonl")
        #expect(!listings.isEmpty)
        for listing in listings {
            let id = listing["listing_id"] as! String
            let own = analytics.filter { $0["listing_id"] as? String == id }
            for field in ["total_views", "total_leads", "phone_leads", "impressions", "shares", "saves"] {
                #expect(listing[field] as? Int == own.reduce(0) { $0 + ($1[field] as? Int ?? 0) }, "\(id) \(field)")
            }
            let mine = events.filter { $0["listing_id"] as? String == id }
            let viewers = Set(mine.filter { $0["kind"] as? String == "view" }.compactMap { $0["seeker_id"] as? String })
            let seekers = Set(mine.filter { $0["kind"] as? String == "action" }.compactMap { $0["seeker_id"] as? String })
            #expect(listing["unique_views"] as? Int == viewers.count, "\(id) unique_views")
            #expect(listing["unique_leads"] as? Int == seekers.count, "\(id) unique_leads")
            let last = mine.compactMap { $0["timestamp"] as? String }.max()
            #expect(listing["last_activity_at"] as? String == last, "\(id) last_activity_at")
            let views = listing["total_views"] as? Int ?? 0, leads = listing["total_leads"] as? Int ?? 0
            let rate = views == 0 ? 0 : (Double(leads) * 10_000 / Double(views)).rounded() / 100
            #expect(listing["conversion_rate"] as? Double == rate, "\(id) conversion_rate")
        }
    }

    @Test func aWindowAppliedAgainChangesNothingWithOrWithoutForce() throws {
        let dir = try twoRuns()
        let before = try snapshot(dir)
        let again = try apply(1, in: dir)
        #expect(again.status == 0 && again.stdout.contains(#""applied":false"#), "\(again.stdout)")
        #expect(try snapshot(dir) == before)
        let forced = try apply(1, in: dir, force: true)
        #expect(forced.status == 0 && forced.stdout.contains(#""replaced":true"#), "\(forced.stdout)")
        #expect(try snapshot(dir) == before, "--force replaces the run's rows: the same events give the same files")
        // The first run re-applied while the watermark is past it: still the same files.
        #expect(try apply(0, in: dir, force: true).status == 0)
        #expect(try snapshot(dir) == before)
    }

    @Test func aRunThatDoesNotStartAtTheWatermarkIsRefused() throws {
        let dir = try Binaries.scratch("events-gap")
        try prepare(0, in: dir)
        try prepare(1, in: dir)  // fetched before run 0 was applied: its window starts a year back
        #expect(try apply(0, in: dir).status == 0)
        let stale = try apply(1, in: dir)
        #expect(stale.status == 1 && stale.stderr.contains("but the watermark is 2025-01-16T12:30:00Z"), "\(stale.stderr)")
    }

    @Test func aRunKilledHalfWayLeavesTheStateAndResumes() throws {
        let uninterrupted = try snapshot(try twoRuns())
        let dir = try Binaries.scratch("events-kill")
        try prepare(0, in: dir)
        #expect(try apply(0, in: dir).status == 0)
        try prepare(1, in: dir)
        let afterFirst = try snapshot(dir)

        // Killed while reading its input: nothing of run 2 is in place.
        let fifo = dir + "/scored.fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        let running = try Binaries.start("lead-export", ["events", "--dir", "events", "scored.fifo", "--now", EventRunTests.runs[1].1], in: dir)
        let writer = FileHandle(forWritingAtPath: fifo)!
        let scored = try String(contentsOfFile: dir + "/scored-1.jsonl", encoding: .utf8).split(separator: "\n")
        writer.write(Data((scored.prefix(scored.count / 2).joined(separator: "\n") + "\n").utf8))
        usleep(200_000)
        kill(running.process.processIdentifier, SIGKILL)
        _ = running.wait()
        try? writer.close()
        #expect(try snapshot(dir) == afterFirst, "the files and the watermark of run 1 are intact")

        // Killed between renames: leads.jsonl has run 2, the rest and the state do not.
        let other = try Binaries.scratch("events-half")
        try prepare(0, in: other)
        #expect(try apply(0, in: other).status == 0)
        try prepare(1, in: other)
        #expect(try apply(1, in: other).status == 0)
        try FileManager.default.removeItem(atPath: dir + "/events/leads.jsonl")
        try FileManager.default.copyItem(atPath: other + "/events/leads.jsonl", toPath: dir + "/events/leads.jsonl")

        // Run again, the run ends where an uninterrupted one does.
        try prepare(1, in: dir)
        let resumed = try apply(1, in: dir)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try snapshot(dir) == uninterrupted)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/events").filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "the killed run's temporary files are cleared: \(leftovers)")
    }

    /// Enough hours that the export writes them in several batches of whole listings, on
    /// several workers: two runs whose windows share an hour, applied with one thread, with
    /// four, and past the memory budget, leave the same files, and their counts are the ones
    /// counted here by hand.
    @Test func manyListingsInBatchesAndOnWorkersCountAsByHand() throws {
        let base: Int64 = 1_735_689_600 // 2025-01-01T00:00:00Z
        func iso(_ t: Int64) -> String {
            let d = Date(timeIntervalSince1970: TimeInterval(t))
            let f = ISO8601DateFormatter()
            f.timeZone = TimeZone(identifier: "UTC")
            return f.string(from: d)
        }
        // Run 1 to 100 h 30 min, run 2 from there to 200 h: hour 100 is in both.
        let windows: [(Int64, Int64)] = [(base - 3600, base + 100 * 3600 + 1800), (base + 100 * 3600 + 1800, base + 200 * 3600)]
        var views: [String: Int] = [:], viewers: [String: Set<String>] = [:], listingViewers: [String: Set<String>] = [:]
        var runs: [[String]] = []
        var n = 0
        for (from, to) in windows {
            var lines = [#"{"kind":"run","run_id":"\#(iso(to))","source":"files","from":"\#(iso(from))","to":"\#(iso(to))"}"#]
            var t = from + 1
            while t <= to {
                n += 1
                let listing = "listing-\(n % 211)", seeker = "seeker-\(n % 977)"
                let kind = n % 5 == 0 ? "impression" : "view"
                lines.append(#"{"kind":"\#(kind)","listing_id":"\#(listing)","seeker_id":"\#(seeker)","timestamp":"\#(iso(t))"}"#)
                if kind == "view" {
                    let hour = "\(listing) \((t - base + 86_400 * 365) / 3600)"
                    views[hour, default: 0] += 1
                    viewers[hour, default: []].insert(seeker)
                    listingViewers[listing, default: []].insert(seeker)
                }
                t += 9
            }
            runs.append(lines)
        }
        var outputs: [[String: String]] = []
        for environment in [["LEAD_THREADS": "1"], ["LEAD_THREADS": "4"], ["LEAD_MEMORY": "1"]] {
            let dir = try Binaries.scratch("events-many")
            for (i, lines) in runs.enumerated() {
                try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/scored-\(i).jsonl", atomically: true, encoding: .utf8)
                let result = try Binaries.run("lead-export", ["events", "--dir", "events", "scored-\(i).jsonl", "--now", iso(windows[i].1)],
                                              in: dir, environment: environment)
                #expect(result.status == 0, "\(environment): \(result.stderr)")
            }
            outputs.append(try snapshot(dir))
            if outputs.count == 1 {
                let rows = try self.rows(dir, "listing_analytics.jsonl")
                #expect(rows.count > 40_000, "more hours than a batch holds: \(rows.count)")
                var seen = 0
                for row in rows where (row["total_views"] as! Int) > 0 {
                    let date = row["date"] as! String, hour = row["hour"] as! Int
                    let day = Int64(ISO8601DateFormatter().date(from: date + "T00:00:00Z")!.timeIntervalSince1970)
                    let key = "\(row["listing_id"] as! String) \((day - base + 86_400 * 365) / 3600 + Int64(hour))"
                    #expect(row["total_views"] as? Int == views[key] && row["unique_views"] as? Int == viewers[key]?.count, "\(key)")
                    seen += 1
                }
                #expect(seen == views.count)
                let totals = try self.rows(dir, "listings.jsonl")
                #expect(totals.count == 211)
                for row in totals {
                    #expect(row["unique_views"] as? Int == listingViewers[row["listing_id"] as! String]?.count)
                }
                let split = rows.filter { $0["listing_id"] as? String == "listing-7" && $0["date"] as? String == "2025-01-05" && $0["hour"] as? Int == 4 }
                #expect(split.count == 1, "hour 100 of a listing, in both runs, is one row")
            }
        }
        #expect(outputs[1] == outputs[0], "four workers write what one does")
        #expect(outputs[2] == outputs[0], "past the memory budget the same files")
    }
}
