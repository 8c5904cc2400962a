import StageKit

/// The canonical fields of a lead, in the order every imported lead carries them.
public enum LeadFields {
    public static let canonical = [
        "property_address", "property_city", "property_state", "property_zip",
        "mailing_address", "mailing_city", "mailing_state", "mailing_zip",
        "owner_name", "county", "tags", "source",
    ]
    static let tagsIndex = 10
    static let sourceIndex = 11
    /// Fields a map may fill that are not kept as they are: the date the row's tags were
    /// assigned (it becomes each assignment's assigned_at).
    public static let tagDate = "tag_date"
    /// Where an imported lead came from: the kept copy of its file and its line there.
    public static let importFile = "import_file"
    public static let importLine = "import_line"
}

/// A provider's column map: how the columns of one list become lead fields. A CSV
/// `field,column[,format]` in `stages/flatten/`:
///
/// - `field`: a canonical lead field (property_address, ..., tags, source), `tag_date`, or
///   any other name to add under that name.
/// - `column`: the source column; several joined with `+` are concatenated with spaces,
///   empty ones skipped (`addrhouse+addrstreet+addrstreettype`). A column in double quotes
///   is a constant (`"Probate"`).
/// - `format`: how to read the value: `text` (the default; spaces trimmed), `date:PATTERN`
///   (`date:MM/dd/yyyy`, `date:yyyyMMdd`, `date:M/d/yy`; written as YYYY-MM-DD), `timestamp`
///   (ISO 8601, written in UTC), `money` (`$1,234.50`, `(12.00)` -> numbers), `int`, `number`,
///   `bool` (yes/no, y/n, true/false, 1/0, x), `list` or `list:SEP` (split on `|` or SEP).
///
/// Columns the map does not use pass through under their own names.
public struct ColumnMap: Sendable {
    public enum Format: Equatable, Sendable {
        case text, timestamp, money, int, number, bool
        case date(DatePattern)
        case list(separator: String)
    }

    /// One row of the map. A class: the mapping of every row reads each entry, and copying
    /// a struct of strings and arrays would retain and release each of them.
    public final class Entry: Sendable {
        public let field: String
        /// Source columns, or a constant.
        public let columns: [String]
        public let constant: String?
        public let format: Format
        public let line: Int

        init(field: String, columns: [String], constant: String?, format: Format, line: Int) {
            self.field = field
            self.columns = columns
            self.constant = constant
            self.format = format
            self.line = line
        }
    }

    public let path: String
    public let entries: [Entry]
    /// The fields every record gets first, in this order: the lead fields, or another
    /// record kind's (permits).
    public let canonical: [String]
    /// Where each canonical field, tag_date and the other fields come from (entry indices).
    let canonicalSlots: [Int?]
    let tagDateSlot: Int?
    let extraSlots: [Int]

    public init(path: String, entries: [Entry], canonical: [String] = LeadFields.canonical) {
        self.path = path
        self.entries = entries
        self.canonical = canonical
        canonicalSlots = canonical.map { field in entries.firstIndex { $0.field == field } }
        tagDateSlot = entries.firstIndex { $0.field == LeadFields.tagDate }
        extraSlots = entries.indices.filter { !canonical.contains(entries[$0].field) && entries[$0].field != LeadFields.tagDate }
    }

    /// Reads a map file; `canonical` names the fields every record of this kind carries.
    public static func load(_ path: String, canonical: [String] = LeadFields.canonical) throws(StageError) -> ColumnMap {
        let file = try RulesFile(path: path, required: ["field", "column"])
        var entries: [Entry] = []
        var seen = Set<String>()
        for row in file.rows {
            let field = try row.required("field")
            guard seen.insert(field).inserted else { throw row.error("field '\(field)' is mapped twice") }
            guard field != LeadFields.importFile && field != LeadFields.importLine else {
                throw row.error("'\(field)' is set by the import itself")
            }
            let column = try row.required("column")
            var constant: String?
            var columns: [String] = []
            if column.count >= 2, column.hasPrefix("\""), column.hasSuffix("\"") {
                constant = String(column.dropFirst().dropLast())
            } else {
                columns = column.split(separator: "+").map { String($0).trimmingSpaces }
                guard !columns.contains(where: \.isEmpty) else { throw row.error("empty column name in '\(column)'") }
            }
            let formatText = row["format"]
            let format: Format
            do throws(FormatError) {
                format = try parseFormat(formatText.isEmpty ? (field == "tags" ? "list" : "text") : formatText)
            } catch {
                throw row.error(error.message)
            }
            if field == "tags" {
                guard case .list = format else { throw row.error("tags must have a list format (list or list:SEP)") }
            }
            if field == LeadFields.tagDate {
                switch format {
                case .date, .timestamp: break
                default: throw row.error("tag_date must have a date:PATTERN or timestamp format")
                }
            }
            entries.append(Entry(field: field, columns: columns, constant: constant, format: format, line: row.line))
        }
        guard !entries.isEmpty else { throw StageError.rules(file: path, line: nil, message: "the map has no fields") }
        return ColumnMap(path: path, entries: entries, canonical: canonical)
    }

    struct FormatError: Error { let message: String }

    static func parseFormat(_ text: String) throws(FormatError) -> Format {
        switch text {
        case "text": return .text
        case "timestamp": return .timestamp
        case "money": return .money
        case "int": return .int
        case "number": return .number
        case "bool": return .bool
        case "list": return .list(separator: "|")
        default:
            if text.hasPrefix("list:"), text.count > 5 { return .list(separator: String(text.dropFirst(5))) }
            if text.hasPrefix("date:") {
                guard let pattern = DatePattern(String(text.dropFirst(5))) else {
                    throw FormatError(message: "cannot read the date pattern '\(text.dropFirst(5))' (use yyyy, yy, MM, M, dd, d and separators)")
                }
                return .date(pattern)
            }
            throw FormatError(message: "unknown format '\(text)' (text, date:PATTERN, timestamp, money, int, number, bool, list, list:SEP)")
        }
    }

    /// The source columns the map reads.
    public var usedColumns: Set<String> { Set(entries.flatMap(\.columns)) }

    /// Checks a source header: every mapped column must be there, and no unmapped column may
    /// share its name with a field the map writes. Returns the problem, or nil.
    public func check(header: [String]) -> String? {
        let present = Set(header)
        for entry in entries {
            for column in entry.columns where !present.contains(column) {
                return "column '\(column)' (for \(entry.field), \(path):\(entry.line)) is not in the input"
            }
        }
        for name in header {
            if let problem = collision(name) { return problem }
        }
        return nil
    }

    /// The problem with an unmapped source column that has the name of a field the map
    /// writes (it would be lost), or nil.
    public func collision(_ name: String) -> String? {
        guard !usedColumns.contains(name), writtenFields.contains(name) else { return nil }
        return "column '\(name)' is not mapped but has the name of a lead field: map it in \(path) or rename it"
    }

    var writtenFields: Set<String> {
        Set(entries.map(\.field)).union(canonical).union([LeadFields.importFile, LeadFields.importLine])
    }

    /// Where each entry's columns are in `header` (nil: not there), for `lead(column:...)`.
    public func positions(in header: [String]) -> [[Int?]] {
        var index: [String: Int] = [:]
        for (i, name) in header.enumerated() where index[name] == nil { index[name] = i }
        return entries.map { $0.columns.map { index[$0] } }
    }

    /// Builds the lead from one source row. `value` gives a source column's value (nil when
    /// the column is missing); `passThrough` the unmapped columns in source order.
    /// Throws `RecordRejected` naming the column when a value cannot be read in its format.
    public func lead(value: (String) -> JSONValue?, passThrough: [(String, JSONValue)], source defaultSource: String,
                     now: Timestamp) throws(RecordRejected) -> Record {
        try lead(column: { value(entries[$0].columns[$1]) }, passThrough: passThrough, source: defaultSource, now: now)
    }

    /// The same, with `column(e, k)` giving the value of entry e's k-th source column (the fast
    /// path for CSV rows: see `positions(in:)`).
    public func lead(column: (_ entry: Int, _ k: Int) -> JSONValue?, passThrough: [(String, JSONValue)],
                     source defaultSource: String, now: Timestamp) throws(RecordRejected) -> Record {
        var mapped: [JSONValue] = []
        mapped.reserveCapacity(entries.count)
        for e in entries.indices {
            mapped.append(try read(entries[e]) { column(e, $0) })
        }
        var record = Record()
        record.fields.reserveCapacity(LeadFields.canonical.count + extraSlots.count + passThrough.count + 2)
        var source = defaultSource
        if let slot = canonicalSlots[LeadFields.sourceIndex], let text = mapped[slot].text, !text.isEmpty { source = text }
        var assignedAt = now
        if let slot = tagDateSlot, let text = mapped[slot].text {
            assignedAt = Timestamp(iso8601: text) ?? now
        }
        for (n, field) in LeadFields.canonical.enumerated() {
            let value = canonicalSlots[n].map { mapped[$0] }
            switch n {
            case LeadFields.tagsIndex:
                var names: [String] = []
                for item in value?.array ?? [] {
                    guard let name = item.text else { continue }
                    let key = name.lowercased()
                    if !names.contains(where: { $0.lowercased() == key }) { names.append(name) }
                }
                let at = JSONValue.string(assignedAt.iso8601), via = JSONValue.string("import:" + source)
                record.append(field, .array(names.map { .object(["tag": .string($0), "assigned_at": at, "via": via]) }))
            case LeadFields.sourceIndex:
                record.append(field, .string(source))
            default:
                record.append(field, value ?? .string(""))
            }
        }
        for slot in extraSlots {
            record.append(entries[slot].field, mapped[slot])
        }
        for (name, v) in passThrough { record.append(name, v) }
        return record
    }

    /// Builds a record of a kind other than leads (no tags or source handling): the canonical
    /// fields in order (empty when unmapped), then the map's other fields, then `passThrough`.
    /// `numeric` fields are null, not empty, when the map does not fill them.
    public func record(column: (_ entry: Int, _ k: Int) -> JSONValue?, passThrough: [(String, JSONValue)],
                       numeric: Set<String> = []) throws(RecordRejected) -> Record {
        var mapped: [JSONValue] = []
        mapped.reserveCapacity(entries.count)
        for e in entries.indices {
            mapped.append(try read(entries[e]) { column(e, $0) })
        }
        var record = Record()
        record.fields.reserveCapacity(canonical.count + extraSlots.count + passThrough.count + 2)
        for (n, field) in canonical.enumerated() {
            record.append(field, canonicalSlots[n].map { mapped[$0] } ?? (numeric.contains(field) ? .null : .string("")))
        }
        for slot in extraSlots { record.append(entries[slot].field, mapped[slot]) }
        if let slot = tagDateSlot { record.append(entries[slot].field, mapped[slot]) }
        for (name, v) in passThrough { record.append(name, v) }
        return record
    }

    func read(_ entry: Entry, _ value: (Int) -> JSONValue?) throws(RecordRejected) -> JSONValue {
        var text: String
        var single: JSONValue?
        if let constant = entry.constant {
            text = constant
        } else if entry.columns.count == 1 {
            single = value(0)
            text = single?.text?.trimmingSpaces ?? ""
        } else {
            var parts: [String] = []
            for k in entry.columns.indices {
                if let t = value(k)?.text?.trimmingSpaces, !t.isEmpty { parts.append(t) }
            }
            text = parts.count == 1 ? parts[0] : parts.joined(separator: " ")
        }
        func fail(_ what: String) -> RecordRejected {
            let origin = entry.constant.map { "constant \"\($0)\"" } ?? "column '\(entry.columns.joined(separator: "+"))'"
            return RecordRejected("\(origin) (\(entry.field)): \(what)")
        }
        switch entry.format {
        case .text:
            return .string(text)
        case .list(let separator):
            if let items = single?.array { return .array(items.compactMap { $0.text?.trimmingSpaces }.filter { !$0.isEmpty }.map { .string($0) }) }
            if text.isEmpty { return .array([]) }
            let pieces: [String]
            if separator.utf8.count == 1, let byte = separator.utf8.first {
                pieces = text.utf8.split(separator: byte).map { String(decoding: $0, as: UTF8.self) }
            } else {
                pieces = text.split(separator: separator).map(String.init)
            }
            return .array(pieces.map(\.trimmingSpaces).filter { !$0.isEmpty }.map { .string($0) })
        case .int:
            if text.isEmpty { return .null }
            guard let n = ColumnMap.integer(text) else { throw fail("'\(text)' is not a whole number") }
            return .int(n)
        case .number:
            if text.isEmpty { return .null }
            guard let d = ColumnMap.decimal(text) else { throw fail("'\(text)' is not a number") }
            return ColumnMap.number(d)
        case .money:
            if text.isEmpty { return .null }
            guard let d = ColumnMap.money(text) else { throw fail("'\(text)' is not an amount of money") }
            return ColumnMap.number(d)
        case .bool:
            if text.isEmpty { return .null }
            switch text.lowercased() {
            case "yes", "y", "true", "t", "1", "x": return .bool(true)
            case "no", "n", "false", "f", "0": return .bool(false)
            default: throw fail("'\(text)' is not yes or no")
            }
        case .timestamp:
            if text.isEmpty { return .null }
            guard let t = Timestamp(iso8601: text) else { throw fail("'\(text)' is not an ISO 8601 time") }
            return .string(t.iso8601)
        case .date(let pattern):
            if text.isEmpty { return .null }
            guard let d = pattern.parse(text) else { throw fail("'\(text)' does not match the date pattern \(pattern.text)") }
            return .string(entry.field == LeadFields.tagDate ? d.timestamp.iso8601 : d.iso8601)
        }
    }

    /// A number or an amount of money: a double in every row, whole or not, so the field keeps
    /// one JSON type (`1200.0` beside `1234.5`).
    static func number(_ d: Double) -> JSONValue { .double(d) }

    /// `1,234` or `-12`.
    static func integer(_ text: String) -> Int? {
        let digits = text.filter { $0 != "," }
        return Int(digits)
    }

    /// `1,234.5`, `-0.25`, `1e3`.
    static func decimal(_ text: String) -> Double? {
        guard let d = Double(text.filter { $0 != "," }), d.isFinite else { return nil }
        return d
    }

    /// `$1,234.50`, `-$12`, `($12.00)`, `USD 5`: amounts as numbers, cents kept.
    public static func money(_ text: String) -> Double? {
        var bytes = Array(text.utf8)[...]
        func trim() {
            while let b = bytes.first, b == 32 || b == 9 { bytes.removeFirst() }
            while let b = bytes.last, b == 32 || b == 9 { bytes.removeLast() }
        }
        trim()
        var negative = false
        if bytes.first == UInt8(ascii: "("), bytes.last == UInt8(ascii: ")") {
            negative = true
            bytes = bytes.dropFirst().dropLast()
        }
        if bytes.starts(with: "USD".utf8) { bytes = bytes.dropFirst(3); trim() }
        if bytes.first == UInt8(ascii: "-") { negative.toggle(); bytes.removeFirst() }
        if bytes.first == UInt8(ascii: "$") { bytes.removeFirst() }
        if bytes.first == UInt8(ascii: "-") { negative.toggle(); bytes.removeFirst() }
        // Digits with thousands commas and at most one point.
        var digits: [UInt8] = []
        digits.reserveCapacity(bytes.count)
        var points = 0, anyDigit = false
        for b in bytes {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digits.append(b); anyDigit = true
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "."): points += 1; digits.append(b)
            default: return nil
            }
        }
        guard anyDigit, points <= 1, let d = Double(String(decoding: digits, as: UTF8.self)) else { return nil }
        return negative ? -d : d
    }
}

/// A date pattern of a column map: `MM/dd/yyyy`, `yyyy-MM-dd`, `M/d/yy`, `yyyyMMdd`. `yyyy`
/// is a four-digit year, `yy` a two-digit one (00-68 -> 2000s, 69-99 -> 1900s), `MM`/`dd` two
/// digits, `M`/`d` one or two; anything else must appear as written. Several patterns
/// separated by `|` (`yyyy-MM-dd|MM/dd/yy`, for a column that mixes them) are tried in
/// order: the first that matches wins.
public struct DatePattern: Equatable, Sendable {
    enum Piece: Equatable, Sendable { case year4, year2, month2, month, day2, day, literal(Character) }
    let alternatives: [[Piece]]
    public let text: String

    public init?(_ text: String) {
        var alternatives: [[Piece]] = []
        for part in text.split(separator: "|", omittingEmptySubsequences: false) {
            guard let pieces = DatePattern.pieces(String(part)) else { return nil }
            alternatives.append(pieces)
        }
        guard !alternatives.isEmpty else { return nil }
        self.alternatives = alternatives
        self.text = text
    }

    static func pieces(_ text: String) -> [Piece]? {
        var pieces: [Piece] = []
        var rest = Substring(text)
        while let c = rest.first {
            if rest.hasPrefix("yyyy") { pieces.append(.year4); rest = rest.dropFirst(4) }
            else if rest.hasPrefix("yy") { pieces.append(.year2); rest = rest.dropFirst(2) }
            else if rest.hasPrefix("MM") { pieces.append(.month2); rest = rest.dropFirst(2) }
            else if rest.hasPrefix("M") { pieces.append(.month); rest = rest.dropFirst() }
            else if rest.hasPrefix("dd") { pieces.append(.day2); rest = rest.dropFirst(2) }
            else if rest.hasPrefix("d") { pieces.append(.day); rest = rest.dropFirst() }
            else if c.isLetter { return nil }
            else { pieces.append(.literal(c)); rest = rest.dropFirst() }
        }
        let kinds = pieces.filter { $0 != .literal("-") }
        guard kinds.contains(where: { $0 == .year4 || $0 == .year2 }), kinds.contains(where: { $0 == .month2 || $0 == .month }),
              kinds.contains(where: { $0 == .day2 || $0 == .day }) else { return nil }
        return pieces
    }

    /// The date `text` holds under the first pattern that reads it, or nil when none matches
    /// or it is no calendar date. A time after the date (`03/15/2024 00:00:00`) is ignored.
    public func parse(_ text: String) -> CivilDate? {
        let chars = Array(text.trimmingSpaces.utf8)
        for pieces in alternatives {
            if let date = DatePattern.parse(chars, pieces) { return date }
        }
        return nil
    }

    static func parse(_ chars: [UInt8], _ pieces: [Piece]) -> CivilDate? {
        var i = 0
        var year = 0, month = 0, day = 0
        func digits(min: Int, max: Int) -> Int? {
            var n = 0, count = 0
            while i < chars.count, count < max, chars[i] >= 48, chars[i] <= 57 {
                n = n * 10 + Int(chars[i] - 48)
                i += 1
                count += 1
            }
            return count >= min ? n : nil
        }
        for piece in pieces {
            switch piece {
            case .year4: guard let v = digits(min: 4, max: 4) else { return nil }; year = v
            case .year2: guard let v = digits(min: 2, max: 2) else { return nil }; year = v < 69 ? 2000 + v : 1900 + v
            case .month2: guard let v = digits(min: 2, max: 2) else { return nil }; month = v
            case .month: guard let v = digits(min: 1, max: 2) else { return nil }; month = v
            case .day2: guard let v = digits(min: 2, max: 2) else { return nil }; day = v
            case .day: guard let v = digits(min: 1, max: 2) else { return nil }; day = v
            case .literal(let c):
                for b in c.utf8 {
                    guard i < chars.count, chars[i] == b else { return nil }
                    i += 1
                }
            }
        }
        if i < chars.count && chars[i] != UInt8(ascii: " ") && chars[i] != UInt8(ascii: "T") { return nil }
        guard (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: month, year: year) else { return nil }
        return CivilDate(year: year, month: month, day: day)
    }
}
