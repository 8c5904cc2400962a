import StageKit

/// One run of the events pipeline: the events whose timestamp is in the window (from, to].
/// lead-fetch events starts the stream with it as a `{"kind":"run",...}` record; the later
/// stages pass it on and lead-export events records it in the state once every output is
/// written. The run_id is the window's end.
public struct EventRun: Sendable, Equatable {
    public var runID: String
    public var source: String
    public var from: Timestamp
    public var to: Timestamp

    public init(source: String, from: Timestamp, to: Timestamp) {
        self.runID = to.iso8601
        self.source = source
        self.from = from
        self.to = to
    }

    public static let kind = "run"

    public var record: Record {
        ["kind": .string(EventRun.kind), "run_id": .string(runID), "source": .string(source),
         "from": .string(from.iso8601), "to": .string(to.iso8601)]
    }

    /// A run record of the stream (or of the state's runs).
    public init(record: Record) throws(RecordRejected) {
        guard let id = record.text("run_id"), let fromText = record.text("from"), let from = Timestamp(iso8601: fromText),
              let toText = record.text("to"), let to = Timestamp(iso8601: toText), from < to else {
            throw RecordRejected("a run record needs run_id and a window from < to")
        }
        self.runID = id
        self.source = record.text("source") ?? ""
        self.from = from
        self.to = to
    }

    /// Whether `t` is in the window (from, to].
    public func contains(_ t: Timestamp) -> Bool { from < t && !(to < t) }
}

/// A listing's hour (UTC): the key of listing_analytics.
public struct ListingHour: Hashable, Sendable, Comparable {
    public var listingID: String
    /// Hours since the epoch.
    public var hour: Int64

    public init(listingID: String, at t: Timestamp) {
        self.listingID = listingID
        self.hour = t.seconds >= 0 ? t.seconds / 3600 : (t.seconds - 3599) / 3600
    }

    public init(listingID: String, hour: Int64) {
        self.listingID = listingID
        self.hour = hour
    }

    public var start: Timestamp { Timestamp(seconds: hour * 3600) }

    public static func < (a: ListingHour, b: ListingHour) -> Bool {
        a.listingID != b.listingID ? a.listingID.precedesInByteOrder(b.listingID) : a.hour < b.hour
    }
}

/// What one run adds to one listing's hour: the counts, and the viewer and seeker ids that
/// keep unique_views and unique_leads right when later runs add to the same hour. These parts
/// are kept (`analytics_parts.jsonl`); an analytics row is the merge of its hour's parts.
public struct HourPart: Sendable {
    public var key: ListingHour
    public var runID: String
    public var views = 0
    public var viewers: [String] = []
    public var impressions = 0
    public var shares = 0
    public var shareBreakdown: [String: Int] = [:]
    public var saves = 0
    public var totalLeads = 0
    public var phoneLeads = 0
    public var messageLeads = 0
    public var emailLeads = 0
    public var appointmentLeads = 0
    public var seekers: [String] = []
    /// The first and last event of the part (nil in parts written before they were kept).
    public var firstAt: Timestamp?
    public var lastAt: Timestamp?

    public init(key: ListingHour, runID: String) {
        self.key = key
        self.runID = runID
    }

    /// Counts one lead action: total_leads always; phone, appointment, email (a message
    /// whose type is email) or message (any other message); a bare lead only in the total.
    public mutating func countLead(leadType: String, messageType: String?) {
        totalLeads += 1
        switch leadType {
        case "phone": phoneLeads += 1
        case "appointment": appointmentLeads += 1
        case "message": if messageType == "email" { emailLeads += 1 } else { messageLeads += 1 }
        default: break
        }
    }

    /// The part as kept in the parts file.
    public var record: Record {
        var r = Record()
        r.append("listing_id", .string(key.listingID))
        r.append("date", .string(key.start.date.iso8601))
        r.append("hour", .int(key.start.hour))
        r.append("run_id", .string(runID))
        r.append("total_views", .int(views))
        r.append("viewers", .array(viewers.map { .string($0) }))
        r.append("impressions", .int(impressions))
        r.append("shares", .int(shares))
        r.append("share_breakdown", JSONValue(counts: shareBreakdown))
        r.append("saves", .int(saves))
        r.append("total_leads", .int(totalLeads))
        r.append("phone_leads", .int(phoneLeads))
        r.append("message_leads", .int(messageLeads))
        r.append("email_leads", .int(emailLeads))
        r.append("appointment_leads", .int(appointmentLeads))
        r.append("seekers", .array(seekers.map { .string($0) }))
        r.append("first_at", firstAt.map { .string($0.iso8601) } ?? .null)
        r.append("last_at", lastAt.map { .string($0.iso8601) } ?? .null)
        return r
    }

    /// Writes `record` as JSON, the bytes `JSONWriter.write(record)` makes, without building
    /// it: the parts file has a row per listing hour and run, each with its viewer and seeker ids.
    public func writeJSON(into out: ByteBuffer) {
        func lit(_ k: StaticString) {
            out.append(k.utf8Start, count: k.utf8CodeUnitCount)
        }
        func strings(_ list: [String]) {
            out.append(91)
            for (i, s) in list.enumerated() {
                if i > 0 { out.append(44) }
                JSONWriter.writeString(s, into: out)
            }
            out.append(93)
        }
        func time(_ t: Timestamp?) {
            guard let t else { return lit("null") }
            out.append(34)
            t.writeISO8601(into: out)
            out.append(34)
        }
        lit(#"{"listing_id":"#)
        JSONWriter.writeString(key.listingID, into: out)
        lit(#","date":"#)
        JSONWriter.writeString(key.start.date.iso8601, into: out)
        lit(#","hour":"#); out.append(decimal: key.start.hour)
        lit(#","run_id":"#); JSONWriter.writeString(runID, into: out)
        lit(#","total_views":"#); out.append(decimal: views)
        lit(#","viewers":"#); strings(viewers)
        lit(#","impressions":"#); out.append(decimal: impressions)
        lit(#","shares":"#); out.append(decimal: shares)
        lit(#","share_breakdown":"#); writeShareBreakdown(into: out)
        lit(#","saves":"#); out.append(decimal: saves)
        lit(#","total_leads":"#); out.append(decimal: totalLeads)
        lit(#","phone_leads":"#); out.append(decimal: phoneLeads)
        lit(#","message_leads":"#); out.append(decimal: messageLeads)
        lit(#","email_leads":"#); out.append(decimal: emailLeads)
        lit(#","appointment_leads":"#); out.append(decimal: appointmentLeads)
        lit(#","seekers":"#); strings(seekers)
        lit(#","first_at":"#); time(firstAt)
        lit(#","last_at":"#); time(lastAt)
        out.append(125)
    }

    /// Widens the part's first and last event times to take in `t`.
    public mutating func saw(_ t: Timestamp) {
        if firstAt.map({ t < $0 }) ?? true { firstAt = t }
        if lastAt.map({ $0 < t }) ?? true { lastAt = t }
    }

    /// A part read back from the parts file.
    public init(record r: Record) throws(RecordRejected) {
        guard let listing = r.text("listing_id"), let dateText = r.text("date"), let day = Timestamp(iso8601: dateText),
              let hour = r["hour"]?.int, (0..<24).contains(hour), let run = r.text("run_id") else {
            throw RecordRejected("an analytics part without listing_id, date, hour or run_id")
        }
        self.init(key: ListingHour(listingID: listing, at: day.adding(seconds: Int64(hour) * 3600)), runID: run)
        func count(_ k: String) -> Int { r[k]?.int ?? 0 }
        func ids(_ k: String) -> [String] { (r[k]?.array ?? []).compactMap(\.text) }
        views = count("total_views")
        viewers = ids("viewers")
        impressions = count("impressions")
        shares = count("shares")
        for field in r["share_breakdown"]?.object?.fields ?? [] { shareBreakdown[field.key] = field.value.int ?? 0 }
        saves = count("saves")
        totalLeads = count("total_leads")
        phoneLeads = count("phone_leads")
        messageLeads = count("message_leads")
        emailLeads = count("email_leads")
        appointmentLeads = count("appointment_leads")
        seekers = ids("seekers")
        firstAt = r.text("first_at").flatMap(Timestamp.init(iso8601:))
        lastAt = r.text("last_at").flatMap(Timestamp.init(iso8601:))
    }

    /// leads / views x 100 to two decimals; 0 without views.
    public static func conversionRate(leads: Int, views: Int) -> Double {
        views == 0 ? 0 : (Double(leads) * 10_000 / Double(views)).rounded() / 100
    }

    /// The parts of one hour (any runs) merged: counts summed, first and last events, and the
    /// distinct viewers and seekers over all parts (in the merged part's `viewers`, `seekers`).
    public static func merge(_ parts: [HourPart]) -> (counts: HourPart, uniqueViews: Int, uniqueLeads: Int) {
        var merged = HourPart(key: parts[0].key, runID: "")
        if parts.count == 1 {
            merged.add(parts[0])
            merged.viewers = parts[0].viewers
            merged.seekers = parts[0].seekers
            return (merged, parts[0].viewers.count, parts[0].seekers.count)
        }
        var viewers = Set<String>(), seekers = Set<String>()
        for p in parts {
            merged.add(p)
            viewers.formUnion(p.viewers)
            seekers.formUnion(p.seekers)
        }
        merged.viewers = Array(viewers)
        merged.seekers = Array(seekers)
        return (merged, viewers.count, seekers.count)
    }

    /// One listing_analytics row from the parts of one hour (any runs).
    public static func analyticsRow(_ parts: [HourPart]) -> Record {
        let m = merge(parts)
        return analyticsRow(m.counts, uniqueViews: m.uniqueViews, uniqueLeads: m.uniqueLeads)
    }

    /// The listing_analytics row of merged counts.
    public static func analyticsRow(_ merged: HourPart, uniqueViews: Int, uniqueLeads: Int) -> Record {
        var r = Record()
        r.append("listing_id", .string(merged.key.listingID))
        r.append("date", .string(merged.key.start.date.iso8601))
        r.append("hour", .int(merged.key.start.hour))
        r.append("total_views", .int(merged.views))
        r.append("unique_views", .int(uniqueViews))
        r.append("total_leads", .int(merged.totalLeads))
        r.append("phone_leads", .int(merged.phoneLeads))
        r.append("message_leads", .int(merged.messageLeads))
        r.append("email_leads", .int(merged.emailLeads))
        r.append("appointment_leads", .int(merged.appointmentLeads))
        r.append("unique_leads", .int(uniqueLeads))
        r.append("conversion_rate", .double(conversionRate(leads: merged.totalLeads, views: merged.views)))
        r.append("impressions", .int(merged.impressions))
        r.append("shares", .int(merged.shares))
        r.append("saves", .int(merged.saves))
        r.append("share_breakdown", JSONValue(counts: merged.shareBreakdown))
        return r
    }

    /// Writes `analyticsRow(merged, ...)` as JSON, the bytes `JSONWriter.write` makes of that
    /// record, without building it (a row per listing hour).
    public static func writeAnalyticsRow(_ merged: HourPart, uniqueViews: Int, uniqueLeads: Int, into out: ByteBuffer) {
        func lit(_ k: StaticString) { out.append(k.utf8Start, count: k.utf8CodeUnitCount) }
        lit(#"{"listing_id":"#); JSONWriter.writeString(merged.key.listingID, into: out)
        lit(#","date":"#); JSONWriter.writeString(merged.key.start.date.iso8601, into: out)
        lit(#","hour":"#); out.append(decimal: merged.key.start.hour)
        lit(#","total_views":"#); out.append(decimal: merged.views)
        lit(#","unique_views":"#); out.append(decimal: uniqueViews)
        lit(#","total_leads":"#); out.append(decimal: merged.totalLeads)
        lit(#","phone_leads":"#); out.append(decimal: merged.phoneLeads)
        lit(#","message_leads":"#); out.append(decimal: merged.messageLeads)
        lit(#","email_leads":"#); out.append(decimal: merged.emailLeads)
        lit(#","appointment_leads":"#); out.append(decimal: merged.appointmentLeads)
        lit(#","unique_leads":"#); out.append(decimal: uniqueLeads)
        lit(#","conversion_rate":"#); JSONWriter.writeDouble(conversionRate(leads: merged.totalLeads, views: merged.views), into: out)
        lit(#","impressions":"#); out.append(decimal: merged.impressions)
        lit(#","shares":"#); out.append(decimal: merged.shares)
        lit(#","saves":"#); out.append(decimal: merged.saves)
        lit(#","share_breakdown":"#); merged.writeShareBreakdown(into: out)
        out.append(125)
    }

    /// `share_breakdown` as `JSONValue(counts:)` writes it: channels in byte order.
    func writeShareBreakdown(into out: ByteBuffer) {
        out.append(123)
        for (i, k) in shareBreakdown.keys.sorted(by: { $0.precedesInByteOrder($1) }).enumerated() {
            if i > 0 { out.append(44) }
            JSONWriter.writeString(k, into: out)
            out.append(58)
            out.append(decimal: shareBreakdown[k]!)
        }
        out.append(125)
    }

    /// The part in a compact binary form, for a sort's scratch files (not its run id): every
    /// count, id and time as it is (`ByteBuffer.appendBinary`).
    public func encode(into out: ByteBuffer) {
        out.appendBinary(key.listingID)
        out.appendBinary(key.hour)
        for v in [views, impressions, shares, saves, totalLeads, phoneLeads, messageLeads, emailLeads, appointmentLeads] { out.appendBinary(Int64(v)) }
        out.appendBinary(Int64(shareBreakdown.count))
        for (channel, n) in shareBreakdown { out.appendBinary(channel); out.appendBinary(Int64(n)) }
        for list in [viewers, seekers] {
            out.appendBinary(Int64(list.count))
            for id in list { out.appendBinary(id) }
        }
        out.appendBinary(firstAt)
        out.appendBinary(lastAt)
    }

    /// A part from `encode`, of run `runID`; nil when the bytes are not one.
    public init?(encoded bytes: UnsafeBufferPointer<UInt8>, runID: String) {
        var fields = BinaryFields(bytes)
        guard let listing = fields.string(), let hour = fields.int() else { return nil }
        self.init(key: ListingHour(listingID: listing, hour: hour), runID: runID)
        func count() -> Int? { fields.int().map { Int($0) } }
        guard let views = count(), let impressions = count(), let shares = count(), let saves = count(),
              let totalLeads = count(), let phoneLeads = count(), let messageLeads = count(), let emailLeads = count(),
              let appointmentLeads = count() else { return nil }
        (self.views, self.impressions, self.shares, self.saves, self.totalLeads, self.phoneLeads, self.messageLeads,
         self.emailLeads, self.appointmentLeads)
            = (views, impressions, shares, saves, totalLeads, phoneLeads, messageLeads, emailLeads, appointmentLeads)
        guard let channels = fields.int() else { return nil }
        for _ in 0..<max(channels, 0) {
            guard let channel = fields.string(), let n = fields.int() else { return nil }
            shareBreakdown[channel] = Int(n)
        }
        func ids() -> [String]? {
            guard let n = fields.int() else { return nil }
            var list: [String] = []
            list.reserveCapacity(Int(max(n, 0)))
            for _ in 0..<max(n, 0) { guard let id = fields.string() else { return nil }; list.append(id) }
            return list
        }
        guard let viewers = ids(), let seekers = ids() else { return nil }
        (self.viewers, self.seekers) = (viewers, seekers)
        guard let first = fields.time(), let last = fields.time(), fields.atEnd else { return nil }
        (firstAt, lastAt) = (first, last)
    }

    /// Two pieces of one run's hour (`RunTally.drain`) as one: the counts summed, the first
    /// and last events, and the viewers and seekers of both (distinct, in byte order).
    public mutating func combine(_ p: HourPart) {
        add(p)
        func union(_ a: [String], _ b: [String]) -> [String] {
            Array(Set(a).union(b)).sorted { $0.precedesInByteOrder($1) }
        }
        viewers = union(viewers, p.viewers)
        seekers = union(seekers, p.seekers)
    }

    /// Adds another part's counts (not its ids).
    mutating func add(_ p: HourPart) {
        views += p.views
        impressions += p.impressions
        shares += p.shares
        for (k, v) in p.shareBreakdown { shareBreakdown[k, default: 0] += v }
        saves += p.saves
        totalLeads += p.totalLeads
        phoneLeads += p.phoneLeads
        messageLeads += p.messageLeads
        emailLeads += p.emailLeads
        appointmentLeads += p.appointmentLeads
        if let t = p.firstAt { saw(t) }
        if let t = p.lastAt { saw(t) }
    }
}

/// A listing's cumulative totals (`listings.jsonl`): every count summed over its
/// listing_analytics rows, except unique_views and unique_leads, the distinct viewers and
/// seekers over all of its hours (one viewer in two hours is one); conversion_rate over the
/// totals; leads_breakdown (phone, message, email, appointment, website: the bare leads) and
/// share_breakdown; the first and last event's time and the hours with activity.
public struct ListingTotals {
    public let listingID: String
    var sums = [Int](repeating: 0, count: ListingTotals.summed.count)
    var shareBreakdown: [String: Int] = [:]
    var viewers = Set<String>()
    var seekers = Set<String>()
    var first: Timestamp?
    var last: Timestamp?
    var hours = 0

    static let summed = ["total_views", "total_leads", "phone_leads", "message_leads", "email_leads",
                         "appointment_leads", "impressions", "shares", "saves"]

    public init(listingID: String) { self.listingID = listingID }

    /// Adds one hour's merged part (its viewers and seekers the hour's distinct ones).
    public mutating func add(_ merged: HourPart) {
        let values = [merged.views, merged.totalLeads, merged.phoneLeads, merged.messageLeads, merged.emailLeads,
                      merged.appointmentLeads, merged.impressions, merged.shares, merged.saves]
        for (i, v) in values.enumerated() { sums[i] += v }
        for (k, v) in merged.shareBreakdown { shareBreakdown[k, default: 0] += v }
        viewers.formUnion(merged.viewers)
        seekers.formUnion(merged.seekers)
        let start = merged.firstAt ?? merged.key.start
        let end = merged.lastAt ?? merged.key.start
        if first.map({ start < $0 }) ?? true { first = start }
        if last.map({ $0 < end }) ?? true { last = end }
        hours += 1
    }

    public var record: Record {
        var sums: [String: Int] = [:]
        for (i, k) in ListingTotals.summed.enumerated() { sums[k] = self.sums[i] }
        var r = Record()
        r.append("listing_id", .string(listingID))
        r.append("total_views", .int(sums["total_views"] ?? 0))
        r.append("unique_views", .int(viewers.count))
        for k in ["total_leads", "phone_leads", "message_leads", "email_leads", "appointment_leads"] { r.append(k, .int(sums[k] ?? 0)) }
        r.append("unique_leads", .int(seekers.count))
        r.append("conversion_rate", .double(HourPart.conversionRate(leads: sums["total_leads"] ?? 0, views: sums["total_views"] ?? 0)))
        r.append("impressions", .int(sums["impressions"] ?? 0))
        r.append("shares", .int(sums["shares"] ?? 0))
        r.append("saves", .int(sums["saves"] ?? 0))
        let typed = ["phone_leads", "message_leads", "email_leads", "appointment_leads"].reduce(0) { $0 + (sums[$1] ?? 0) }
        r.append("leads_breakdown", .object(["phone": .int(sums["phone_leads"] ?? 0), "message": .int(sums["message_leads"] ?? 0),
                                             "email": .int(sums["email_leads"] ?? 0), "appointment": .int(sums["appointment_leads"] ?? 0),
                                             "website": .int((sums["total_leads"] ?? 0) - typed)]))
        r.append("share_breakdown", JSONValue(counts: shareBreakdown))
        r.append("first_activity_at", first.map { .string($0.iso8601) } ?? .null)
        r.append("last_activity_at", last.map { .string($0.iso8601) } ?? .null)
        r.append("active_hours", .int(hours))
        return r
    }
}

/// What one run's events add to each listing's hours, counted as they stream by: the
/// engagement rows and the actions of the lead records. Viewer and seeker ids are kept as
/// small numbers until the parts are made.
public struct RunTally {
    struct Cell {
        var part: HourPart
        /// Its listing's number.
        var listing: UInt32 = 0
        var viewers: [Int32] = []
        var seekers: [Int32] = []
    }

    /// Cells by listing number (in `listings`) and hour, packed in one integer: an event
    /// hashes one listing id and two integers, not a String and an hour together.
    private var index: [UInt64: Int] = [:]
    private var listingNumbers: [String: UInt32] = [:]
    private var listings: [String] = []
    private var cells: [Cell] = []
    private var ids: [String: Int32] = [:]
    private var names: [String] = []
    private let runID: String
    /// What the tally takes in memory, about: a cell 400 bytes, a viewer or seeker seen 4, an
    /// id or listing its text and 80.
    public private(set) var bytes = 0

    public init(runID: String) { self.runID = runID }

    /// The hours touched so far.
    public var hours: Int { cells.count }

    private mutating func cell(_ listingID: String, _ at: Timestamp) -> Int {
        let number: UInt32
        if let known = listingNumbers[listingID] { number = known } else {
            number = UInt32(listings.count)
            listingNumbers[listingID] = number
            listings.append(listingID)
            bytes += listingID.utf8.count + 80
        }
        let key = ListingHour(listingID: listingID, at: at)
        let packed = UInt64(number) << 32 | UInt64(UInt32(truncatingIfNeeded: key.hour))
        if let i = index[packed] { return i }
        index[packed] = cells.count
        cells.append(Cell(part: HourPart(key: key, runID: runID), listing: number))
        bytes += 400
        return cells.count - 1
    }

    private mutating func id(_ text: String) -> Int32 {
        if let n = ids[text] { return n }
        let n = Int32(names.count)
        ids[text] = n
        names.append(text)
        bytes += text.utf8.count + 80
        return n
    }

    /// One engagement row: a view (by `viewer`, when known), impression, share (through
    /// `channel`; `unknown` when none) or save. Other kinds are ignored.
    public mutating func addEngagement(kind: String, listingID: String, viewer: String?, channel: String?, at: Timestamp) {
        let i = cell(listingID, at)
        cells[i].part.saw(at)
        switch kind {
        case "view":
            cells[i].part.views += 1
            if let viewer { let n = id(viewer); cells[i].viewers.append(n); bytes += 4 }
        case "impression": cells[i].part.impressions += 1
        case "share":
            cells[i].part.shares += 1
            cells[i].part.shareBreakdown[channel ?? "unknown", default: 0] += 1
        case "save": cells[i].part.saves += 1
        default: break
        }
    }

    /// One lead action of `seekerID` (from a lead record's lead_actions).
    public mutating func addLead(listingID: String, seekerID: String, leadType: String, messageType: String?, at: Timestamp) {
        let i = cell(listingID, at)
        cells[i].part.saw(at)
        cells[i].part.countLead(leadType: leadType, messageType: messageType)
        let n = id(seekerID)
        cells[i].seekers.append(n)
        bytes += 4
    }

    /// Adds every action of a lead record; a record whose actions cannot be read is rejected.
    public mutating func addLead(record: Record) throws(RecordRejected) {
        let lead = try RunTally.actions(of: record)
        for (type, message, at) in lead.actions {
            addLead(listingID: lead.listing, seekerID: lead.seeker, leadType: type, messageType: message, at: at)
        }
    }

    /// A lead record's listing, seeker and actions (type, message type, time), as
    /// `addLead(record:)` counts them; a record whose actions cannot be read is rejected.
    public static func actions(of record: Record) throws(RecordRejected)
        -> (listing: String, seeker: String, actions: [(type: String, message: String?, at: Timestamp)]) {
        guard let listing = record.text("listing_id"), let seeker = record.text("seeker_id"),
              let actions = record["lead_actions"]?.array else {
            throw RecordRejected("a lead record without listing_id, seeker_id or lead_actions")
        }
        var parsed: [(type: String, message: String?, at: Timestamp)] = []
        for value in actions {
            guard let a = value.object, let type = a.text("lead_type"), let text = a.text("timestamp"),
                  let at = Timestamp(iso8601: text) else {
                throw RecordRejected("a lead action without lead_type or a readable timestamp: \(value.json)")
            }
            parsed.append((type, a.text("message_type"), at))
        }
        return (listing, seeker, parsed)
    }

    /// The run's parts, in listing and hour order, each with its distinct viewers and seekers.
    public func parts() -> [HourPart] {
        var out: [HourPart] = []
        out.reserveCapacity(cells.count)
        eachPart { out.append($0) }
        return out
    }

    /// Hands the parts counted so far to `body` (as `parts` orders them), one at a time, and
    /// starts again from nothing: the run's tally in pieces, for more hours than memory holds
    /// (the pieces of one hour are put together with `HourPart.combine`).
    public mutating func drain(_ body: (HourPart) throws -> Void) rethrows {
        try eachPart(body)
        self = RunTally(runID: runID)
    }

    private func eachPart(_ body: (HourPart) throws -> Void) rethrows {
        func texts(_ list: [Int32]) -> [String] {
            // Most hours see one or two viewers and seekers: no set or sort for those.
            switch list.count {
            case 0: return []
            case 1: return [names[Int(list[0])]]
            case 2:
                let a = names[Int(list[0])], b = names[Int(list[1])]
                if list[0] == list[1] { return [a] }
                return a.precedesInByteOrder(b) ? [a, b] : [b, a]
            default: return Array(Set(list)).map { names[Int($0)] }.sorted { $0.precedesInByteOrder($1) }
            }
        }
        // Listing and hour order: each listing's rank in byte order, then the hour, compared
        // as integers.
        var rank = [Int64](repeating: 0, count: listings.count)
        for (r, n) in listings.indices.sorted(by: { listings[$0].precedesInByteOrder(listings[$1]) }).enumerated() { rank[n] = Int64(r) }
        let order = cells.indices.map { i -> (Int64, Int64, Int) in (rank[Int(cells[i].listing)], cells[i].part.key.hour, i) }.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map(\.2)
        for i in order {
            var part = cells[i].part
            part.viewers = texts(cells[i].viewers)
            part.seekers = texts(cells[i].seekers)
            try body(part)
        }
    }
}
