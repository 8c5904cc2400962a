import Foundation
import LeadRules
import StageKit
import Testing

/// Rules written for a test, so the tests say the numbers they check and do not move when
/// the shipped rules are tuned.
func rulesFile(_ name: String, _ text: String) -> String {
    let dir = NSTemporaryDirectory() + "leadetl-rules-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/" + name
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    return path
}

func t(_ text: String) -> Timestamp { Timestamp(iso8601: text)! }

/// A small catalogue: Foreclosure 1000 points for 180 days, Vacant 600 for 120 with aliases,
/// High Equity 300 forever, the absentee tags and Expired Listing.
let catalogue = try! TagCatalogue.load(rulesFile("tags.csv", """
    name,base_score,expiration_days,description,aliases
    Foreclosure,1000,180,,Pre-Foreclosure|NOD
    Vacant,600,120,,Vacancy|Vacant Home
    High Equity,300,,,
    Absentee In-County,300,,,
    Absentee Out-of-County,400,,,
    Absentee Out-of-State,500,,,
    Absentee,300,,,
    Expired Listing,800,90,,
    """))

let counties = ZIPCodes(counties: ["78701": ("TRAVIS", "TX"), "78704": ("TRAVIS", "TX"), "78664": ("WILLIAMSON", "TX"),
                                     "78626": ("WILLIAMSON", "TX")])

let derived = try! DerivedTag.load(rulesFile("derived.csv", """
    tag,when,assigned_at
    Absentee In-County,absentee() == 'in-county',
    Absentee Out-of-County,absentee() == 'out-of-county',
    Absentee Out-of-State,absentee() == 'out-of-state',
    Absentee,absentee() == 'unknown-county',
    Expired Listing,"StandardStatus in ['Expired', 'Canceled']",StatusChangeTimestamp
    """), catalogue: catalogue)

@Suite struct ColumnMapTests {
    static let map = try! ColumnMap.load(rulesFile("leads-acme.csv", """
        field,column,format
        property_address,House+Street+Unit
        property_city,City
        property_state,\"\"\"TX\"\"\"
        property_zip,Zip
        owner_name,Owner
        tags,Tags,list
        tag_date,Added,date:MM/dd/yyyy
        amount_due,Owed,money
        years,Years,int
        dnama,DNAMA,bool
        """))

    func lead(_ row: [String: String]) throws -> Record {
        try ColumnMapTests.map.lead(value: { row[$0].map { .string($0) } }, passThrough: [("Parcel", .string("P1"))],
                                    source: "acme", now: t("2026-11-23T06:00:00Z"))
    }

    @Test func joinsColumnsReadsFormatsAndDatesTheTags() throws {
        let r = try lead(["House": "12", "Street": " Oak St ", "Unit": "", "City": "Austin", "Zip": "78701",
                          "Owner": "Ann", "Tags": "Vacant|vacant|NOD", "Added": "03/15/2026", "Owed": "$1,250.50",
                          "Years": "3", "DNAMA": "Y"])
        #expect(r.text("property_address") == "12 Oak St")
        #expect(r.text("property_state") == "TX")
        #expect(r.text("source") == "acme")
        #expect(r["amount_due"]?.double == 1250.5)
        #expect(r["years"]?.int == 3)
        #expect(r["dnama"]?.bool == true)
        #expect(r["Parcel"]?.string == "P1")
        let tags = r["tags"]!.array!.map { $0.object! }
        #expect(tags.map { $0.text("tag") } == ["Vacant", "NOD"], "the same tag twice in one row is one assignment")
        #expect(tags.allSatisfy { $0.text("assigned_at") == "2026-03-15T00:00:00Z" && $0.text("via") == "import:acme" })
        #expect(r.keys.prefix(LeadFields.canonical.count) == ArraySlice(LeadFields.canonical))
    }

    @Test func moneyForms() throws {
        for (text, value) in [("(12.00)", -12.0), ("1,000", 1000.0), ("$0.5", 0.5), ("-3", -3.0)] {
            #expect(try lead(["Owed": text])["amount_due"]?.double == value, "\(text)")
        }
        #expect(try lead(["Owed": ""])["amount_due"]?.isNull == true, "an empty amount is null, not 0")
    }

    @Test func unreadableValuesNameTheColumnAndFormat() {
        func problem(_ row: [String: String]) -> String? {
            do { _ = try lead(row); return nil } catch let error as RecordRejected { return error.reason } catch { return "\(error)" }
        }
        #expect(problem(["Added": "02/30/2026"]) == "column 'Added' (tag_date): '02/30/2026' does not match the date pattern MM/dd/yyyy")
        #expect(problem(["Owed": "$12.3.4"]) == "column 'Owed' (amount_due): '$12.3.4' is not an amount of money")
        #expect(problem(["Years": "two"]) == "column 'Years' (years): 'two' is not a whole number")
        #expect(problem(["DNAMA": "maybe"]) == "column 'DNAMA' (dnama): 'maybe' is not yes or no")
    }

    @Test func headerCheckNamesTheMissingColumn() {
        #expect(ColumnMapTests.map.check(header: ["House", "Street", "Unit", "City", "Zip", "Owner", "Tags", "Added", "Owed", "Years", "DNAMA"]) == nil)
        #expect(ColumnMapTests.map.check(header: ["Street"])?.contains("'House'") == true)
    }

    @Test func badMapsAreRulesErrors() {
        #expect(throws: StageError.self) { try ColumnMap.load(rulesFile("bad1.csv", "field,column,format\ntags,Tags,money\n")) }
        #expect(throws: StageError.self) { try ColumnMap.load(rulesFile("bad2.csv", "field,column,format\nwhen,Added,date:QQ\n")) }
    }
}

@Suite struct DatePatternTests {
    @Test func patterns() {
        #expect(DatePattern("MM/dd/yyyy")?.parse("03/15/2026")?.description == "2026-03-15")
        #expect(DatePattern("M/d/yyyy")?.parse("3/5/2026")?.description == "2026-03-05")
        #expect(DatePattern("M/d/yy")?.parse("12/31/68")?.description == "2068-12-31")
        #expect(DatePattern("M/d/yy")?.parse("1/1/69")?.description == "1969-01-01")
        #expect(DatePattern("yyyyMMdd")?.parse("20260229") == nil, "2026 is no leap year")
        #expect(DatePattern("yyyyMMdd")?.parse("20240229")?.description == "2024-02-29")
        #expect(DatePattern("MM/dd/yyyy")?.parse("03/15/2026 00:00:00")?.description == "2026-03-15")
        #expect(DatePattern("MM/dd/yyyy")?.parse("3-15-2026") == nil)
        #expect(DatePattern("yyyy-MM") == nil, "a pattern needs a day")
        #expect(DatePattern("dd.MM.yyyy")?.parse("15.03.2026")?.description == "2026-03-15")
    }

    @Test func severalPatternsTheFirstThatReadsWins() throws {
        let p = try #require(DatePattern("yyyy-MM-dd|MM/dd/yy|M/d/yyyy"))
        #expect(p.parse("2016-03-09")?.description == "2016-03-09")
        #expect(p.parse("03/10/16")?.description == "2016-03-10")
        #expect(p.parse("3/1/2016")?.description == "2016-03-01", "MM/dd/yy does not read 3/1/2016; M/d/yyyy does")
        #expect(p.parse("03/10/2016")?.description == "2016-03-10", "not read as 2020 by MM/dd/yy: the rest must be a time")
        #expect(p.parse("10 March 2016") == nil)
        #expect(p.parse("2016-02-30") == nil, "no pattern makes a calendar date of it")
        #expect(DatePattern("yyyy-MM-dd|") == nil && DatePattern("yyyy-MM-dd|MM/yy") == nil, "every alternative must be a date pattern")
    }
}

@Suite struct LeadMergeTests {
    static var kept: Record { parse(#"{"address_key":"1 A ST|78701","owner_name":"","county":"Travis","mailing_address":"PO BOX 1","dnama":false,"tags":[{"tag":"Vacant","assigned_at":"2026-10-01T00:00:00Z"}],"created_at":"2026-10-01T00:00:00Z"}"#) }
    static var incoming: Record { parse(#"{"address_key":"1 A ST|78701","owner_name":"Ann","county":"Hays","mailing_address":"PO BOX 2","tags":[{"tag":"vacant","assigned_at":"2026-09-01T00:00:00Z"},{"tag":"Foreclosure","assigned_at":"2026-11-01T00:00:00Z"}],"created_at":"2026-11-23T00:00:00Z"}"#) }
    static let fields = ["mailing_address", "mailing_city"]

    @Test func mergeFillsEmptyFieldsAndUnitesTagsKeepingTheEarliest() {
        let out = LeadMerge(rules: DedupeRules(policy: .merge, dnamaFields: Self.fields)).merge(kept: Self.kept, incoming: Self.incoming)
        #expect(out.changed == ["owner_name", "tags"])
        #expect(out.lead.text("owner_name") == "Ann")
        #expect(out.lead.text("county") == "Travis")
        #expect(out.lead.text("created_at") == "2026-10-01T00:00:00Z", "created_at belongs to the kept lead")
        let tags = out.lead["tags"]!.array!.map { $0.object! }
        #expect(tags.map { $0.text("tag") } == ["vacant", "Foreclosure"])
        #expect(tags[0].text("assigned_at") == "2026-09-01T00:00:00Z")
    }

    @Test func updateLetsTheIncomingLeadWin() {
        let out = LeadMerge(rules: DedupeRules(policy: .update, dnamaFields: Self.fields)).merge(kept: Self.kept, incoming: Self.incoming)
        #expect(out.changed == ["owner_name", "county", "mailing_address", "tags"])
        #expect(out.lead.text("county") == "Hays")
        #expect(out.lead.text("mailing_address") == "PO BOX 2")
    }

    @Test func skipKeepsTheExistingLead() {
        let out = LeadMerge(rules: DedupeRules(policy: .skip, dnamaFields: Self.fields)).merge(kept: Self.kept, incoming: Self.incoming)
        #expect(out.changed.isEmpty)
        #expect(out.lead == Self.kept)
    }

    @Test func dnamaKeepsTheMailingAddressAndIsSticky() {
        var kept = Self.kept
        kept["dnama"] = .bool(true)
        var incoming = Self.incoming
        incoming["dnama"] = .bool(false)
        let out = LeadMerge(rules: DedupeRules(policy: .update, dnamaFields: Self.fields)).merge(kept: kept, incoming: incoming)
        #expect(out.lead.text("mailing_address") == "PO BOX 1")
        #expect(out.blocked.text("mailing_address") == "PO BOX 2")
        #expect(out.lead["dnama"]?.bool == true)
        #expect(!out.changed.contains("mailing_address"))
        // A duplicate can set DNAMA on a lead that did not have it.
        var asks = Self.incoming
        asks["dnama"] = .bool(true)
        let set = LeadMerge(rules: DedupeRules(policy: .merge, dnamaFields: Self.fields)).merge(kept: Self.kept, incoming: asks)
        #expect(set.lead["dnama"]?.bool == true)
        #expect(set.changed.contains("dnama"))
    }

    @Test func emptyValuesNeverOverwrite() {
        let incoming = parse(#"{"owner_name":"","county":null,"tags":[]}"#)
        let out = LeadMerge(rules: DedupeRules(policy: .update, dnamaFields: [])).merge(kept: Self.kept, incoming: incoming)
        #expect(out.changed.isEmpty)
    }

    @Test func policyFile() throws {
        let rules = try DedupeRules.load(rulesFile("dedupe.csv", "setting,value\non_duplicate,skip\ndnama_fields,mailing_address|mailing_zip\n"))
        #expect(rules.policy == .skip)
        #expect(rules.dnamaFields == ["mailing_address", "mailing_zip"])
        #expect(throws: StageError.self) { try DedupeRules.load(rulesFile("dedupe2.csv", "setting,value\non_duplicate,replace\n")) }
    }
}

@Suite struct AbsenteeTests {
    static let absentee = Absentee(zips: counties)

    func classify(_ json: String) -> String { Self.absentee.classify(parse(json)) }

    @Test func classes() {
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":""}"#) == "none")
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"1 A ST","mailing_zip":"78701","mailing_state":"TX"}"#) == "none")
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"78704","mailing_state":"TX"}"#) == "in-county")
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"78626","mailing_state":"TX"}"#) == "out-of-county")
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"80202","mailing_state":"CO"}"#) == "out-of-state")
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"75204","mailing_state":"TX"}"#) == "unknown-county")
        // The lead's own county fields win over the ZIP table, in any spelling.
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","county":"Travis County","mailing_address":"9 B ST","mailing_zip":"75204","mailing_state":"TX","mailing_county":"TRAVIS"}"#) == "in-county")
        // The same line in another ZIP is another address.
        #expect(classify(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"1 A ST","mailing_zip":"78704","mailing_state":"TX"}"#) == "in-county")
    }

    @Test func countyKeys() {
        #expect(Absentee.countyKey("Travis County") == "TRAVIS")
        #expect(Absentee.countyKey("st. john the baptist parish") == "SAINTJOHNTHEBAPTIST")
        #expect(Absentee.countyKey("St. Louis County") == Absentee.countyKey("Saint Louis"))
        #expect(Absentee.countyKey("DeKalb County") == Absentee.countyKey("De Kalb"))
        #expect(Absentee.countyKey("Juneau City and Borough") == "JUNEAU")
        // A Virginia city is not the county of the same name.
        #expect(Absentee.countyKey("Richmond city") != Absentee.countyKey("Richmond County"))
        #expect(Absentee.countyKey("County") == "COUNTY")
    }

    /// A table with place names, as zip-counties.csv carries them.
    static let places = PlaceNames(words: ["W": "WEST", "HLS": "HILLS", "ST": "SAINT"], prefixes: [["CITY", "OF"]])
    static let withPlaces = Absentee(zips: ZIPCodes([
        "78746": .init(county: "TRAVIS", state: "TX", places: ["AUSTIN", "WESTLAKEHILLS", "ROLLINGWOOD"].map(places.key)),
        "78701": .init(county: "TRAVIS", state: "TX", places: ["AUSTIN"]),
        "78209": .init(county: "BEXAR", state: "TX", places: ["SANANTONIO", "ALAMOHEIGHTS"]),
        "78212": .init(county: "BEXAR", state: "TX", places: ["SANANTONIO"]),
        "78130": .init(county: "COMAL", state: "TX", places: ["NEWBRAUNFELS"]),
        "63101": .init(county: "SAINTLOUISCITY", state: "MO", places: ["SAINTLOUIS"]),
    ], places: places))

    func named(_ json: String) -> String { Self.withPlaces.classify(parse(json)) }

    @Test func ownerOccupiedTolerance() {
        let unit = ##""property_address_parts":{"kind":"street","number":"12","street":"OAK","suffix":"ST","unit_type":"#","unit":"4"}"##
        let plain = ##""mailing_address_parts":{"kind":"street","number":"12","street":"OAK","suffix":"ST"}"##
        // A unit on one side only is the same address.
        #expect(named(##"{"property_address":"12 OAK ST # 4",\##(unit),"property_zip":"78212","property_state":"TX","mailing_address":"12 OAK ST",\##(plain),"mailing_zip":"78212","mailing_state":"TX"}"##) == "none")
        // Two different units are two addresses.
        let other = ##""mailing_address_parts":{"kind":"street","number":"12","street":"OAK","suffix":"ST","unit_type":"#","unit":"9"}"##
        #expect(named(##"{"property_address":"12 OAK ST # 4",\##(unit),"property_zip":"78212","property_state":"TX","mailing_address":"12 OAK ST # 9",\##(other),"mailing_zip":"78212","mailing_state":"TX"}"##) == "in-county")
        // ZIP+4 on one side.
        #expect(named(##"{"property_address":"1 A ST","property_zip":"78212","property_state":"TX","mailing_address":"1 A ST","mailing_zip":"78212-3301","mailing_state":"TX"}"##) == "none")
        // The mailing city is a name the property's ZIP is known by (no mailing ZIP), in any spelling.
        #expect(named(##"{"property_address":"1 A ST","property_city":"AUSTIN","property_zip":"78746","property_state":"TX","mailing_address":"1 A ST","mailing_city":"W LAKE HLS","mailing_state":"TX"}"##) == "none")
        #expect(named(##"{"property_address":"1 A ST","property_city":"ALAMO HEIGHTS","property_state":"TX","mailing_address":"1 A ST","mailing_city":"SAN ANTONIO","mailing_zip":"78209","mailing_state":"TX"}"##) == "none")
        #expect(named(##"{"property_address":"1 A ST","property_city":"CITY OF SAN ANTONIO","property_state":"TX","mailing_address":"1 A ST","mailing_city":"SAN ANTONIO","mailing_state":"TX"}"##) == "none")
        // The same line in another town is another address.
        #expect(named(##"{"property_address":"1 A ST","property_city":"SAN ANTONIO","property_zip":"78212","property_state":"TX","mailing_address":"1 A ST","mailing_city":"NEW BRAUNFELS","mailing_zip":"78130","mailing_state":"TX"}"##) == "out-of-county")
    }

    @Test func countiesFromTheTable() {
        // A mailing address without a state takes its ZIP's.
        #expect(named(#"{"property_address":"1 A ST","property_zip":"78212","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"63101"}"#) == "out-of-state")
        // Without a ZIP, a city whose ZIPs lie in one county gives the county.
        #expect(named(#"{"property_address":"1 A ST","property_zip":"78212","property_state":"TX","mailing_address":"9 B ST","mailing_city":"New Braunfels","mailing_state":"TX"}"#) == "out-of-county")
        #expect(named(#"{"property_address":"1 A ST","property_zip":"78212","property_state":"TX","mailing_address":"9 B ST","mailing_city":"Alamo Heights","mailing_state":"TX"}"#) == "in-county")
        // A ZIP no table knows leaves the county unknown; a mailing address that did not read is unknown.
        #expect(named(#"{"property_address":"1 A ST","property_zip":"78212","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"79999","mailing_state":"TX"}"#) == "unknown-county")
        #expect(named(#"{"property_address":"1 A ST","property_zip":"78212","property_state":"TX","mailing_address":"CHAMBERS CIR","mailing_address_error":"no house number","mailing_zip":"78212","mailing_state":"TX"}"#) == "unknown")
    }

    @Test func theShippedTableCoversTheCountry() throws {
        let absentee = try Absentee.load(directory: repoStages + "/tag")
        #expect(absentee.zips.entries.count > 40_000)
        #expect(absentee.zips.county(zip: "98101") == "KING")
        #expect(absentee.zips.state(zip: "07870") == "NJ")
        #expect(absentee.zips.zip("78746", isKnownAs: "West Lake Hills"))
    }
}

@Suite struct TagAssignerTests {
    static let assigner = TagAssigner(catalogue: catalogue, derived: derived, absentee: Absentee(zips: counties))
    static let now = t("2026-11-23T06:00:00Z")

    func tagged(_ json: String, at now: Timestamp = now) throws -> Record {
        var lead = parse(json)
        try Self.assigner.tag(&lead, now: now)
        return lead
    }

    func assignments(_ lead: Record) -> [Record] { lead["tags"]?.array?.compactMap(\.object) ?? [] }

    @Test func aliasesExpiryAndStatus() throws {
        let lead = try tagged(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","tags":[{"tag":"nod","assigned_at":"2026-05-01T00:00:00Z","via":"import:x"},{"tag":"Vacancy","assigned_at":"2026-11-01T00:00:00Z"},{"tag":"Pre-Foreclosure","assigned_at":"2026-04-01T00:00:00Z"}]}"#)
        let tags = assignments(lead)
        #expect(tags.map { $0.text("tag") } == ["Foreclosure", "Vacant"], "aliases become the catalogue's name, once")
        #expect(tags[0].text("assigned_at") == "2026-04-01T00:00:00Z", "the earliest assignment wins")
        #expect(tags[0].text("expiration_at") == "2026-09-28T00:00:00Z")
        #expect(tags[0].text("status") == "expired")
        #expect(tags[0].text("name") == "Expired - Foreclosure")
        #expect(tags[1].text("expiration_at") == "2027-03-01T00:00:00Z")
        #expect(tags[1].text("status") == "active")
        #expect(tags[1].text("name") == "Vacant")
    }

    @Test func neverExpiringTagsHaveNullExpiration() throws {
        let lead = try tagged(#"{"property_address":"1 A ST","tags":"High Equity"}"#)
        #expect(assignments(lead)[0]["expiration_at"]?.isNull == true)
        #expect(assignments(lead)[0].text("assigned_at") == "2026-11-23T06:00:00Z", "a bare name is assigned at --now")
    }

    @Test func unknownTagsWaitUntilTheCatalogueKnowsThem() throws {
        let lead = try tagged(#"{"property_address":"1 A ST","tags":[{"tag":"Haunted","assigned_at":"2026-11-01T00:00:00Z"}]}"#)
        #expect(assignments(lead).isEmpty)
        #expect(lead["unknown_tags"]?.array?.first?.object?.text("tag") == "Haunted")
        // Tagging again keeps it once, not twice.
        var again = lead
        try Self.assigner.tag(&again, now: Self.now)
        #expect(again["unknown_tags"]?.array?.count == 1)
        // A catalogue that has learnt the tag turns it into an assignment dated as imported.
        let learnt = try TagCatalogue.load(rulesFile("tags2.csv", "name,base_score,expiration_days\nHaunted,10,30\n"))
        var later = lead
        try TagAssigner(catalogue: learnt, derived: [], absentee: Absentee(zips: counties)).tag(&later, now: Self.now)
        #expect(assignments(later).first?.text("assigned_at") == "2026-11-01T00:00:00Z")
        #expect(later["unknown_tags"] == nil)
    }

    @Test func derivedAbsenteeFollowsTheAddresses() throws {
        let away = try tagged(#"{"property_address":"1 A ST","property_zip":"78701","property_state":"TX","mailing_address":"9 B ST","mailing_zip":"80202","mailing_state":"CO","tags":[]}"#)
        #expect(assignments(away).map { $0.text("tag") } == ["Absentee Out-of-State"])
        #expect(assignments(away)[0].text("via") == "derived")
        // The owner moves home: the derived tag goes; an imported tag would stay.
        var home = away
        home["mailing_address"] = .string("1 A ST")
        home["mailing_zip"] = .string("78701")
        home["mailing_state"] = .string("TX")
        try Self.assigner.tag(&home, now: t("2026-12-01T00:00:00Z"))
        #expect(assignments(home).isEmpty)
        // Tagged again later, a derived tag keeps the date it was first derived.
        var still = away
        try Self.assigner.tag(&still, now: t("2027-01-01T00:00:00Z"))
        #expect(assignments(still)[0].text("assigned_at") == "2026-11-23T06:00:00Z")
    }

    @Test func expiredListingIsDatedByItsStatusChange() throws {
        let lead = try tagged(#"{"property_address":"1 A ST","StandardStatus":"Canceled","StatusChangeTimestamp":"2026-11-10T17:03:00Z"}"#)
        #expect(assignments(lead).map { $0.text("tag") } == ["Expired Listing"])
        #expect(assignments(lead)[0].text("assigned_at") == "2026-11-10T17:03:00Z")
        #expect(assignments(lead)[0].text("expiration_at") == "2027-02-08T17:03:00Z")
        let active = try tagged(#"{"property_address":"1 A ST","StandardStatus":"Active"}"#)
        #expect(assignments(active).isEmpty)
    }

    @Test func malformedTagsAreRejected() {
        #expect(throws: RecordRejected.self) { try tagged(#"{"tags":{"tag":"Vacant"}}"#) }
        #expect(throws: RecordRejected.self) { try tagged(#"{"tags":[{"tag":"Vacant","assigned_at":"yesterday"}]}"#) }
        #expect(throws: RecordRejected.self) { try tagged(#"{"tags":[{"assigned_at":"2026-01-01T00:00:00Z"}]}"#) }
    }

    @Test func catalogueRejectsAnAliasThatNamesTwoTags() {
        #expect(throws: StageError.self) {
            try TagCatalogue.load(rulesFile("tags3.csv", "name,base_score,expiration_days,description,aliases\nA,1,,,X\nB,1,,,x\n"))
        }
        #expect(throws: StageError.self) { try TagCatalogue.load(rulesFile("tags4.csv", "name,base_score,expiration_days\nA,1,0\n")) }
    }
}

@Suite struct TagExpiryTests {
    static var master: Record { parse(#"{"address_key":"1 A ST|78701","tags":[{"tag":"Vacant","name":"Expired - Vacant","assigned_at":"2026-06-01T00:00:00Z","expiration_at":"2026-09-29T00:00:00Z","status":"expired"},{"tag":"Foreclosure","name":"Foreclosure","assigned_at":"2026-11-01T00:00:00Z","expiration_at":"2027-04-30T00:00:00Z","status":"active"}]}"#) }
    static let now = t("2026-11-23T06:00:00Z")

    @Test func retroactiveLengtheningReactivates() throws {
        var lead = Self.master
        let change = try TagExpiry(catalogue: catalogue.settingExpiration(of: "Vacant", to: 200)).refresh(&lead, now: Self.now, onlyTag: "Vacant")
        #expect(change.assignments == 1 && change.reactivated == 1 && change.expired == 0)
        let vacant = lead["tags"]!.array![0].object!
        #expect(vacant.text("status") == "active")
        #expect(vacant.text("name") == "Vacant")
        #expect(vacant.text("expiration_at") == "2026-12-18T00:00:00Z")
    }

    @Test func retroactiveShorteningExpiresAndNeverExpiringClears() throws {
        var lead = Self.master
        let change = try TagExpiry(catalogue: catalogue.settingExpiration(of: "Foreclosure", to: 10)).refresh(&lead, now: Self.now, onlyTag: "Foreclosure")
        #expect(change.expired == 1)
        #expect(lead["tags"]!.array![1].object!.text("name") == "Expired - Foreclosure")
        var forever = Self.master
        try TagExpiry(catalogue: catalogue.settingExpiration(of: "Vacant", to: nil)).refresh(&forever, now: Self.now)
        #expect(forever["tags"]!.array![0].object!["expiration_at"]?.isNull == true)
        #expect(forever["tags"]!.array![0].object!.text("status") == "active")
    }

    @Test func addAndRemove() throws {
        let expiry = TagExpiry(catalogue: catalogue)
        var lead = Self.master
        #expect(!expiry.add(catalogue.tag(named: "Foreclosure")!, to: &lead, now: Self.now), "already active")
        #expect(expiry.add(catalogue.tag(named: "Vacant")!, to: &lead, now: Self.now), "an expired one is assigned anew")
        let tags = lead["tags"]!.array!.map { $0.object! }
        #expect(tags.map { $0.text("name") } == ["Foreclosure", "Vacant"])
        #expect(tags[1].text("via") == "bulk")
        #expect(tags[1].text("assigned_at") == "2026-11-23T06:00:00Z")
        #expect(expiry.remove(catalogue.tag(named: "NOD")!, from: &lead))
        #expect(lead["tags"]!.array!.count == 1)
        #expect(!expiry.remove(catalogue.tag(named: "High Equity")!, from: &lead))
    }

    @Test func durations() {
        #expect(parseDuration("7d") == Int64(604_800))
        #expect(parseDuration("12h") == Int64(43_200))
        #expect(parseDuration("2w") == Int64(1_209_600))
        #expect(parseDuration("7") == nil)
        #expect(parseDuration("d") == nil)
    }
}

@Suite struct ScoreTests {
    @Test func decayFactor() {
        let rule = DecayRule(fullDays: 30, floor: 0.25, decayDays: nil)
        #expect(rule.factor(ageDays: 0, expirationDays: 365) == 1)
        #expect(rule.factor(ageDays: 30, expirationDays: 365) == 1)
        #expect(abs(rule.factor(ageDays: 101, expirationDays: 365) - (1 - 0.75 * 71 / 335)) < 1e-12)
        #expect(rule.factor(ageDays: 365, expirationDays: 365) == 0.25)
        #expect(rule.factor(ageDays: 5000, expirationDays: nil) == 1, "a tag that never expires and has no decay_days keeps its value")
        let fixed = DecayRule(fullDays: 14, floor: 0.5, decayDays: 10)
        #expect(fixed.factor(ageDays: 19, expirationDays: 120) == 0.75)
        #expect(fixed.factor(ageDays: 100, expirationDays: nil) == 0.5)
    }

    static let scorer = LeadScorer(catalogue: catalogue, decay: try! DecayRules.load(rulesFile("decay.csv", """
        tag,full_days,floor,decay_days
        *,30,0.25,
        Vacant,14,0.5,10
        """), catalogue: catalogue))

    @Test func scoreIsTheSumOfActiveAssignmentsWithABreakdown() throws {
        var lead = parse(#"{"tags":[{"tag":"Foreclosure","assigned_at":"2026-11-13T00:00:00Z"},{"tag":"Vacant","assigned_at":"2026-10-31T00:00:00Z"},{"tag":"Foreclosure","assigned_at":"2026-01-01T00:00:00Z"},{"tag":"High Equity","assigned_at":"2020-01-01T00:00:00Z"}],"score":1}"#)
        try Self.scorer.score(&lead, now: t("2026-11-23T06:00:00Z"))
        // Foreclosure 10 days old: 1000 in full. Vacant 23 days old: 9 of its 10 decay days gone,
        // factor 1 - 0.5 x 0.9 = 0.55, 330 points. The January Foreclosure has expired: nothing.
        // High Equity never expires: 300.
        let lines = lead["score_breakdown"]!.array!.map { $0.object! }
        #expect(lines.map { $0.text("tag") } == ["Foreclosure", "Vacant", "High Equity"])
        #expect(lines.map { $0["points"]!.int! } == [1000, 330, 300])
        #expect(lines[1]["factor"]?.double == 0.55)
        #expect(lines[1]["age_days"]?.int == 23)
        #expect(lead["score"]?.int == 1630)
        #expect(lead.keys == ["tags", "score", "score_breakdown"], "score is replaced in place")
    }

    @Test func rejectsWhatItCannotScore() {
        for json in [#"{"tags":"Vacant"}"#, #"{"tags":[{"tag":"Haunted","assigned_at":"2026-01-01T00:00:00Z"}]}"#,
                     #"{"tags":[{"tag":"Vacant"}]}"#, #"{"tags":[3]}"#] {
            var lead = parse(json)
            #expect(throws: RecordRejected.self, "\(json)") { try Self.scorer.score(&lead, now: t("2026-11-23T06:00:00Z")) }
        }
        var none = parse(#"{"address_key":"x"}"#)
        #expect(throws: Never.self) { try Self.scorer.score(&none, now: t("2026-11-23T06:00:00Z")) }
        #expect(none["score"]?.int == 0)
    }

    @Test func decayRulesMustNameKnownTagsAndHaveAFallback() {
        #expect(throws: StageError.self) { try DecayRules.load(rulesFile("d2.csv", "tag,full_days,floor,decay_days\nVacant,1,0.5,\n"), catalogue: catalogue) }
        #expect(throws: StageError.self) { try DecayRules.load(rulesFile("d3.csv", "tag,full_days,floor,decay_days\n*,1,0.5,\nHaunted,1,0.5,\n"), catalogue: catalogue) }
        #expect(throws: StageError.self) { try DecayRules.load(rulesFile("d4.csv", "tag,full_days,floor,decay_days\n*,1,1.5,\n"), catalogue: catalogue) }
    }
}

@Suite struct LeadFilterTests {
    static var lead: Record { parse(#"{"score":2100,"owner_name":"Estate of Ann Lee","property_state":"TX","property_zip":"78701","count_text":"3","dnama":false,"property_address_parts":{"street":"MAIN"},"tags":[{"tag":"Foreclosure","assigned_at":"2026-11-13T00:00:00Z","expiration_at":"2027-05-12T00:00:00Z","status":"active"},{"tag":"Vacant","assigned_at":"2026-06-01T00:00:00Z","expiration_at":"2026-09-29T00:00:00Z","status":"expired"}]}"#) }
    static var context: FilterContext { FilterContext(now: t("2026-11-23T06:00:00Z"), functions: ["absentee": { _ in .string("out-of-state") }]) }

    func matches(_ text: String) throws -> Bool {
        try LeadFilter(text, functions: Absentee.functions).matches(Self.lead, context: Self.context)
    }

    @Test func comparisonsAndLogic() throws {
        #expect(try matches(#"score >= 2000 and tag == "Foreclosure""#))
        #expect(try !matches(#"tag == "Vacant""#), "tag holds only active assignments")
        #expect(try matches(#"expired_tag == "Vacant""#))
        #expect(try matches(#"score > 5000 or score < 3000 and property_state == "TX""#), "and binds tighter than or")
        #expect(try !matches(#"(score > 5000 or score < 3000) and property_state == "OK""#))
        #expect(try matches(#"not dnama && !(score < 100)"#))
        #expect(try matches(#"property_state in ["TX", "OK"] and property_state not in ["CA"]"#))
        #expect(try matches(#"owner_name contains "ESTATE""#), "contains ignores case")
        #expect(try matches(#"tag contains "Foreclosure""#))
        #expect(try matches(#"count_text > 2"#), "text compares as a number with a number")
        #expect(try matches(#"property_address_parts.street == "MAIN""#))
        #expect(try matches(#"missing == null and !(missing > 1) and missing != 1"#))
        #expect(try matches(#"has_tag("foreclosure") and not has_tag("Vacant")"#))
        #expect(try matches(#"absentee() == "out-of-state""#))
        #expect(try matches(#"len(tag) == 1 and len(owner_name) == 17"#))
        #expect(try matches(#"lower(property_state) == "tx" and upper("a") == "A""#))
    }

    @Test func timeArithmetic() throws {
        #expect(try matches(#"expiration_at < now + 180d"#))
        #expect(try !matches(#"expiration_at < now + 7d"#))
        #expect(try matches(#"assigned_at > now - 2w"#))
        #expect(try matches(#"assigned_at("Foreclosure") >= "2026-11-13""#))
        #expect(try matches(#"days_since(assigned_at("Foreclosure")) == 10"#))
        #expect(try matches(#"days_until(expiration_at) > 100"#))
        #expect(try matches(#"assigned_at("Vacant") == null"#), "expired assignments do not count")
        #expect(try matches(#"today <= now and now - 1d < now"#))
        #expect(try matches(#"assigned_at + 90d > "2027-02-01T00:00:00Z""#))
    }

    func syntaxError(_ text: String) -> FilterSyntaxError? {
        do { _ = try LeadFilter(text, functions: Absentee.functions); return nil } catch { return error }
    }

    @Test func syntaxErrorsNameTheColumn() {
        #expect(syntaxError("score >= ")?.column == 10)
        #expect(syntaxError("score >= ")?.message == "expected a value at the end of the filter")
        #expect(syntaxError(#"(score > 1"#)?.message.hasPrefix("expected ')' to close the '(' at column 1") == true)
        #expect(syntaxError("scroe(1)")?.message.hasPrefix("unknown function 'scroe'") == true)
        #expect(syntaxError(#"has_tag("a", "b")"#)?.message == "has_tag() takes one argument, found 2")
        #expect(syntaxError("absentee(1)")?.message == "absentee() takes no arguments, found 1")
        #expect(syntaxError(#"score == "open"#) != nil)
        #expect(syntaxError("score and or 1")?.column == 11)
        #expect(syntaxError("score >> 3")?.column == 8)
        let description = "\(syntaxError("score >= ")!)"
        #expect(description == "column 10: expected a value at the end of the filter\n  score >= \n           ^")
    }
}

@Suite struct SmartListTests {
    static let text = """
        # a comment
        where: score >= 100
           and has_tag("Foreclosure")
        columns: property_address, score, upper(owner_name) as owner, tag as tags
        sort: score desc, property_address
        limit: 2
        """

    @Test func parsesDirectivesAndColumns() throws {
        let list = try SmartList(name: "x", text: Self.text, path: "x.list", functions: Absentee.functions)
        #expect(list.columns.map(\.name) == ["property_address", "score", "owner", "tags"])
        #expect(list.sort.map(\.descending) == [true, false])
        #expect(list.limit == 2)
    }

    @Test func quotedHeadersMayHoldSpaces() throws {
        let text = #"where: score > 0\#ncolumns: owner_name as "Owner Name", upper(property_city) as "City, State", score as "Lead ""Score""", tag as tags\#n"#
        let list = try SmartList(name: "x", text: text, path: "x.list", functions: [])
        #expect(list.columns.map(\.name) == ["Owner Name", "City, State", #"Lead "Score""#, "tags"])
        let lead = parse(#"{"owner_name":"Ann","property_city":"Austin","score":5}"#)
        let context = FilterContext(now: t("2026-11-23T06:00:00Z"))
        #expect(list.columns.map { SmartList.cell($0.value.evaluate(lead, context: context)) } == ["Ann", "AUSTIN", "5", ""])
    }

    @Test func sortsAndFormatsCells() throws {
        let list = try SmartList(name: "x", text: Self.text, path: "x.list", functions: Absentee.functions)
        let context = FilterContext(now: t("2026-11-23T06:00:00Z"))
        let leads = [#"{"property_address":"B","score":500,"owner_name":"b","tags":[{"tag":"Foreclosure"},{"tag":"Vacant"}]}"#,
                     #"{"property_address":"A","score":500,"owner_name":"a","tags":[{"tag":"Foreclosure"}]}"#,
                     #"{"property_address":"C","score":900,"tags":[{"tag":"Foreclosure"}]}"#,
                     #"{"property_address":"D","score":50,"tags":[{"tag":"Foreclosure"}]}"#].map(parse)
        let picked = leads.filter { list.filter.matches($0, context: context) }
        #expect(picked.count == 3)
        let rows = picked.map { lead in (list.sort.map { $0.value.evaluate(lead, context: context) },
                                        list.columns.map { SmartList.cell($0.value.evaluate(lead, context: context)) }) }
        let sorted = rows.sorted { list.ordered($0.0, $1.0) }.prefix(list.limit ?? .max).map(\.1)
        #expect(sorted == [["C", "900", "", "Foreclosure"], ["A", "500", "A", "Foreclosure"]])
        #expect(SmartList.cell(.list([.string("a"), .string("b")])) == "a|b")
        #expect(SmartList.cell(.number(2.5)) == "2.5")
    }

    @Test func errorsNameTheLineAndColumn() {
        func message(_ text: String) -> String {
            do { _ = try SmartList(name: "x", text: text, path: "x.list", functions: []); return "" } catch { return "\(error)" }
        }
        #expect(message("where: score >=\n").contains("x.list:1: column 16"))
        #expect(message("# c\nwhere: score > 1\ncolumns: a as\n").contains("x.list:3"))
        #expect(message("columns: a\n").contains("no where: line"))
        #expect(message("where: a\nwhere: b\n").contains("where: is given twice"))
        #expect(message("where: a\nlimit: lots\n").contains("x.list:2"))
        #expect(message("hello\n").contains("expected where:, columns:, sort: or limit:"))
        #expect(message("where: a\nsort: score sideways\n").contains("x.list:2"))
    }

    @Test func adHocWhere() throws {
        let list = try SmartList(name: "where", where: "score > 1", functions: [])
        #expect(list.columns.map(\.name).first == "property_address")
        #expect(throws: StageError.self) { try SmartList(name: "where", where: "score >", functions: []) }
    }
}

@Suite struct LeadNormalizerTests {
    static let normalizer = LeadNormalizer(addresses: AddressNormalizerTests.normalizer)

    func normalized(_ json: String) throws -> Record {
        var r = parse(json)
        try Self.normalizer.normalize(&r)
        return r
    }

    @Test func keyWritesEveryUnitTheSameWay() throws {
        let a = try normalized(#"{"property_address":"123 North Main Street Apt. 4","property_city":"Austin","property_state":"Texas","property_zip":"78701-1234"}"#)
        let b = try normalized(#"{"property_address":"123 N Main St Unit 4","property_city":"AUSTIN","property_state":"TX","property_zip":"78701"}"#)
        let c = try normalized(#"{"property_address":"123 N Main St # 4","property_city":"AUSTIN","property_state":"TX","property_zip":"78701"}"#)
        #expect(a.text("address_key") == "123 N MAIN ST # 4|78701")
        #expect(b.text("address_key") == a.text("address_key"))
        #expect(c.text("address_key") == a.text("address_key"))
        #expect(a.text("property_address") == "123 N MAIN ST APT 4")
        #expect(a.text("property_state") == "TX")
        #expect(a.text("property_zip") == "78701-1234")
        #expect(a.text("property_address_raw") == "123 North Main Street Apt. 4")
    }

    @Test func keyWithoutZIPUsesCityAndState() throws {
        let r = try normalized(#"{"property_address":"5 Oak St","property_city":"Round Rock","property_state":"TX","property_zip":""}"#)
        #expect(r.text("address_key") == "5 OAK ST|ROUND ROCK|TX")
    }

    @Test func oneLineIsSplitAndRawIsKeptAcrossRuns() throws {
        let once = try normalized(#"{"property_address":"431 Marietta St NW Fl. 3, Atlanta, GA 30303","mailing_address":"P.O. Box 77","mailing_city":"Austin","mailing_state":"tx","mailing_zip":"78767"}"#)
        #expect(once.text("property_address") == "431 MARIETTA ST NW FL 3")
        #expect(once.text("property_city") == "ATLANTA")
        #expect(once.text("property_zip") == "30303")
        #expect(once.text("mailing_address") == "PO BOX 77")
        #expect(once["mailing_address_parts"]?.object?.text("box") == "77")
        var twice = once
        try Self.normalizer.normalize(&twice)
        #expect(twice == once, "normalising twice changes nothing")
    }

    @Test func rejects() {
        for json in [#"{"property_address":""}"#, #"{"property_address":"MAIN STREET","property_zip":"78701"}"#] {
            #expect(throws: RecordRejected.self, "\(json)") { try normalized(json) }
        }
    }

    /// A line without ZIP or city is standardised and keyed by the line alone.
    @Test func aLineWithoutALocalityIsKeyedByItself() throws {
        let lead = try normalized(#"{"property_address":"PO Box 123456"}"#)
        #expect(lead.text("property_address") == "PO BOX 123456")
        #expect(lead.text("address_key") == "PO BOX 123456")
        #expect(lead.text("address_key_scope") == "line")
        #expect(try normalized(#"{"property_address":"5 Oak St","property_zip":"78701"}"#).text("address_key_scope") == "zip")
        #expect(try normalized(#"{"property_address":"5 Oak St","property_city":"Austin","property_state":"TX"}"#).text("address_key_scope") == "city")
    }

    /// Only the first address can reject a lead: a mailing address that does not read is kept
    /// as it came, with the reason, and its city, state and ZIP standardised.
    @Test func aBadMailingAddressNeverLosesTheLead() throws {
        let lead = try normalized(#"{"property_address":"12 Oak St","property_zip":"78701","mailing_address":"CHAMBERS CIR","mailing_city":"Austin","mailing_state":"Texas","mailing_zip":"78703"}"#)
        #expect(lead.text("property_address") == "12 OAK ST")
        #expect(lead.text("mailing_address") == "CHAMBERS CIR")
        #expect(lead.text("mailing_address_error")?.contains("no house number") == true)
        #expect(lead.text("mailing_state") == "TX")
        #expect(lead.text("mailing_city") == "AUSTIN")
        #expect(lead["mailing_address_parts"]?.isNull == true)
        // Fixed in a later import, the error goes.
        var fixed = lead
        fixed["mailing_address"] = .string("9 Chambers Cir")
        try Self.normalizer.normalize(&fixed)
        #expect(fixed["mailing_address_error"] == nil)
        #expect(AbsenteeTests.absentee.classify(lead) == "unknown")
    }

    /// A ZIP that lost its leading zeros is padded only when the padded ZIP is in the state.
    @Test func paddedZIPsMustBelongToTheState() throws {
        let normalizer = LeadNormalizer(addresses: Self.normalizer.addresses, zipStates: ["07870": "NJ", "07102": "NJ"])
        func run(_ json: String) throws -> Record { var r = parse(json); try normalizer.normalize(&r); return r }
        let texas = try run(#"{"property_address":"123 Main St, Austin, TX 7870"}"#)
        #expect(texas.text("property_zip") == "7870")
        #expect(texas.text("property_zip_error")?.contains("07870 is a ZIP of NJ, not TX") == true)
        let newark = try run(#"{"property_address":"12 Elm St","property_city":"Newark","property_state":"NJ","property_zip":"7102"}"#)
        #expect(newark.text("property_zip") == "07102")
        #expect(newark["property_zip_error"] == nil)
        let oneLine = try run(#"{"property_address":"12 Elm St, Newark, NJ 7102"}"#)
        #expect(oneLine.text("property_zip") == "07102")
        #expect(try run(#"{"property_address":"12 Elm St","property_zip":"7102"}"#).text("property_zip_error")?.contains("no state") == true)
    }

    /// An owner known only by city, state and ZIP (most Austin permit owners) is kept, standardised.
    @Test func aMailingAddressWithoutAStreetIsKept() throws {
        let lead = try normalized(#"{"property_address":"1 A St","property_zip":"78701","mailing_address":"","mailing_city":"Austin ","mailing_state":"Texas","mailing_zip":"78703 3938"}"#)
        #expect(lead.text("mailing_city") == "AUSTIN")
        #expect(lead.text("mailing_state") == "TX")
        #expect(lead.text("mailing_zip") == "78703-3938")
        #expect(lead["mailing_address_parts"]?.isNull == true)
    }
}

/// Absentee classes on a county's parcels the rules never saw (fixtures/absentee/, built by
/// its script from real San Antonio, Austin and Seattle addresses, each class from where the
/// address was taken): normalised as lead-normalize does, classified as lead-tag does.
@Suite struct AbsenteeAccuracyTests {
    /// The county sets and the share each keeps: bexar-parcels.csv was tuned on (95.3% before),
    /// travis-parcels.csv was built after the rules were last changed and never tuned on.
    static let sets: [(file: String, minimum: Double, size: Int)] = [
        ("bexar-parcels.csv", 0.97, 1000),
        ("travis-parcels.csv", 0.99, 500),  // its figure, never tuned on (99.2%)
    ]

    @Test(arguments: AbsenteeAccuracyTests.sets.map(\.file))
    func countyParcels(_ file: String) throws {
        let set = AbsenteeAccuracyTests.sets.first { $0.file == file }!
        let normalizer = LeadNormalizer(addresses: AddressNormalizer(rules: try AddressRules.load(directory: repoStages + "/normalize")))
        let absentee = try Absentee.load(directory: repoStages + "/tag")
        let rows = try CSVReader.readAll(repoStages + "/../fixtures/absentee/" + file)
        let header = rows[0].cells
        func column(_ name: String) -> Int { header.firstIndex(of: name)! }
        var right = 0, total = 0
        var byClass: [String: (right: Int, total: Int)] = [:]
        var misses: [String] = []
        for (_, cells) in rows.dropFirst() {
            var lead = Record()
            lead.append("property_address", .string(cells[column("prop_street")]))
            lead.append("property_city", .string(cells[column("prop_city")]))
            lead.append("property_state", .string("TX"))
            lead.append("property_zip", .string(cells[column("prop_zip")]))
            lead.append("mailing_address", .string(cells[column("mail_street")]))
            lead.append("mailing_city", .string(cells[column("mail_city")]))
            lead.append("mailing_state", .string(cells[column("mail_state")]))
            lead.append("mailing_zip", .string(cells[column("mail_zip")]))
            try normalizer.normalize(&lead)
            let expected = cells[column("expected")]
            let got = absentee.classify(lead)
            total += 1
            byClass[expected, default: (0, 0)].total += 1
            if got == expected {
                right += 1
                byClass[expected]!.right += 1
            } else {
                misses.append("\(cells.joined(separator: ",")) -> \(got)")
            }
        }
        let share = Double(right) / Double(total)
        print("absentee accuracy on \(file): \(right) of \(total) = \(String(format: "%.1f", share * 100))%; "
              + byClass.keys.sorted().map { "\($0) \(byClass[$0]!.right)/\(byClass[$0]!.total)" }.joined(separator: ", "))
        #expect(total == set.size)
        #expect(Set(byClass.keys) == ["none", "in-county", "out-of-county", "out-of-state"])
        // The misses are shown only for a set the rules may be tuned on.
        #expect(share >= set.minimum, "\(file.hasPrefix("travis") ? "(misses of the untuned set are not shown)" : misses.joined(separator: "\n"))")
    }
}

/// Owner names split for delivery services, phones in E.164, emails as senders take them.
@Suite struct DeliveryRulesTests {
    static let names = try! OwnerNames.load(repoStages + "/export/names.csv")

    @Test(arguments: [
        ("JOHN SMITH", "JOHN", "SMITH", false),
        ("John A. Smith Jr.", "JOHN", "SMITH", false),
        ("SMITH, JOHN A", "JOHN", "SMITH", false),
        ("SMITH JR, JOHN", "JOHN", "SMITH", false),
        ("JOHN & MARY SMITH", "JOHN", "SMITH", false),
        ("JOHN SMITH AND MARY JONES", "JOHN", "SMITH", false),
        ("SMITH, JOHN & MARY", "JOHN", "SMITH", false),
        ("MR. AND MRS. JOHN SMITH", "JOHN", "SMITH", false),
        ("Dr. Maria de la Cruz", "MARIA", "DE LA CRUZ", false),
        ("LUDWIG VAN BEETHOVEN III", "LUDWIG", "VAN BEETHOVEN", false),
        ("SMITH FAMILY TRUST", "", "SMITH FAMILY TRUST", true),
        ("ACME HOLDINGS LLC", "", "ACME HOLDINGS LLC", true),
        ("Estate of Jane Doe", "", "Estate of Jane Doe", true),
        ("City of Austin", "", "City of Austin", true),
        ("JANE DOE ET AL", "JANE", "DOE", false),
        ("CHER", "CHER", "", false),
        ("", "", "", false),
    ])
    func ownerNames(_ name: String, _ first: String, _ last: String, _ entity: Bool) {
        #expect(DeliveryRulesTests.names.split(name) == OwnerNames.Split(first: first, last: last, isEntity: entity), "\(name)")
    }

    @Test func phonesInE164() {
        #expect(PhoneNumbers.e164("(512) 555-0100") == "+15125550100")
        #expect(PhoneNumbers.e164("512.555.0100") == "+15125550100")
        #expect(PhoneNumbers.e164("+1 512-555-0100") == "+15125550100")
        #expect(PhoneNumbers.e164("1-512-555-0100") == "+15125550100")
        #expect(PhoneNumbers.e164("+44 20 7946 0958") == "+442079460958")
        for bad in ["555-0100", "512-555-010", "112-555-0100", "512-155-0100", "512 555 0100 x12", "call me", "", "+1 512 555 01000"] {
            #expect(PhoneNumbers.e164(bad) == nil, "\(bad)")
        }
    }

    @Test func emails() {
        #expect(EmailAddresses.normalized("  Ann.Lee@Example.COM ") == "ann.lee@example.com")
        for bad in ["ann", "ann@", "@example.com", "ann@example", "ann lee@example.com", "a@b@c.com", "ann@.com"] {
            #expect(EmailAddresses.normalized(bad) == nil, "\(bad)")
        }
    }
}
