import LeadRules
import StageKit
import Testing

/// The engagement-event rules: flattening PostHog events, lead records and their scores, the
/// hourly analytics and how they merge across runs, the run windows.
@Suite struct EventTests {
    static let catalog = try! EventCatalog.load(events: repoStages + "/flatten/events.csv", fields: repoStages + "/flatten/event-fields.csv")
    static let weights = try! EventWeights.load(repoStages + "/score/event-weights.csv")
    static func at(_ text: String) -> Timestamp { Timestamp(iso8601: text)! }

    static func event(_ name: String, _ ts: String, listing: JSONValue? = "listing-123", seeker: String? = "seeker-456",
                      distinct: String? = nil, _ extra: [(String, JSONValue)] = []) -> Record {
        var p = Record()
        if let listing { p.append("listing_id", listing) }
        if let seeker { p.append("seeker_id", .string(seeker)) }
        for (k, v) in extra { p.append(k, v) }
        var e: Record = ["uuid": .string("u-\(name)-\(ts)"), "event": .string(name), "timestamp": .string(ts)]
        if let distinct { e.append("distinct_id", .string(distinct)) }
        e.append("properties", .object(p))
        return e
    }

    static func flat(_ e: Record) throws -> Record {
        guard case .record(let r) = try catalog.flatten(e) else { throw RecordRejected("skipped") }
        return r
    }

    static func action(_ e: Record) throws -> LeadAction { try LeadAction(record: flat(e)) }

    @Test func flattensLeadAndEngagementEvents() throws {
        let phone = try EventTests.flat(EventTests.event("lead_phone", "2025-01-15T10:00:00Z", [("lister_id", "developer-789"), ("lister_type", "developer")]))
        #expect(phone.json == #"{"kind":"action","event":"lead_phone","event_id":"u-lead_phone-2025-01-15T10:00:00Z","listing_id":"listing-123","seeker_id":"seeker-456","lister_id":"developer-789","lister_type":"developer","lead_type":"phone","timestamp":"2025-01-15T10:00:00Z"}"#)
        let message = try EventTests.flat(EventTests.event("lead_message", "2025-01-15T10:00:00Z", [("message_type", "WhatsApp")]))
        #expect(message.text("message_type") == "whatsapp", "message types are compared in lower case")
        #expect(message["appointment_type"] == nil && message["share_channel"] == nil)
        let share = try EventTests.flat(EventTests.event("listing_share", "2025-01-15T10:00:00Z", seeker: nil, distinct: "anon-1", [("platform", "facebook")]))
        #expect(share.text("kind") == "share" && share.text("share_channel") == "facebook" && share.text("seeker_id") == "anon-1")
        #expect(share["lead_type"] == nil)
        let numeric = try EventTests.flat(EventTests.event("listing_view", "2025-01-15T10:00:00Z", listing: 512))
        #expect(numeric.text("listing_id") == "512")
    }

    @Test func seekerFallsBackToDistinctIdAndTimesBecomeUTC() throws {
        let e = try EventTests.flat(EventTests.event("lead_phone", "2025-01-15T05:45:00-05:00", seeker: nil, distinct: "seeker-9"))
        #expect(e.text("seeker_id") == "seeker-9")
        #expect(e.text("timestamp") == "2025-01-15T10:45:00Z")
        let east = try EventTests.flat(EventTests.event("listing_view", "2025-01-16T00:15:00+01:00"))
        #expect(east.text("timestamp") == "2025-01-15T23:15:00Z", "the UTC date can be the day before")
    }

    @Test func rejectsWhatCannotBeCountedAndSkipsOtherNames() throws {
        #expect(throws: RecordRejected.self) { try EventTests.catalog.flatten(EventTests.event("listing_view", "2025-01-15T10:00:00Z", listing: nil)) }
        #expect(throws: RecordRejected.self) { try EventTests.catalog.flatten(EventTests.event("lead_phone", "2025-01-15T10:00:00Z", seeker: nil)) }
        #expect(throws: RecordRejected.self) { try EventTests.catalog.flatten(EventTests.event("lead_phone", "15/01/2025 10:00")) }
        let view = try EventTests.catalog.flatten(EventTests.event("listing_view", "2025-01-15T10:00:00Z", seeker: nil))
        if case .record(let r) = view { #expect(r["seeker_id"]?.isNull == true, "an anonymous view is kept") } else { Issue.record("view skipped") }
        if case .skipped(let name) = try EventTests.catalog.flatten(EventTests.event("$pageview", "2025-01-15T10:00:00Z")) {
            #expect(name == "$pageview")
        } else {
            Issue.record("$pageview was not skipped")
        }
    }

    @Test func weightsFollowTheRules() {
        let w = EventTests.weights
        #expect(w.points(leadType: "appointment", messageType: nil) == 40)
        #expect(w.points(leadType: "phone", messageType: nil) == 30)
        #expect(w.points(leadType: "message", messageType: "direct_message") == 20)
        #expect(w.points(leadType: "message", messageType: "whatsapp") == 15)
        #expect(w.points(leadType: "message", messageType: "email") == 10)
        #expect(w.points(leadType: "message", messageType: "sms") == 10, "an unknown message type gets the * row")
        #expect(w.points(leadType: "message", messageType: nil) == 10)
        #expect(w.points(leadType: "lead", messageType: nil) == 10)
        #expect(w.points(leadType: "fax", messageType: nil) == nil)
    }

    /// The seed's worked example: one seeker calls twice in one hour.
    @Test func seedExampleOneRecordTwoActionsScore60() throws {
        var groups = LeadGroups()
        try groups.add(EventTests.action(EventTests.event("lead_phone", "2025-01-15T10:30:00Z")), weights: EventTests.weights)
        try groups.add(EventTests.action(EventTests.event("lead_phone", "2025-01-15T10:00:00Z")), weights: EventTests.weights)
        let records = groups.records(now: EventTests.at("2025-01-15T12:00:00Z"), runID: "run-1")
        #expect(records.count == 1)
        let lead = records[0]
        #expect(lead.text("listing_id") == "listing-123" && lead.text("seeker_id") == "seeker-456")
        #expect(lead["total_actions"]?.int == 2)
        #expect(lead["lead_score"]?.int == 60)
        let times = lead["lead_actions"]?.array?.compactMap { $0.object?.text("timestamp") }
        #expect(times == ["2025-01-15T10:00:00Z", "2025-01-15T10:30:00Z"], "actions sorted by time")
        #expect(lead.text("status") == "new" && lead["status_tracker"]?.json == #"["new"]"# && lead["notes"]?.json == "[]")
        #expect(lead.text("first_action_date") == "2025-01-15" && lead.text("last_action_type") == "lead_phone")
        #expect(lead.text("created_at") == "2025-01-15T12:00:00Z" && lead.text("run_id") == "run-1")
        #expect(lead.keys == ["kind", "listing_id", "seeker_id", "lister_id", "lister_type", "lead_actions", "total_actions", "lead_score",
                              "first_action_date", "last_action_date", "last_action_type", "status", "status_tracker", "notes",
                              "created_at", "updated_at", "run_id"])

        var tally = RunTally(runID: "run-1")
        try tally.addLead(record: lead)
        let row = HourPart.analyticsRow(tally.parts())
        #expect(row["hour"]?.int == 10 && row.text("date") == "2025-01-15")
        #expect(row["phone_leads"]?.int == 2 && row["total_leads"]?.int == 2 && row["unique_leads"]?.int == 1)
        #expect(row["conversion_rate"]?.double == 0, "no views: 0")
    }

    /// The seed's lead record: a phone call then a WhatsApp message, 45 points, lister kept.
    @Test func seedLeadRecordPhoneThenWhatsApp() throws {
        var groups = LeadGroups()
        try groups.add(EventTests.action(EventTests.event("lead_phone", "2025-01-15T10:00:00Z", [("lister_id", "developer-789"), ("lister_type", "developer")])),
                       weights: EventTests.weights)
        try groups.add(EventTests.action(EventTests.event("lead_message", "2025-01-15T11:00:00Z", [("message_type", "whatsapp")])),
                       weights: EventTests.weights)
        let lead = groups.records(now: EventTests.at("2025-01-15T12:00:00Z"), runID: "r")[0]
        #expect(lead["lead_score"]?.int == 45)
        #expect(lead.text("lister_id") == "developer-789" && lead.text("lister_type") == "developer")
        #expect(lead.text("last_action_type") == "lead_message")
        #expect(lead["lead_actions"]?.array?.last?.object?.text("message_type") == "whatsapp")
    }

    @Test func hourBoundariesAndLeadTypes() throws {
        var tally = RunTally(runID: "r")
        tally.addEngagement(kind: "view", listingID: "L", viewer: "a", channel: nil, at: EventTests.at("2025-01-16T12:59:59Z"))
        tally.addEngagement(kind: "view", listingID: "L", viewer: "a", channel: nil, at: EventTests.at("2025-01-16T13:00:00Z"))
        tally.addEngagement(kind: "view", listingID: "L", viewer: "b", channel: nil, at: EventTests.at("2025-01-16T13:59:59.999Z"))
        tally.addEngagement(kind: "view", listingID: "L", viewer: nil, channel: nil, at: EventTests.at("2025-01-16T13:10:00Z"))
        for (type, message) in [("phone", nil), ("message", "email"), ("message", "whatsapp"), ("message", nil), ("appointment", nil), ("lead", nil)] as [(String, String?)] {
            tally.addLead(listingID: "L", seekerID: "s-" + type, leadType: type, messageType: message, at: EventTests.at("2025-01-16T13:30:00Z"))
        }
        tally.addEngagement(kind: "share", listingID: "L", viewer: "a", channel: "whatsapp", at: EventTests.at("2025-01-16T13:01:00Z"))
        tally.addEngagement(kind: "share", listingID: "L", viewer: "a", channel: nil, at: EventTests.at("2025-01-16T13:02:00Z"))
        tally.addEngagement(kind: "impression", listingID: "L", viewer: "a", channel: nil, at: EventTests.at("2025-01-16T13:03:00Z"))
        tally.addEngagement(kind: "save", listingID: "L", viewer: "a", channel: nil, at: EventTests.at("2025-01-16T13:04:00Z"))
        // Six leads by four seekers (the three message leads are one seeker's).
        let parts = tally.parts()
        #expect(parts.map { $0.key.start.hour } == [12, 13])
        let noon = HourPart.analyticsRow([parts[0]]), one = HourPart.analyticsRow([parts[1]])
        #expect(noon["total_views"]?.int == 1)
        #expect(one.json == #"{"listing_id":"L","date":"2025-01-16","hour":13,"total_views":3,"unique_views":2,"total_leads":6,"phone_leads":1,"message_leads":2,"email_leads":1,"appointment_leads":1,"unique_leads":4,"conversion_rate":200.0,"impressions":1,"shares":2,"saves":1,"share_breakdown":{"unknown":1,"whatsapp":1}}"#)
    }

    /// Events out of time order (a listing's hour again after a later one, another listing
    /// between): each hour is one cell whichever came last, and the parts come in listing
    /// and hour order.
    @Test func hoursRevisitedOutOfOrderCountInTheirOwnCell() throws {
        var tally = RunTally(runID: "r")
        let times = ["2025-01-16T10:05:00Z", "2025-01-16T12:05:00Z", "2025-01-16T10:50:00Z", "2025-01-16T12:10:00Z", "2025-01-16T09:00:00Z"]
        for (i, t) in times.enumerated() {
            tally.addEngagement(kind: "view", listingID: "B", viewer: "v\(i)", channel: nil, at: EventTests.at(t))
            tally.addEngagement(kind: "view", listingID: "A", viewer: "v\(i % 2)", channel: nil, at: EventTests.at(t))
        }
        let parts = tally.parts()
        #expect(parts.map { "\($0.key.listingID) \($0.key.start.hour)" } == ["A 9", "A 10", "A 12", "B 9", "B 10", "B 12"])
        #expect(parts.map(\.views) == [1, 2, 2, 1, 2, 2])
        #expect(parts.map(\.viewers) == [["v0"], ["v0"], ["v1"], ["v4"], ["v0", "v2"], ["v1", "v3"]])
        #expect(parts[4].firstAt == EventTests.at("2025-01-16T10:05:00Z") && parts[4].lastAt == EventTests.at("2025-01-16T10:50:00Z"))
    }

    @Test func conversionRateIsRoundedToHundredths() {
        #expect(HourPart.conversionRate(leads: 1, views: 3) == 33.33)
        #expect(HourPart.conversionRate(leads: 2, views: 3) == 66.67)
        #expect(HourPart.conversionRate(leads: 5, views: 100) == 5)
        #expect(HourPart.conversionRate(leads: 3, views: 0) == 0)
    }

    /// An hour two runs add to: counts add up, unique counts stay unique, and a part read back
    /// from the parts file merges the same as the one written.
    @Test func hoursMergeAcrossRunsKeepingUniqueCountsUnique() throws {
        var first = RunTally(runID: "r1"), second = RunTally(runID: "r2")
        for v in ["a", "b", "c"] { first.addEngagement(kind: "view", listingID: "L", viewer: v, channel: nil, at: EventTests.at("2025-01-16T12:10:00Z")) }
        first.addLead(listingID: "L", seekerID: "a", leadType: "phone", messageType: nil, at: EventTests.at("2025-01-16T12:20:00Z"))
        for v in ["b", "d"] { second.addEngagement(kind: "view", listingID: "L", viewer: v, channel: nil, at: EventTests.at("2025-01-16T12:40:00Z")) }
        second.addLead(listingID: "L", seekerID: "a", leadType: "phone", messageType: nil, at: EventTests.at("2025-01-16T12:45:00Z"))
        second.addLead(listingID: "L", seekerID: "b", leadType: "appointment", messageType: nil, at: EventTests.at("2025-01-16T12:50:00Z"))
        var p1 = first.parts()[0], p2 = second.parts()[0]
        p1.runID = "r1"
        p2.runID = "r2"
        let reread = try HourPart(record: p1.record)
        #expect(reread.record.json == p1.record.json)
        let row = HourPart.analyticsRow([reread, p2])
        #expect(row["total_views"]?.int == 5 && row["unique_views"]?.int == 4)
        #expect(row["total_leads"]?.int == 3 && row["phone_leads"]?.int == 2 && row["unique_leads"]?.int == 2)
        #expect(row["conversion_rate"]?.double == 60)
        // The listing's totals over this hour and a later one: the same viewer (a) and seeker
        // (a) in both hours count once; conversion from the totals; the last event's time.
        var later = RunTally(runID: "r2")
        for v in ["a", "e"] { later.addEngagement(kind: "view", listingID: "L", viewer: v, channel: nil, at: EventTests.at("2025-01-16T13:05:00Z")) }
        later.addLead(listingID: "L", seekerID: "a", leadType: "message", messageType: "email", at: EventTests.at("2025-01-16T13:07:30Z"))
        var totals = ListingTotals(listingID: "L")
        totals.add(HourPart.merge([reread, p2]).counts)
        totals.add(HourPart.merge(later.parts()).counts)
        let listing = totals.record
        #expect(listing["total_views"]?.int == 7 && listing["unique_views"]?.int == 5, "\(listing.json)")
        #expect(listing["total_leads"]?.int == 4 && listing["unique_leads"]?.int == 2)
        #expect(listing["conversion_rate"]?.double == 57.14)
        #expect(listing["leads_breakdown"]?.json == #"{"phone":2,"message":0,"email":1,"appointment":1,"website":0}"#)
        #expect(listing["first_activity_at"]?.text == "2025-01-16T12:10:00Z" && listing["last_activity_at"]?.text == "2025-01-16T13:07:30Z")
    }
}

/// The binary form of an hour's part that the export's sort writes to disk, and the drained
/// tally put back together.
struct HourPartCodecTests {
    @Test func aPartComesBackAsItWent() throws {
        var part = HourPart(key: ListingHour(listingID: "listing-é1", hour: 482_000), runID: "r1")
        part.views = 7; part.impressions = 3; part.shares = 2; part.saves = 1
        part.totalLeads = 4; part.phoneLeads = 1; part.messageLeads = 1; part.emailLeads = 1; part.appointmentLeads = 1
        part.shareBreakdown = ["email": 1, "unknown": 1]
        part.viewers = ["s1", "s2"]; part.seekers = ["s9"]
        part.firstAt = Timestamp(seconds: 1_735_689_600, nanoseconds: 250_000_000)
        let bytes = ByteBuffer()
        part.encode(into: bytes)
        let back = try #require(HourPart(encoded: bytes.bytes, runID: "r2"))
        var expected = part
        expected.runID = "r2"
        #expect(back.record.json == expected.record.json)
        #expect(back.lastAt == nil && back.firstAt == part.firstAt)
        #expect(HourPart(encoded: bytes.bytes(0..<(bytes.count - 1)), runID: "r2") == nil, "a cut piece is refused")
    }

    @Test func aPartWritesTheBytesOfItsRecord() {
        var part = HourPart(key: ListingHour(listingID: "listing-\"é1\"", hour: -3), runID: "r\\1")
        #expect({ let b = ByteBuffer(); part.writeJSON(into: b); return String(decoding: b.bytes, as: UTF8.self) }() == part.record.json,
                "an empty part")
        part.views = 7; part.impressions = 3; part.shares = 12; part.saves = 1
        part.totalLeads = 4; part.phoneLeads = 1; part.messageLeads = 1; part.emailLeads = 1; part.appointmentLeads = 1
        part.shareBreakdown = ["whatsapp": 10, "email": 1, "Émail": 1]
        part.viewers = ["s1", "s\u{1}2", "ß"]; part.seekers = ["s9"]
        part.firstAt = Timestamp(seconds: 1_735_689_600, nanoseconds: 250_000_000)
        part.lastAt = Timestamp(seconds: 1_735_693_199)
        let bytes = ByteBuffer()
        part.writeJSON(into: bytes)
        #expect(String(decoding: bytes.bytes, as: UTF8.self) == part.record.json)
        for (views, leads) in [(7, 4), (3, 1), (0, 0), (1, 1), (6, 0)] {
            part.views = views; part.totalLeads = leads
            let row = ByteBuffer()
            HourPart.writeAnalyticsRow(part, uniqueViews: 2, uniqueLeads: 1, into: row)
            #expect(String(decoding: row.bytes, as: UTF8.self) == HourPart.analyticsRow(part, uniqueViews: 2, uniqueLeads: 1).json,
                    "the analytics row of \(leads) leads in \(views) views")
        }
    }

    @Test func aTallyDrainedInPiecesCombinesToTheWholeTally() {
        let events: [(String, String, Int64)] = (0..<400).map { i in ("L\(i % 7)", "s\(i % 13)", 1_735_689_600 + Int64(i * 97)) }
        var whole = RunTally(runID: "r")
        for (listing, viewer, t) in events {
            whole.addEngagement(kind: "view", listingID: listing, viewer: viewer, channel: nil, at: Timestamp(seconds: t))
        }
        var pieces: [String: HourPart] = [:]
        var order: [String] = []
        var tally = RunTally(runID: "r")
        for (n, (listing, viewer, t)) in events.enumerated() {
            tally.addEngagement(kind: "view", listingID: listing, viewer: viewer, channel: nil, at: Timestamp(seconds: t))
            if n % 50 == 49 || n == events.count - 1 {
                tally.drain { part in
                    let k = part.key.listingID + "|\(part.key.hour)"
                    if pieces[k] == nil { order.append(k); pieces[k] = part } else { pieces[k]!.combine(part) }
                }
            }
        }
        #expect(tally.hours == 0)
        let combined = whole.parts().map { pieces[$0.key.listingID + "|\($0.key.hour)"]?.record.json ?? "(missing)" }
        #expect(combined == whole.parts().map(\.record.json))
        #expect(pieces.count == whole.parts().count)
    }
}

/// `EventTapeFlattener` writes what the record path (`EventCatalog.flatten`, the schema's
/// fill, the origin stamp, `JSONWriter`) writes, or declines and leaves it to that path.
struct EventTapeFlattenerTests {
    /// The record path's bytes for `text`, as lead-flatten events makes them.
    static func recordPath(_ text: String, schema: RecordSchema?, origin: StageKit.SourceLocation) throws -> String? {
        var record = try #require(JSONValue(parsing: text)?.object)
        guard case .record(var flat) = try EventTests.catalog.flatten(record) else { return nil }
        schema?.fill(&flat)
        if !flat.hasValue(Stage.originField) { flat[Stage.originField] = .string(origin.description) }
        record = flat
        return record.json
    }

    @Test(arguments: [
        #"{"uuid":"u1","event":"listing_view","timestamp":"2025-01-01T00:00:01Z","properties":{"listing_id":"l-1","seeker_id":"s-1","lister_id":"a-1","lister_type":"agent"}}"#,
        #"{"event":"lead_message","timestamp":"2025-01-15T05:45:00.250-05:00","distinct_id":"d-9","properties":{"listing_id":512,"message_type":"WhatsApp","seeker_id":""}}"#,
        #"{"id":7,"event":"lead_appointment","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"l","seeker_id":"s","appointment_type":"tour","message_type":"x"}}"#,
        #"{"event":"listing_share","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"l","share_method":"","platform":"Facebook","lister_id":12.0}}"#,
        #"{"event":"listing_save","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"l","lister_type":true,"lister_id":null,"seeker_id":["x"]}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":" padded "}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"caf\u00e9"}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"quote\"d","seeker_id":"é-unicode"}}"#,
        #"{"event":"lead_message","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"l","seeker_id":"s","message_type":"ÉMAIL"}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"l","listing_id":"second"}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":{"\u006cisting_id":"escaped key","listing_id":"l"}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","_origin":"kept.jsonl:3","properties":{"listing_id":"l"}}"#,
        #"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":"not an object","distinct_id":"d"}"#,
    ])
    func writesWhatTheRecordPathWrites(_ text: String) throws {
        let origin = StageKit.SourceLocation(path: "in \"put\".jsonl", line: 42)
        for schema in [nil, RecordSchema(name: "t", fields: ["kind", "run_id", "event", "_origin", "share_channel", "lead_type"])] {
            let expected = try? EventTapeFlattenerTests.recordPath(text, schema: schema, origin: origin)
            let fast = EventTapeFlattener(catalog: EventTests.catalog, schema: schema, stampsOrigin: true)
            let parser = JSONParser()
            var bytes = Array(text.utf8) + JSONParser.zeroPadding
            let out = ByteBuffer(capacity: 256)
            let tag = try bytes.withUnsafeMutableBufferPointer { buffer in
                let tape = try parser.parse(UnsafeBufferPointer(rebasing: buffer[..<text.utf8.count])).get()
                return fast.write(tape, origin: origin, into: out)
            }
            guard let tag else {
                #expect(out.count == 0, "a declined text writes nothing")
                continue
            }
            let written = String(decoding: out.bytes, as: UTF8.self)
            #expect(tag != EventTapeFlattener.skippedTag && tag != EventTapeFlattener.runTag)
            #expect(written == expected, "\(text) with schema \(schema?.fields ?? [])")
            _ = bytes
        }
    }

    @Test func declinesWhatTheRecordPathMustWordOrPassOn() throws {
        let fast = EventTapeFlattener(catalog: EventTests.catalog, schema: nil, stampsOrigin: true)
        let origin = StageKit.SourceLocation(path: "x", line: 1)
        func write(_ text: String) throws -> (Int?, String) {
            let parser = JSONParser()
            let bytes = Array(text.utf8) + JSONParser.zeroPadding
            let out = ByteBuffer(capacity: 256)
            let tag = try bytes.withUnsafeBufferPointer { buffer in
                fast.write(try parser.parse(UnsafeBufferPointer(rebasing: buffer[..<text.utf8.count])).get(), origin: origin, into: out)
            }
            return (tag, String(decoding: out.bytes, as: UTF8.self))
        }
        // Rejects (no listing, a lead without seeker, an unreadable time), run records and
        // flat input: the record path's.
        for text in [#"{"event":"listing_view","timestamp":"2025-01-15T10:00:00Z","properties":{}}"#,
                     #"{"event":"lead_phone","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":"l"}}"#,
                     #"{"event":"listing_view","timestamp":"15/01/2025","properties":{"listing_id":"l"}}"#,
                     #"{"kind":"run","run_id":"r"}"#, #"{"kind":"view","event":"listing_view"}"#, #"[1]"#] {
            let (tag, written) = try write(text)
            #expect(tag == nil && written.isEmpty, "\(text)")
        }
        let (plain, _) = try write(#"{"event":"lead_message","timestamp":"2025-01-15T10:00:00Z","properties":{"listing_id":7,"seeker_id":"s","message_type":"Email"}}"#)
        #expect(plain == EventTapeFlattener.tag(.lead), "the plain case is taken")
        let (tag, name) = try write(#"{"event":"$pageview","timestamp":"2025-01-15T10:00:00Z"}"#)
        #expect(tag == EventTapeFlattener.skippedTag && name == "$pageview", "another event is skipped by name")
    }
}
