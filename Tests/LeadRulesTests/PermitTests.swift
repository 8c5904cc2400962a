import Foundation
import LeadRules
import StageKit
import Testing

/// The permit rules: keyword patterns, trades (and their accuracy on hand-labelled Austin
/// permits), the explainable scorer and the tiers.
@Suite struct PermitTests {
    static let trades = try! TradeRules.load(directory: repoStages + "/tag")
    static let scorer = try! PermitScorer.load(directory: repoStages + "/score")
    static let now = Timestamp(iso8601: "2016-03-14T06:00:00Z")!

    static func permit(_ description: String, type: String = "", work: String = "", id: String = "2016-000001 BP") -> Record {
        ["permit_id": .string(id), "project_description": .string(description), "permit_type": .string(type),
         "work_type": .string(work)]
    }

    @Test func wordsSplitLettersFromDigits() {
        #expect(PermitWords.split("New 2-story SF res, BLD2023-01 req'd")
                == ["new", "2", "story", "sf", "res", "bld", "2023", "01", "req", "d"])
        #expect(PermitWords.split("70AC112511. Construct non-structural alterations") == ["70ac112511", "construct", "non", "structural", "alterations"],
                "letters between digits are a code, not a word")
    }

    @Test func patternsMatchWordsInARowWithWildcards() {
        let p = KeywordPattern("swimming pool|roof*|new * residence")!
        #expect(p.firstMatch(in: PermitWords.split("Install swimming pool and spa")) == "swimming pool")
        #expect(p.firstMatch(in: PermitWords.split("RESIDENTIAL REROOF")) == nil, "roof* matches words that begin with roof")
        #expect(p.firstMatch(in: PermitWords.split("roofing repairs")) == "roofing")
        #expect(p.firstMatch(in: PermitWords.split("New 1-story residence")) == nil, "a lone * is exactly one word")
        #expect(p.firstMatch(in: PermitWords.split("new SF residence")) == "new sf residence")
        #expect(p.firstMatch(in: PermitWords.split("poolside")) == nil)
        #expect(KeywordPattern("* pool") == nil, "a pattern cannot start with a lone *")
    }

    @Test func tradesFollowPrecedenceAndTellCommercialApart() {
        let pool = PermitTests.trades.classify(PermitTests.permit("Inground swimming pool w/ spa", type: "R- 329 Res Structures"))
        #expect((pool.group, pool.category, pool.isCommercial) == ("luxury_outdoor", "pool", false))
        #expect(pool.because.contains("trades.csv:"), "the rule that decided is named")
        let apartments = PermitTests.trades.classify(PermitTests.permit("Apartment complex pool replaster", type: "C- 329 Com Structures"))
        #expect((apartments.group, apartments.category, apartments.isCommercial) == ("commercial", "commercial_pool", true))
        let office = PermitTests.trades.classify(PermitTests.permit("Interior remodel to existing office", type: "C-1000 Commercial Remodel"))
        #expect((office.group, office.category) == ("other", "other"), "commercial work without a commercial category")
        // A new house's driveway permit is a concrete lead, not a new-construction one.
        let drive = PermitTests.trades.classify(PermitTests.permit("Construct new driveway approach. New 2-story single-family residence",
                                                                    id: "2016-015760 DS"))
        #expect(drive.category == "concrete")
        let change = PermitTests.trades.classify(PermitTests.permit("Replacement of complete existing central heat and air system",
                                                                     id: "2016-026531 MP"))
        #expect(change.category == "hvac")
        let generic = PermitTests.trades.classify(PermitTests.permit("Repair", id: "2016-000002 PP"))
        #expect(generic.category == "plumbing", "the permit number's suffix when the description names nothing")
        #expect(PermitTests.trades.classify(PermitTests.permit("")).category == "other")
    }

    /// The labelled sets, what the rules were tuned on, and the share each must keep. The
    /// figures are in the README; seattle-holdout.csv was never tuned on (its errors were never
    /// looked at), so its floor is the figure it gave, not a target.
    static let labelledSets: [(file: String, minimum: Double)] = [
        ("austin-labelled.csv", 0.95),            // 320 Austin permits (tuned on)
        ("labelled/san-antonio.csv", 0.98),       // 2,500 San Antonio permits by city type (98.8% before tuning)
        ("labelled/seattle.csv", 0.916),          // 300 Seattle pre-applications (tuned on after its first figure)
        ("labelled/seattle-2.csv", 0.943),        // 300 more (tuned on after its first figure)
        ("labelled/seattle-3.csv", 0.906),        // 300 more (81.3% before tuning, then tuned on)
        ("labelled/seattle-4.csv", 0.943),        // 300 more (82.0% before tuning, then tuned on)
        ("labelled/seattle-5.csv", 0.91),         // 300 more (85.7% before tuning, then tuned on)
        ("labelled/seattle-holdout.csv", 0.833),  // 300 more, never tuned on
    ]

    @Test(arguments: PermitTests.labelledSets.map(\.file))
    func tradeAccuracyOnLabelledPermits(_ file: String) throws {
        // The files open with # comment lines.
        let rows = try CSVReader.readAll(repoStages + "/../fixtures/permits/" + file).filter { !($0.cells.first ?? "").hasPrefix("#") }
        let header = rows[0].cells
        func column(_ name: String) -> Int { header.firstIndex(of: name)! }
        var right = 0, total = 0
        var misses: [String] = []
        for (_, cells) in rows.dropFirst() {
            let permit = PermitTests.permit(cells[column("project_description")], type: cells[column("permit_type")],
                                            work: cells[column("work_type")], id: cells[column("permit_id")])
            let trade = PermitTests.trades.classify(permit)
            total += 1
            if trade.category == cells[column("expected_category")] && trade.group == cells[column("expected_group")] {
                right += 1
            } else {
                misses.append("\(cells[0]): \(cells[column("expected_category")]) <- \(trade.category)")
            }
        }
        let share = Double(right) / Double(total)
        let minimum = PermitTests.labelledSets.first { $0.file == file }!.minimum
        print("trade accuracy on \(file): \(right) of \(total) = \(String(format: "%.1f", share * 100))%")
        #expect(total >= 300)
        // The misses are printed only for the sets the rules may be tuned on.
        #expect(share >= minimum, "\(file.contains("holdout") ? "(misses of the holdout are not shown)" : misses.joined(separator: "\n"))")
    }

    @Test func tradeTagsNameEveryTradeAPermitTouches() {
        let solarRoof = PermitTests.trades.classify(PermitTests.permit("Reroof and install roof-mounted solar PV system with battery", type: "BLDG - RESIDENTIAL ALT/ADD"))
        #expect(solarRoof.category == "electrical", "solar decides the file: \(solarRoof.because)")
        #expect(solarRoof.tags.starts(with: ["electrical"]) && solarRoof.tags.contains("solar") && solarRoof.tags.contains("roof")
                && solarRoof.tags.contains("battery"), "\(solarRoof.tags)")
        let ev = PermitTests.trades.classify(PermitTests.permit("Install Level 2 EVSE in garage", type: "ELEC - RESIDENTIAL ALTERATION"))
        #expect(ev.category == "electrical" && ev.tags.contains("ev_charger") && ev.tags.contains("garage"), "\(ev.tags)")
    }

    @Test(arguments: [
        ("BLDG - RESIDENTIAL ALT/ADD", "Add 300 sq ft master bedroom suite", "structural/addition"),
        ("BLDG - RESIDENTIAL ALT/ADD", "Kitchen remodel, new cabinets", "structural/remodel"),
        ("BLDG- NEW SNGL FAM DETACHED", "", "structural/new_construction"),
        ("ELEC - NON-RESIDENTIAL ALTERATION", "Lighting retrofit", "commercial/commercial_electrical"),
        ("PLBG - RESIDENTIAL ALTERATION", "REPLACE POLY WITH PEX", "home_systems/plumbing"),
        ("MECH - RESIDENTIAL ALTERATION", "C/O 3 ton A/C and furnace", "home_systems/hvac"),
        ("Residential Building App", "Residential Building App - Reroof", "home_exterior/roof"),
        ("Residential", "concrete driveway replacement", "home_exterior/concrete"),
        ("Residential", "Level foundation", "structural/foundation"),
        ("Residential", "Replace water service line", "home_systems/plumbing"),
        ("Residential", "New gutters and downspouts", "home_exterior/roof"),
        ("SIGN - PERMANENT", "Monument sign", "other/other"),
    ])
    func theVocabularyOfOtherCities(_ type: String, _ description: String, _ expected: String) {
        let trade = PermitTests.trades.classify(PermitTests.permit(description, type: type))
        #expect(trade.group + "/" + trade.category == expected, "\(type) / \(description): \(trade.because)")
    }

    /// Free text of pre-applications, which has no type field (the rules of the fourth tuning round).
    @Test(arguments: [
        ("Replace existing damaged skylight with a new skylight", "home_exterior/windows"),
        ("Construct alterations to detached garage, accessory to single family residence", "structural/addition"),
        ("Demolish existing garage. Replace with new 240 sq ft garage", "structural/addition"),
        ("Install (2) Level 2 EV chargers in the main parking lot of the public library", "commercial/commercial_electrical"),
        ("Maintenance to existing backflow assemblies, Port of Seattle", "commercial/commercial_plumbing"),
        ("Renovating the visitors locker room in the athletics building", "other/other"),
        ("Construct interior alterations to units 205 and 302 of existing multifamily building", "structural/remodel"),
        ("Establish basement in existing SFR as an AADU", "structural/remodel"),
        ("Proposed to remove an existing SFR on site", "other/other"),
        ("26kV river crossing to connect the electrical grid", "other/other"),
        ("Structural floor infill, no change in plumbing fixtures", "other/other"),
        ("Construct a reinforced concrete garden wall", "home_exterior/concrete"),
        ("Shared Driveway Grading Permit: regrade and pave the shared driveway", "home_exterior/concrete"),
        ("Car Port", "structural/addition"),
    ])
    func preApplicationFreeText(_ description: String, _ expected: String) {
        let trade = PermitTests.trades.classify(PermitTests.permit(description, type: "Building & Land Use Pre-Application"))
        #expect(trade.group + "/" + trade.category == expected, "\(description): \(trade.because)")
    }

    @Test func scoresAreExplainedRuleByRule() {
        var permit: Record = [
            "permit_id": "P1", "city": "Plano", "property_address": "4910 VIRGINIA PKWY", "property_city": "PLANO",
            "property_zip": "75024", "owner_name": "SMITH JOHN", "mailing_address": "3420 BEACH ST", "mailing_city": "DALLAS",
            "mailing_zip": "75201", "market_value": 415000, "job_value": 98515, "issued_at": "2016-03-10", "category": "pool",
            "is_commercial": false,
        ]
        PermitTests.scorer.score(&permit, now: PermitTests.now)
        #expect(permit["days_old"]?.int == 4)
        #expect(permit["is_absentee"]?.bool == true)
        #expect(permit["commercial_owner"]?.bool == false)
        // pool 25 + job 25 + home 5 + fresh 25 + owner 10 + absentee 10 = 100
        #expect(permit["score"]?.int == 100)
        let reasoning = permit.text("reasoning") ?? ""
        #expect(reasoning.hasPrefix("Score 100 (100 held to 0-100)") == false)
        #expect(reasoning.contains("pool demand (+25)"))
        #expect(reasoning.contains("job value $98,515 is $50k or more (+25)"))
        #expect(reasoning.contains("issued 4 days ago (+25)"))
        #expect(reasoning.contains("the owner lives elsewhere"))
        #expect(permit.text("contact_priority") == "call")
        #expect(permit.text("ideal_contractor") == "Pool builder or pool service company")
        #expect(permit["flags"]?.array?.isEmpty == true, "flags is a list, empty when no rule flags")
        #expect(permit["score_breakdown"]?.array?.compactMap { $0.object?["points"]?.int }.reduce(0, +) == 100)
    }

    /// An issue date after the clock (a typo, a future-dated import) earns no freshness points,
    /// is flagged and goes to review; the same permit ages like any other as the clock moves.
    @Test func aFutureIssueDateIsFlaggedAndTheTreeAges() throws {
        let tiers = try TierRules.load(tiers: repoStages + "/tier/tiers.csv", review: repoStages + "/tier/review.csv")
        var permit: Record = ["permit_id": "F1", "owner_name": "ANN LEE", "job_value": 60000, "issued_at": "2026-03-10", "category": "pool",
                              "is_commercial": false]
        PermitTests.scorer.score(&permit, now: PermitTests.now)
        #expect(permit["flags"]?.array?.contains { $0.string == "future_issue_date" } == true)
        #expect(!(permit.text("reasoning") ?? "").contains("days ago"), "\(permit.text("reasoning") ?? "")")
        #expect(permit["score"]?.int == 60, "pool 25 + job 25 + owner 10, no freshness")
        try tiers.tier(&permit, now: PermitTests.now)
        #expect(permit["needs_review"]?.bool == true && permit["review_reasons"]?.array?.compactMap(\.string) == ["future_issue_date"])
        var aging: Record = ["permit_id": "F2", "owner_name": "ANN LEE", "job_value": 60000, "issued_at": "2016-03-10", "category": "pool"]
        PermitTests.scorer.score(&aging, now: PermitTests.now)
        let fresh = aging["score"]?.int ?? 0
        PermitTests.scorer.score(&aging, now: PermitTests.now.adding(days: 20))
        #expect(aging["days_old"]?.int == 24 && (aging["score"]?.int ?? 0) == fresh - 10, "fresh (+25) became recent (+15)")
        #expect(aging.text("scored_at") == PermitTests.now.adding(days: 20).iso8601)
    }

    @Test func weakPermitsAreFlaggedAndHeldToTheRange() {
        var permit: Record = [
            "permit_id": "P2", "property_address": "1 MAIN ST", "property_zip": "78701", "owner_name": "ACME HOLDINGS LLC",
            "job_value": 900, "issued_at": "2015-01-01", "category": "other", "is_commercial": true,
        ]
        PermitTests.scorer.score(&permit, now: PermitTests.now)
        #expect(permit["score"]?.int == 0)
        #expect(permit.text("reasoning")?.hasPrefix("Score 0 (-15 held to 0-100)") == true)
        #expect(permit["flags"]?.array?.compactMap(\.string) == ["low_value", "stale", "commercial_owner", "commercial"])
        #expect(permit.text("contact_priority") == "skip")
        #expect(permit["is_absentee"]?.bool == false, "no mailing address: not known to be absentee")
    }

    @Test func absenteeComparesLineThenZIPThenCity() {
        func absentee(_ fields: Record) -> Bool { PermitScorer.isAbsentee(fields) }
        #expect(!absentee(["property_address": "1 MAIN ST", "mailing_address": "1 MAIN ST", "property_zip": "78701", "mailing_zip": "78701"]))
        #expect(absentee(["property_address": "1 MAIN ST", "property_zip": "78701", "mailing_city": "HOUSTON", "mailing_zip": "77068-3411"]))
        #expect(!absentee(["property_address": "1 MAIN ST", "property_city": "AUSTIN", "mailing_city": "Austin"]))
        #expect(absentee(["property_address": "1 MAIN ST", "property_city": "AUSTIN", "mailing_city": "BEE CAVES"]))
    }

    @Test func tiersBandScoresAndReviewRulesFlag() throws {
        let rules = try TierRules.load(tiers: repoStages + "/tier/tiers.csv", review: repoStages + "/tier/review.csv")
        for (score, tier) in [(100, "A"), (80, "A"), (79, "B"), (50, "B"), (49, "C"), (0, "C"), (-1, "RETRY")] {
            var permit: Record = ["score": .int(score), "flags": ""]
            try rules.tier(&permit, now: PermitTests.now)
            #expect(permit.text("tier") == tier, "score \(score)")
        }
        var hot: Record = ["score": 85, "flags": "missing_owner", "category": "pool"]
        try rules.tier(&hot, now: PermitTests.now)
        #expect(hot["needs_review"]?.bool == true)
        #expect(hot["review_reasons"]?.array?.compactMap(\.string) == ["hot_without_owner"])
        var bad: Record = ["score": 101]
        #expect(throws: RecordRejected.self) { try rules.tier(&bad, now: PermitTests.now) }
    }
}
