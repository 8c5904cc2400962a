import StageKit

/// How a tag's points fade with the age of its assignment, `stages/score/decay.csv`:
/// `tag,full_days,floor,decay_days`. The row for `*` applies to tags without their own.
/// An assignment is worth its tag's base_score in full for `full_days`; then its factor
/// falls linearly to `floor` over `decay_days` (empty: until the assignment expires; for a
/// tag that never expires and has no decay_days, the factor stays 1), and stays at the floor.
public struct DecayRule: Sendable, Equatable {
    public let fullDays: Int
    public let floor: Double
    public let decayDays: Int?

    public init(fullDays: Int, floor: Double, decayDays: Int?) {
        self.fullDays = fullDays
        self.floor = floor
        self.decayDays = decayDays
    }

    /// The factor for an assignment `ageDays` old of a tag that expires after `expirationDays`.
    public func factor(ageDays: Int, expirationDays: Int?) -> Double {
        if ageDays <= fullDays { return 1 }
        guard let span = decayDays ?? expirationDays.map({ $0 - fullDays }), span > 0 else { return expirationDays == nil ? 1 : floor }
        let progress = min(1, Double(ageDays - fullDays) / Double(span))
        return 1 - (1 - floor) * progress
    }
}

public struct DecayRules: Sendable {
    public let byTag: [String: DecayRule]
    public let fallback: DecayRule

    public static func load(_ path: String, catalogue: TagCatalogue) throws(StageError) -> DecayRules {
        var byTag: [String: DecayRule] = [:]
        var fallback: DecayRule?
        for row in try RulesFile(path: path, required: ["tag", "full_days", "floor"]).rows {
            let floor = try row.number("floor")
            guard (0...1).contains(floor) else { throw row.error("floor must be between 0 and 1, not \(floor)") }
            let full = try row.integer("full_days")
            guard full >= 0 else { throw row.error("full_days must not be negative") }
            let decay = row["decay_days"].isEmpty ? nil : try row.integer("decay_days")
            if let decay, decay <= 0 { throw row.error("decay_days must be positive (or empty)") }
            let rule = DecayRule(fullDays: full, floor: floor, decayDays: decay)
            let name = try row.required("tag")
            if name == "*" {
                if fallback != nil { throw row.error("the * row is given twice") }
                fallback = rule
            } else {
                guard let tag = catalogue.tag(named: name) else { throw row.error("'\(name)' is not in the tag catalogue \(catalogue.path)") }
                if byTag[tag.name] != nil { throw row.error("\(tag.name) has two decay rows") }
                byTag[tag.name] = rule
            }
        }
        guard let fallback else { throw StageError.rules(file: path, line: nil, message: "no row for * (the decay of tags without their own row)") }
        return DecayRules(byTag: byTag, fallback: fallback)
    }

    public func rule(for tag: String) -> DecayRule { byTag[tag] ?? fallback }
}

/// The score of a lead: the sum over its active tag assignments of base_score times the
/// decay factor for the assignment's age, each term rounded to whole points. Expired
/// assignments add nothing. `score_breakdown` lists every active assignment's term
/// {tag, base_score, age_days, factor, points}, so any score can be explained line by line.
public struct LeadScorer: Sendable {
    public let catalogue: TagCatalogue
    public let decay: DecayRules

    public init(catalogue: TagCatalogue, decay: DecayRules) {
        self.catalogue = catalogue
        self.decay = decay
    }

    /// Sets `score` and `score_breakdown` (appended the first time, replaced after).
    public func score(_ lead: inout Record, now: Timestamp) throws(RecordRejected) {
        var total = 0
        var lines: [JSONValue] = []
        var items: [JSONValue] = []
        if let tags = lead["tags"], tags.kind != .null {
            guard let list = tags.array else {
                throw RecordRejected("tags is \(tags.kindDescription), not a list of assignments (run lead-tag leads first)")
            }
            items = list
        }
        for item in items {
            guard let assignment = TagAssignment.record(item), let name = assignment.text("tag") else {
                throw RecordRejected("tags holds \(item.kindDescription) where an assignment {tag, assigned_at} belongs")
            }
            guard let tag = catalogue.tag(named: name) else { throw RecordRejected("unknown tag '\(name)' (not in \(catalogue.path))") }
            guard let assignedText = assignment.text("assigned_at"), let assigned = Timestamp(iso8601: assignedText) else {
                throw RecordRejected("tag '\(name)' has no valid assigned_at (run lead-tag leads first)")
            }
            let expiration = tag.expirationDays.map { assigned.adding(days: $0) }
            if let expiration, now >= expiration { continue }
            let age = max(0, assigned.days(until: now))
            let factor = decay.rule(for: tag.name).factor(ageDays: age, expirationDays: tag.expirationDays)
            let points = Int((Double(tag.baseScore) * factor).rounded(.toNearestOrAwayFromZero))
            total += points
            var line = Record()
            line.append("tag", .string(tag.name))
            line.append("base_score", .int(tag.baseScore))
            line.append("age_days", .int(age))
            line.append("factor", .double((factor * 10_000).rounded() / 10_000))
            line.append("points", .int(points))
            lines.append(.object(line))
        }
        lead["score"] = .int(total)
        lead["score_breakdown"] = .array(lines)
    }
}
