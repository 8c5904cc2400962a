import Foundation
import TestSupport
import Testing

/// `lead-fetch events --source posthog --endpoint events` against a PostHog-like events API on
/// 127.0.0.1 (the deprecated endpoint): the window from the watermark, slices, `next` pages, a
/// retry, the API key, boundaries. The query API's tests are in PostHogQueryTests.
@Suite(.serialized) struct EventFetchTests {
    /// A copy of stages/fetch with quick retries and a short first-run lookback.
    func fastRules() throws -> String {
        let dir = try Binaries.scratch("event-rules")
        for file in ["mls.csv", "listing-pipelines.csv"] {
            try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/stages/fetch/" + file, toPath: dir + "/" + file)
        }
        try "setting,value\nrate_per_second,200\nmax_attempts,3\nbackoff_base_seconds,0.05\nbackoff_max_seconds,0.2\ntimeout_seconds,2\n"
            .write(toFile: dir + "/settings.csv", atomically: true, encoding: .utf8)
        try "setting,value\nlookback_days,10\nslice_days,7\npage_limit,2\n".write(toFile: dir + "/events.csv", atomically: true, encoding: .utf8)
        return dir
    }

    static let now = "2025-01-16T12:00:00Z"

    /// lead_phone events: five in the window, one exactly at its end, one half a second after.
    static let events: [(ts: String, json: String)] = {
        let stamps = ["2025-01-07T10:00:00Z", "2025-01-10T10:00:00Z", "2025-01-14T09:00:00Z", "2025-01-15T10:00:00Z",
                      "2025-01-16T11:59:59Z", "2025-01-16T12:00:00Z", "2025-01-16T12:00:00.500Z"]
        return stamps.enumerated().map { n, ts in
            (ts, #"{"id":"0190-\#(n)","event":"lead_phone","distinct_id":"seeker-\#(n)","timestamp":"\#(ts)","properties":{"listing_id":"listing-1"}}"#)
        }
    }()

    /// Serves `events` for event=lead_phone between after and before (exclusive), newest first,
    /// `limit` per page with a `next` link; the first page of the first slice fails once.
    func server() throws -> TestHTTPServer {
        try TestHTTPServer { request, seen in
            guard request.path == "/api/projects/42/events/" else { return .json(#"{"detail":"Not found."}"#, status: 404) }
            guard request.headers["authorization"] == "Bearer phx_test" else {
                return .json(#"{"type":"authentication_error","detail":"Invalid personal API key."}"#, status: 401)
            }
            let offset = Int(request.query("offset") ?? "0") ?? 0
            if offset == 0 && seen == 0 && request.query("after") == "2025-01-06T12:00:00Z" && request.query("event") == "lead_phone" {
                return .json("bad gateway", status: 502)
            }
            let after = request.query("after") ?? "", before = request.query("before") ?? ""
            let limit = Int(request.query("limit") ?? "100") ?? 100
            let matching = request.query("event") == "lead_phone"
                ? EventFetchTests.events.filter { e in
                    EventFetchTests.key(e.ts) > EventFetchTests.key(after) && EventFetchTests.key(e.ts) < EventFetchTests.key(before)
                }.reversed().map(\.json)
                : []
            let page = Array(matching.dropFirst(offset).prefix(limit))
            var next = "null"
            if offset + limit < matching.count {
                var query = request.target.split(separator: "?", maxSplits: 1).last.map(String.init) ?? ""
                query = query.split(separator: "&").filter { !$0.hasPrefix("offset=") }.joined(separator: "&")
                next = "\"http://127.0.0.1:\(request.headers["host"]?.split(separator: ":").last ?? "0")\(request.path)?\(query)&offset=\(offset + limit)\""
            }
            return .json(#"{"next":\#(next),"results":[\#(page.joined(separator: ","))]}"#)
        }
    }

    /// A timestamp as comparable text: whole seconds padded with a fraction.
    static func key(_ ts: String) -> String {
        var t = ts.replacingOccurrences(of: "Z", with: "")
        if !t.contains(".") { t += ".000" }
        return t
    }

    func fetch(_ server: TestHTTPServer, rules: String, in dir: String, now: String = EventFetchTests.now,
               key: String? = "phx_test") throws -> Binaries.Result {
        try Binaries.run("lead-fetch", ["events", "--source", "posthog", "--endpoint", "events", "--project", "42", "--base-url", server.baseURL + "/",
                                        "--state", "state.json", "--rules", rules, "--now", now, "-o", "out.jsonl"],
                         in: dir, environment: key.map { ["POSTHOG_API_KEY": $0] } ?? [:])
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func pagesSlicesAndTheWindowFromTheWatermark() throws {
        let server = try server()
        defer { server.stop() }
        let rules = try fastRules()
        let dir = try Binaries.scratch("event-fetch")
        let first = try fetch(server, rules: rules, in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let out = try lines(dir + "/out.jsonl")
        #expect(out.first == #"{"kind":"run","run_id":"2025-01-16T12:00:00Z","source":"posthog:42","from":"2025-01-06T12:00:00Z","to":"2025-01-16T12:00:00Z"}"#)
        let ids = out.dropFirst().compactMap { $0.components(separatedBy: "\"id\":\"").dropFirst().first?.prefix(6) }
        #expect(Set(ids) == ["0190-0", "0190-1", "0190-2", "0190-3", "0190-4", "0190-5"],
                "every event of (from, to] once, the one on the end included, the one after it left for the next run")
        let phone = server.requests.filter { $0.query("event") == "lead_phone" }
        #expect(phone.first.map { [$0.query("after"), $0.query("before"), $0.query("limit")] } == ["2025-01-06T12:00:00Z", "2025-01-13T12:00:00Z", "2"])
        #expect(phone.contains { $0.query("after") == "2025-01-13T12:00:00Z" && $0.query("before") == "2025-01-16T12:00:01Z" },
                "the last slice asks a second past the end")
        #expect(phone.contains { $0.query("offset") == "2" }, "next is followed")
        #expect(Set(server.requests.compactMap { $0.query("event") }).count == 8, "every event name of stages/flatten/events.csv")
        #expect(first.stderr.contains("HTTP 502"), "the bad gateway was retried: \(first.stderr)")

        // The export stage records the run; the next run starts at its end.
        let state = #"{"watermark":"2025-01-16T12:00:00Z","runs":[{"run_id":"2025-01-16T12:00:00Z","source":"posthog:42","from":"2025-01-06T12:00:00Z","to":"2025-01-16T12:00:00Z","events":6,"leads":6,"applied_at":"2025-01-16T12:00:00Z"}]}"#
        try state.write(toFile: dir + "/state.json", atomically: true, encoding: .utf8)
        let second = try fetch(server, rules: rules, in: dir, now: "2025-01-17T00:00:00Z")
        #expect(second.status == 0, "\(second.stderr)")
        let next = try lines(dir + "/out.jsonl")
        #expect(next.first?.contains(#""from":"2025-01-16T12:00:00Z","to":"2025-01-17T00:00:00Z""#) == true)
        #expect(next.count == 2 && next[1].contains("0190-6"), "the event half a second after the first window: \(next)")
        // Asking again for a window already applied gets that window again.
        let again = try fetch(server, rules: rules, in: dir)
        let rerun = try lines(dir + "/out.jsonl")
        #expect(again.status == 0 && rerun.first == out.first)
    }

    @Test func keyMissingRefusedAndDownServerFails() throws {
        let server = try server()
        defer { server.stop() }
        let rules = try fastRules()
        let dir = try Binaries.scratch("event-fetch-fail")
        let missing = try fetch(server, rules: rules, in: dir, key: nil)
        #expect(missing.status == 2 && missing.stderr.contains("POSTHOG_API_KEY is not set"), "\(missing.stderr)")
        #expect(server.requests.isEmpty, "nothing is asked without a key")
        let wrong = try fetch(server, rules: rules, in: dir, key: "phx_wrong")
        #expect(wrong.status == 3 && wrong.stderr.contains("Invalid personal API key"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.jsonl"), "a failed fetch leaves no output")
        server.setHandler { _, _ in .json("down", status: 500) }
        let down = try fetch(server, rules: rules, in: dir)
        #expect(down.status == 3 && down.stderr.contains("gave up after 3 tries"), "\(down.stderr)")
    }
}

/// `lead-fetch events --source posthog` (the query API, the default) against a server on
/// 127.0.0.1 that runs the HogQL it is sent over a small table of events: the window's bounds,
/// keyset pages through events that share a timestamp, a retry, a HogQL error.
@Suite(.serialized) struct PostHogQueryTests {
    /// (uuid, event, timestamp): three lead_phone events share 2025-01-10T10:00:00.
    static let table: [(uuid: String, event: String, ts: String)] = [
        ("018f0000-0000-7000-8000-000000000001", "lead_phone", "2025-01-07T10:00:00Z"),
        ("018f0000-0000-7000-8000-000000000004", "lead_phone", "2025-01-10T10:00:00Z"),
        ("018f0000-0000-7000-8000-000000000002", "lead_phone", "2025-01-10T10:00:00Z"),
        ("018f0000-0000-7000-8000-000000000003", "lead_message", "2025-01-10T10:00:00Z"),
        ("018f0000-0000-7000-8000-000000000005", "pageview", "2025-01-11T10:00:00Z"),
        ("018f0000-0000-7000-8000-000000000006", "listing_share", "2025-01-14T09:00:00Z"),
        ("018f0000-0000-7000-8000-000000000007", "lead_phone", "2025-01-16T12:00:00Z"),
        ("018f0000-0000-7000-8000-000000000008", "lead_phone", "2025-01-16T12:00:00.500Z"),
        ("018f0000-0000-7000-8000-000000000009", "lead_phone", "2025-01-06T12:00:00Z"),
    ]

    static func capture(_ pattern: String, in text: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return [] }
        return (1..<match.numberOfRanges).compactMap { Range(match.range(at: $0), in: text).map { String(text[$0]) } }
    }

    /// The kind and HogQL of a query request's JSON body.
    static func query(_ body: [UInt8]) -> (kind: String?, sql: String?)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let query = object["query"] as? [String: Any] else { return nil }
        return (query["kind"] as? String, query["query"] as? String)
    }

    /// Timestamps as comparable text.
    static func key(_ ts: String) -> String { EventFetchTests.key(ts.replacingOccurrences(of: "+00:00", with: "Z")) }

    func server() throws -> TestHTTPServer {
        try TestHTTPServer { request, seen in
            guard request.path == "/api/projects/42/query/" else { return .json(#"{"detail":"Not found."}"#, status: 404) }
            guard request.method == "POST", request.headers["content-type"] == "application/json" else {
                return .json(#"{"detail":"Method not allowed."}"#, status: 405)
            }
            guard request.headers["authorization"] == "Bearer phx_test" else {
                return .json(#"{"type":"authentication_error","detail":"Invalid personal API key."}"#, status: 401)
            }
            guard let query = PostHogQueryTests.query(request.body), query.kind == "HogQLQuery", let sql = query.sql else {
                return .json(#"{"type":"validation_error","detail":"query is required"}"#, status: 400)
            }
            if seen == 0 { return .json("bad gateway", status: 502) }  // the very first request, once
            let names = PostHogQueryTests.capture(#"event IN \(([^)]*)\)"#, in: sql).first?
                .components(separatedBy: ", ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'")) } ?? []
            let bounds = PostHogQueryTests.capture(#"timestamp > toDateTime\('([^']*)'\) AND timestamp <= toDateTime\('([^']*)'\)"#, in: sql)
            let after = PostHogQueryTests.capture(#"\(timestamp > toDateTime\('([^']*)'\) OR \(timestamp = toDateTime\('[^']*'\) AND uuid > toUUID\('([^']*)'\)\)\)"#, in: sql)
            let limit = Int(PostHogQueryTests.capture(#"LIMIT (\d+)$"#, in: sql).first ?? "100") ?? 100
            guard bounds.count == 2, sql.contains("ORDER BY timestamp ASC, uuid ASC") else {
                return .json(#"{"type":"validation_error","detail":"unexpected query"}"#, status: 400)
            }
            let key = PostHogQueryTests.key
            let rows = PostHogQueryTests.table
                .filter { names.contains($0.event) && key($0.ts) > key(bounds[0]) && key($0.ts) <= key(bounds[1]) }
                .filter { after.count < 2 || key($0.ts) > key(after[0]) || (key($0.ts) == key(after[0]) && $0.uuid > after[1]) }
                .sorted { (key($0.ts), $0.uuid) < (key($1.ts), $1.uuid) }
            let page = rows.prefix(limit).map { e in
                // PostHog sends the timestamp with an offset and properties as JSON text.
                #"["\#(e.uuid)","\#(e.event)","seeker-\#(e.uuid.suffix(1))","\#(e.ts.replacingOccurrences(of: "Z", with: "+00:00"))","{\"listing_id\":\"listing-1\"}"]"#
            }
            return .json(#"{"columns":["uuid","event","distinct_id","timestamp","properties"],"types":[],"results":[\#(page.joined(separator: ","))],"hasMore":\#(rows.count > limit)}"#)
        }
    }

    func fetch(_ server: TestHTTPServer, rules: String, in dir: String, now: String = EventFetchTests.now) throws -> Binaries.Result {
        try Binaries.run("lead-fetch", ["events", "--source", "posthog", "--project", "42", "--base-url", server.baseURL,
                                        "--state", "state.json", "--rules", rules, "--now", now, "-o", "out.jsonl"],
                         in: dir, environment: ["POSTHOG_API_KEY": "phx_test"])
    }

    @Test func hogQLPagesTheWindowByTimestampAndUUID() throws {
        let server = try server()
        defer { server.stop() }
        let rules = try EventFetchTests().fastRules()
        let dir = try Binaries.scratch("posthog-query")
        let first = try fetch(server, rules: rules, in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let out = try EventFetchTests().lines(dir + "/out.jsonl")
        #expect(out.first == #"{"kind":"run","run_id":"2025-01-16T12:00:00Z","source":"posthog:42","from":"2025-01-06T12:00:00Z","to":"2025-01-16T12:00:00Z"}"#)
        let uuids = out.dropFirst().compactMap { $0.components(separatedBy: #""uuid":"018f0000-0000-7000-8000-00000000000"#).dropFirst().first?.prefix(1) }
        #expect(uuids == ["1", "2", "3", "4", "6", "7"], "(from, to] in (timestamp, uuid) order, each once; the catalogue's events only")
        #expect(out[1] == #"{"uuid":"018f0000-0000-7000-8000-000000000001","event":"lead_phone","distinct_id":"seeker-1","timestamp":"2025-01-07T10:00:00+00:00","properties":{"listing_id":"listing-1"}}"#)
        let sqls = server.requests.compactMap { PostHogQueryTests.query($0.body)?.sql }
        #expect(sqls.first == "SELECT uuid, event, distinct_id, timestamp, properties FROM events WHERE event IN ('lead', 'lead_phone', 'lead_message', 'lead_appointment', 'listing_view', 'listing_impression', 'listing_share', 'listing_save') AND timestamp > toDateTime('2025-01-06T12:00:00Z') AND timestamp <= toDateTime('2025-01-13T12:00:00Z') ORDER BY timestamp ASC, uuid ASC LIMIT 2", "\(sqls.first ?? "")")
        #expect(sqls.contains { $0.contains("(timestamp > toDateTime('2025-01-10T10:00:00+00:00') OR (timestamp = toDateTime('2025-01-10T10:00:00+00:00') AND uuid > toUUID('018f0000-0000-7000-8000-000000000002')))") },
                "a page ends inside a run of equal timestamps and the next picks up after its last uuid: \(sqls)")
        #expect(sqls.contains { $0.contains("timestamp > toDateTime('2025-01-13T12:00:00Z') AND timestamp <= toDateTime('2025-01-16T12:00:00Z')") }, "the last slice ends at the window's end")
        #expect(server.requests.allSatisfy { $0.method == "POST" && $0.path == "/api/projects/42/query/" })
        #expect(first.stderr.contains("HTTP 502"), "the bad gateway was retried: \(first.stderr)")

        // The next run starts at the watermark: the event half a second after the first window.
        let state = #"{"watermark":"2025-01-16T12:00:00Z","runs":[{"run_id":"2025-01-16T12:00:00Z","source":"posthog:42","from":"2025-01-06T12:00:00Z","to":"2025-01-16T12:00:00Z","events":6,"leads":6,"applied_at":"2025-01-16T12:00:00Z"}]}"#
        try state.write(toFile: dir + "/state.json", atomically: true, encoding: .utf8)
        let second = try fetch(server, rules: rules, in: dir, now: "2025-01-17T00:00:00Z")
        #expect(second.status == 0, "\(second.stderr)")
        let next = try EventFetchTests().lines(dir + "/out.jsonl")
        #expect(next.count == 2 && next[1].contains("000000000008"), "\(next)")
    }

    @Test func aHogQLErrorNamesItAndWritesNothing() throws {
        let server = try TestHTTPServer { _, _ in .json(#"{"type":"validation_error","code":"invalid_input","detail":"Unable to resolve field: uuid"}"#, status: 400) }
        defer { server.stop() }
        let dir = try Binaries.scratch("posthog-query-error")
        let result = try fetch(server, rules: try EventFetchTests().fastRules(), in: dir)
        #expect(result.status == 3 && result.stderr.contains("Unable to resolve field: uuid"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.jsonl"))
        #expect(server.requests.count == 1, "a 400 is not retried")
    }
}
