import StageKit

/// What to do with a lead whose address_key is already known.
public enum DuplicatePolicy: String, CaseIterable, Sendable {
    /// Fill the kept lead's empty fields from the duplicate; union the tag assignments.
    case merge
    /// Let the duplicate's non-empty fields win; union the tag assignments.
    case update
    /// Keep the existing lead as it is.
    case skip
}

/// The dedupe rules of `stages/normalize/dedupe.csv` (`setting,value`):
/// `on_duplicate` (merge, update or skip) and `dnama_fields` (the |-separated fields a lead
/// with `dnama: true` never takes from a duplicate: its mailing address).
public struct DedupeRules: Sendable {
    public var policy: DuplicatePolicy
    public var dnamaFields: [String]
    /// The lead tracking fields: owned by people, merged by the time of their last edit
    /// whatever the policy.
    public var tracking: TrackingRules

    public init(policy: DuplicatePolicy, dnamaFields: [String], tracking: TrackingRules = TrackingRules(fields: [])) {
        self.policy = policy
        self.dnamaFields = dnamaFields
        self.tracking = tracking
    }

    public static func load(_ path: String, tracking: TrackingRules = TrackingRules(fields: [])) throws(StageError) -> DedupeRules {
        let settings = try RulesFile(path: path, required: ["setting", "value"]).settings(known: ["on_duplicate", "dnama_fields"])
        guard let row = settings["on_duplicate"] else { throw StageError.rules(file: path, line: nil, message: "on_duplicate is not set") }
        guard let policy = DuplicatePolicy(rawValue: row["value"]) else {
            throw row.error("on_duplicate must be merge, update or skip, not '\(row["value"])'")
        }
        return DedupeRules(policy: policy, dnamaFields: settings["dnama_fields"]?.list("value") ?? [], tracking: tracking)
    }
}

/// Merges duplicate leads (same address_key) under a policy, and says what changed.
public struct LeadMerge: Sendable {
    public let rules: DedupeRules
    /// Fields that belong to the kept lead whatever the policy.
    public static let fixedFields: Set<String> = [LeadNormalizer.keyField, "created_at", "updated_at"]

    public init(rules: DedupeRules) { self.rules = rules }

    public struct Outcome {
        public var lead: Record
        /// Fields whose value changed, in the order the lead holds them.
        public var changed: [String]
        /// Values a DNAMA lead did not take: field -> the incoming value.
        public var blocked: Record
    }

    /// `incoming` merged into `kept`. The tracking fields (both leads' hand edits stamped
    /// already) take the later edit whatever the policy; the other fields follow the policy.
    public func merge(kept: Record, incoming: Record) -> Outcome {
        var lead = kept
        var changed = rules.tracking.merge(into: &lead, from: incoming)
        var blocked = Record()
        guard rules.policy != .skip else { return Outcome(lead: lead, changed: changed, blocked: blocked) }
        let dnama = kept["dnama"]?.bool == true
        for field in incoming.fields where !LeadMerge.fixedFields.contains(field.key) && !rules.tracking.isTracked(field.key)
            && field.key != "tracking_errors" {
            let key = field.key
            let current = lead[key]
            if key == "tags" {
                let union = LeadMerge.unionTags(current?.array ?? [], field.value.array ?? [])
                if current == nil || !(current! == union) {
                    lead[key] = union
                    changed.append(key)
                }
                continue
            }
            if key == "dnama" {
                // Do-not-append is sticky: once a lead has it, a duplicate cannot take it away.
                if field.value.bool == true && current?.bool != true {
                    lead[key] = .bool(true)
                    changed.append(key)
                }
                continue
            }
            if LeadMerge.isEmpty(field.value) { continue }
            let take: Bool
            switch rules.policy {
            case .merge: take = current == nil || LeadMerge.isEmpty(current!)
            case .update: take = current == nil || !(current! == field.value)
            case .skip: take = false
            }
            guard take, current == nil || !(current! == field.value) else { continue }
            if dnama && rules.dnamaFields.contains(key) {
                blocked.append(key, field.value)
                continue
            }
            lead[key] = field.value
            changed.append(key)
        }
        return Outcome(lead: lead, changed: changed, blocked: blocked)
    }

    /// Null, "", [] and {} count as empty.
    public static func isEmpty(_ value: JSONValue) -> Bool {
        switch value.kind {
        case .null: return true
        case .string: return value.string?.isEmpty ?? true
        case .array: return value.array?.isEmpty ?? true
        case .object: return value.object?.isEmpty ?? true
        default: return false
        }
    }

    /// The assignments of both lists, one per tag (compared without case), in first-seen
    /// order; where both have a tag, the earlier assigned_at wins.
    public static func unionTags(_ a: [JSONValue], _ b: [JSONValue]) -> JSONValue {
        var out: [Record] = []
        var position: [String: Int] = [:]
        for value in a + b {
            guard let assignment = TagAssignment.record(value) else { continue }
            let name = assignment.text("tag")?.lowercased() ?? ""
            if let i = position[name] {
                let existing = out[i].text("assigned_at").flatMap(Timestamp.init(iso8601:))
                let other = assignment.text("assigned_at").flatMap(Timestamp.init(iso8601:))
                if let other, existing == nil || other < existing! { out[i] = assignment }
            } else {
                position[name] = out.count
                out.append(assignment)
            }
        }
        return .array(out.map { .object($0) })
    }
}
