import StageKit

/// The tables `lead-export db` loads, from `stages/export/db-tables.csv`, and the rules that
/// type their columns from the records' values.
public struct DatabaseTable: Sendable {
    public var name: String
    /// The file under the logs root.
    public var source: String
    public var key: [String]
    /// The array field whose elements are the rows (a child table), or nil.
    public var rowsFrom: String?
    public var indexes: [[String]]
    /// Columns whose type the rules give.
    public var types: [String: ColumnType] = [:]

    public static func load(_ path: String) throws(StageError) -> [DatabaseTable] {
        let file = try RulesFile(path: path, required: ["table", "source", "key"])
        var tables: [DatabaseTable] = []
        for row in file.rows {
            let name = try row.required("table")
            guard DatabaseTable.isIdentifier(name) else { throw row.error("table '\(name)': letters, digits and _ only") }
            let key = row["key"].split(separator: "+").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
            guard !key.isEmpty else { throw row.error("table \(name) has no key") }
            let from = row["rows_from"].trimmingSpaces
            let indexes = row.list("indexes").map { $0.split(separator: "+").map { String($0).trimmingSpaces } }
            if tables.contains(where: { $0.name == name }) { throw row.error("table \(name) is listed twice") }
            var types: [String: ColumnType] = [:]
            for item in row.list("types") {
                let parts = item.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces }
                guard parts.count == 2, let type = ColumnType(rawValue: parts[1].lowercased()) else {
                    throw row.error("table \(name): '\(item)' is not column=integer|real|boolean|timestamp|text|json")
                }
                types[parts[0]] = type
            }
            tables.append(DatabaseTable(name: name, source: try row.required("source"), key: key,
                                        rowsFrom: from.isEmpty ? nil : from, indexes: indexes, types: types))
        }
        return tables
    }

    public static func isIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
            && !(s.utf8.first! >= 48 && s.utf8.first! <= 57)
    }

    /// A name quoted for SQL.
    public static func quoted(_ name: String) -> String {
        "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}

/// The SQL type of a column, from every value the column holds.
public enum ColumnType: String, Sendable {
    case integer, real, boolean, timestamp, text, json

    /// The declaration: type and, for timestamps and booleans, the CHECK that holds them.
    public func declaration(_ column: String) -> String {
        let q = DatabaseTable.quoted(column)
        switch self {
        case .integer: return "\(q) INTEGER"
        case .real: return "\(q) REAL"
        case .boolean: return "\(q) INTEGER CHECK (\(q) IS NULL OR \(q) IN (0, 1))"
        case .timestamp:
            return "\(q) TEXT CHECK (\(q) IS NULL OR \(q) GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]*')"
        case .text, .json: return "\(q) TEXT"
        }
    }

    /// What the declared type of an existing column says it holds.
    public init(declared: String) {
        switch declared.uppercased() {
        case "INTEGER": self = .integer
        case "REAL": self = .real
        default: self = .text
        }
    }
}

/// Types columns as values come: each column ends as the narrowest type that holds every
/// value seen (empty strings and nulls say nothing).
public struct ColumnTyper {
    public private(set) var order: [String] = []
    private var seen: [String: Seen] = [:]

    struct Seen {
        var ints = 0, reals = 0, bools = 0, stamps = 0, texts = 0, nested = 0
    }

    public init() {}

    public mutating func observe(_ column: String, _ value: JSONValue?) {
        if seen[column] == nil {
            seen[column] = Seen()
            order.append(column)
        }
        guard let value = value?.resolved else { return }
        switch value {
        case .null: return
        case .bool: seen[column]!.bools += 1
        case .int: seen[column]!.ints += 1
        case .double: seen[column]!.reals += 1
        case .string(let s):
            if s.isEmpty { return }
            if ColumnTyper.isTimestamp(s) { seen[column]!.stamps += 1 } else { seen[column]!.texts += 1 }
        case .array, .object: seen[column]!.nested += 1
        default:
            // A raw number kept as written.
            if value.int != nil { seen[column]!.ints += 1 } else if value.double != nil { seen[column]!.reals += 1 } else { seen[column]!.texts += 1 }
        }
    }

    public func type(of column: String) -> ColumnType {
        guard let s = seen[column] else { return .text }
        let total = s.ints + s.reals + s.bools + s.stamps + s.texts + s.nested
        if total == 0 { return .text }
        if s.nested == total { return .json }
        if s.bools == total { return .boolean }
        if s.ints == total { return .integer }
        if s.ints + s.reals == total { return .real }
        if s.stamps == total { return .timestamp }
        return s.nested > 0 ? .json : .text
    }

    /// An ISO 8601 date or time: 2026-11-23, 2026-11-23T06:00:00Z and the like.
    public static func isTimestamp(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count >= 10, b[4] == 45, b[7] == 45 else { return false }
        for i in [0, 1, 2, 3, 5, 6, 8, 9] where !(b[i] >= 48 && b[i] <= 57) { return false }
        if b.count == 10 { return true }
        return (b[10] == 84 || b[10] == 32) && Timestamp(iso8601: s) != nil
    }
}
