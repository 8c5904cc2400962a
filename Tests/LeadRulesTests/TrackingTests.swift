import LeadRules
import StageKit
import Testing

/// Lead tracking fields: owned by people, checked, kept in status_history, and merged by
/// the time of their last edit.
@Suite struct TrackingTests {
    static let rules = TrackingRules(fields: [
        .init(field: "leadStatus", initial: .string("new"), type: .choice, values: ["new", "contacted", "qualified", "unqualified", "dead"]),
        .init(field: "skipTraced", initial: .bool(false), type: .bool, values: []),
        .init(field: "ownerEmail", initial: .null, type: .email, values: []),
        .init(field: "lastContactDate", initial: .null, type: .date, values: []),
    ])

    static func at(_ text: String) -> Timestamp { Timestamp(iso8601: text)! }

    func value(_ field: String, _ text: String) -> String {
        switch TrackingTests.rules.coerce(field, JSONValue.string(text)) {
        case .success(let v): return v.json
        case .failure(let e): return "error: \(e)"
        }
    }

    @Test func valuesAreCheckedAndStandardised() {
        #expect(value("leadStatus", "Contacted") == #""contacted""#)
        #expect(value("leadStatus", "Contacted!!").hasPrefix("error: leadStatus must be one of new, contacted"))
        #expect(value("skipTraced", "yes") == "true" && value("skipTraced", "N") == "false")
        #expect(value("skipTraced", "maybe").hasPrefix("error: skipTraced must be true or false"))
        #expect(value("lastContactDate", "2026-11-24") == #""2026-11-24""#)
        #expect(value("lastContactDate", "11/24/2026").hasPrefix("error:"))
        #expect(value("ownerEmail", "ann@example.com") == #""ann@example.com""#)
        #expect(value("ownerEmail", "ann at example").hasPrefix("error:"))
        #expect(value("owner", "x").hasPrefix("error: 'owner' is not a lead tracking field"))
    }

    @Test func aHandEditIsStampedOnceAndABadOneIsKeptAside() {
        var lead: Record = ["leadStatus": "Contacted", "skipTraced": "yes", "ownerEmail": "not an email"]
        let problems = TrackingTests.rules.stampEdits(&lead, at: TrackingTests.at("2026-11-23T06:00:00Z"), by: "hand edit")
        #expect(lead["leadStatus"]?.json == #""contacted""# && lead["skipTraced"]?.json == "true")
        #expect(lead["ownerEmail"]?.isNull == true, "the bad value is not taken")
        #expect(lead["tracking_errors"]?.object?["ownerEmail"]?.object?["value"]?.json == #""not an email""#)
        #expect(problems.count == 1)
        let history = TrackingRules.history(of: lead)
        #expect(history.map { $0.text("field") ?? "" } == ["leadStatus", "skipTraced"])
        #expect(history[0].json == #"{"field":"leadStatus","old":"new","new":"contacted","at":"2026-11-23T06:00:00Z","by":"hand edit"}"#)
        TrackingTests.rules.stampEdits(&lead, at: TrackingTests.at("2026-11-24T06:00:00Z"), by: "hand edit")
        #expect(TrackingRules.history(of: lead).count == 2, "a value the history holds is not stamped again")
    }

    @Test func theLaterEditWinsWhicheverSideItIsOn() {
        let rules = TrackingTests.rules
        var master: Record = ["leadStatus": "new"]
        rules.set("leadStatus", to: "qualified", in: &master, at: TrackingTests.at("2026-11-24T09:00:00Z"), by: "ana")
        // An older edit in the incoming lead does not win...
        var older: Record = ["leadStatus": "new"]
        rules.set("leadStatus", to: "contacted", in: &older, at: TrackingTests.at("2026-11-23T06:00:00Z"), by: "import")
        var kept = master
        #expect(rules.merge(into: &kept, from: older) == [TrackingRules.historyField])
        #expect(kept["leadStatus"]?.json == #""qualified""#)
        #expect(TrackingRules.history(of: kept).map { $0.text("new") ?? "" } == ["contacted", "qualified"], "histories united in time order")
        // ...a newer one does, and an unedited value never does.
        var newer: Record = ["leadStatus": "new"]
        rules.set("leadStatus", to: "dead", in: &newer, at: TrackingTests.at("2026-11-25T09:00:00Z"), by: "bo")
        kept = master
        #expect(rules.merge(into: &kept, from: newer).contains("leadStatus") && kept["leadStatus"]?.json == #""dead""#)
        kept = master
        _ = rules.merge(into: &kept, from: ["leadStatus": "new", "skipTraced": false])
        #expect(kept["leadStatus"]?.json == #""qualified""# && kept["skipTraced"] == nil)
    }

    @Test func theMergePolicyNeverOverwritesAnEdit() {
        let merge = LeadMerge(rules: DedupeRules(policy: .update, dnamaFields: [], tracking: TrackingTests.rules))
        var master: Record = ["owner_name": "ANN LEE", "leadStatus": "new"]
        TrackingTests.rules.set("leadStatus", to: "contacted", in: &master, at: TrackingTests.at("2026-11-24T09:00:00Z"), by: "ana")
        let refresh: Record = ["owner_name": "ANN B LEE", "leadStatus": "new", "skipTraced": false]
        let outcome = merge.merge(kept: master, incoming: refresh)
        #expect(outcome.lead["owner_name"]?.json == #""ANN B LEE""#, "update lets the newer lead win other fields")
        #expect(outcome.lead["leadStatus"]?.json == #""contacted""#, "but not the one a person edited")
    }
}
