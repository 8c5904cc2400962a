import Foundation
import TestSupport
import Testing

/// Credentials stay with their host: every fetcher against a server on 127.0.0.1 that points
/// elsewhere (a redirect, a next link) to a second server on 127.0.0.2, "another host", which
/// must never see a request, let alone a token. And a runaway response is refused.
@Suite(.serialized) struct CredentialTests {
    func rules(maxResponseMB: Double? = nil) throws -> String {
        let dir = try Binaries.scratch("cred-rules")
        for file in ["mls.csv", "listing-pipelines.csv", "permit-sources.csv"] {
            try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/stages/fetch/" + file, toPath: dir + "/" + file)
        }
        var settings = "setting,value\nrate_per_second,100\npage_size,3\nmax_attempts,2\nbackoff_base_seconds,0.05\nbackoff_max_seconds,0.1\ntimeout_seconds,5\n"
        if let maxResponseMB { settings += "max_response_mb,\(maxResponseMB)\n" }
        try settings.write(toFile: dir + "/settings.csv", atomically: true, encoding: .utf8)
        try "setting,value\nlookback_days,10\nslice_days,30\npage_limit,2\n".write(toFile: dir + "/events.csv", atomically: true, encoding: .utf8)
        return dir
    }

    /// The other host: answers anything, and records what it was sent.
    func otherHost() throws -> TestHTTPServer {
        try TestHTTPServer(address: "127.0.0.2") { _, _ in .json(#"{"D":{"Success":true,"Results":[]},"value":[],"results":[]}"#) }
    }

    func listings(_ server: TestHTTPServer, api: String, rules: String) throws -> Binaries.Result {
        let dir = try Binaries.scratch("cred")
        return try Binaries.run("lead-fetch", ["listings", "--pipeline", "expired-gps", "--api", api,
                                               "--base-url", server.baseURL + (api == "reso" ? "/Reso/OData" : ""),
                                               "--rules", rules, "--now", "2026-11-23T06:00:00Z", "-o", "out.jsonl"],
                                in: dir, environment: ["SPARK_API_TOKEN": "secret-token"])
    }

    @Test func aSparkRedirectToAnotherHostIsRefused() throws {
        let other = try otherHost()
        defer { other.stop() }
        let server = try TestHTTPServer { request, _ in
            .respond(status: 302, headers: ["Location": other.baseURL + request.target], body: [])
        }
        defer { server.stop() }
        let result = try listings(server, api: "spark", rules: try rules())
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("127.0.0.2") && result.stderr.contains("127.0.0.1") && result.stderr.contains("credentials stay"),
                "\(result.stderr)")
        #expect(other.requests.isEmpty, "the other host was asked: \(other.requests.map(\.headers))")
    }

    @Test func aRedirectWithinTheHostIsFollowedWithTheToken() throws {
        let server = try TestHTTPServer { request, _ in
            if request.path == "/v1/listings" {
                return .respond(status: 301, headers: ["Location": "/moved" + request.target], body: [])
            }
            guard request.headers["authorization"] == "Bearer secret-token" else { return .json("{}", status: 401) }
            return .json(#"{"D":{"Success":true,"Results":[{"Id":"K1","StandardFields":{"ListingKey":"K1"}}],"Pagination":{"TotalPages":1,"CurrentPage":1}}}"#)
        }
        defer { server.stop() }
        let result = try listings(server, api: "spark", rules: try rules())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(server.requests.map(\.path) == ["/v1/listings", "/moved/v1/listings"])
    }

    @Test func aResoNextLinkToAnotherHostIsRefused() throws {
        let other = try otherHost()
        defer { other.stop() }
        let server = try TestHTTPServer { _, _ in
            .json(#"{"value":[{"ListingKey":"R1"}],"@odata.nextLink":"\#(other.baseURL)/Reso/OData/Property?$skip=3"}"#)
        }
        defer { server.stop() }
        let result = try listings(server, api: "reso", rules: try rules())
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("127.0.0.2"), "\(result.stderr)")
        #expect(other.requests.isEmpty)
    }

    @Test func aSocrataRedirectToAnotherHostKeepsTheAppToken() throws {
        let other = try otherHost()
        defer { other.stop() }
        let server = try TestHTTPServer { request, _ in
            .respond(status: 307, headers: ["Location": other.baseURL + request.target], body: [])
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("cred-socrata")
        let result = try Binaries.run("lead-fetch", ["permits", "--source", "austin", "--url", server.baseURL + "/resource/x.json",
                                                     "--state", "state.json", "--rules", try rules(), "-o", "out.jsonl"],
                                      in: dir, environment: ["SOCRATA_APP_TOKEN": "app-secret"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(other.requests.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir + "/state.json"), "a refused fetch moves no watermark")
    }

    @Test func aPostHogNextPageOnAnotherHostIsRefused() throws {
        let other = try otherHost()
        defer { other.stop() }
        let server = try TestHTTPServer { _, _ in
            .json(#"{"results":[],"next":"\#(other.baseURL)/api/projects/42/events/?offset=2"}"#)
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("cred-posthog")
        let result = try Binaries.run("lead-fetch", ["events", "--source", "posthog", "--endpoint", "events", "--project", "42", "--base-url", server.baseURL,
                                                     "--state", "state.json", "--rules", try rules(), "--now", "2025-01-16T12:00:00Z",
                                                     "-o", "out.jsonl"],
                                      in: dir, environment: ["POSTHOG_API_KEY": "phx_secret"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(other.requests.isEmpty)
    }

    @Test func aPostHogQueryRedirectedToAnotherHostKeepsTheKey() throws {
        let other = try otherHost()
        defer { other.stop() }
        let server = try TestHTTPServer { request, _ in
            .respond(status: 307, headers: ["Location": other.baseURL + request.target], body: [])
        }
        defer { server.stop() }
        let dir = try Binaries.scratch("cred-posthog-query")
        let result = try Binaries.run("lead-fetch", ["events", "--source", "posthog", "--project", "42", "--base-url", server.baseURL,
                                                     "--state", "state.json", "--rules", try rules(), "--now", "2025-01-16T12:00:00Z",
                                                     "-o", "out.jsonl"],
                                      in: dir, environment: ["POSTHOG_API_KEY": "phx_secret"])
        #expect(result.status == 3 && result.stderr.contains("refused, the credentials stay with 127.0.0.1"), "\(result.stderr)")
        #expect(other.requests.isEmpty)
        #expect(server.requests.first?.method == "POST")
    }

    @Test func aResponseLargerThanTheLimitIsRefused() throws {
        let big = [UInt8](repeating: 32, count: 3 << 20)
        let server = try TestHTTPServer { _, _ in .respond(status: 200, headers: ["Content-Type": "application/json"], body: big) }
        defer { server.stop() }
        let result = try listings(server, api: "spark", rules: try rules(maxResponseMB: 1))
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("larger than 1 MB"), "\(result.stderr)")
        #expect(server.requests.count == 1, "a refused response is not asked for again")
    }
}
