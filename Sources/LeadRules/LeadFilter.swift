import StageKit

/// The filter language of smart lists, bulk tag edits and derived tags:
///
///     score >= 2000 and tag == "Foreclosure"
///     has_tag("Probate") and not (property_state in ["TX", "OK"])
///     expiration_at < now + 7d or owner_name contains "estate"
///
/// - Comparisons `== != < <= > >=` on any field (a dotted name reaches into objects:
///   `property_address_parts.street`; a name in backquotes may hold any character), on
///   strings, numbers, booleans, `null`, times (`now`, `today`, ISO 8601 strings) and
///   durations (`7d`, `12h`, `2w`). `and`, `or`, `not` (or `&&`, `||`, `!`), parentheses.
/// - `x in [a, b]`, `x not in [...]`; `x contains y` (a list holds y, or a text holds y,
///   ignoring case). Time arithmetic: `now - 30d`, `assigned_at + 90d`.
/// - A field that holds a list compares true when any element does (`tag == "Vacant"`).
/// - Lead helpers: `tag` (the names of the active tag assignments), `expired_tag`,
///   `assigned_at` and `expiration_at` (of the active assignments), `has_tag(name)`,
///   `assigned_at(name)` and `expiration_at(name)` (of that tag's active assignment),
///   `days_since(t)`, `days_until(t)` (element by element over a list), `lower(s)`, `upper(s)`, `len(x)`, and functions a
///   stage adds (`absentee()` in lead-tag and lead-export).
///
/// A string compared with a number or a time is read as one (`"3" > 2`), so imported text
/// columns compare naturally. A missing field is `null`; comparisons with null other than
/// `== null` and `!= null` are false.
public struct LeadFilter: Sendable {
    public let source: String
    let root: Node

    /// Parses `text`; a syntax error names the column.
    public init(_ text: String, functions: Set<String> = []) throws(FilterSyntaxError) {
        source = text
        var parser = Parser(text: text, extraFunctions: functions)
        root = try parser.parseAll()
    }

    /// True when `record` matches.
    public func matches(_ record: Record, context: FilterContext) -> Bool {
        root.evaluate(record, context).truthy
    }

    /// The value of the expression for `record`.
    public func evaluate(_ record: Record, context: FilterContext) -> FilterValue {
        root.evaluate(record, context)
    }

    /// The record fields the filter names (the first key of each path), not counting the lead
    /// helpers (`tag`, `expired_tag`, `assigned_at`, `expiration_at`).
    public var fieldNames: Set<String> {
        var fields = Set<String>(), tags: [String] = []
        root.collect(fields: &fields, tags: &tags)
        return fields
    }

    /// The tag names the filter asks about: the names given to has_tag, assigned_at and
    /// expiration_at, and the texts compared with `tag` / `expired_tag`.
    public var tagNames: [String] {
        var fields = Set<String>(), tags: [String] = []
        root.collect(fields: &fields, tags: &tags)
        return tags
    }
}

/// Whether the fields a filter names exist in the records it runs over: a stage observes
/// each record's keys, then warns about a field no record had, with the closest one
/// (`no record has 'scor'; did you mean 'score'?`), since such a filter silently matches
/// nothing (or everything).
public struct FilterFieldCheck {
    public let fields: Set<String>
    private var seen = Set<String>()
    private var missing: Set<String>

    public init(_ filters: [LeadFilter]) {
        fields = filters.reduce(into: Set<String>()) { $0.formUnion($1.fieldNames) }
        missing = fields
    }

    /// Notes the keys of one input record.
    public mutating func observe(_ record: Record) {
        guard !missing.isEmpty else { return }
        for field in record.fields {
            if seen.count < 10_000 { seen.insert(field.key) }
            missing.remove(field.key)
        }
    }

    /// One sentence per field no record had.
    public var warnings: [String] {
        missing.sorted().map { field in
            let close = seen.map { ($0, FilterFieldCheck.distance($0.lowercased(), field.lowercased())) }
                .filter { $0.1 <= max(2, field.count / 3) }
                .min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }
            return "no record has '\(field)'" + (close.map { "; did you mean '\($0.0)'?" } ?? "")
        }
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        var row = Array(0...y.count)
        for i in 1...x.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: y.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (x[i - 1] == y[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[y.count]
    }
}

extension RulesFile.Row {
    /// The filter in `column` of a rules row; a syntax error names the file, line and column.
    public func filter(_ column: String, functions: Set<String> = []) throws(StageError) -> LeadFilter {
        let text = try required(column)
        do throws(FilterSyntaxError) {
            return try LeadFilter(text, functions: functions)
        } catch {
            throw self.error("\(column): \(error)")
        }
    }
}

/// What a filter evaluates against besides the record: the clock, and functions a stage adds.
public struct FilterContext {
    public var now: Timestamp
    public var functions: [String: (Record) -> FilterValue]

    public init(now: Timestamp, functions: [String: (Record) -> FilterValue] = [:]) {
        self.now = now
        self.functions = functions
    }
}

/// A syntax error: the message, the 1-based line and column, and the text.
public struct FilterSyntaxError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let line: Int
    public let column: Int
    public let text: String

    /// The message, then the offending line with a caret under the column.
    public var description: String {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let shown = line - 1 < lines.count ? String(lines[line - 1]) : ""
        return "column \(column): \(message)\n  \(shown)\n  \(String(repeating: " ", count: max(0, column - 1)))^"
    }
}

/// A value inside a filter.
public indirect enum FilterValue: Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case time(Timestamp)
    /// Seconds.
    case duration(Int64)
    case list([FilterValue])

    public var truthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .number(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .time: return true
        case .duration(let s): return s != 0
        case .list(let l): return !l.isEmpty
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return JSONWriter.format(d)
        case .string(let s): return s
        case .time(let t): return t.iso8601
        case .duration(let s): return "\(s)s"
        case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// A record value as a filter value.
    public init(_ json: JSONValue?) {
        guard let json else { self = .null; return }
        switch json.kind {
        case .null: self = .null
        case .bool: self = .bool(json.bool ?? false)
        case .number: self = .number(json.double ?? 0)
        case .string: self = .string(json.string ?? "")
        case .array: self = .list((json.array ?? []).map { FilterValue($0) })
        case .object: self = .string(json.json)
        }
    }

    var asTime: Timestamp? {
        switch self {
        case .time(let t): return t
        case .string(let s): return Timestamp(iso8601: s)
        default: return nil
        }
    }

    var asNumber: Double? {
        switch self {
        case .number(let d): return d
        case .string(let s): return Double(s.trimmingSpaces.filter { $0 != "," })
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var asText: String? {
        switch self {
        case .string(let s): return s
        case .number, .bool, .time: return description
        default: return nil
        }
    }
}

// MARK: - Syntax tree

enum CompareOp: String, Sendable { case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=" }

indirect enum Node: Sendable {
    case literal(FilterValue)
    case field([String])
    case now, today
    case call(String, [Node])
    case list([Node])
    case not(Node)
    case and(Node, Node)
    case or(Node, Node)
    case compare(CompareOp, Node, Node)
    case member(Node, Node, negated: Bool)
    case contains(Node, Node)
    case add(Node, Node)
    case subtract(Node, Node)
    case negate(Node)

    func evaluate(_ r: Record, _ c: FilterContext) -> FilterValue {
        switch self {
        case .literal(let v): return v
        case .now: return .time(c.now)
        case .today: return .time(c.now.startOfDay)
        case .field(let path): return Node.lookup(path, in: r, c)
        case .list(let items): return .list(items.map { $0.evaluate(r, c) })
        case .call(let name, let args): return Node.call(name, args.map { $0.evaluate(r, c) }, r, c)
        case .not(let n): return .bool(!n.evaluate(r, c).truthy)
        case .and(let a, let b): return .bool(a.evaluate(r, c).truthy && b.evaluate(r, c).truthy)
        case .or(let a, let b): return .bool(a.evaluate(r, c).truthy || b.evaluate(r, c).truthy)
        case .compare(let op, let a, let b): return .bool(Node.compare(op, a.evaluate(r, c), b.evaluate(r, c)))
        case .member(let a, let b, let negated):
            let x = a.evaluate(r, c)
            let found: Bool
            if case .list(let items) = b.evaluate(r, c) {
                found = items.contains { Node.compare(.eq, x, $0) }
            } else {
                found = Node.compare(.eq, x, b.evaluate(r, c))
            }
            return .bool(found != negated)
        case .contains(let a, let b):
            let x = a.evaluate(r, c), y = b.evaluate(r, c)
            if case .list(let items) = x { return .bool(items.contains { Node.compare(.eq, $0, y) }) }
            guard let text = x.asText, let part = y.asText else { return .bool(false) }
            return .bool(text.lowercased().contains(part.lowercased()))
        case .add(let a, let b): return Node.arithmetic(a.evaluate(r, c), b.evaluate(r, c), sign: 1)
        case .subtract(let a, let b): return Node.arithmetic(a.evaluate(r, c), b.evaluate(r, c), sign: -1)
        case .negate(let a):
            switch a.evaluate(r, c) {
            case .number(let d): return .number(-d)
            case .duration(let s): return .duration(-s)
            default: return .null
            }
        }
    }

    static func lookup(_ path: [String], in record: Record, _ c: FilterContext) -> FilterValue {
        if let value = record[path[0]] {
            var current: JSONValue = value
            for key in path.dropFirst() {
                guard let next = current.object?[key] else { return .null }
                current = next
            }
            return FilterValue(current)
        }
        guard path.count == 1 else { return .null }
        // The lead helpers, when the record has no field of that name.
        let assignments = (record["tags"]?.array ?? []).compactMap(TagAssignment.record)
        func active(_ a: Record) -> Bool { a.text("status") != "expired" }
        switch path[0] {
        case "tag": return .list(assignments.filter(active).compactMap { $0.text("tag") }.map { .string($0) })
        case "expired_tag": return .list(assignments.filter { !active($0) }.compactMap { $0.text("tag") }.map { .string($0) })
        case "assigned_at", "expiration_at":
            return .list(assignments.filter(active).compactMap { $0.text(path[0]).flatMap(Timestamp.init(iso8601:)) }.map { .time($0) })
        default: return .null
        }
    }

    static let builtins: Set<String> = ["has_tag", "assigned_at", "expiration_at", "days_since", "days_until",
                                        "lower", "upper", "len"]

    /// The names the lead helpers answer when a record has no field of that name.
    static let helperFields: Set<String> = ["tag", "expired_tag", "assigned_at", "expiration_at"]

    /// Gathers the fields and tag names the expression names.
    func collect(fields: inout Set<String>, tags: inout [String]) {
        switch self {
        case .literal, .now, .today: break
        case .field(let path): if !Node.helperFields.contains(path[0]) || path.count > 1 { fields.insert(path[0]) }
        case .call(let name, let args):
            if ["has_tag", "assigned_at", "expiration_at"].contains(name), case .literal(.string(let tag))? = args.first {
                tags.append(tag)
            }
            for arg in args { arg.collect(fields: &fields, tags: &tags) }
        case .list(let items): for item in items { item.collect(fields: &fields, tags: &tags) }
        case .not(let n), .negate(let n): n.collect(fields: &fields, tags: &tags)
        case .and(let a, let b), .or(let a, let b), .add(let a, let b), .subtract(let a, let b), .contains(let a, let b):
            a.collect(fields: &fields, tags: &tags)
            b.collect(fields: &fields, tags: &tags)
        case .compare(_, let a, let b), .member(let a, let b, _):
            for (side, other) in [(a, b), (b, a)] {
                if case .field(let path) = side, path.count == 1, path[0] == "tag" || path[0] == "expired_tag" {
                    if case .literal(.string(let tag)) = other { tags.append(tag) }
                    if case .list(let items) = other {
                        for case .literal(.string(let tag)) in items { tags.append(tag) }
                    }
                }
            }
            a.collect(fields: &fields, tags: &tags)
            b.collect(fields: &fields, tags: &tags)
        }
    }

    static func call(_ name: String, _ args: [FilterValue], _ record: Record, _ c: FilterContext) -> FilterValue {
        switch name {
        case "has_tag":
            guard let wanted = args.first?.asText?.lowercased() else { return .bool(false) }
            let assignments = (record["tags"]?.array ?? []).compactMap(TagAssignment.record)
            return .bool(assignments.contains { $0.text("tag")?.lowercased() == wanted && $0.text("status") != "expired" })
        case "assigned_at", "expiration_at":
            // The time of the named tag's active assignment (null when it has none).
            guard let wanted = args.first?.asText?.lowercased() else { return .null }
            let times = (record["tags"]?.array ?? []).compactMap(TagAssignment.record)
                .filter { $0.text("tag")?.lowercased() == wanted && $0.text("status") != "expired" }
                .compactMap { $0.text(name).flatMap(Timestamp.init(iso8601:)) }
            if times.count > 1 { return .list(times.map { .time($0) }) }
            return times.first.map { .time($0) } ?? .null
        case "days_since", "days_until":
            func days(_ value: FilterValue) -> FilterValue {
                guard let t = value.asTime else { return .null }
                return .number(Double(name == "days_since" ? t.days(until: c.now) : c.now.days(until: t)))
            }
            if case .list(let items)? = args.first { return .list(items.map(days)) }
            return args.first.map(days) ?? .null
        case "lower": return args.first?.asText.map { .string($0.lowercased()) } ?? .null
        case "upper": return args.first?.asText.map { .string($0.uppercased()) } ?? .null
        case "len":
            switch args.first {
            case .list(let l): return .number(Double(l.count))
            case .string(let s): return .number(Double(s.count))
            default: return .number(0)
            }
        default:
            return c.functions[name]?(record) ?? .null
        }
    }

    static func arithmetic(_ a: FilterValue, _ b: FilterValue, sign: Int64) -> FilterValue {
        // A list (the assigned_at of every active assignment) is worked element by element.
        if case .list(let items) = a { return .list(items.map { arithmetic($0, b, sign: sign) }) }
        if case .list(let items) = b { return .list(items.map { arithmetic(a, $0, sign: sign) }) }
        switch (a, b) {
        case (.duration(let x), .duration(let y)): return .duration(x + sign * y)
        case (_, .duration(let s)):
            guard let t = a.asTime else { return .null }
            return .time(t.adding(seconds: sign * s))
        case (.duration(let s), _) where sign == 1:
            guard let t = b.asTime else { return .null }
            return .time(t.adding(seconds: s))
        default:
            if sign == -1, let x = a.asTime, let y = b.asTime, case .time = a {
                return .duration(x.seconds - y.seconds)
            }
            guard let x = a.asNumber, let y = b.asNumber else { return .null }
            return .number(x + Double(sign) * y)
        }
    }

    /// Compares two values; a list on either side compares true when any element does.
    static func compare(_ op: CompareOp, _ a: FilterValue, _ b: FilterValue) -> Bool {
        if case .list(let items) = a {
            if case .list = b, op == .eq || op == .ne {
                let equal = listsEqual(a, b)
                return op == .eq ? equal : !equal
            }
            return op == .ne ? !items.contains { compare(.eq, $0, b) } : items.contains { compare(op, $0, b) }
        }
        if case .list(let items) = b {
            return op == .ne ? !items.contains { compare(.eq, a, $0) } : items.contains { compare(op, a, $0) }
        }
        switch (a, b) {
        case (.null, .null): return op == .eq || op == .le || op == .ge
        case (.null, _), (_, .null): return op == .ne
        default: break
        }
        guard let order = ordering(a, b) else { return op == .ne }
        switch op {
        case .eq: return order == 0
        case .ne: return order != 0
        case .lt: return order < 0
        case .le: return order <= 0
        case .gt: return order > 0
        case .ge: return order >= 0
        }
    }

    static func listsEqual(_ a: FilterValue, _ b: FilterValue) -> Bool {
        guard case .list(let x) = a, case .list(let y) = b, x.count == y.count else { return false }
        return zip(x, y).allSatisfy { compare(.eq, $0, $1) }
    }

    /// -1, 0 or 1, or nil when the two cannot be compared.
    static func ordering(_ a: FilterValue, _ b: FilterValue) -> Int? {
        func sign<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : (x == y ? 0 : 1) }
        switch (a, b) {
        case (.string(let x), .string(let y)): return sign(x, y)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.duration(let x), .duration(let y)): return sign(x, y)
        case (.time, _), (_, .time):
            guard let x = a.asTime, let y = b.asTime else { return nil }
            return sign(x, y)
        case (.number, _), (_, .number):
            guard let x = a.asNumber, let y = b.asNumber else { return nil }
            return sign(x, y)
        default: return nil
        }
    }
}

// MARK: - Parser

private struct Token {
    enum Kind: Equatable { case name, string, number, duration, symbol, end }
    var kind: Kind
    var text: String
    var value: Double = 0
    var offset: Int
    /// A name written in backquotes: one field name, dots and all.
    var quoted = false
}

private struct Parser {
    let text: String
    let chars: [Character]
    let extraFunctions: Set<String>
    var tokens: [Token] = []
    var position = 0
    var lexError: FilterSyntaxError?

    init(text: String, extraFunctions: Set<String>) {
        self.text = text
        chars = Array(text)
        self.extraFunctions = extraFunctions
    }

    /// Every built-in function takes one argument; functions a stage adds take none.
    func checkArity(_ name: Token, _ count: Int) throws(FilterSyntaxError) {
        let wanted = Node.builtins.contains(name.text) ? 1 : 0
        guard count != wanted else { return }
        throw error("\(name.text)() takes \(wanted == 1 ? "one argument" : "no arguments"), found \(count)", at: name.offset)
    }

    func error(_ message: String, at offset: Int) -> FilterSyntaxError {
        var line = 1, column = 1
        for c in chars.prefix(offset) {
            if c == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return FilterSyntaxError(message: message, line: line, column: column, text: text)
    }

    mutating func lex() throws(FilterSyntaxError) {
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            let start = i
            if c == "\"" || c == "'" {
                var s = ""
                i += 1
                var closed = false
                while i < chars.count {
                    if chars[i] == "\\", i + 1 < chars.count {
                        s.append(chars[i + 1])
                        i += 2
                        continue
                    }
                    if chars[i] == c { closed = true; i += 1; break }
                    s.append(chars[i])
                    i += 1
                }
                if !closed { throw error("a string that starts here never ends (missing \(c))", at: start) }
                tokens.append(Token(kind: .string, text: s, offset: start))
            } else if c == "`" {
                var s = ""
                i += 1
                while i < chars.count, chars[i] != "`" { s.append(chars[i]); i += 1 }
                if i >= chars.count { throw error("a quoted field name that starts here never ends (missing `)", at: start) }
                i += 1
                tokens.append(Token(kind: .name, text: s, offset: start, quoted: true))
            } else if c.isNumber {
                var s = ""
                while i < chars.count, chars[i].isNumber || chars[i] == "." { s.append(chars[i]); i += 1 }
                guard let value = Double(s) else { throw error("'\(s)' is not a number", at: start) }
                if i < chars.count, chars[i].isLetter {
                    var unit = ""
                    while i < chars.count, chars[i].isLetter { unit.append(chars[i]); i += 1 }
                    let seconds: Double
                    switch unit {
                    case "d": seconds = 86_400
                    case "h": seconds = 3_600
                    case "w": seconds = 7 * 86_400
                    case "m": seconds = 60
                    default: throw error("unknown duration unit '\(unit)' (use d, h, w or m: 7d, 12h)", at: start)
                    }
                    tokens.append(Token(kind: .duration, text: s + unit, value: value * seconds, offset: start))
                } else {
                    tokens.append(Token(kind: .number, text: s, value: value, offset: start))
                }
            } else if c.isLetter || c == "_" {
                var s = ""
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "_" || chars[i] == "." {
                    s.append(chars[i])
                    i += 1
                }
                tokens.append(Token(kind: .name, text: s, offset: start))
            } else {
                let two = i + 1 < chars.count ? String([c, chars[i + 1]]) : ""
                if ["==", "!=", "<=", ">=", "&&", "||"].contains(two) {
                    tokens.append(Token(kind: .symbol, text: two, offset: start))
                    i += 2
                } else if "<>()[],+-!=".contains(c) {
                    tokens.append(Token(kind: .symbol, text: c == "=" ? "==" : String(c), offset: start))
                    i += 1
                } else {
                    throw error("unexpected character '\(c)'", at: start)
                }
            }
        }
        tokens.append(Token(kind: .end, text: "", offset: chars.count))
    }

    var current: Token { tokens[position] }

    func isKeyword(_ word: String) -> Bool { current.kind == .name && current.text.lowercased() == word }

    func describe(_ t: Token) -> String { t.kind == .end ? "the end" : "'\(t.kind == .string ? "\"" + t.text + "\"" : t.text)'" }

    mutating func parseAll() throws(FilterSyntaxError) -> Node {
        try lex()
        if current.kind == .end { throw error("empty filter", at: 0) }
        let node = try parseOr()
        if current.kind != .end {
            throw error("unexpected \(describe(current)) (expected and, or, or the end)", at: current.offset)
        }
        return node
    }

    mutating func parseOr() throws(FilterSyntaxError) -> Node {
        var node = try parseAnd()
        while isKeyword("or") || (current.kind == .symbol && current.text == "||") {
            position += 1
            node = .or(node, try parseAnd())
        }
        return node
    }

    mutating func parseAnd() throws(FilterSyntaxError) -> Node {
        var node = try parseNot()
        while isKeyword("and") || (current.kind == .symbol && current.text == "&&") {
            position += 1
            node = .and(node, try parseNot())
        }
        return node
    }

    mutating func parseNot() throws(FilterSyntaxError) -> Node {
        if isKeyword("not") || (current.kind == .symbol && current.text == "!") {
            position += 1
            return .not(try parseNot())
        }
        return try parseComparison()
    }

    mutating func parseComparison() throws(FilterSyntaxError) -> Node {
        let left = try parseSum()
        if current.kind == .symbol, let op = CompareOp(rawValue: current.text) {
            position += 1
            return .compare(op, left, try parseSum())
        }
        if isKeyword("in") {
            position += 1
            return .member(left, try parseSum(), negated: false)
        }
        if isKeyword("not"), position + 1 < tokens.count, tokens[position + 1].kind == .name, tokens[position + 1].text.lowercased() == "in" {
            position += 2
            return .member(left, try parseSum(), negated: true)
        }
        if isKeyword("contains") {
            position += 1
            return .contains(left, try parseSum())
        }
        return left
    }

    mutating func parseSum() throws(FilterSyntaxError) -> Node {
        var node = try parseUnary()
        while current.kind == .symbol && (current.text == "+" || current.text == "-") {
            let plus = current.text == "+"
            position += 1
            let right = try parseUnary()
            node = plus ? .add(node, right) : .subtract(node, right)
        }
        return node
    }

    mutating func parseUnary() throws(FilterSyntaxError) -> Node {
        if current.kind == .symbol && current.text == "-" {
            position += 1
            return .negate(try parseUnary())
        }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws(FilterSyntaxError) -> Node {
        let t = current
        switch t.kind {
        case .string:
            position += 1
            return .literal(.string(t.text))
        case .number:
            position += 1
            return .literal(.number(t.value))
        case .duration:
            position += 1
            return .literal(.duration(Int64(t.value)))
        case .symbol where t.text == "(":
            position += 1
            let inner = try parseOr()
            guard current.kind == .symbol && current.text == ")" else {
                throw error("expected ')' to close the '(' at column \(error("", at: t.offset).column), found \(describe(current))", at: current.offset)
            }
            position += 1
            return inner
        case .symbol where t.text == "[":
            position += 1
            var items: [Node] = []
            if current.kind == .symbol && current.text == "]" {
                position += 1
                return .list(items)
            }
            while true {
                items.append(try parseSum())
                if current.kind == .symbol && current.text == "," { position += 1; continue }
                if current.kind == .symbol && current.text == "]" { position += 1; break }
                throw error("expected ',' or ']' in the list, found \(describe(current))", at: current.offset)
            }
            return .list(items)
        case .name where t.quoted:
            position += 1
            return .field([t.text])
        case .name:
            position += 1
            switch t.text.lowercased() {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "null": return .literal(.null)
            case "now": return .now
            case "today": return .today
            case "and", "or", "not", "in", "contains":
                throw error("expected a value, found the keyword '\(t.text)'", at: t.offset)
            default: break
            }
            if current.kind == .symbol && current.text == "(" {
                guard Node.builtins.contains(t.text) || extraFunctions.contains(t.text) else {
                    let known = (Node.builtins.union(extraFunctions)).sorted().joined(separator: ", ")
                    throw error("unknown function '\(t.text)' (known: \(known))", at: t.offset)
                }
                position += 1
                var args: [Node] = []
                if current.kind == .symbol && current.text == ")" {
                    position += 1
                    try checkArity(t, 0)
                    return .call(t.text, args)
                }
                while true {
                    args.append(try parseOr())
                    if current.kind == .symbol && current.text == "," { position += 1; continue }
                    if current.kind == .symbol && current.text == ")" { position += 1; break }
                    throw error("expected ',' or ')' after an argument of \(t.text), found \(describe(current))", at: current.offset)
                }
                try checkArity(t, args.count)
                return .call(t.text, args)
            }
            return .field(t.text.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
        case .end:
            throw error("expected a value at the end of the filter", at: t.offset)
        default:
            throw error("expected a value, found \(describe(t))", at: t.offset)
        }
    }
}

