import StageKit

/// A saved smart list, `stages/export/lists/<name>.list`:
///
///     # Foreclosures worth a call this week
///     where: score >= 2000 and tag == "Foreclosure"
///     columns: property_address, property_city, owner_name, score, tag as tags
///     sort: score desc, property_address
///     limit: 500
///
/// `where:` is a filter (see `LeadFilter`; it may go on over the following lines);
/// `columns:` lists the CSV columns, each a field or any filter expression, `EXPR as NAME`
/// (or `EXPR as "First Name"` for a header with spaces) to name it (default: the address, owner, mailing address, county, score and active tags);
/// `sort:` fields or expressions with `asc`/`desc` (default: score desc, then address_key);
/// `limit:` the most rows to write. Lines starting with `#` are comments.
public struct SmartList: Sendable {
    public struct Column: Sendable {
        public let name: String
        public let value: LeadFilter
    }

    public struct SortKey: Sendable {
        public let value: LeadFilter
        public let descending: Bool
    }

    public let name: String
    public let filter: LeadFilter
    public let columns: [Column]
    public let sort: [SortKey]
    public let limit: Int?

    public static let defaultColumns = "property_address, property_city, property_state, property_zip, owner_name, "
        + "mailing_address, mailing_city, mailing_state, mailing_zip, county, score, tag as tags, address_key"

    /// Parses a list's text. Errors name the line and column.
    public init(name: String, text: String, path: String, functions: Set<String>) throws(StageError) {
        try self.init(name: name, filter: nil, text: text, path: path, functions: functions)
    }

    /// A list with no file: `expression` picks the leads; default columns and sort.
    /// A syntax error names the column of `--where`.
    public init(name: String, where expression: String, functions: Set<String>) throws(StageError) {
        let filter: LeadFilter
        do {
            filter = try LeadFilter(expression, functions: functions)
        } catch {
            throw StageError.usage("--where: \(error)")
        }
        try self.init(name: name, filter: filter, text: "", path: "--where", functions: functions)
    }

    private init(name: String, filter given: LeadFilter?, text: String, path: String, functions: Set<String>) throws(StageError) {
        self.name = name
        var directives: [(key: String, value: String, line: Int, column: Int)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            let trimmed = line.trimmingSpaces
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if let colon = trimmed.firstIndex(of: ":"), ["where", "columns", "sort", "limit"].contains(trimmed[..<colon].lowercased()) {
                let key = trimmed[..<colon].lowercased()
                let valueStart = line.index(after: line.firstIndex(of: ":")!)
                let column = line.distance(from: line.startIndex, to: valueStart) + 1
                directives.append((key, String(line[valueStart...]), n + 1, column))
            } else if let last = directives.last {
                directives[directives.count - 1].value = last.value + "\n" + line
            } else {
                throw StageError.rules(file: path, line: n + 1, message: "expected where:, columns:, sort: or limit: (found '\(trimmed)')")
            }
        }
        func one(_ key: String) throws(StageError) -> (value: String, line: Int, column: Int)? {
            let found = directives.filter { $0.key == key }
            if found.count > 1 { throw StageError.rules(file: path, line: found[1].line, message: "\(key): is given twice") }
            return found.first.map { ($0.value, $0.line, $0.column) }
        }
        func parse(_ text: String, line: Int, column: Int) throws(StageError) -> LeadFilter {
            do {
                return try LeadFilter(text, functions: functions)
            } catch {
                // Columns count from the start of the line the error is on.
                let at = error.line == 1 ? column - 1 + error.column : error.column
                throw StageError.rules(file: path, line: line + error.line - 1,
                                       message: "column \(at): \(error.message)\n  \(error.text.split(separator: "\n", omittingEmptySubsequences: false)[error.line - 1])\n  \(String(repeating: " ", count: max(0, error.column - 1)))^")
            }
        }
        if let given {
            filter = given
        } else {
            guard let whereClause = try one("where") else {
                throw StageError.rules(file: path, line: nil, message: "no where: line (the filter that picks the list's leads)")
            }
            filter = try parse(whereClause.value, line: whereClause.line, column: whereClause.column)
        }
        let columnsClause = try one("columns")
        var columns: [Column] = []
        let columnText = columnsClause?.value ?? SmartList.defaultColumns
        for piece in SmartList.splitTopLevel(columnText) {
            var expression = piece.text
            var header = piece.text.trimmingSpaces
            let words = piece.text.split(separator: " ", omittingEmptySubsequences: true)
            if let (named, name) = SmartList.quotedName(header) {
                // `EXPR as "First Name"`: a header with spaces or punctuation.
                header = name
                expression = named
            } else if words.count >= 3, words[words.count - 2].lowercased() == "as" {
                header = String(words.last!)
                expression = words.dropLast(2).joined(separator: " ")
            }
            columns.append(Column(name: header, value: try parse(expression, line: columnsClause?.line ?? 0,
                                                                 column: (columnsClause?.column ?? 1) + piece.offset)))
        }
        self.columns = columns
        var sort: [SortKey] = []
        if let sortClause = try one("sort") {
            for piece in SmartList.splitTopLevel(sortClause.value) {
                var words = piece.text.split(separator: " ").map(String.init)
                var descending = false
                if let last = words.last?.lowercased(), last == "desc" || last == "asc", words.count > 1 {
                    descending = last == "desc"
                    words.removeLast()
                }
                sort.append(SortKey(value: try parse(words.joined(separator: " "), line: sortClause.line, column: sortClause.column + piece.offset),
                                    descending: descending))
            }
        } else {
            sort = [SortKey(value: try! LeadFilter("score"), descending: true), SortKey(value: try! LeadFilter("address_key"), descending: false)]
        }
        self.sort = sort
        if let limitClause = try one("limit") {
            guard let n = Int(limitClause.value.trimmingSpaces), n > 0 else {
                throw StageError.rules(file: path, line: limitClause.line, message: "limit: must be a positive whole number")
            }
            limit = n
        } else {
            limit = nil
        }
    }

    /// `EXPR as "NAME"` split into the expression and the name (quotes doubled inside it).
    static func quotedName(_ text: String) -> (String, String)? {
        guard text.hasSuffix("\""), text.count >= 2 else { return nil }
        let chars = Array(text)
        var i = chars.count - 2
        var name = ""
        while i >= 0 {
            if chars[i] == "\"" {
                if i > 0, chars[i - 1] == "\"" { name.insert("\"", at: name.startIndex); i -= 2; continue }
                break
            }
            name.insert(chars[i], at: name.startIndex)
            i -= 1
        }
        guard i >= 0 else { return nil }
        let before = String(chars[..<i]).trimmingSpaces
        guard before.lowercased().hasSuffix(" as") || before.lowercased() == "as" else { return nil }
        let expression = String(before.dropLast(2)).trimmingSpaces
        guard !expression.isEmpty, !name.isEmpty else { return nil }
        return (expression, name)
    }

    /// Splits at commas outside quotes, brackets and parentheses; each piece with its offset.
    static func splitTopLevel(_ text: String) -> [(text: String, offset: Int)] {
        var pieces: [(String, Int)] = []
        var depth = 0
        var quote: Character?
        var current = ""
        var start = 0
        for (i, c) in text.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" || c == "`" {
                quote = c
            } else if c == "(" || c == "[" {
                depth += 1
            } else if c == ")" || c == "]" {
                depth -= 1
            } else if c == "," && depth == 0 {
                pieces.append((current, start))
                current = ""
                start = i + 1
                continue
            }
            current.append(c)
        }
        pieces.append((current, start))
        return pieces.filter { !$0.0.trimmingSpaces.isEmpty }.map { piece in
            let lead = piece.0.prefix { $0 == " " || $0 == "\t" || $0 == "\n" }.count
            return (piece.0.trimmingSpaces, piece.1 + lead)
        }
    }

    /// A CSV cell for a value: lists joined with `|`, times in ISO 8601, null empty.
    public static func cell(_ value: FilterValue) -> String {
        switch value {
        case .null: return ""
        case .list(let items): return items.map(cell).joined(separator: "|")
        default: return value.description
        }
    }

    /// Orders two rows by the sort keys (their values computed beforehand).
    public func ordered(_ a: [FilterValue], _ b: [FilterValue]) -> Bool {
        for (k, key) in sort.enumerated() {
            switch (a[k], b[k]) {
            case (.null, .null): continue
            case (.null, _): return false
            case (_, .null): return true
            default: break
            }
            let order = SmartList.compare(a[k], b[k])
            if order != 0 { return key.descending ? order > 0 : order < 0 }
        }
        return false
    }

    /// Nulls last; numbers, times and text in their own order.
    static func compare(_ a: FilterValue, _ b: FilterValue) -> Int {
        switch (a, b) {
        case (.null, .null): return 0
        case (.null, _): return 1
        case (_, .null): return -1
        default:
            if Node.compare(.lt, a, b) { return -1 }
            if Node.compare(.gt, a, b) { return 1 }
            let x = cell(a), y = cell(b)
            return x < y ? -1 : (x == y ? 0 : 1)
        }
    }
}
