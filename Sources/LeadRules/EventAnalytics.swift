import CHints
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
        self.hour = ListingHour.hour(of: t)
    }

    /// The hour since the epoch that `t` falls in.
    public static func hour(of t: Timestamp) -> Int64 {
        t.seconds >= 0 ? t.seconds / 3600 : (t.seconds - 3599) / 3600
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

    /// Where a lead action counts besides total_leads: phone, appointment, email (a message
    /// whose type is email) or message (any other message); a bare lead (nil) only in the total.
    public enum LeadColumn: Sendable { case phone, appointment, email, message }

    public static func leadColumn(leadType: String, messageType: String?) -> LeadColumn? {
        switch leadType {
        case "phone": return .phone
        case "appointment": return .appointment
        case "message": return messageType == "email" ? .email : .message
        default: return nil
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
/// engagement rows and the actions of the lead records. Every listing, viewer, seeker and
/// channel id is a number (`ByteInterner`), each hour a cell of plain numbers with its
/// viewers and seekers in linked lists, so that an event costs a hash of its bytes and a few
/// stores, and the tally's memory is what `bytes` says; the parts (`HourPart`) are made when
/// asked for, in listing and hour order.
public struct RunTally {
    /// One listing's hour: counts, first and last event, and the heads of its lists, in 72
    /// bytes.
    struct Cell {
        /// The hour since the epoch (an ISO 8601 year of four digits is within 32 bits of
        /// hours).
        var hour: Int32
        var listing: Int32
        /// The first and last event: nanoseconds into the hour; -1 before any.
        var first: Int64 = -1
        var last: Int64 = -1
        var views: Int32 = 0, impressions: Int32 = 0, shares: Int32 = 0, saves: Int32 = 0
        var totalLeads: Int32 = 0, phoneLeads: Int32 = 0, messageLeads: Int32 = 0, emailLeads: Int32 = 0, appointmentLeads: Int32 = 0
        /// Heads in `links` (viewers, seekers) and `shareLinks`; -1 for none.
        var viewers: Int32 = -1, seekers: Int32 = -1, channels: Int32 = -1

        init(listing: Int32, hour: Int32) {
            self.listing = listing
            self.hour = hour
        }

        mutating func saw(_ t: Timestamp) {
            let into = (t.seconds - Int64(hour) * 3600) * 1_000_000_000 + Int64(t.nanoseconds)
            if first < 0 || into < first { first = into }
            if into > last { last = into }
        }

        func time(_ into: Int64) -> Timestamp {
            Timestamp(seconds: Int64(hour) * 3600 + into / 1_000_000_000, nanoseconds: Int32(into % 1_000_000_000))
        }
    }

    /// Append-only storage in chunks of 65,536: growing never copies (nor holds twice) what
    /// is already there.
    struct Chunked<T> {
        private var chunks: [[T]] = []
        private(set) var count = 0

        mutating func append(_ x: T) {
            if count & 0xFFFF == 0 {
                chunks.append([])
                chunks[chunks.count - 1].reserveCapacity(0x10000)
            }
            chunks[chunks.count - 1].append(x)
            count += 1
        }

        subscript(i: Int) -> T {
            get { chunks[i >> 16][i & 0xFFFF] }
            _modify { yield &chunks[i >> 16][i & 0xFFFF] }
        }

        var memory: Int { chunks.count * 0x10000 * MemoryLayout<T>.stride }

        /// Asks for element `i`'s cache lines ahead of reading it (see `RunTally.prefetch`).
        func prefetch(_ i: Int) {
            chunks[i >> 16].withUnsafeBytes { chunk in
                let at = chunk.baseAddress! + (i & 0xFFFF) * MemoryLayout<T>.stride
                lead_prefetch(at)
                if MemoryLayout<T>.size > 1 { lead_prefetch(at + MemoryLayout<T>.size - 1) }
            }
        }
    }

    private var listings = ByteInterner()
    private var people = ByteInterner()
    private var channels = ByteInterner()
    private var cells = Chunked<Cell>()
    /// Viewer and seeker lists: the person's number in the high half, the next link + 1 in
    /// the low (0 ends the list).
    private var links = Chunked<UInt64>()
    /// Share counts by channel: channel, count, next link (-1 ends).
    private var shareLinks: [(channel: Int32, count: Int32, next: Int32)] = []
    /// Cell number + 1 by a hash of listing and hour, 0 for an empty slot; a power of two
    /// long, never more than half full.
    private var slots = [Int32](repeating: 0, count: 1024)
    /// The cell each listing was last counted in, by listing number: events come in time
    /// order, so nearly every one lands in its listing's last hour, found without a probe
    /// of `slots` (a cache miss each, past a few hundred thousand hours).
    private var lastCell: [Int32] = []
    private let runID: String

    public init(runID: String) { self.runID = runID }

    /// What the tally takes in memory: its cells, lists, slots and ids as allocated.
    public var bytes: Int {
        cells.memory + links.memory + shareLinks.capacity * 12 + slots.capacity * 4 + lastCell.capacity * 4
            + listings.memory + people.memory + channels.memory
    }

    /// The hours touched so far.
    public var hours: Int { cells.count }

    private static func slot(listing: Int32, hour: Int32, mask: Int) -> Int {
        let packed = UInt64(UInt32(bitPattern: listing)) << 32 | UInt64(UInt32(bitPattern: hour))
        return Int(truncatingIfNeeded: (packed &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    private mutating func cell(_ listing: UnsafeBufferPointer<UInt8>, _ at: Timestamp) -> Int {
        let number = listings.id(listing)
        let hour = Int32(ListingHour.hour(of: at))
        if Int(number) < lastCell.count {
            let last = Int(lastCell[Int(number)])
            if cells[last].hour == hour { return last }
        }
        let i = probe(number, hour)
        if Int(number) == lastCell.count { lastCell.append(Int32(i)) } else { lastCell[Int(number)] = Int32(i) }
        return i
    }

    /// The cell of a listing's hour, from `slots`; a new one when the hour is new.
    private mutating func probe(_ number: Int32, _ hour: Int32) -> Int {
        let mask = slots.count - 1
        var slot = RunTally.slot(listing: number, hour: hour, mask: mask)
        while true {
            let held = slots[slot]
            if held == 0 { break }
            let i = Int(held - 1)
            if cells[i].listing == number && cells[i].hour == hour { return i }
            slot = (slot + 1) & mask
        }
        let i = cells.count
        cells.append(Cell(listing: number, hour: hour))
        slots[slot] = Int32(i + 1)
        if cells.count * 2 > slots.count { growSlots() }
        return i
    }

    private mutating func growSlots() {
        var bigger = [Int32](repeating: 0, count: slots.count * 2)
        let mask = bigger.count - 1
        for i in 0..<cells.count {
            var slot = RunTally.slot(listing: cells[i].listing, hour: cells[i].hour, mask: mask)
            while bigger[slot] != 0 { slot = (slot + 1) & mask }
            bigger[slot] = Int32(i + 1)
        }
        slots = bigger
    }

    private mutating func link(_ person: Int32, after head: Int32) -> Int32 {
        links.append(UInt64(UInt32(bitPattern: person)) << 32 | UInt64(UInt32(bitPattern: head + 1)))
        return Int32(links.count - 1)
    }

    /// The kinds of engagement row `addEngagement` counts.
    public enum Engagement: String, CaseIterable, Sendable {
        case view, impression, share, save
    }

    /// One engagement row: a view (by `viewer`, when known), impression, share (through
    /// `channel`; `unknown` when none) or save. Other kinds are ignored.
    public mutating func addEngagement(kind: String, listingID: String, viewer: String?, channel: String?, at: Timestamp) {
        guard let kind = Engagement(rawValue: kind) else { return }
        var listingID = listingID, viewer = viewer, channel = channel
        listingID.withUTF8 { listing in
            func withOptional(_ s: inout String?, _ body: (UnsafeBufferPointer<UInt8>?) -> Void) {
                if s == nil { return body(nil) }
                s!.withUTF8 { body($0) }
            }
            withOptional(&viewer) { viewer in
                withOptional(&channel) { channel in
                    addEngagement(kind, listing: listing, viewer: viewer, channel: channel, at: at)
                }
            }
        }
    }

    /// `addEngagement(kind:listingID:viewer:channel:at:)` of ids given as their bytes.
    public mutating func addEngagement(_ kind: Engagement, listing: UnsafeBufferPointer<UInt8>, viewer: UnsafeBufferPointer<UInt8>?,
                                       channel: UnsafeBufferPointer<UInt8>?, at: Timestamp) {
        let i = cell(listing, at)
        cells[i].saw(at)
        switch kind {
        case .view:
            cells[i].views += 1
            if let viewer { cells[i].viewers = link(people.id(viewer), after: cells[i].viewers) }
        case .impression: cells[i].impressions += 1
        case .share:
            cells[i].shares += 1
            let number: Int32
            if let channel { number = channels.id(channel) } else { number = channels.id("unknown") }
            var at = cells[i].channels
            while at >= 0 && shareLinks[Int(at)].channel != number { at = shareLinks[Int(at)].next }
            if at >= 0 {
                shareLinks[Int(at)].count += 1
            } else {
                shareLinks.append((number, 1, cells[i].channels))
                cells[i].channels = Int32(shareLinks.count - 1)
            }
        case .save: cells[i].saves += 1
        }
    }

    /// One lead action of `seekerID` (from a lead record's lead_actions).
    public mutating func addLead(listingID: String, seekerID: String, leadType: String, messageType: String?, at: Timestamp) {
        var listingID = listingID, seekerID = seekerID
        listingID.withUTF8 { listing in
            seekerID.withUTF8 { seeker in
                addLead(listing: listing, seeker: seeker, leadType: leadType, messageType: messageType, at: at)
            }
        }
    }

    /// `addLead(listingID:seekerID:leadType:messageType:at:)` of ids given as their bytes.
    public mutating func addLead(listing: UnsafeBufferPointer<UInt8>, seeker: UnsafeBufferPointer<UInt8>, leadType: String,
                                 messageType: String?, at: Timestamp) {
        let i = cell(listing, at)
        cells[i].saw(at)
        cells[i].totalLeads += 1
        switch HourPart.leadColumn(leadType: leadType, messageType: messageType) {
        case .phone: cells[i].phoneLeads += 1
        case .appointment: cells[i].appointmentLeads += 1
        case .email: cells[i].emailLeads += 1
        case .message: cells[i].messageLeads += 1
        case nil: break
        }
        cells[i].seekers = link(people.id(seeker), after: cells[i].seekers)
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

    /// The cells in listing (byte order) and hour order: the order of `part(_:)`'s numbers.
    /// A cell's place in `order()`: its number, and its listing and hour, so that the key is
    /// known without reading the cell.
    public struct Ordered: Sendable {
        public let cell: Int32
        let listing: Int32
        let hour: Int32
    }

    public func order() -> [Ordered] {
        var rank = [Int32](repeating: 0, count: listings.count)
        let byText = (0..<Int32(listings.count)).sorted { listings.precedes($0, $1) }
        for (r, n) in byText.enumerated() { rank[Int(n)] = Int32(r) }
        var keyed: [(rank: Int32, hour: Int32, cell: Int32)] = []
        keyed.reserveCapacity(cells.count)
        for i in 0..<cells.count { keyed.append((rank[Int(cells[i].listing)], cells[i].hour, Int32(i))) }
        keyed.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.hour < $1.hour }
        return keyed.map { Ordered(cell: $0.cell, listing: byText[Int($0.rank)], hour: $0.hour) }
    }

    /// The listing and hour of a cell of `order()`.
    public func key(_ o: Ordered) -> ListingHour {
        ListingHour(listingID: listings.string(o.listing), hour: Int64(o.hour))
    }

    /// The listing and hour of cell `i`.
    public func key(_ i: Int32) -> ListingHour {
        let cell = cells[Int(i)]
        return ListingHour(listingID: listings.string(cell.listing), hour: Int64(cell.hour))
    }

    /// Asks for what `part(i)` reads before it is asked for: cells are read in listing and
    /// hour order, which the order they were made in does not follow, so each would be a
    /// cache miss. `lists` false: the cell; true: the heads of its lists (the cell read, so
    /// ask for it some steps earlier).
    public func prefetch(_ i: Int32, lists: Bool) {
        guard lists else { return cells.prefetch(Int(i)) }
        let cell = cells[Int(i)]
        if cell.viewers >= 0 { links.prefetch(Int(cell.viewers)) }
        if cell.seekers >= 0 { links.prefetch(Int(cell.seekers)) }
    }

    /// Cell `i` (a number of `order()`) as a part of the run: its distinct viewers and
    /// seekers in byte order. Reads the tally only: any thread may make parts at once.
    public func part(_ i: Int32) -> HourPart {
        let cell = cells[Int(i)]
        var part = HourPart(key: key(i), runID: runID)
        part.views = Int(cell.views)
        part.impressions = Int(cell.impressions)
        part.shares = Int(cell.shares)
        part.saves = Int(cell.saves)
        part.totalLeads = Int(cell.totalLeads)
        part.phoneLeads = Int(cell.phoneLeads)
        part.messageLeads = Int(cell.messageLeads)
        part.emailLeads = Int(cell.emailLeads)
        part.appointmentLeads = Int(cell.appointmentLeads)
        var at = cell.channels
        while at >= 0 {
            let share = shareLinks[Int(at)]
            part.shareBreakdown[channels.string(share.channel), default: 0] += Int(share.count)
            at = share.next
        }
        if cell.first >= 0 {
            part.firstAt = cell.time(cell.first)
            part.lastAt = cell.time(cell.last)
        }
        part.viewers = texts(cell.viewers)
        part.seekers = texts(cell.seekers)
        return part
    }

    /// The distinct people of the list at `head`, in byte order. Most hours see one or two:
    /// no set or sort for those.
    private func texts(_ head: Int32) -> [String] {
        var ids: [Int32] = []
        var at = Int(head)
        while at >= 0 {
            let link = links[at]
            ids.append(Int32(bitPattern: UInt32(truncatingIfNeeded: link >> 32)))
            at = Int(UInt32(truncatingIfNeeded: link)) - 1
        }
        switch ids.count {
        case 0: return []
        case 1: return [people.string(ids[0])]
        case 2:
            if ids[0] == ids[1] { return [people.string(ids[0])] }
            return people.precedes(ids[0], ids[1]) ? [people.string(ids[0]), people.string(ids[1])]
                                                     : [people.string(ids[1]), people.string(ids[0])]
        default:
            return Array(Set(ids)).sorted { people.precedes($0, $1) }.map { people.string($0) }
        }
    }

    /// The run's parts, in listing and hour order, each with its distinct viewers and seekers.
    public func parts() -> [HourPart] { order().map { part($0.cell) } }

    /// Hands the parts counted so far to `body` (as `parts` orders them), one at a time, and
    /// starts again from nothing: the run's tally in pieces, for more hours than memory holds
    /// (the pieces of one hour are put together with `HourPart.combine`).
    public mutating func drain(_ body: (HourPart) throws -> Void) rethrows {
        for o in order() { try body(part(o.cell)) }
        self = RunTally(runID: runID)
    }
}
