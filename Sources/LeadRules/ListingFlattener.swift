import StageKit

/// The type a listing field is coerced to.
public enum ListingFieldType: String, Sendable {
    case string, number, integer, timestamp, date, boolean
}

/// One output field of a flat listing: `stages/flatten/listing-fields.csv`.
public struct ListingFieldRule: Sendable {
    public let field: String
    /// Paths tried in order in a Spark result (under StandardFields; `/X` is top-level).
    public let spark: [String]
    /// Paths tried in order in a RESO Property.
    public let reso: [String]
    public let type: ListingFieldType
}

/// A lead tracking field and its starting value: `stages/flatten/listing-tracking.csv`.
public struct TrackingField {
    public let kind: String
    public let field: String
    public let initial: JSONValue
}

/// How long records of a kind are kept: `stages/cleanup/retention.csv`.
public struct RetentionRule: Sendable {
    public let kind: String
    public let dateField: String
    public let days: Int

    /// Reads `retention.csv`.
    public static func load(_ path: String) throws(StageError) -> [RetentionRule] {
        let file = try RulesFile(path: path, required: ["kind", "date_field", "days"])
        var rules: [RetentionRule] = []
        for row in file.rows {
            let days = try row.integer("days")
            if days < 0 { throw row.error("days must be 0 or more") }
            rules.append(RetentionRule(kind: try row.required("kind"), dateField: try row.required("date_field"), days: days))
        }
        return rules
    }
}

/// Turns a raw listing (a Spark native result with its expansions, or a RESO Property with
/// Media) into one flat record with RESO Data Dictionary names, for one pipeline.
///
/// Output fields, in order: the rules' fields, `PrimaryPhotoUrl`, `PhotoCount`, `source`,
/// `pipeline`, then for kinds with lead tracking the tracking fields and `expiresAt`, and
/// `coercionErrors` ({field: why} for the values that could not be coerced to their type and are
/// null; null when every value was).
public struct ListingFlattener {
    public let pipeline: ListingPipeline
    public let fields: [ListingFieldRule]
    public let tracking: [TrackingField]
    public let retention: RetentionRule?
    public let photoSizes: [String]

    public init(pipeline: ListingPipeline, fields: [ListingFieldRule], tracking: [TrackingField],
                retention: [RetentionRule], photoSizes: [String]) {
        self.pipeline = pipeline
        self.fields = fields
        self.tracking = tracking.filter { $0.kind == pipeline.kind }
        self.retention = retention.first { $0.kind == pipeline.kind }
        self.photoSizes = photoSizes
    }

    /// Reads the field list and tracking fields from the flatten rules directory.
    public static func loadFields(_ path: String) throws(StageError) -> [ListingFieldRule] {
        let file = try RulesFile(path: path, required: ["field", "spark", "reso", "type"])
        var rules: [ListingFieldRule] = []
        for row in file.rows {
            let field = try row.required("field")
            guard let type = ListingFieldType(rawValue: try row.required("type")) else {
                throw row.error("type must be string, number, integer, timestamp, date or boolean, not '\(row["type"])'")
            }
            if rules.contains(where: { $0.field == field }) { throw row.error("field '\(field)' is listed twice") }
            rules.append(ListingFieldRule(field: field, spark: row.list("spark"), reso: row.list("reso"), type: type))
        }
        guard rules.contains(where: { $0.field == "ListingKey" }) else {
            throw .rules(file: path, line: nil, message: "the field list must include ListingKey")
        }
        return rules
    }

    public static func loadTracking(_ path: String) throws(StageError) -> [TrackingField] {
        let file = try RulesFile(path: path, required: ["kind", "field", "initial"])
        var out: [TrackingField] = []
        for row in file.rows {
            guard let value = JSONValue(parsing: row["initial"]) else {
                throw row.error("initial must be a JSON value (\"new\" in quotes, false, null, 0), not \(row["initial"])")
            }
            out.append(TrackingField(kind: try row.required("kind"), field: try row.required("field"), initial: value))
        }
        return out
    }

    /// The listing's key, for dedupe and carry-over.
    public func key(of raw: Record) -> String? {
        let rule = fields.first { $0.field == "ListingKey" }!
        return resolve(rule, in: Source(raw)).flatMap { $0.text }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A raw listing with its members (a Spark result's StandardFields, or a RESO Property's)
    /// indexed once, so that looking up some forty fields does not scan the record each time.
    struct Source {
        let raw: Record
        let isSpark: Bool
        let members: [String: JSONValue]

        init(_ raw: Record) {
            self.raw = raw
            let standard = raw["StandardFields"]?.object
            isSpark = standard != nil
            var members: [String: JSONValue] = [:]
            let fields = (standard ?? raw).fields
            members.reserveCapacity(fields.count)
            for field in fields where members[field.key] == nil { members[field.key] = field.value }
            self.members = members
        }
    }

    /// Flattens one raw listing. Throws `RecordRejected` for a listing without ListingKey,
    /// or without a usable retention date in a pipeline whose records expire.
    public func flatten(_ raw: Record) throws(RecordRejected) -> Record {
        var out = Record()
        out.fields.reserveCapacity(fields.count + 16)
        var problems = Record()
        let source = Source(raw)
        for rule in fields {
            let value = resolve(rule, in: source)
            switch ListingFlattener.coerce(value, to: rule.type) {
            case .success(let v): out.append(rule.field, v)
            case .failure(let why):
                out.append(rule.field, .null)
                problems.append(rule.field, .string(why.message))
            }
        }
        guard let key = out["ListingKey"]?.text, !key.isEmpty else {
            throw RecordRejected("listing without ListingKey")
        }
        let photos = self.photos(source)
        out.append("PrimaryPhotoUrl", photos.primary.map { .string($0) } ?? .null)
        out.append("PhotoCount", .int(photos.count))
        out.append("source", .string(pipeline.mls))
        out.append("pipeline", .string(pipeline.name))
        for field in tracking { out.append(field.field, field.initial) }
        if let retention {
            guard let text = out[retention.dateField]?.text ?? raw[retention.dateField]?.text,
                  let start = Timestamp(iso8601: text) else {
                let shown = out[retention.dateField].map { $0.isNull ? (problems[retention.dateField]?.text ?? "missing") : ($0.text ?? "") } ?? "missing"
                throw RecordRejected("listing \(key): \(retention.dateField) is not a usable timestamp (\(shown)), so expiresAt cannot be set")
            }
            out.append("expiresAt", .string(start.adding(days: retention.days).iso8601))
        }
        out.append("coercionErrors", problems.isEmpty ? .null : .object(problems))
        return out
    }

    /// Copies the lead tracking fields of `previous` (the same listing, flattened before) into
    /// `record`, so a refresh keeps what a person recorded.
    public func carryOver(from previous: Record, into record: inout Record) {
        for field in tracking {
            if let value = previous[field.field] { record[field.field] = value }
        }
        for field in [TrackingRules.historyField, "tracking_errors"] {
            if let value = previous[field] { record[field] = value }
        }
    }

    /// True when this pipeline's records carry lead tracking (and so are kept across refreshes).
    public var tracksLeads: Bool { !tracking.isEmpty }

    // MARK: Reading raw listings

    /// True when `raw` is a Spark native result rather than a RESO Property.
    public static func isSpark(_ raw: Record) -> Bool { raw["StandardFields"]?.object != nil }

    func resolve(_ rule: ListingFieldRule, in source: Source) -> JSONValue? {
        if source.isSpark {
            for path in rule.spark {
                let value = path.hasPrefix("/") ? source.raw[String(path.dropFirst())] : source.members[path]
                if let value, !value.isNull { return value }
            }
            return nil
        }
        for path in rule.reso {
            if let value = source.members[path], !value.isNull { return value }
        }
        return nil
    }

    /// The primary photo's URL and the number of photos.
    public func photos(_ raw: Record) -> (primary: String?, count: Int) { photos(Source(raw)) }

    func photos(_ source: Source) -> (primary: String?, count: Int) {
        if source.isSpark {
            let list = (source.members["Photos"]?.array ?? []).compactMap { $0.object }
            let primary = list.first { $0["Primary"]?.bool == true } ?? list.first
            let url = primary.flatMap { p in photoSizes.lazy.compactMap { p[$0]?.string }.first { !$0.isEmpty } }
            return (url, list.count)
        }
        let media = (source.members["Media"]?.array ?? []).compactMap { $0.object }.filter { m in
            let category = m["MediaCategory"]?.string?.lowercased()
            return category == nil || category == "photo" || category == "photos"
        }
        let ordered = media.enumerated().sorted { a, b in
            let x = a.element["Order"]?.double ?? .infinity, y = b.element["Order"]?.double ?? .infinity
            return x != y ? x < y : a.offset < b.offset
        }
        return (ordered.first?.element["MediaURL"]?.string, media.count)
    }

    // MARK: Coercion

    public struct CoercionFailure: Error { public let message: String }

    /// Coerces a value to a field type. Spark sends numbers as strings with stray spaces
    /// (`" -116.3237"`): those become numbers. Missing values and empty strings are null.
    public static func coerce(_ value: JSONValue?, to type: ListingFieldType) -> Result<JSONValue, CoercionFailure> {
        guard let value, !value.isNull else { return .success(.null) }
        func fail(_ what: String) -> Result<JSONValue, CoercionFailure> {
            .failure(CoercionFailure(message: "'\(value.text ?? value.json)' is not \(what)"))
        }
        if value.kind == .string {
            if isMasked(value) { return .failure(CoercionFailure(message: "masked by the MLS")) }
            // Strings stay as received (and are written out without being decoded).
            if type == .string { return .success(value) }
        }
        if let s = value.string, type != .string, s.trimmingSpaces.isEmpty { return .success(.null) }
        switch type {
        case .string:
            if let t = value.text { return .success(.string(t)) }
            return .success(.string(value.json))
        case .number, .integer:
            let number: JSONValue
            if value.kind == .number {
                number = value.resolved
            } else if let s = value.string, let parsed = parseNumber(s.trimmingSpaces) {
                number = parsed
            } else {
                return fail(type == .integer ? "a whole number" : "a number")
            }
            if type == .integer {
                guard let i = number.int else { return fail("a whole number") }
                return .success(.int(i))
            }
            // A fractional field is a double in every row, whole or not (2.0 beside 2.5).
            return .success(number.double.map { .double($0) } ?? number)
        case .timestamp:
            guard let t = value.string.flatMap({ Timestamp(iso8601: $0) }) else { return fail("an ISO 8601 timestamp") }
            return .success(.string(t.iso8601))
        case .date:
            guard let s = value.string?.trimmingSpaces, s.count >= 10,
                  let t = Timestamp(iso8601: String(s.prefix(10))), Timestamp(iso8601: s) != nil else {
                return fail("an ISO 8601 date")
            }
            return .success(.string(t.date.iso8601))
        case .boolean:
            if let b = value.bool { return .success(.bool(b)) }
            switch value.text?.lowercased().trimmingSpaces {
            case "true", "yes", "y", "1": return .success(.bool(true))
            case "false", "no", "n", "0": return .success(.bool(false))
            default: return fail("true or false")
            }
        }
    }

    /// A value the MLS hides from this API key: three or more asterisks.
    static func isMasked(_ value: JSONValue) -> Bool {
        if case .raw(let r) = value {
            let body = r.tape.rawStringBody(r.node)
            guard body.count >= 3, body.first == 42 else { return false }
            return body.allSatisfy { $0 == 42 }
        }
        guard let s = value.string, s.utf8.count >= 3 else { return false }
        return s.utf8.allSatisfy { $0 == 42 }
    }

    /// A decimal number in plain notation (no hex, inf or nan), as an integer when it has no
    /// fraction or exponent and fits.
    public static func parseNumber(_ text: String) -> JSONValue? {
        var t = text
        guard !t.isEmpty, t.withUTF8({ CSVWriter.isPlainNumber($0) }) else { return nil }
        if t.hasPrefix("+") { t.removeFirst() }
        if !t.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let i = Int(t) { return .int(i) }
        guard let d = Double(t), d.isFinite else { return nil }
        return .double(d)
    }
}

/// Whether a flattened listing is past its retention.
public enum ListingRetention {
    /// True when the record's `expiresAt` is before `now`. A record without a readable
    /// `expiresAt` is kept: cleanup never removes what it cannot date.
    public static func isExpired(_ record: Record, now: Timestamp) -> Bool {
        guard let text = record.text("expiresAt"), let expires = Timestamp(iso8601: text) else { return false }
        return expires < now
    }
}
