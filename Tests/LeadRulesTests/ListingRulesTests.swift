import Foundation
import LeadRules
import StageKit
import Testing

let repoStages: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path + "/stages"
}()

func rules() throws -> ListingRules { try ListingRules.load(directory: repoStages + "/fetch") }

func flattener(_ pipeline: String) throws -> ListingFlattener {
    let r = try rules()
    return ListingFlattener(
        pipeline: try r.pipeline(pipeline),
        fields: try ListingFlattener.loadFields(repoStages + "/flatten/listing-fields.csv"),
        tracking: try ListingFlattener.loadTracking(repoStages + "/flatten/listing-tracking.csv"),
        retention: try RetentionRule.load(repoStages + "/cleanup/retention.csv"),
        photoSizes: r.settings.photoSizes)
}

func parse(_ json: String) -> Record { JSONValue(parsing: json)!.object! }

let now = Timestamp(iso8601: "2026-11-23T06:00:00Z")!

@Suite struct ListingRulesTests {
    @Test func sparkFilterIsTheSeedsFilter() throws {
        #expect(try rules().pipeline("expired-gps").sparkFilter(now: now) ==
                "MlsId Eq '20190211172710340762000000' And (PropertyType Eq 'A' Or PropertyType Eq 'B' Or PropertyType Eq 'C') And (StandardStatus Eq 'Expired' Or StandardStatus Eq 'Canceled') And StatusChangeTimestamp Ge 2026-08-25T00:00:00Z")
        #expect(try rules().pipeline("expired-crmls").sparkFilter(now: now).hasPrefix("MlsId Eq '20200218121507636729000000' And"))
        #expect(try rules().pipeline("active-gps").sparkFilter(now: now) ==
                "MlsId Eq '20190211172710340762000000' And (PropertyType Eq 'A' Or PropertyType Eq 'B' Or PropertyType Eq 'C') And StandardStatus Eq 'Active'")
        #expect(try rules().pipeline("closed-gps").sparkFilter(now: now).hasSuffix("StandardStatus Eq 'Closed' And CloseDate Ge 2026-08-25"))
    }

    @Test func windowCountsBackFromNowToMidnight() throws {
        let p = try rules().pipeline("expired-gps")
        #expect(p.windowStart(now: Timestamp(iso8601: "2026-11-23T23:59:59Z")!)?.iso8601 == "2026-08-25T00:00:00Z")
        #expect(p.windowStart(now: Timestamp(iso8601: "2026-11-24T00:00:00Z")!)?.iso8601 == "2026-08-26T00:00:00Z")
    }

    @Test func unknownPipelineIsAUsageError() throws {
        #expect(throws: StageError.self) { try rules().pipeline("expired-mars") }
    }

    @Test func malformedRulesNameFileAndLine() throws {
        let dir = NSTemporaryDirectory() + "rules-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "mls,mls_id\ngps,1\n".write(toFile: dir + "/mls.csv", atomically: true, encoding: .utf8)
        try "pipeline,kind,mls,spark_property_types,statuses\nx,expired,nope,A,Expired\n"
            .write(toFile: dir + "/listing-pipelines.csv", atomically: true, encoding: .utf8)
        #expect(throws: StageError.rules(file: dir + "/listing-pipelines.csv", line: 2, message: "unknown MLS 'nope' (see mls.csv)")) {
            try ListingRules.load(directory: dir)
        }
    }

    /// An MLS reached by OriginatingSystemName, and one under MLS Grid's replication rules.
    @Test func resoServersOfMLSRows() throws {
        let dir = NSTemporaryDirectory() + "rules-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try """
        mls,mls_id,name,reso_root,auth,token_env,token_url,client_id_env,client_secret_env,scope,originating_system,replication
        nw,,Northwest,https://reso.example/odata/,bearer,NW_TOKEN,,,,,nwmls,
        grid,,Grid,https://api.mlsgrid.com/v2,oauth2,,https://auth.example/token,ID,SECRET,api,actris,mlsgrid

        """.write(toFile: dir + "/mls.csv", atomically: true, encoding: .utf8)
        try """
        pipeline,kind,mls,spark_property_types,reso_property_types,statuses,date_field,date_type,window_days
        expired-nw,expired,nw,,Residential,Expired,StatusChangeTimestamp,timestamp,90
        expired-grid,expired,grid,,Residential,Expired|Canceled,StatusChangeTimestamp,timestamp,90

        """.write(toFile: dir + "/listing-pipelines.csv", atomically: true, encoding: .utf8)
        try "setting,value\n".write(toFile: dir + "/settings.csv", atomically: true, encoding: .utf8)
        let rules = try ListingRules.load(directory: dir)
        let nw = try rules.pipeline("expired-nw")
        #expect(nw.server.resoRoot == "https://reso.example/odata" && nw.server.tokenVariable == "NW_TOKEN")
        #expect(nw.resoFilter(now: now) == "OriginatingSystemName eq 'nwmls' and PropertyType eq 'Residential' and StandardStatus eq 'Expired' and StatusChangeTimestamp ge 2026-08-25T00:00:00Z")
        let mark = Timestamp(iso8601: "2026-11-20T10:00:00Z")!
        #expect(nw.resoFilter(now: now, modifiedAfter: mark).hasSuffix(" and ModificationTimestamp gt 2026-11-20T10:00:00Z"))
        let grid = try rules.pipeline("expired-grid")
        #expect(grid.server.auth == .oauth2 && grid.server.replication == .mlsgrid && grid.server.scope == "api")
        #expect(grid.resoFilter(now: now) == "OriginatingSystemName eq 'actris' and MlgCanView eq true and ModificationTimestamp gt 2026-08-25T00:00:00Z")
        #expect(grid.resoFilter(now: now, modifiedAfter: mark) == "OriginatingSystemName eq 'actris' and MlgCanView eq true and ModificationTimestamp gt 2026-11-20T10:00:00Z")
        let listing = { (status: String, type: String, changed: String) -> Record in
            JSONValue(parsing: #"{"StandardStatus":"\#(status)","PropertyType":"\#(type)","StatusChangeTimestamp":"\#(changed)"}"#)!.object!
        }
        #expect(grid.matches(listing("Canceled", "Residential", "2026-09-01T00:00:00Z"), now: now))
        #expect(!grid.matches(listing("Active", "Residential", "2026-09-01T00:00:00Z"), now: now))
        #expect(!grid.matches(listing("Expired", "Land", "2026-09-01T00:00:00Z"), now: now))
        #expect(!grid.matches(listing("Expired", "Residential", "2026-08-24T23:59:59Z"), now: now), "before the window")

        try "mls,mls_id,auth,token_url\nx,1,oauth2,https://a/token\n".write(toFile: dir + "/mls.csv", atomically: true, encoding: .utf8)
        #expect(throws: StageError.rules(file: dir + "/mls.csv", line: 2, message: "auth oauth2 needs token_url, client_id_env and client_secret_env")) {
            try ListingRules.load(directory: dir)
        }
        try "mls,mls_id,replication\nx,1,mlsgrid\n".write(toFile: dir + "/mls.csv", atomically: true, encoding: .utf8)
        #expect(throws: StageError.self) { try ListingRules.load(directory: dir) }
    }

    @Test func layoutIsTheSeedsTree() throws {
        let layout = ListingLayout(logs: "local-logs", pipeline: try rules().pipeline("expired-gps"))
        #expect(layout.raw == "local-logs/expired/gps/all_gps_expired_listings_with_expansions.jsonl")
        #expect(layout.flattened == "local-logs/expired/gps/flattened_gps_expired_listings.jsonl")
        #expect(layout.skipIndex == "local-logs/expired/photo-logs/gps/skip_index.json")
        #expect(layout.photosDirectory == "local-logs/expired/photos/gps")
        #expect(layout.photoRunLog(started: now) == "local-logs/expired/photo-logs/gps/run_20261123-060000.jsonl")
        #expect(layout.photoRunLog(started: now, sequence: 2) == "local-logs/expired/photo-logs/gps/run_20261123-060000-2.jsonl")
    }
}

@Suite struct ListingFlattenerTests {
    @Test(arguments: [
        ("\"50000.0\"", ListingFieldType.number, "50000.0"), ("\" -116.3237\"", .number, "-116.3237"),
        ("\"1,250\"", .number, "null"), ("\"\"", .number, "null"), ("12.5", .number, "12.5"),
        ("\"3.0\"", .integer, "3"), ("\"3.5\"", .integer, "null"), ("\"0x1F\"", .number, "null"), ("\"inf\"", .number, "null"),
        ("\"2026-10-01T05:00:00-07:00\"", .timestamp, "\"2026-10-01T12:00:00Z\""), ("\"yesterday\"", .timestamp, "null"),
        ("\"2026-10-01\"", .date, "\"2026-10-01\""), ("\"2026-10-01T23:00:00Z\"", .date, "\"2026-10-01\""),
        ("7298", .string, "\"7298\""), ("\"Y\"", .boolean, "true"), ("\"********\"", .number, "null"),
    ])
    func coercion(_ input: String, _ type: ListingFieldType, _ output: String) {
        let result = ListingFlattener.coerce(JSONValue(parsing: input), to: type)
        switch result {
        case .success(let v): #expect(v.json == output)
        case .failure: #expect(output == "null")
        }
    }

    @Test func sparkListingBecomesAFlatLead() throws {
        let raw = parse(#"{"Id":"K1","StandardFields":{"ListingKey":"K1","ListPrice":"50000.0","Latitude":" 48.7001","BedsTotal":3,"BathsTotal":"1.0","BuildingAreaTotal":"924.0","DaysOnMarket":"N/A","StatusChangeTimestamp":"2026-10-01T12:00:00Z","Photos":[{"Primary":false,"UriLarge":"a.jpg"},{"Primary":true,"Uri300":"small.jpg","UriLarge":"b.jpg"}]}}"#)
        let flat = try flattener("expired-gps").flatten(raw)
        #expect(flat["ListPrice"]?.json == "50000.0", "a fractional field is a double in every row")
        #expect(flat["Latitude"]?.double == 48.7001)
        #expect(flat["BedroomsTotal"]?.int == 3)
        #expect(flat["LivingArea"]?.int == 924)
        #expect(flat["DaysOnMarket"]?.isNull == true)
        #expect(flat["coercionErrors"]?.object?["DaysOnMarket"]?.string == "'N/A' is not a whole number")
        #expect(flat["PrimaryPhotoUrl"]?.string == "b.jpg")
        #expect(flat["PhotoCount"]?.int == 2)
        #expect(flat["source"]?.string == "gps" && flat["pipeline"]?.string == "expired-gps")
        #expect(flat["leadStatus"]?.string == "new" && flat["skipTraced"]?.bool == false && flat["ownerName"]?.isNull == true)
        #expect(flat["expiresAt"]?.string == "2026-12-30T12:00:00Z")
        let keys = flat.keys
        #expect(keys.firstIndex(of: "PublicRemarks")! < keys.firstIndex(of: "PrimaryPhotoUrl")!)
        #expect(keys.suffix(2) == ["expiresAt", "coercionErrors"])
    }

    @Test func resoPropertyUsesMediaOrder() throws {
        let raw = parse(#"{"ListingKey":"R1","ListPrice":410000,"StatusChangeTimestamp":"2026-10-01T12:00:00Z","Media":[{"MediaURL":"doc.pdf","MediaCategory":"Document","Order":0},{"MediaURL":"two.jpg","Order":2},{"MediaURL":"one.jpg","Order":1,"MediaCategory":"Photo"}]}"#)
        let flat = try flattener("expired-crmls").flatten(raw)
        #expect(flat["PrimaryPhotoUrl"]?.string == "one.jpg")
        #expect(flat["PhotoCount"]?.int == 2)
        #expect(flat["ListingKey"]?.string == "R1" && flat["ListPrice"]?.int == 410000)
    }

    @Test func rejectsWithoutKeyOrUsableTimestamp() throws {
        let f = try flattener("expired-gps")
        #expect(throws: RecordRejected.self) { try f.flatten(parse(#"{"StandardFields":{"City":"Mesa"}}"#)) }
        #expect(throws: RecordRejected.self) { try f.flatten(parse(#"{"Id":"K","StandardFields":{"StatusChangeTimestamp":"soon"}}"#)) }
        #expect(throws: RecordRejected.self) { try f.flatten(parse(#"{"Id":"K","StandardFields":{}}"#)) }
        let active = try flattener("active-gps").flatten(parse(#"{"Id":"K","StandardFields":{}}"#))
        #expect(active["expiresAt"] == nil && active["leadStatus"] == nil, "active listings carry no lead tracking")
    }

    @Test func carryOverKeepsWhatAPersonRecorded() throws {
        let f = try flattener("expired-gps")
        var fresh = try f.flatten(parse(#"{"Id":"K","StandardFields":{"StatusChangeTimestamp":"2026-10-01T12:00:00Z","ListPrice":"1"}}"#))
        let before = parse(#"{"ListingKey":"K","ListPrice":999,"leadStatus":"contacted","skipTraced":true,"ownerName":"Ann Lee","notes":"call after 5","expiresAt":"2020-01-01T00:00:00Z"}"#)
        f.carryOver(from: before, into: &fresh)
        #expect(fresh["leadStatus"]?.string == "contacted" && fresh["skipTraced"]?.bool == true)
        #expect(fresh["ownerName"]?.string == "Ann Lee" && fresh["notes"]?.string == "call after 5")
        #expect(fresh["ListPrice"]?.int == 1, "listing fields come from the fresh fetch")
        #expect(fresh["expiresAt"]?.string == "2026-12-30T12:00:00Z", "expiresAt is recomputed")
    }

    @Test func retention() {
        #expect(ListingRetention.isExpired(parse(#"{"expiresAt":"2026-11-23T05:59:59Z"}"#), now: now))
        #expect(!ListingRetention.isExpired(parse(#"{"expiresAt":"2026-11-23T06:00:00Z"}"#), now: now))
        #expect(!ListingRetention.isExpired(parse(#"{"expiresAt":"garbage"}"#), now: now))
    }
}
