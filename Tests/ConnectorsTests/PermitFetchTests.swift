import Foundation
import TestSupport
import Testing

/// `lead-fetch permits` against a Socrata-like server on 127.0.0.1 that misbehaves on purpose,
/// and the watermark across runs.
@Suite(.serialized) struct PermitFetchTests {
    /// A copy of stages/fetch with quick retries.
    func fastRules() throws -> String {
        let dir = try Binaries.scratch("permit-rules")
        for file in ["mls.csv", "listing-pipelines.csv", "permit-sources.csv"] {
            try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/stages/fetch/" + file, toPath: dir + "/" + file)
        }
        try "setting,value\nrate_per_second,50\nmax_attempts,3\nbackoff_base_seconds,0.05\nbackoff_max_seconds,0.2\ntimeout_seconds,2\n"
            .write(toFile: dir + "/settings.csv", atomically: true, encoding: .utf8)
        return dir
    }

    /// Rows 1...5, issued a day apart from 2026-11-17.
    static let rows: [String] = (1...5).map { n in
        #"{"permit_number":"2026-00\#(n) BP","issue_date":"2026-11-\#(16 + n)T00:00:00.000","permit_location":"\#(n)00 MAIN ST"}"#
    }

    func fetch(_ server: TestHTTPServer, rules: String, in dir: String) throws -> Binaries.Result {
        try Binaries.run("lead-fetch", ["permits", "--source", "austin", "--url", server.baseURL + "/resource/3syk-w9eu.json",
                                        "--page-size", "2", "--state", "state.json", "--rules", rules,
                                        "--now", "2026-11-23T06:00:00Z", "-o", "out.jsonl"],
                         in: dir, environment: ["SOCRATA_APP_TOKEN": "app-token-1"])
    }

    @Test func pagesOrderedFilteredAndResumedFromTheWatermark() throws {
        // Serves the rows after the $where watermark, $limit at $offset; the second page fails once.
        let server = try TestHTTPServer { request, seen in
            let whereClause = request.query("$where") ?? ""
            let after = whereClause.split(separator: "'").dropFirst().first.map(String.init) ?? ""
            let offset = Int(request.query("$offset") ?? "0") ?? 0, limit = Int(request.query("$limit") ?? "1000") ?? 1000
            if offset == 2 && seen == 0 { return .json("upstream timeout", status: 503) }
            let matching = PermitFetchTests.rows.filter { row in
                let date = row.components(separatedBy: "\"issue_date\":\"")[1].prefix(23)
                return after.isEmpty || (whereClause.contains(">=") ? date >= after : date > after)
            }
            let page = matching.dropFirst(offset).prefix(limit)
            return .json("[" + page.joined(separator: ",") + "]")
        }
        defer { server.stop() }
        let rules = try fastRules()
        let dir = try Binaries.scratch("permit-fetch")
        let first = try fetch(server, rules: rules, in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let out = try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8)
        #expect(out.split(separator: "\n").count == 5, "every row once, across pages and a retry")
        let requests = server.requests
        #expect(requests.first?.query("$where") == "issue_date > '2026-10-24T06:00:00.000'", "a first run reaches back lookback_days")
        #expect(requests.allSatisfy { $0.query("$order") == "issue_date,:id" && $0.query("$limit") == "2" })
        #expect(requests.map { $0.query("$offset") ?? "" } == ["0", "2", "2", "4"])
        #expect(requests.allSatisfy { $0.headers["x-app-token"] == "app-token-1" })
        let state = try String(contentsOfFile: dir + "/state.json", encoding: .utf8)
        #expect(state.contains("\"watermark\":\"2026-11-21T00:00:00Z\""))

        // The watermark is a whole day (issue_date has no time): the next run asks for that day
        // again, so a permit published later with that date is not missed; the rows seen
        // before come again (downstream replaces them by permit_id), and nothing else.
        let second = try fetch(server, rules: rules, in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(server.requests.last?.query("$where") == "issue_date >= '2026-11-21T00:00:00.000'")
        let again = try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(again.count == PermitFetchTests.rows.filter { $0.contains("2026-11-21") }.count)
        #expect(again.allSatisfy { $0.contains("\"issue_date\":\"2026-11-21") })
        #expect(try String(contentsOfFile: dir + "/state.json", encoding: .utf8).contains("\"watermark\":\"2026-11-21T00:00:00Z\""))
    }

    @Test func aFailedFetchLeavesTheWatermark() throws {
        let server = try TestHTTPServer { _, _ in .json("down", status: 500) }
        defer { server.stop() }
        let dir = try Binaries.scratch("permit-fetch-fail")
        let state = #"{"source":"austin","watermark":"2026-11-20T00:00:00Z","fetched_at":"2026-11-21T00:00:00Z"}"# + "\n"
        try state.write(toFile: dir + "/state.json", atomically: true, encoding: .utf8)
        let result = try fetch(server, rules: try fastRules(), in: dir)
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("gave up after 3 tries"))
        #expect(try String(contentsOfFile: dir + "/state.json", encoding: .utf8) == state)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.jsonl"))
    }
}
