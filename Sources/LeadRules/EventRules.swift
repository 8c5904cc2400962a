import StageKit

/// The engagement events the events pipeline keeps (`stages/flatten/events.csv`:
/// event,kind,lead_type) and where each field is found in a PostHog event
/// (`stages/flatten/event-fields.csv`: field,from). `flatten` turns one PostHog event into
/// the flat record the later stages read.
public struct EventCatalog: Sendable {
    /// What an event is for.
    public enum Kind: String, Sendable, CaseIterable {
        /// A lead action (scored per seeker and listing, counted in the hourly leads).
        case lead
        case view, impression, share, save
        /// The kind a flattened lead event carries in the stream (`action`); the others
        /// keep their own name.
        public var recordKind: String { self == .lead ? "action" : rawValue }
    }

    public struct Entry: Sendable {
        public let kind: Kind
        /// A lead event's type: phone, message, appointment or lead (a bare lead).
        public let leadType: String?
    }

    /// The fields a flat event carries, in order (timestamp always comes from the event).
    public static let fields = ["event_id", "listing_id", "seeker_id", "lister_id", "lister_type",
                                "message_type", "appointment_type", "share_channel"]

    public let events: [String: Entry]
    /// The event names in file order (what lead-fetch events asks PostHog for).
    public let names: [String]
    /// Each field's paths into the event, tried in order.
    public let paths: [String: [[String]]]

    public init(events: [String: Entry], names: [String], paths: [String: [[String]]]) {
        self.events = events
        self.names = names
        self.paths = paths
    }

    public static func load(events: String, fields: String) throws(StageError) -> EventCatalog {
        var entries: [String: Entry] = [:]
        var names: [String] = []
        for row in try RulesFile(path: events, required: ["event", "kind"]).rows {
            let name = try row.required("event")
            guard entries[name] == nil else { throw row.error("event '\(name)' is listed twice") }
            guard let kind = Kind(rawValue: row["kind"]) else {
                throw row.error("kind '\(row["kind"])' is not one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let leadType = row["lead_type"].trimmingSpaces
            if kind == .lead && leadType.isEmpty { throw row.error("a lead event needs a lead_type") }
            if kind != .lead && !leadType.isEmpty { throw row.error("only lead events have a lead_type") }
            entries[name] = Entry(kind: kind, leadType: leadType.isEmpty ? nil : leadType)
            names.append(name)
        }
        guard !names.isEmpty else { throw StageError.rules(file: events, line: nil, message: "no events") }
        var paths: [String: [[String]]] = [:]
        for row in try RulesFile(path: fields, required: ["field", "from"]).rows {
            let field = try row.required("field")
            guard EventCatalog.fields.contains(field) else {
                throw row.error("unknown field '\(field)' (fields: \(EventCatalog.fields.joined(separator: ", ")))")
            }
            guard paths[field] == nil else { throw row.error("field '\(field)' is given twice") }
            let list = row.list("from").map { $0.split(separator: ".").map(String.init) }
            guard !list.isEmpty, list.allSatisfy({ !$0.isEmpty }) else { throw row.error("no path in from") }
            paths[field] = list
        }
        for required in ["listing_id", "seeker_id"] where paths[required] == nil {
            throw StageError.rules(file: fields, line: nil, message: "no row for \(required)")
        }
        return EventCatalog(events: entries, names: names, paths: paths)
    }

    /// The value at `path` in `event` as text (numbers as written), nil when absent or empty.
    /// `objects` keeps the objects already decoded (`properties`), so each is decoded once.
    static func value(_ event: Record, _ path: [String], objects: inout [String: Record]) -> String? {
        var value: JSONValue?
        if path.count == 1 {
            value = event[path[0]]
        } else {
            let object: Record?
            if let known = objects[path[0]] {
                object = known
            } else {
                object = event[path[0]]?.object
                if let object { objects[path[0]] = object }
            }
            value = object?[path[1]]
            for key in path.dropFirst(2) { value = value?.object?[key] }
        }
        guard let text = value?.text?.trimmingSpaces, !text.isEmpty else { return nil }
        return text
    }

    /// The first non-empty value of `field`.
    public func field(_ field: String, of event: Record) -> String? {
        var objects: [String: Record] = [:]
        return self.field(field, of: event, objects: &objects)
    }

    func field(_ field: String, of event: Record, objects: inout [String: Record]) -> String? {
        for path in paths[field] ?? [] {
            if let v = EventCatalog.value(event, path, objects: &objects) { return v }
        }
        return nil
    }

    /// Whether a flat event of `entry` has field `f` (null when the event has no value):
    /// message_type only for message leads, appointment_type for appointments, share_channel
    /// for shares.
    static func carries(_ f: String, _ entry: Entry) -> Bool {
        switch f {
        case "message_type": return entry.leadType == "message"
        case "appointment_type": return entry.leadType == "appointment"
        case "share_channel": return entry.kind == .share
        default: return true
        }
    }

    /// What `flatten` makes of an event.
    public enum Outcome {
        /// A flat event record.
        case record(Record)
        /// An event name the catalogue does not keep.
        case skipped(String)
    }

    /// One PostHog event (`{event, distinct_id, timestamp, properties, ...}`) as a flat record:
    /// kind (`action` for lead events, else view, impression, share, save), event, then the
    /// catalogue's fields, lead_type and the timestamp in UTC. An event without listing_id,
    /// a lead event without seeker_id, or one without a readable timestamp is rejected.
    public func flatten(_ event: Record) throws(RecordRejected) -> Outcome {
        guard let name = event["event"]?.string else { throw RecordRejected("no event name") }
        guard let entry = events[name] else { return .skipped(name) }
        guard let stamp = event["timestamp"]?.string else { throw RecordRejected("\(name) without a timestamp") }
        guard let at = Timestamp(iso8601: stamp) else { throw RecordRejected("\(name): timestamp '\(stamp)' is not ISO 8601") }
        var values: [String: String] = [:]
        var objects: [String: Record] = [:]
        for f in EventCatalog.fields { values[f] = field(f, of: event, objects: &objects) }
        guard values["listing_id"] != nil else { throw RecordRejected("\(name) without listing_id") }
        if entry.kind == .lead && values["seeker_id"] == nil { throw RecordRejected("\(name) without seeker_id") }
        if let type = values["message_type"] { values["message_type"] = type.lowercased() }
        var out = Record()
        out.append("kind", .string(entry.kind.recordKind))
        out.append("event", .string(name))
        for f in EventCatalog.fields where EventCatalog.carries(f, entry) {
            out.append(f, values[f].map { .string($0) } ?? .null)
        }
        if let leadType = entry.leadType { out.append("lead_type", .string(leadType)) }
        out.append("timestamp", .string(at.iso8601))
        return .record(out)
    }
}

/// Points per lead action (`stages/score/event-weights.csv`: lead_type,message_type,points;
/// message_type `*` is any other message type, or none).
public struct EventWeights: Sendable {
    let points: [String: Int]
    let otherMessage: [String: Int]

    public static func load(_ path: String) throws(StageError) -> EventWeights {
        var points: [String: Int] = [:], other: [String: Int] = [:]
        for row in try RulesFile(path: path, required: ["lead_type", "points"]).rows {
            let type = try row.required("lead_type")
            let message = row["message_type"].trimmingSpaces.lowercased()
            let value = try row.integer("points")
            guard value >= 0 else { throw row.error("points must be 0 or more") }
            if message == "*" {
                guard other[type] == nil else { throw row.error("\(type),* is given twice") }
                other[type] = value
            } else {
                let key = message.isEmpty ? type : type + "/" + message
                guard points[key] == nil else { throw row.error("\(type),\(message) is given twice") }
                points[key] = value
            }
        }
        return EventWeights(points: points, otherMessage: other)
    }

    /// The points of one action; nil when the rules give none.
    public func points(leadType: String, messageType: String?) -> Int? {
        if let m = messageType, let p = points[leadType + "/" + m] { return p }
        if let p = otherMessage[leadType] { return p }
        return points[leadType]
    }
}

/// One lead action of a seeker on a listing, as lead-score events reads it.
public struct LeadAction: Sendable {
    public var listingID: String
    public var seekerID: String
    public var listerID: String?
    public var listerType: String?
    /// The event name (`lead_phone`): the action_type of the lead record.
    public var event: String
    public var leadType: String
    public var messageType: String?
    public var appointmentType: String?
    public var eventID: String?
    public var timestamp: Timestamp
    /// The action's points, set by `LeadGroups.add`.
    public var points = 0

    public init(listingID: String, seekerID: String, listerID: String? = nil, listerType: String? = nil, event: String,
                leadType: String, messageType: String? = nil, appointmentType: String? = nil, eventID: String? = nil,
                timestamp: Timestamp) {
        self.listingID = listingID
        self.seekerID = seekerID
        self.listerID = listerID
        self.listerType = listerType
        self.event = event
        self.leadType = leadType
        self.messageType = messageType
        self.appointmentType = appointmentType
        self.eventID = eventID
        self.timestamp = timestamp
    }

    /// The action in a compact binary form, for a sort's scratch files: its texts (none
    /// where absent), time and points (`ByteBuffer.appendBinary`).
    public func encode(into out: ByteBuffer) {
        for t in [listingID, seekerID, listerID, listerType, event, leadType, messageType, appointmentType, eventID] { out.appendBinary(t) }
        out.appendBinary(timestamp)
        out.appendBinary(Int64(points))
    }

    /// An action from `encode`; nil when the bytes are not one.
    public init?(encoded bytes: UnsafeBufferPointer<UInt8>) {
        var fields = BinaryFields(bytes)
        var texts: [String?] = []
        for _ in 0..<9 {
            guard let t = fields.text() else { return nil }
            texts.append(t)
        }
        guard let listing = texts[0], let seeker = texts[1], let event = texts[4], let leadType = texts[5],
              let time = fields.time(), let at = time, let points = fields.int(), fields.atEnd else { return nil }
        self.init(listingID: listing, seekerID: seeker, listerID: texts[2], listerType: texts[3], event: event, leadType: leadType,
                  messageType: texts[6], appointmentType: texts[7], eventID: texts[8], timestamp: at)
        self.points = Int(points)
    }

    /// A flat `action` record of lead-flatten events as an action.
    public init(record: Record) throws(RecordRejected) {
        func text(_ key: String) -> String? {
            guard let t = record[key]?.text, !t.isEmpty else { return nil }
            return t
        }
        guard let listing = text("listing_id") else { throw RecordRejected("lead action without listing_id") }
        guard let seeker = text("seeker_id") else { throw RecordRejected("lead action without seeker_id") }
        guard let event = text("event"), let leadType = text("lead_type") else {
            throw RecordRejected("lead action without event or lead_type (run lead-flatten events first)")
        }
        guard let stamp = text("timestamp"), let at = Timestamp(iso8601: stamp) else {
            throw RecordRejected("lead action without a readable timestamp")
        }
        self.init(listingID: listing, seekerID: seeker, listerID: text("lister_id"), listerType: text("lister_type"),
                  event: event, leadType: leadType, messageType: text("message_type"),
                  appointmentType: text("appointment_type"), eventID: text("event_id"), timestamp: at)
    }
}

/// The lead records of one run: the run's lead actions grouped by (listing_id, seeker_id),
/// each group's actions sorted by time and scored with the weights.
public struct LeadGroups {
    private var groups: [String: [LeadAction]] = [:]
    public private(set) var actionCount = 0
    /// The memory budget (`LEAD_MEMORY`): the groups are held while they take a quarter of
    /// it, then moved into a sort by group on disk (`ExternalSort`), each time they reach it.
    private let budget: Int
    private var held = 0
    private var sorter: ExternalSort?
    private var sortedCount = 0

    public init(budget: Int = Int.max) { self.budget = budget }

    /// Bytes an action takes held, besides its texts.
    static let actionOverhead = 220

    /// Adds an action with its points; an action the weights give no points is rejected.
    public mutating func add(_ action: LeadAction, weights: EventWeights) throws {
        guard let points = weights.points(leadType: action.leadType, messageType: action.messageType) else {
            throw RecordRejected("no points for lead_type '\(action.leadType)' in event-weights.csv")
        }
        var action = action
        action.points = points
        groups[action.listingID + "\u{1F}" + action.seekerID, default: []].append(action)
        actionCount += 1
        held += LeadGroups.actionOverhead + action.listingID.utf8.count + action.seekerID.utf8.count + (action.eventID?.utf8.count ?? 0)
        if held > budget / 4 { try moveToSort() }
    }

    /// The groups held so far into the sort (each group's actions in the order they came; a
    /// later move's come after them, as the sort keeps equal keys in the order added).
    private mutating func moveToSort() throws(StageError) {
        let sorter = self.sorter ?? ExternalSort(budget: budget)
        self.sorter = sorter
        let line = ByteBuffer(capacity: 256)
        for (key, actions) in groups {
            for action in actions {
                line.removeAll()
                action.encode(into: line)
                try sorter.add(key: key, line: line.bytes)
            }
        }
        groups = [:]
        held = 0
    }

    /// The lead records (groups) made; all of them once `forEachRecord` has run.
    public var count: Int { sorter == nil ? groups.count : sortedCount }

    /// Scratch runs the groups went through on disk; nil when they were all held (0: sorted,
    /// but in memory).
    public var runsOnDisk: Int? { sorter?.spilledRuns }

    /// One lead record per group, ordered by listing_id then seeker_id: listing_id, seeker_id,
    /// lister_id, lister_type, lead_actions (action_type, lead_type, timestamp, message_type, appointment_type, event_id, points), total_actions, lead_score, first_action_date,
    /// last_action_date, last_action_type, status, status_tracker, notes, created_at,
    /// updated_at, run_id (after `kind: "lead"`).
    public func records(now: Timestamp, runID: String) -> [Record] {
        groups.keys.sorted { a, b in a.precedesInByteOrder(b) }.map { LeadGroups.record(groups[$0]!, now: now, runID: runID) }
    }

    /// The fields of a lead record, in order, after `kind`: what lead-export events keeps of it.
    public static let leadFields = ["listing_id", "seeker_id", "lister_id", "lister_type", "lead_actions", "total_actions", "lead_score",
                                    "first_action_date", "last_action_date", "last_action_type", "status", "status_tracker", "notes",
                                    "created_at", "updated_at", "run_id"]

    /// The same records one at a time, so a large run never holds them all.
    public mutating func forEachRecord(now: Timestamp, runID: String, _ body: (Record) throws -> Void) throws {
        guard sorter != nil else {
            let keys = groups.keys.sorted { a, b in a.precedesInByteOrder(b) }
            for key in keys { try body(LeadGroups.record(groups[key]!, now: now, runID: runID)) }
            return
        }
        try moveToSort()
        let cursor = try sorter!.sorted()
        var key: [UInt8] = []
        var actions: [LeadAction] = []
        while try cursor.next() {
            guard let action = LeadAction(encoded: cursor.line) else { throw StageError.io("scratch file of the lead groups: an action did not read back") }
            if !actions.isEmpty && !cursor.key.elementsEqual(key) {
                sortedCount += 1
                try body(LeadGroups.record(actions, now: now, runID: runID))
                actions.removeAll(keepingCapacity: true)
            }
            if actions.isEmpty { key = Array(cursor.key) }
            actions.append(action)
        }
        if !actions.isEmpty {
            sortedCount += 1
            try body(LeadGroups.record(actions, now: now, runID: runID))
        }
    }

    /// The lead record of one group's actions (in the order they came).
    static func record(_ group: [LeadAction], now: Timestamp, runID: String) -> Record {
        do {
            let actions = group.enumerated().sorted { a, b in
                a.element.timestamp != b.element.timestamp ? a.element.timestamp < b.element.timestamp : a.offset < b.offset
            }.map(\.element)
            var score = 0
            var list: [JSONValue] = []
            for action in actions {
                score += action.points
                var a = Record()
                a.append("action_type", .string(action.event))
                a.append("lead_type", .string(action.leadType))
                a.append("timestamp", .string(action.timestamp.iso8601))
                // Every action has every field (null where it does not apply): one struct type.
                a.append("message_type", action.leadType == "message" ? action.messageType.map { .string($0) } ?? .null : .null)
                a.append("appointment_type", action.leadType == "appointment" ? action.appointmentType.map { .string($0) } ?? .null : .null)
                a.append("event_id", action.eventID.map { .string($0) } ?? .null)
                a.append("points", .int(action.points))
                list.append(.object(a))
            }
            let first = actions.first!, last = actions.last!
            let lister = actions.last(where: { $0.listerID != nil })
            let listerType = actions.last(where: { $0.listerType != nil })
            let stamp = JSONValue.string(now.iso8601)
            var r = Record()
            r.append("kind", "lead")
            r.append("listing_id", .string(first.listingID))
            r.append("seeker_id", .string(first.seekerID))
            r.append("lister_id", lister?.listerID.map { .string($0) } ?? .null)
            r.append("lister_type", listerType?.listerType.map { .string($0) } ?? .null)
            r.append("lead_actions", .array(list))
            r.append("total_actions", .int(actions.count))
            r.append("lead_score", .int(score))
            r.append("first_action_date", .string(first.timestamp.date.iso8601))
            r.append("last_action_date", .string(last.timestamp.date.iso8601))
            r.append("last_action_type", .string(last.event))
            r.append("status", "new")
            r.append("status_tracker", ["new"])
            r.append("notes", .array([]))
            r.append("created_at", stamp)
            r.append("updated_at", stamp)
            r.append("run_id", .string(runID))
            return r
        }
    }
}

/// How lead-fetch events reads PostHog (`stages/fetch/events.csv`: setting,value).
public struct EventFetchSettings: Sendable {
    public var baseURL = "https://us.posthog.com"
    public var lookbackDays = 365
    public var sliceDays = 7
    public var pageLimit = 1000

    public static let names: Set<String> = ["posthog_base_url", "lookback_days", "slice_days", "page_limit"]

    public init() {}

    public init(file: RulesFile) throws(StageError) {
        let s = try file.settings(known: EventFetchSettings.names)
        func positive(_ name: String, _ current: Int) throws(StageError) -> Int {
            guard let row = s[name] else { return current }
            let v = try row.integer("value")
            if v <= 0 { throw row.error("\(name) must be more than 0") }
            return v
        }
        if let row = s["posthog_base_url"] { baseURL = try row.required("value") }
        lookbackDays = try positive("lookback_days", lookbackDays)
        sliceDays = try positive("slice_days", sliceDays)
        pageLimit = try positive("page_limit", pageLimit)
    }
}
