import StageKit

/// One tag of the catalogue `stages/tag/tags.csv`.
public struct TagDefinition: Sendable {
    public let name: String
    public let baseScore: Int
    /// Days an assignment stays active; nil: it never expires.
    public var expirationDays: Int?
    public let description: String
    /// Other spellings that mean this tag in imported lists (`Pre-Foreclosure|NOD`).
    public let aliases: [String]
    /// The line of tags.csv that defines the tag.
    public let line: Int
}

/// The tag catalogue, `stages/tag/tags.csv`: `name,base_score,expiration_days,description,aliases`.
/// An empty expiration_days means the tag never expires. Names match without regard to
/// case, and through their aliases; `Expired - <name>` is read as `<name>`.
public struct TagCatalogue: Sendable {
    public let path: String
    public private(set) var tags: [TagDefinition]
    private var byName: [String: Int]
    /// Each name and alias as the catalogue spells it, and the `Expired - ` name: the names
    /// leads carry, found without working out a key.
    private var bySpelling: [String: Int]

    public init(path: String, tags: [TagDefinition]) throws(StageError) {
        self.path = path
        self.tags = tags
        byName = [:]
        bySpelling = [:]
        for (i, tag) in tags.enumerated() {
            for spelling in [tag.name] + tag.aliases {
                let key = TagCatalogue.key(spelling)
                if let other = byName[key], other != i {
                    throw StageError.rules(file: path, line: tag.line, message: "'\(spelling)' already names the tag \(tags[other].name)")
                }
                byName[key] = i
                if bySpelling[spelling] == nil { bySpelling[spelling] = i }
                if bySpelling["Expired - " + spelling] == nil { bySpelling["Expired - " + spelling] = i }
            }
        }
    }

    public static func load(_ path: String) throws(StageError) -> TagCatalogue {
        var tags: [TagDefinition] = []
        for row in try RulesFile(path: path, required: ["name", "base_score", "expiration_days"]).rows {
            let days = row["expiration_days"].isEmpty ? nil : try row.integer("expiration_days")
            if let days, days <= 0 { throw row.error("expiration_days must be positive (or empty: never expires)") }
            tags.append(TagDefinition(name: try row.required("name"), baseScore: try row.integer("base_score"),
                                      expirationDays: days, description: row["description"], aliases: row.list("aliases"),
                                      line: row.line))
        }
        return try TagCatalogue(path: path, tags: tags)
    }

    static func key(_ name: String) -> String {
        name.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// The tag a name means, or nil.
    public func tag(named name: String) -> TagDefinition? {
        if let i = bySpelling[name] { return tags[i] }
        var key = TagCatalogue.key(name)
        if key.hasPrefix("expired - ") { key.removeFirst(10) }
        return byName[key].map { tags[$0] }
    }

    /// The tag names a filter asks about that the catalogue does not know (by name or alias,
    /// `Expired - ` names included).
    public func unknownTags(in filter: LeadFilter) -> [String] {
        filter.tagNames.filter { tag(named: $0) == nil }
    }

    /// The catalogue with one tag's expiration_days changed.
    public func settingExpiration(of name: String, to days: Int?) -> TagCatalogue {
        var copy = self
        if let i = byName[TagCatalogue.key(name)] { copy.tags[i].expirationDays = days }
        return copy
    }
}

/// One tag assignment on a lead: `{tag, name, assigned_at, expiration_at, status, via}`.
/// `name` is the tag as shown: the tag's name while active, `Expired - <tag>` once expired.
/// `via` says where it came from: `import:<source>`, `derived`, `bulk`.
public enum TagAssignment {
    /// An assignment as a record: objects as they are, a bare string as `{tag: ...}`.
    public static func record(_ value: JSONValue) -> Record? {
        if let r = value.object, r.text("tag") != nil { return r }
        if let s = value.string, !s.isEmpty { return ["tag": .string(s)] }
        return nil
    }

    /// The assignment with its expiry worked out as of `now`.
    public static func refreshed(tag: TagDefinition, assignedAt: Timestamp, via: String?, now: Timestamp) -> Record {
        let expiration = tag.expirationDays.map { assignedAt.adding(days: $0) }
        let expired = expiration.map { now >= $0 } ?? false
        var r = Record()
        r.append("tag", .string(tag.name))
        r.append("name", .string(expired ? "Expired - " + tag.name : tag.name))
        r.append("assigned_at", .string(assignedAt.iso8601))
        r.append("expiration_at", expiration.map { .string($0.iso8601) } ?? .null)
        r.append("status", .string(expired ? "expired" : "active"))
        if let via { r.append("via", .string(via)) }
        return r
    }
}

/// A tag derived from the lead itself, `stages/tag/derived.csv`: `tag,when,assigned_at`.
/// `when` is a filter (the smart-list language) that says when a lead has the tag;
/// `assigned_at` names the field that dates it (empty: the run's --now the first time the
/// tag is derived). A derived assignment whose condition no longer holds is removed.
public struct DerivedTag: Sendable {
    public let tag: TagDefinition
    public let when: LeadFilter
    public let assignedAtField: String?

    public static func load(_ path: String, catalogue: TagCatalogue) throws(StageError) -> [DerivedTag] {
        var out: [DerivedTag] = []
        for row in try RulesFile(path: path, required: ["tag", "when"]).rows {
            let name = try row.required("tag")
            guard let tag = catalogue.tag(named: name) else { throw row.error("'\(name)' is not in the tag catalogue \(catalogue.path)") }
            let filter = try row.filter("when", functions: Absentee.functions)
            out.append(DerivedTag(tag: tag, when: filter, assignedAtField: row["assigned_at"].isEmpty ? nil : row["assigned_at"]))
        }
        return out
    }
}

/// Tags a lead: turns the `tags` it carries (imported names, or assignments from an earlier
/// run) into assignments of catalogue tags, derives tags (derived.csv), and works out each
/// assignment's expiration_at (assigned_at + the tag's expiration_days, so a changed
/// catalogue applies to every assignment) and status as of `now`. Names the catalogue does
/// not know are kept, as they came, in `unknown_tags` (the lead is not lost for a typo), and
/// become assignments once the catalogue knows them.
public struct TagAssigner: Sendable {
    public let catalogue: TagCatalogue
    public let derived: [DerivedTag]
    public let absentee: Absentee

    public init(catalogue: TagCatalogue, derived: [DerivedTag], absentee: Absentee) {
        self.catalogue = catalogue
        self.derived = derived
        self.absentee = absentee
    }

    public func tag(_ lead: inout Record, now: Timestamp) throws(RecordRejected) {
        var assignments: [(tag: TagDefinition, assignedAt: Timestamp, via: String?)] = []
        var position: [String: Int] = [:]
        func add(_ tag: TagDefinition, _ at: Timestamp, _ via: String?) {
            if let i = position[tag.name] {
                if at < assignments[i].assignedAt { assignments[i].assignedAt = at }
                return
            }
            position[tag.name] = assignments.count
            assignments.append((tag, at, via))
        }
        let current = lead["tags"] ?? .array([])
        let items: [JSONValue]
        if let text = current.string {
            items = text.split(separator: "|").map { .string(String($0).trimmingSpaces) }
        } else if let array = current.array {
            items = array
        } else if current.isNull {
            items = []
        } else {
            throw RecordRejected("tags must be a list of assignments or a |-separated text")
        }
        // Tags the catalogue did not know on an earlier run wait in unknown_tags: a tag added
        // to the catalogue since (or an alias) turns them into assignments.
        var unknown: [JSONValue] = []
        for item in items + (lead["unknown_tags"]?.array ?? []) {
            guard let assignment = TagAssignment.record(item), let name = assignment.text("tag") else {
                throw RecordRejected("a tag assignment without a tag name: \(item.json)")
            }
            guard let tag = catalogue.tag(named: name) else {
                if !unknown.contains(where: { TagAssignment.record($0)?.text("tag") == name }) { unknown.append(.object(assignment)) }
                continue
            }
            var at = now
            if let text = assignment.text("assigned_at") {
                guard let t = Timestamp(iso8601: text) else {
                    throw RecordRejected("tag '\(name)': assigned_at '\(text)' is not an ISO 8601 time")
                }
                at = t
            }
            add(tag, at, assignment.text("via"))
        }
        if !derived.isEmpty {
            // absentee() is worked out once per lead, however many rules ask.
            let absenteeClass = FilterValue.string(absentee.classify(lead))
            let context = FilterContext(now: now, functions: ["absentee": { _ in absenteeClass }])
            for rule in derived {
                let holds = rule.when.matches(lead, context: context)
                if holds {
                    let dated = rule.assignedAtField.flatMap { lead.text($0) }.flatMap(Timestamp.init(iso8601:))
                    add(rule.tag, dated ?? now, "derived")
                } else if let i = position[rule.tag.name], assignments[i].via == "derived" {
                    assignments.remove(at: i)
                    position = Dictionary(uniqueKeysWithValues: assignments.enumerated().map { ($1.tag.name, $0) })
                }
            }
        }
        lead["tags"] = .array(assignments.map {
            .object(TagAssignment.refreshed(tag: $0.tag, assignedAt: $0.assignedAt, via: $0.via, now: now))
        })
        lead["unknown_tags"] = unknown.isEmpty ? nil : .array(unknown)
    }
}

/// Expiry worked out again for the assignments a lead already has (no tags derived or
/// added): what the nightly rescoring, a retroactive expiration change and bulk edits use.
public struct TagExpiry: Sendable {
    public let catalogue: TagCatalogue

    public init(catalogue: TagCatalogue) { self.catalogue = catalogue }

    /// What a refresh changed among the assignments of one tag (or all).
    public struct Change: Sendable {
        public var assignments = 0
        public var reactivated = 0
        public var expired = 0

        public init() {}

        public static func += (a: inout Change, b: Change) {
            a.assignments += b.assignments
            a.reactivated += b.reactivated
            a.expired += b.expired
        }
    }

    /// Recomputes expiration_at, status and name of the lead's assignments (only those of
    /// `tag` when given) from their own assigned_at.
    @discardableResult
    public func refresh(_ lead: inout Record, now: Timestamp, onlyTag tag: String? = nil) throws(RecordRejected) -> Change {
        var change = Change()
        guard let items = lead["tags"]?.array else { return change }
        var out: [JSONValue] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let assignment = TagAssignment.record(item), let name = assignment.text("tag") else {
                throw RecordRejected("a tag assignment without a tag name: \(item.json)")
            }
            guard let definition = catalogue.tag(named: name) else { throw RecordRejected("unknown tag '\(name)' (not in \(catalogue.path))") }
            if let tag, definition.name != tag {
                out.append(item)
                continue
            }
            guard let text = assignment.text("assigned_at"), let assigned = Timestamp(iso8601: text) else {
                throw RecordRejected("tag '\(name)' has no valid assigned_at (run lead-tag leads first)")
            }
            let refreshed = TagAssignment.refreshed(tag: definition, assignedAt: assigned, via: assignment.text("via"), now: now)
            change.assignments += 1
            let was = assignment.text("status"), became = refreshed.text("status")
            if was == "expired" && became == "active" { change.reactivated += 1 }
            if was != "expired" && became == "expired" { change.expired += 1 }
            out.append(.object(refreshed))
        }
        lead["tags"] = .array(out)
        return change
    }

    /// Adds an assignment of `tag` at `now` (via `bulk`) unless the lead has an active one;
    /// an expired one is assigned anew. True when the lead changed.
    public func add(_ tag: TagDefinition, to lead: inout Record, now: Timestamp) -> Bool {
        var items = lead["tags"]?.array ?? []
        if let i = items.firstIndex(where: { TagAssignment.record($0).flatMap { $0.text("tag") }.flatMap(catalogue.tag(named:))?.name == tag.name }) {
            if TagAssignment.record(items[i])?.text("status") != "expired" { return false }
            items.remove(at: i)
        }
        items.append(.object(TagAssignment.refreshed(tag: tag, assignedAt: now, via: "bulk", now: now)))
        lead["tags"] = .array(items)
        return true
    }

    /// Removes every assignment of `tag`. True when the lead changed.
    public func remove(_ tag: TagDefinition, from lead: inout Record) -> Bool {
        let items = lead["tags"]?.array ?? []
        let kept = items.filter { TagAssignment.record($0).flatMap { $0.text("tag") }.flatMap(catalogue.tag(named:))?.name != tag.name }
        guard kept.count != items.count else { return false }
        lead["tags"] = .array(kept)
        return true
    }
}

/// `7d`, `12h`, `2w`: a window for lead-tag expiring.
public func parseDuration(_ text: String) -> Int64? {
    guard let unit = text.last, let n = Int64(text.dropLast()), n >= 0 else { return nil }
    switch unit {
    case "d": return n * 86_400
    case "h": return n * 3_600
    case "w": return n * 7 * 86_400
    default: return nil
    }
}
