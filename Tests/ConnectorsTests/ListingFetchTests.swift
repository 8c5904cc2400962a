import Foundation
import TestSupport
import Testing

/// `lead-fetch listings` and `lead-fetch photos` against a server on 127.0.0.1 that
/// misbehaves on purpose. The stage runs as a subprocess, as a user would run it.
@Suite(.serialized) struct ListingFetchTests {
    static let token = "test-token-7f3a9"
    static let expectedFilter = "MlsId Eq '20190211172710340762000000' And (PropertyType Eq 'A' Or PropertyType Eq 'B' Or PropertyType Eq 'C') And (StandardStatus Eq 'Expired' Or StandardStatus Eq 'Canceled') And StatusChangeTimestamp Ge 2026-08-25T00:00:00Z"

    /// A copy of stages/fetch with quick retries, so the tests do not wait long.
    func fastRules(maxAttempts: Int = 4, timeout: Double = 1) throws -> String {
        let dir = try Binaries.scratch("rules")
        for file in ["mls.csv", "listing-pipelines.csv"] {
            try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/stages/fetch/" + file, toPath: dir + "/" + file)
        }
        try """
        setting,value
        rate_per_second,50
        page_size,3
        max_attempts,\(maxAttempts)
        backoff_base_seconds,0.05
        backoff_max_seconds,0.2
        timeout_seconds,\(timeout)
        photo_workers,2
        photo_delay_seconds,0.05

        """.write(toFile: dir + "/settings.csv", atomically: true, encoding: .utf8)
        return dir
    }

    static func listing(_ key: String) -> String {
        #"{"ResourceUri":"/v1/listings/\#(key)","Id":"\#(key)","StandardFields":{"ListingKey":"\#(key)","ListPrice":" 350000.0","City":"Mesa","StatusChangeTimestamp":"2026-10-01T12:00:00Z","Photos":[{"Primary":true,"UriLarge":"http://x/\#(key).jpg"}]}}"#
    }

    static func sparkPage(_ keys: [String], page: Int, of total: Int) -> String {
        #"{"D":{"Success":true,"Results":[\#(keys.map(listing).joined(separator: ","))],"Pagination":{"TotalRows":9,"PageSize":3,"TotalPages":\#(total),"CurrentPage":\#(page)}}}"#
    }

    static let pages: [Int: [String]] = [1: ["K1", "K2", "K3"], 2: ["K3", "K4", "K5"], 3: ["K6", "K7"]]

    func keys(in file: String) throws -> [String] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return object["Id"] as! String
        }
    }

    func fetch(_ server: TestHTTPServer, rules: String, in dir: String, extra: [String] = [],
               token: String? = ListingFetchTests.token) throws -> Binaries.Result {
        // A RESO fetch's base URL is the OData service root.
        let root = server.baseURL + (extra.contains("reso") ? "/Reso/OData" : "")
        return try Binaries.run("lead-fetch", ["listings", "--pipeline", "expired-gps", "--base-url", root,
                                        "--rules", rules, "--now", "2026-11-23T06:00:00Z", "-o", "out.jsonl"] + extra,
                         in: dir, environment: token.map { ["SPARK_API_TOKEN": $0] } ?? [:])
    }

    @Test func sparkFetchSurvivesAMisbehavingServer() throws {
        let server = try TestHTTPServer { request, seen in
            let page = Int(request.query("_page") ?? "") ?? 0
            switch (page, seen) {
            case (1, 0): return .json("{}", status: 429, headers: ["Retry-After": "1"])
            case (2, 0): return .json(#"{"D":{"Success":false,"Code":1550,"Message":"Over rate limit"}}"#, status: 503)
            case (2, 1): return .drop
            case (3, 0): return .json("internal error", status: 500)
            case (3, 1): return .json(#"{"D":{"Success":true,"Results":[{"Id":"#)
            case (3, 2): return .json(ListingFetchTests.sparkPage(ListingFetchTests.pages[3]!, page: 3, of: 3), delay: 2.5)
            default: return .json(ListingFetchTests.sparkPage(ListingFetchTests.pages[page] ?? [], page: page, of: 3))
            }
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("fetch")
        let result = try fetch(server, rules: fastRules(maxAttempts: 5), in: dir, extra: ["--rate", "4"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try keys(in: dir + "/out.jsonl") == ["K1", "K2", "K3", "K4", "K5", "K6", "K7"], "each listing exactly once, in order")
        let requests = server.requests
        #expect(requests.count == 9)
        for r in requests {
            #expect(r.path == "/v1/listings")
            #expect(r.query("_filter") == ListingFetchTests.expectedFilter)
            #expect(r.query("_expand") == "Photos")
            #expect(r.query("_limit") == "3")
            #expect(r.query("_pagination") == "1")
            #expect(r.headers["authorization"] == "Bearer \(ListingFetchTests.token)")
            #expect(r.headers["x-sparkapi-user-agent"]?.hasPrefix("LeadETL/") == true)
        }
        // The client spaces its requests 0.25 s apart; the server sees them arrive with the
        // jitter of a loaded machine (a first request late by 10 ms made 0.2394), so allow 50 ms:
        // without the limiter they come a few milliseconds apart.
        for (a, b) in zip(requests, requests.dropFirst()) {
            #expect(b.at - a.at >= 0.2, "at most 4 requests per second: \(a.target) then \(b.target)")
        }
        #expect(requests[1].at - requests[0].at >= 0.95, "Retry-After: 1 is honoured")
        #expect(!result.stderr.contains(ListingFetchTests.token) && !result.stdout.contains(ListingFetchTests.token))
        #expect(result.stderr.contains("\"requests\":9") && result.stderr.contains("\"duplicates\":1"))
        #expect(result.stderr.contains("Spark code 1550"))
    }

    @Test func givesUpAfterBoundedTriesNamingTheURLAndStatus() throws {
        let server = try TestHTTPServer { _, _ in .json("down for maintenance", status: 502) }
        defer { server.stop() }
        let dir = try Binaries.scratch("fetch")
        let result = try fetch(server, rules: fastRules(maxAttempts: 3), in: dir)
        #expect(result.status == 3)
        #expect(server.requests.count == 3)
        #expect(result.stderr.contains(server.baseURL + "/v1/listings?"))
        #expect(result.stderr.contains("gave up after 3 tries; last: HTTP 502"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.jsonl"))
    }

    @Test func anAPIErrorStopsWithoutRetrying() throws {
        let server = try TestHTTPServer { _, _ in
            .json(#"{"D":{"Success":false,"Code":1020,"Message":"Session token has expired"}}"#, status: 401)
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("fetch")
        let result = try fetch(server, rules: fastRules(), in: dir)
        #expect(result.status == 3)
        #expect(server.requests.count == 1)
        #expect(result.stderr.contains("HTTP 401 (Spark code 1020: Session token has expired)"))
    }

    @Test func aMissingTokenFailsBeforeAnyRequest() throws {
        let server = try TestHTTPServer { _, _ in .json("{}") }
        defer { server.stop() }
        let dir = try Binaries.scratch("fetch")
        let result = try fetch(server, rules: fastRules(), in: dir, token: nil)
        #expect(result.status == 2)
        #expect(result.stderr.contains("SPARK_API_TOKEN is not set"))
        #expect(server.requests.isEmpty)
    }

    @Test func resoFollowsNextLinks() throws {
        let property = { (key: String) in #"{"ListingKey":"\#(key)","ListPrice":410000,"Media":[{"MediaURL":"http://x/\#(key)-2.jpg","Order":2},{"MediaURL":"http://x/\#(key)-1.jpg","Order":1}]}"# }
        let server = try TestHTTPServer { request, _ in
            switch request.query("$skip") {
            case nil: return .json(#"{"value":[\#(property("R1")),\#(property("R2"))],"@odata.nextLink":"/Reso/OData/Property?$skip=2&$top=2"}"#)
            case "2": return .json(#"{"value":[\#(property("R3"))],"@odata.nextLink":"http://127.0.0.1:\#(request.headers["host"]!.split(separator: ":").last!)/Reso/OData/Property?$skip=3&$top=2"}"#)
            default: return .json(#"{"value":[]}"#)
            }
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("fetch")
        let result = try fetch(server, rules: fastRules(), in: dir, extra: ["--api", "reso", "--page-size", "2"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        let first = server.requests[0]
        #expect(first.path == "/Reso/OData/Property")
        #expect(first.query("$filter") == "MlsId eq '20190211172710340762000000' and (PropertyType eq 'Residential' or PropertyType eq 'ResidentialIncome' or PropertyType eq 'Land') and (StandardStatus eq 'Expired' or StandardStatus eq 'Canceled') and StatusChangeTimestamp ge 2026-08-25T00:00:00Z")
        #expect(first.query("$expand") == "Media")
        #expect(first.query("$top") == "2")
        #expect(server.requests.map { $0.query("$skip") } == [nil, "2", "3"])
    }

    @Test func aKilledFetchResumesAndEqualsAnUninterruptedRun() throws {
        let total = 4
        let pageKeys = (1...total).map { p in (1...3).map { "P\(p)K\($0)" } }
        var hangOnPage3 = true
        let lock = NSLock()
        let server = try TestHTTPServer { request, _ in
            let page = Int(request.query("_page") ?? "") ?? 1
            lock.lock()
            let hang = hangOnPage3 && page == 3
            lock.unlock()
            return .json(ListingFetchTests.sparkPage(pageKeys[page - 1], page: page, of: total), delay: hang ? 30 : 0)
        }
        defer { server.stop() }
        let rules = try fastRules(timeout: 60)
        let dir = try Binaries.scratch("resume")
        let args = ["listings", "--pipeline", "expired-gps", "--base-url", server.baseURL, "--rules", rules,
                    "--now", "2026-11-23T06:00:00Z", "--state", "state.json", "-o", "out.jsonl"]
        let env = ["SPARK_API_TOKEN": ListingFetchTests.token]
        let running = try Binaries.start("lead-fetch", args, in: dir, environment: env)
        let deadline = Date().addingTimeInterval(20)
        while !server.requests.contains(where: { $0.query("_page") == "3" }) && Date() < deadline { usleep(20_000) }
        kill(running.process.processIdentifier, SIGKILL)
        _ = running.wait()
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.jsonl"))
        let state = try String(contentsOfFile: dir + "/state.json", encoding: .utf8)
        #expect(state.contains(#""next":{"page":3}"#), "\(state)")

        lock.lock()
        hangOnPage3 = false
        lock.unlock()
        let before = server.requests.count
        let resumed = try Binaries.run("lead-fetch", args, in: dir, environment: env)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(server.requests[before...].map { $0.query("_page") } == ["3", "4"], "resumes at page 3, not page 1")
        #expect(!FileManager.default.fileExists(atPath: dir + "/state.json"), "the state goes once the fetch completes")

        let clean = try Binaries.scratch("uninterrupted")
        let whole = try Binaries.run("lead-fetch", args, in: clean, environment: env)
        #expect(whole.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out.jsonl")) == Data(contentsOf: URL(fileURLWithPath: clean + "/out.jsonl")))
        #expect(try keys(in: dir + "/out.jsonl").count == 12)
    }

    @Test func aListingWithoutIdGoesToTheRejectsAndTheFetchGoesOn() throws {
        let server = try TestHTTPServer { request, _ in
            let page = Int(request.query("_page") ?? "") ?? 0
            let results = page == 1
                ? [ListingFetchTests.listing("K1"), #"{"ResourceUri":"/v1/listings/x","StandardFields":{"City":"Mesa"}}"#, ListingFetchTests.listing("K2")]
                : [ListingFetchTests.listing("K3")]
            return .json(#"{"D":{"Success":true,"Results":[\#(results.joined(separator: ","))],"Pagination":{"TotalPages":2,"CurrentPage":\#(page)}}}"#)
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("no-id")
        let result = try fetch(server, rules: try fastRules(), in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try keys(in: dir + "/out.jsonl") == ["K1", "K2", "K3"])
        #expect(server.requests.count == 2, "no retry for a page that holds a bad listing")
        let rejects = try String(contentsOfFile: dir + "/out.rejects.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(rejects.count == 1)
        #expect(rejects.first?.contains("without Id") == true && rejects.first?.contains(#""line":2"#) == true
                && rejects.first?.contains("_page=1") == true, "\(rejects)")

        // From a replay, the reject names the recorded page, not a URL.
        let replay = try Binaries.scratch("no-id-replay")
        try #"{"D":{"Success":true,"Results":[{"StandardFields":{"City":"Mesa"}}],"Pagination":{"TotalPages":1,"CurrentPage":1}}}"#
            .write(toFile: replay + "/page-0001.json", atomically: true, encoding: .utf8)
        let offline = try Binaries.run("lead-fetch", ["listings", "--pipeline", "expired-gps", "--replay", replay, "--rules", try fastRules(),
                                                      "--now", "2026-11-23T06:00:00Z", "-o", "out.jsonl"], in: dir)
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(offline.stderr.contains(replay + "/page-0001.json:1: a listing without Id"), "\(offline.stderr)")
        #expect(!offline.stderr.contains("sparkapi.com"))
    }

    static func today() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }

    @Test func photosAreCachedLoggedAndNotFetchedTwice() throws {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 7, count: 40)
        let server = try TestHTTPServer { request, _ in
            switch request.path {
            case "/p/A.jpg": return .respond(status: 200, headers: ["Content-Type": "image/png"], body: png)
            case "/p/B.jpg": return .respond(status: 404, body: Array("gone".utf8))
            case "/p/C.jpg": return .respond(status: 200, headers: ["Content-Type": "text/html"], body: Array("<html>moved</html>".utf8))
            case "/p/D.jpg": return .respond(status: 200, body: png, delay: 3)
            default: return .respond(status: 200, headers: ["Content-Type": "image/jpeg"], body: [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])
            }
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("photos")
        let flat = ["A", "B", "C", "D", "E", "../evil"].map { key in
            #"{"ListingKey":"\#(key)","PrimaryPhotoUrl":"\#(server.baseURL)/p/\#(key == "../evil" ? "E" : key).jpg"}"#
        } + [#"{"ListingKey":"F","PrimaryPhotoUrl":null}"#]
        try (flat.joined(separator: "\n") + "\n").write(toFile: dir + "/flat.jsonl", atomically: true, encoding: .utf8)
        let args = ["photos", "--pipeline", "expired-gps", "--logs", "logs", "--rules", try fastRules(),
                    "--now", "2026-11-23T06:00:00Z", "flat.jsonl"]
        let first = try Binaries.run("lead-fetch", args, in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains(#""downloaded":2,"unchanged":0,"failed":4"#), "\(first.stderr)")
        // The folder's lock (a dot file) is the only thing beside the photos.
        let photos = try FileManager.default.contentsOfDirectory(atPath: dir + "/logs/expired/photos/gps").filter { !$0.hasPrefix(".") }.sorted()
        #expect(photos == ["A.png", "E.jpg"])
        // The run log is named by the run's real start, not by --now.
        let logs = try FileManager.default.contentsOfDirectory(atPath: dir + "/logs/expired/photo-logs/gps").filter { $0.hasPrefix("run_") }
        #expect(logs.count == 1 && logs[0].hasPrefix("run_" + ListingFetchTests.today()))
        let log = try String(contentsOfFile: dir + "/logs/expired/photo-logs/gps/" + (logs.first ?? "none"), encoding: .utf8)
        let lines = log.split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines[1].contains(#""status":404"#) && lines[1].contains(#""error":"not found""#))
        #expect(lines[2].contains("not an image (text/html"))
        #expect(lines[3].contains(#""status":"timeout""#))
        #expect(lines[5].contains("cannot be a file name"))
        let index = try String(contentsOfFile: dir + "/logs/expired/photo-logs/gps/skip_index.json", encoding: .utf8)
        #expect(index.contains(#""A":{"url":"#) && index.contains(#""fetched_at":"2026-11-23T06:00:00Z""#))

        let before = server.requests.filter { $0.path == "/p/A.jpg" || $0.path == "/p/E.jpg" }.count
        let second = try Binaries.run("lead-fetch", args, in: dir)
        #expect(second.status == 0)
        #expect(second.stderr.contains(#""unchanged":2"#))
        #expect(server.requests.filter { $0.path == "/p/A.jpg" || $0.path == "/p/E.jpg" }.count == before,
                "an unchanged photo is not fetched again")
        let runLogs = try FileManager.default.contentsOfDirectory(atPath: dir + "/logs/expired/photo-logs/gps").filter { $0.hasPrefix("run_") }
        #expect(runLogs.count == 2, "the second run has a log of its own: \(runLogs)")
    }
}
