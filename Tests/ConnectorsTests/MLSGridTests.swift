import Foundation
import TestSupport
import Testing

/// `lead-fetch listings --api reso` against a server on 127.0.0.1 shaped like MLS Grid: the
/// OData root is `/v2`, a token comes from an OAuth2 client-credentials endpoint and is
/// revoked after a few requests, replication filters only by OriginatingSystemName,
/// MlgCanView and ModificationTimestamp, next links are absolute with `$skip`, and Media
/// come in no particular order, each with its `Order`.
@Suite(.serialized) struct MLSGridTests {
    static let clientID = "client-4411"
    static let secret = "s3cret-client-9c1e"

    /// A copy of stages/ whose mls.csv reaches `actris` at the server with OAuth2, with an
    /// expired-actris pipeline and quick retries.
    static func stages(_ server: TestHTTPServer) throws -> String {
        let dir = try Binaries.scratch("mlsgrid-stages") + "/stages"
        try FileManager.default.copyItem(atPath: Binaries.repoRoot + "/stages", toPath: dir)
        try """
        mls,mls_id,name,reso_root,auth,token_url,client_id_env,client_secret_env,scope,originating_system,replication
        actris,,ACTRIS (test),\(server.baseURL)/v2,oauth2,\(server.baseURL)/oauth/token,GRID_CLIENT_ID,GRID_CLIENT_SECRET,api,actris,mlsgrid

        """.write(toFile: dir + "/fetch/mls.csv", atomically: true, encoding: .utf8)
        try """
        pipeline,kind,mls,spark_property_types,reso_property_types,statuses,date_field,date_type,window_days,expand,photos
        expired-actris,expired,actris,,Residential|Land,Expired|Canceled,StatusChangeTimestamp,timestamp,90,Media,yes

        """.write(toFile: dir + "/fetch/listing-pipelines.csv", atomically: true, encoding: .utf8)
        try "setting,value\nrate_per_second,50\npage_size,2\nmax_attempts,3\nbackoff_base_seconds,0.05\nbackoff_max_seconds,0.2\ntimeout_seconds,2\n"
            .write(toFile: dir + "/fetch/settings.csv", atomically: true, encoding: .utf8)
        return dir
    }

    static func property(_ key: String, status: String, type: String = "Residential", changed: String, modified: String) -> String {
        // Media out of order: the primary photo is the one with the lowest Order.
        #"{"ListingKey":"\#(key)","ListingId":"\#(key)","OriginatingSystemName":"actris","MlgCanView":true,"StandardStatus":"\#(status)","PropertyType":"\#(type)","StatusChangeTimestamp":"\#(changed)","ModificationTimestamp":"\#(modified)","ListPrice":450000,"City":"Austin","Media":[{"MediaKey":"\#(key)-c","MediaURL":"https://media.example/\#(key)-3.jpg","Order":3},{"MediaKey":"\#(key)-a","MediaURL":"https://media.example/\#(key)-1.jpg","Order":1},{"MediaKey":"\#(key)-b","MediaURL":"https://media.example/\#(key)-2.jpg","Order":2}]}"#
    }

    /// The server's world: what it holds, which tokens it issued, what it was asked.
    final class Grid: @unchecked Sendable {
        let lock = NSLock()
        var properties: [String] = []
        var issued = 0
        var usesOfToken: [String: Int] = [:]
        var problems: [String] = []

        func handle(_ request: TestHTTPServer.Request, port: String) -> TestHTTPServer.Reply {
            lock.lock()
            defer { lock.unlock() }
            if request.path == "/oauth/token" {
                let form = String(decoding: request.body, as: UTF8.self)
                guard request.method == "POST", form.contains("grant_type=client_credentials"),
                      form.contains("client_id=\(MLSGridTests.clientID)"), form.contains("client_secret=\(MLSGridTests.secret)"),
                      form.contains("scope=api") else {
                    problems.append("token request: \(request.method) \(form)")
                    return .json(#"{"error":"invalid_client"}"#, status: 401)
                }
                issued += 1
                return .json(#"{"access_token":"tok-\#(issued)-zz","token_type":"Bearer","expires_in":3600}"#)
            }
            guard request.path == "/v2/Property" else { return .json("{}", status: 404) }
            // Every token is revoked after two requests: the client must fetch another.
            let auth = request.headers["authorization"] ?? ""
            guard auth == "Bearer tok-\(issued)-zz", (usesOfToken[auth] ?? 0) < 2 else {
                return .json(#"{"error":{"code":"401","message":"token expired"}}"#, status: 401)
            }
            usesOfToken[auth, default: 0] += 1
            guard let filter = request.query("$filter"), request.query("$expand") == "Media",
                  let top = request.query("$top").flatMap({ Int($0) }) else {
                problems.append("bad query \(request.target)")
                return .json(#"{"error":{"code":"400","message":"bad query"}}"#, status: 400)
            }
            // Replication allows no other field in the filter.
            let allowed = ["OriginatingSystemName eq 'actris'", "MlgCanView eq true"]
            let terms = filter.components(separatedBy: " and ")
            guard Array(terms.prefix(2)) == allowed, terms.count == 3, terms[2].hasPrefix("ModificationTimestamp gt ") else {
                problems.append("filter \(filter)")
                return .json(#"{"error":{"code":"400","message":"filter not allowed for replication"}}"#, status: 400)
            }
            let since = String(terms[2].dropFirst("ModificationTimestamp gt ".count))
            let matching = properties.filter { p in
                let modified = p.components(separatedBy: #""ModificationTimestamp":""#)[1].prefix(20)
                return String(modified) > since
            }
            let skip = request.query("$skip").flatMap { Int($0) } ?? 0
            let page = Array(matching.dropFirst(skip).prefix(top))
            var body = #"{"@odata.context":"https://api.mlsgrid.com/v2/$metadata#Property","value":[\#(page.joined(separator: ","))]"#
            if skip + top < matching.count {
                var next = URLComponents()
                next.queryItems = [URLQueryItem(name: "$filter", value: filter), URLQueryItem(name: "$expand", value: "Media"),
                                   URLQueryItem(name: "$top", value: String(top)), URLQueryItem(name: "$skip", value: String(skip + top))]
                body += #","@odata.nextLink":"http://127.0.0.1:\#(port)/v2/Property\#(next.percentEncodedQuery.map { "?" + $0 } ?? "")""#
            }
            return .json(body + "}")
        }
    }

    func fetch(_ stages: String, in dir: String) throws -> Binaries.Result {
        try Binaries.run("lead-fetch", ["listings", "--pipeline", "expired-actris", "--api", "reso", "--now", "2026-11-23T06:00:00Z",
                                        "--watermark", "watermark.json", "--state", "fetch_state.json", "-o", "raw.jsonl"],
                         in: dir, environment: ["LEAD_STAGES": stages, "GRID_CLIENT_ID": MLSGridTests.clientID,
                                                "GRID_CLIENT_SECRET": MLSGridTests.secret])
    }

    @Test func replicationWithOAuthAndAWatermark() throws {
        let grid = Grid()
        grid.properties = [
            MLSGridTests.property("G1", status: "Expired", changed: "2026-10-01T12:00:00Z", modified: "2026-10-02T00:00:00Z"),
            MLSGridTests.property("G2", status: "Active", changed: "2026-11-01T12:00:00Z", modified: "2026-11-01T12:00:00Z"),
            MLSGridTests.property("G3", status: "Expired", type: "Commercial Sale", changed: "2026-10-05T00:00:00Z", modified: "2026-10-05T00:00:00Z"),
            MLSGridTests.property("G4", status: "Canceled", changed: "2026-11-19T08:00:00Z", modified: "2026-11-20T10:00:00Z"),
            MLSGridTests.property("G5", status: "Expired", changed: "2026-06-01T00:00:00Z", modified: "2026-09-01T00:00:00Z"),
        ]
        let server = try TestHTTPServer { request, _ in grid.handle(request, port: request.headers["host"]!.split(separator: ":").last.map(String.init)!) }
        defer { server.stop() }
        let stages = try MLSGridTests.stages(server)
        let dir = try Binaries.scratch("mlsgrid")

        let first = try fetch(stages, in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(grid.problems.isEmpty, "\(grid.problems)")
        let keys = try String(contentsOfFile: dir + "/raw.jsonl", encoding: .utf8).split(separator: "\n")
            .map { String($0.split(separator: ",")[0]) }
        #expect(keys == [#"{"ListingKey":"G1""#, #"{"ListingKey":"G4""#], "only the pipeline's listings are kept")
        #expect(first.stderr.contains(#""not_in_pipeline":3"#) && first.stderr.contains(#""watermark":"2026-11-20T10:00:00Z""#), "\(first.stderr)")
        // A first run reaches back the pipeline's window; pages follow the absolute next links.
        let asked = server.requests.filter { $0.path == "/v2/Property" && $0.headers["authorization"] != nil }
        #expect(asked.first?.query("$filter") == "OriginatingSystemName eq 'actris' and MlgCanView eq true and ModificationTimestamp gt 2026-08-25T00:00:00Z")
        #expect(Set(asked.map { $0.query("$skip") ?? "0" }) == ["0", "2", "4"])
        // Three pages and one revoked token: two tokens, each asked for once.
        #expect(grid.issued == 2, "a 401 gets one new token")
        #expect(server.requests.filter { $0.path == "/oauth/token" }.count == 2)

        // The next run asks only for what changed since the watermark.
        grid.lock.lock()
        grid.properties.append(MLSGridTests.property("G6", status: "Expired", changed: "2026-11-22T09:00:00Z", modified: "2026-11-22T09:30:00Z"))
        grid.lock.unlock()
        let second = try fetch(stages, in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        let last = try #require(server.requests.last { $0.path == "/v2/Property" })
        #expect(last.query("$filter")?.hasSuffix("ModificationTimestamp gt 2026-11-20T10:00:00Z") == true, "\(last.target)")
        #expect(try String(contentsOfFile: dir + "/raw.jsonl", encoding: .utf8).hasPrefix(#"{"ListingKey":"G6""#))
        let mark = try String(contentsOfFile: dir + "/watermark.json", encoding: .utf8)
        #expect(mark.contains(#""source":"expired-actris","watermark":"2026-11-22T09:30:00Z""#), "\(mark)")

        // The primary photo is the Media item with the lowest Order.
        let flat = try Binaries.run("lead-flatten", ["listings", "--pipeline", "expired-actris", "--now", "2026-11-23T06:00:00Z", "raw.jsonl"],
                                    in: dir, environment: ["LEAD_STAGES": stages])
        #expect(flat.status == 0, "\(flat.stderr)")
        #expect(flat.stdout.contains(#""PrimaryPhotoUrl":"https://media.example/G6-1.jpg""#) && flat.stdout.contains(#""PhotoCount":3"#), "\(flat.stdout)")

        // Neither the secret nor a token is ever printed or written.
        let written = try FileManager.default.contentsOfDirectory(atPath: dir).map { try String(contentsOfFile: dir + "/" + $0, encoding: .utf8) }
        for text in [first.stderr, second.stderr, first.stdout] + written {
            #expect(!text.contains(MLSGridTests.secret) && !text.contains("tok-"), "\(text.prefix(300))")
        }
        // The secret went to the token URL only; the token to the API only.
        #expect(server.requests.allSatisfy { $0.path == "/oauth/token" || !String(decoding: $0.body, as: UTF8.self).contains(MLSGridTests.secret) })
        #expect(server.requests.filter { $0.path == "/oauth/token" }.allSatisfy { $0.headers["authorization"] == nil })
    }

    @Test func aRefusedTokenRequestSaysWhichVariablesToCheck() throws {
        let grid = Grid()
        let server = try TestHTTPServer { request, _ in grid.handle(request, port: "0") }
        defer { server.stop() }
        let stages = try MLSGridTests.stages(server)
        let dir = try Binaries.scratch("mlsgrid-refused")
        let result = try Binaries.run("lead-fetch", ["listings", "--pipeline", "expired-actris", "--api", "reso", "--now", "2026-11-23T06:00:00Z", "-o", "raw.jsonl"],
                                      in: dir, environment: ["LEAD_STAGES": stages, "GRID_CLIENT_ID": "wrong", "GRID_CLIENT_SECRET": "wrong-secret-77"])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("the token request was refused: HTTP 401 (invalid_client)"), "\(result.stderr)")
        #expect(!result.stderr.contains("wrong-secret-77"))
        let unset = try Binaries.run("lead-fetch", ["listings", "--pipeline", "expired-actris", "--api", "reso", "-o", "raw.jsonl"],
                                     in: dir, environment: ["LEAD_STAGES": stages])
        #expect(unset.status == 2 && unset.stderr.contains("GRID_CLIENT_ID is not set"), "\(unset.stderr)")
        #expect(server.requests.filter { $0.path == "/v2/Property" }.isEmpty)
    }
}
