/// Keyed, field-level comparison of records: what `lead-diff` is made of.
public enum RecordDiff {
    /// One field that differs between two records with the same key (nil: not there).
    public struct Change {
        public let field: String
        public let old: JSONValue?
        public let new: JSONValue?

        public init(field: String, old: JSONValue?, new: JSONValue?) {
            self.field = field
            self.old = old
            self.new = new
        }
    }

    /// The key of `record`: the key fields' values joined with `|`, or nil when one is
    /// missing or null.
    public static func key(_ record: Record, fields: [String]) -> String? {
        if fields.count == 1 {
            guard let value = record[fields[0]], !value.isNull else { return nil }
            return keyText(value)
        }
        var parts: [String] = []
        parts.reserveCapacity(fields.count)
        for field in fields {
            guard let value = record[field], !value.isNull else { return nil }
            parts.append(keyText(value))
        }
        return parts.joined(separator: "|")
    }

    static func keyText(_ value: JSONValue) -> String {
        if let text = value.text {
            // 1 and 1.0 are one key, as they are one value.
            if value.kind == .number, let d = value.double, d.rounded() == d, abs(d) < 1e15 { return String(Int(d)) }
            return text
        }
        return value.json
    }

    /// The fields that differ, in `old`'s order and then the fields only `new` has.
    /// `loose` compares the way a CSV side must be compared: text with the value's text
    /// (`"1"` and 1, `""` and null, `"true"` and true are equal).
    public static func changes(old: Record, new: Record, ignore: Set<String>, loose: Bool) -> [Change] {
        var out: [Change] = []
        // Records of one stage mostly hold their fields in one order: look at the same
        // position first, and when every field was there, NEW has no field OLD lacks.
        var positional = old.count == new.count
        for (i, field) in old.fields.enumerated() {
            let other: JSONValue?
            if i < new.fields.count && new.fields[i].key == field.key {
                other = new.fields[i].value
            } else {
                positional = false
                other = new[field.key]
            }
            if !ignore.isEmpty && ignore.contains(field.key) { continue }
            if let other, equal(field.value, other, loose: loose) { continue }
            if other == nil, loose, field.value.isNull || field.value.string == "" { continue }
            out.append(Change(field: field.key, old: field.value, new: other))
        }
        if positional { return out }
        for field in new.fields where !ignore.contains(field.key) && old[field.key] == nil {
            if loose, field.value.isNull || field.value.string == "" { continue }
            out.append(Change(field: field.key, old: nil, new: field.value))
        }
        return out
    }

    /// JSON equality (numbers by value, objects regardless of member order), or with `loose`
    /// the equality of what a CSV cell would show.
    public static func equal(_ a: JSONValue, _ b: JSONValue, loose: Bool) -> Bool {
        if a.hasSameRawText(as: b) || a == b { return true }
        guard loose else { return false }
        if a.kind == .number || b.kind == .number, let x = number(a), let y = number(b) { return x == y }
        return cell(a) == cell(b)
    }

    static func number(_ value: JSONValue) -> Double? {
        if let d = value.double { return d }
        guard let s = value.string, !s.isEmpty, let d = Double(s) else { return nil }
        return d
    }

    /// A value as a CSV cell shows it: text as is, null empty, containers as JSON.
    public static func cell(_ value: JSONValue) -> String {
        if value.isNull { return "" }
        return value.text ?? value.json
    }

    /// A value for a person to read: text unquoted (an empty text as `""`), anything else as JSON.
    public static func plain(_ value: JSONValue?) -> String {
        guard let value else { return "(none)" }
        if let s = value.string { return s.isEmpty ? "\"\"" : s }
        return value.json
    }

    /// The record flattened the way `lead-flatten json` and `lead-export csv` do, so a JSONL
    /// side compares with a CSV side: nested keys joined with `separator`, array elements
    /// numbered from 1, empty containers as `"{}"` and `"[]"`.
    public static func flattened(_ record: Record, separator: String = ".") -> Record {
        var out = Record()
        func add(_ prefix: String, _ value: JSONValue) {
            switch value.kind {
            case .object:
                let members = value.object ?? Record()
                if members.isEmpty { out.append(prefix, .string("{}")); return }
                for field in members.fields { add(prefix + separator + field.key, field.value) }
            case .array:
                let items = value.array ?? []
                if items.isEmpty { out.append(prefix, .string("[]")); return }
                for (i, item) in items.enumerated() { add(prefix + separator + String(i + 1), item) }
            default:
                out.append(prefix, value)
            }
        }
        for field in record.fields {
            switch field.value.kind {
            case .object, .array: add(field.key, field.value)
            default: out.append(field.key, field.value)
            }
        }
        return out
    }
}

/// Counts for `lead-diff --summary`: records added, removed, changed and unchanged, and per
/// field how many records changed it, with the old->new transitions while they are few, short
/// and not numbers (a categorical field such as a tier or a status).
public struct DiffSummary {
    public var added = 0, removed = 0, changed = 0, unchanged = 0, duplicates = 0
    public private(set) var fields: [String] = []
    var counts: [String: Int] = [:]
    var transitions: [String: [String: Int]] = [:]
    var categorical: [String: Bool] = [:]
    /// At most this many distinct transitions, each side at most `shortValue` characters.
    public static let maxTransitions = 12, shortValue = 24

    public init() {}

    public mutating func count(_ changes: [RecordDiff.Change]) {
        if changes.isEmpty { unchanged += 1; return }
        changed += 1
        for change in changes {
            if counts[change.field] == nil { fields.append(change.field); categorical[change.field] = true }
            counts[change.field, default: 0] += 1
            guard categorical[change.field] == true else { continue }
            let old = RecordDiff.plain(change.old), new = RecordDiff.plain(change.new)
            // Categories are short texts, booleans or nothing: never numbers, which vary freely.
            func category(_ v: JSONValue?) -> Bool {
                guard let v else { return true }
                if let s = v.string { return Double(s) == nil }
                return v.kind == .bool || v.kind == .null
            }
            guard category(change.old), category(change.new),
                  old.count <= DiffSummary.shortValue, new.count <= DiffSummary.shortValue else {
                categorical[change.field] = false
                transitions[change.field] = nil
                continue
            }
            transitions[change.field, default: [:]][old + "->" + new, default: 0] += 1
            if transitions[change.field]!.count > DiffSummary.maxTransitions {
                categorical[change.field] = false
                transitions[change.field] = nil
            }
        }
    }

    /// How many records changed `field`.
    public func count(of field: String) -> Int { counts[field] ?? 0 }

    /// The field's transitions, most frequent first (ties by text), when it is categorical.
    public func transitions(of field: String) -> [(String, Int)]? {
        transitions[field].map { $0.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    /// Fields most changed first (ties in first-seen order).
    public var fieldsByCount: [String] {
        fields.enumerated().sorted { a, b in
            count(of: a.element) != count(of: b.element) ? count(of: a.element) > count(of: b.element) : a.offset < b.offset
        }.map(\.element)
    }

    public var differs: Bool { added + removed + changed + duplicates > 0 }
}
