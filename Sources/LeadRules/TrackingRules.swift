import StageKit

/// The kinds of value a lead tracking field holds.
public enum TrackingType: String, Sendable {
    case text, bool, choice, date, email, phone
}

/// The lead tracking fields of seed 000 (leadStatus, skipTraced, voicemailSent, emailSent,
/// ownerName, ownerPhone, ownerEmail, notes, lastContactDate) are owned by people: they are
/// set by hand or by `lead-tag set`, and no refresh, import or dedupe may overwrite a newer
/// human edit. `stages/flatten/listing-tracking.csv` gives each field its starting value,
/// type and, for a choice, its values.
///
/// Every change is kept in the record's `status_history`, a list of
/// `{field, old, new, at, by}` in time order. A value that is not what the history says (a
/// person edited the file by hand) is an edit too: it is stamped into the history when a
/// stage first sees it, at that stage's clock. When two versions of a lead meet (a refresh of
/// a listing, a duplicate merged into the master), each field takes the value of the version
/// whose last edit of it is later; a value that was never edited never wins over one that was.
public struct TrackingRules: Sendable {
    /// One field (immutable: its initial value is shared by threads read-only).
    public struct Field: @unchecked Sendable {
        public let field: String
        public let initial: JSONValue
        public let type: TrackingType
        public let values: [String]

        public init(field: String, initial: JSONValue, type: TrackingType, values: [String]) {
            self.field = field
            self.initial = initial
            self.type = type
            self.values = values
        }
    }

    public let fields: [Field]
    private let byName: [String: Int]

    public static let historyField = "status_history"

    public init(fields: [Field]) {
        var unique: [Field] = []
        var index: [String: Int] = [:]
        for f in fields where index[f.field] == nil {
            index[f.field] = unique.count
            unique.append(f)
        }
        self.fields = unique
        byName = index
    }

    /// The fields of `listing-tracking.csv` (each field once, whatever the kinds).
    public static func load(_ path: String) throws(StageError) -> TrackingRules {
        let file = try RulesFile(path: path, required: ["kind", "field", "initial"])
        var fields: [Field] = []
        for row in file.rows {
            guard let initial = JSONValue(parsing: row["initial"]) else {
                throw row.error("initial must be a JSON value (\"new\" in quotes, false, null, 0), not \(row["initial"])")
            }
            let typeText = row["type"].isEmpty ? "text" : row["type"]
            guard let type = TrackingType(rawValue: typeText) else {
                throw row.error("type must be text, bool, choice, date, email or phone, not '\(typeText)'")
            }
            let values = row.list("values")
            if type == .choice && values.isEmpty { throw row.error("a choice needs its values (new|contacted|...)") }
            fields.append(Field(field: try row.required("field"), initial: initial, type: type, values: values))
        }
        return TrackingRules(fields: fields)
    }

    public func field(_ name: String) -> Field? { byName[name].map { fields[$0] } }

    public func isTracked(_ name: String) -> Bool { byName[name] != nil || name == TrackingRules.historyField }

    /// `value` in the field's standard form, or why it cannot be one. null clears a field.
    public func coerce(_ name: String, _ value: JSONValue) -> Result<JSONValue, TrackingError> {
        guard let f = field(name) else {
            return .failure(TrackingError("'\(name)' is not a lead tracking field (\(fields.map(\.field).joined(separator: ", ")))"))
        }
        if value.isNull { return .success(.null) }
        let text = (value.string ?? value.text ?? value.json).trimmingSpaces
        switch f.type {
        case .text:
            return .success(.string(value.string ?? value.json))
        case .bool:
            if let b = value.bool { return .success(.bool(b)) }
            switch text.lowercased() {
            case "true", "yes", "y", "1": return .success(.bool(true))
            case "false", "no", "n", "0": return .success(.bool(false))
            default: return .failure(TrackingError("\(name) must be true or false, not '\(text)'"))
            }
        case .choice:
            if let match = f.values.first(where: { $0.lowercased() == text.lowercased() }) { return .success(.string(match)) }
            return .failure(TrackingError("\(name) must be one of \(f.values.joined(separator: ", ")), not '\(text)'"))
        case .date:
            if text.isEmpty { return .success(.null) }
            if let t = Timestamp(iso8601: text) {
                return .success(.string(text.count == 10 ? t.date.iso8601 : t.iso8601))
            }
            return .failure(TrackingError("\(name) must be an ISO 8601 date (2026-11-23) or time, not '\(text)'"))
        case .email:
            if text.isEmpty { return .success(.null) }
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !text.contains(" ") else {
                return .failure(TrackingError("\(name) must be an email address, not '\(text)'"))
            }
            return .success(.string(text))
        case .phone:
            if text.isEmpty { return .success(.null) }
            let digits = text.filter(\.isNumber)
            guard digits.count >= 7, text.allSatisfy({ $0.isNumber || " +-().ext".contains($0) }) else {
                return .failure(TrackingError("\(name) must be a phone number, not '\(text)'"))
            }
            return .success(.string(text))
        }
    }

    /// The record's history entries, oldest first.
    public static func history(of record: Record) -> [Record] {
        (record[historyField]?.array ?? []).compactMap(\.object)
    }

    /// The last history entry of `field`.
    static func lastEdit(of field: String, in history: [Record]) -> Record? {
        history.last { $0.text("field") == field }
    }

    /// The value the history says `field` has: its last edit's new value, else the initial one.
    public func recorded(_ field: String, in record: Record) -> JSONValue {
        if let last = TrackingRules.lastEdit(of: field, in: TrackingRules.history(of: record)) { return last["new"] ?? .null }
        return self.field(field)?.initial ?? .null
    }

    /// Sets `field` to `value` (already coerced) at `at` by `by`, appending to the history;
    /// false when it already had that value.
    @discardableResult
    public func set(_ field: String, to value: JSONValue, in record: inout Record, at: Timestamp, by: String) -> Bool {
        let old = record[field] ?? .null
        if TrackingRules.same(old, value) { return false }
        record[field] = value
        var history = TrackingRules.history(of: record)
        history.append(TrackingRules.entry(field, old: old, new: value, at: at, by: by))
        record[TrackingRules.historyField] = .array(history.map { .object($0) })
        return true
    }

    static func entry(_ field: String, old: JSONValue, new: JSONValue, at: Timestamp, by: String) -> Record {
        ["field": .string(field), "old": old, "new": new, "at": .string(at.iso8601), "by": .string(by)]
    }

    /// Stamps hand edits: each tracking field whose value is not what the history says gets
    /// a history entry at `at` by `by`, in standard form. A value that cannot be one (a
    /// leadStatus "Contacted!!") is not taken: the field goes back to its recorded value and
    /// the value is kept, with why, in `tracking_errors`. Returns the problems.
    @discardableResult
    public func stampEdits(_ record: inout Record, at: Timestamp, by: String) -> [String] {
        var problems: [String] = []
        var errors = record["tracking_errors"]?.object ?? Record()
        for f in fields {
            // Null is no value (a schema writes unknown fields as null), not an edit to null.
            guard let value = record[f.field], !value.isNull else { continue }
            let recorded = recorded(f.field, in: record)
            if TrackingRules.same(value, recorded) { continue }
            switch coerce(f.field, value) {
            case .success(let standard):
                record[f.field] = recorded
                set(f.field, to: standard, in: &record, at: at, by: by)
                if TrackingRules.same(standard, recorded) { record[f.field] = standard }
            case .failure(let problem):
                problems.append(problem.description)
                errors[f.field] = ["value": value, "error": .string(problem.description)]
                record[f.field] = recorded
            }
        }
        if !errors.isEmpty { record["tracking_errors"] = .object(errors) }
        return problems
    }

    /// Takes into `kept` the tracking fields of `incoming` whose last edit is later than
    /// `kept`'s last edit of them (both histories stamped already). Returns the fields taken.
    public func merge(into kept: inout Record, from incoming: Record) -> [String] {
        let keptHistory = TrackingRules.history(of: kept)
        let incomingHistory = TrackingRules.history(of: incoming)
        var taken: [String] = []
        for f in fields {
            guard let theirs = TrackingRules.lastEdit(of: f.field, in: incomingHistory),
                  let theirTime = theirs.text("at").flatMap(Timestamp.init(iso8601:)) else { continue }
            let mine = TrackingRules.lastEdit(of: f.field, in: keptHistory)
            let myTime = mine?.text("at").flatMap(Timestamp.init(iso8601:))
            guard myTime.map({ $0 < theirTime }) ?? true else { continue }
            let value = incoming[f.field] ?? theirs["new"] ?? .null
            if !TrackingRules.same(kept[f.field] ?? .null, value) || kept[f.field] == nil {
                kept[f.field] = value
                taken.append(f.field)
            }
        }
        // The histories united, in time order, each edit once (the same field, value, time
        // and editor is one edit, whatever each copy took as the old value).
        var seen = Set<String>()
        var united: [(Timestamp, Int, Record)] = []
        for (n, entry) in (keptHistory + incomingHistory).enumerated() {
            let identity = [entry.text("field") ?? "", entry["new"]?.json ?? "null", entry.text("at") ?? "", entry.text("by") ?? ""]
            guard seen.insert(identity.joined(separator: "\u{1}")).inserted else { continue }
            united.append((entry.text("at").flatMap(Timestamp.init(iso8601:)) ?? Timestamp(seconds: 0), n, entry))
        }
        united.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        if !united.isEmpty || kept.hasValue(TrackingRules.historyField) {
            let merged = JSONValue.array(united.map { .object($0.2) })
            if kept[TrackingRules.historyField].map({ !($0 == merged) }) ?? true {
                kept[TrackingRules.historyField] = merged
                if !taken.contains(TrackingRules.historyField) && united.count > keptHistory.count { taken.append(TrackingRules.historyField) }
            }
        }
        return taken
    }

    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if a.isNull && b.isNull { return true }
        return a == b
    }
}

/// Why a tracking value is not usable.
public struct TrackingError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
