/// A rules file: CSV with a header row, as analysts edit them under `stages/<stage>/`.
/// Lines starting with `#` are comments; blank lines are skipped. Every problem is a
/// `StageError.rules` naming the file and the line.
public struct RulesFile {
    /// One data row: its line and its cells by column name.
    public struct Row {
        public let file: String
        public let line: Int
        /// The cells in column order, and each column's index (shared by the rows of a file).
        let cells: [String]
        let index: [String: Int]

        /// The cells by column name.
        public var values: [String: String] {
            index.reduce(into: [:]) { out, entry in if entry.value < cells.count { out[entry.key] = cells[entry.value] } }
        }

        /// The trimmed cell of `column`, "" when the column is missing or empty.
        public subscript(column: String) -> String {
            guard let i = index[column], i < cells.count else { return "" }
            let cell = cells[i]
            // Most cells have no space to trim.
            if let first = cell.utf8.first, let last = cell.utf8.last, first != 32, first != 9, last != 32, last != 9 { return cell }
            return cell.trimmingSpaces
        }

        /// The cell of `column`, which must not be empty.
        public func required(_ column: String) throws(StageError) -> String {
            let v = self[column]
            if v.isEmpty { throw error("'\(column)' is empty") }
            return v
        }

        /// The cell of `column` as a number; `fallback` when empty.
        public func number(_ column: String, default fallback: Double? = nil) throws(StageError) -> Double {
            let v = self[column]
            if v.isEmpty, let fallback { return fallback }
            guard let d = Double(v), d.isFinite else { throw error("'\(column)' must be a number, not '\(v)'") }
            return d
        }

        /// The cell of `column` as a whole number; `fallback` when empty.
        public func integer(_ column: String, default fallback: Int? = nil) throws(StageError) -> Int {
            let v = self[column]
            if v.isEmpty, let fallback { return fallback }
            guard let i = Int(v) else { throw error("'\(column)' must be a whole number, not '\(v)'") }
            return i
        }

        /// The cell of `column` split on `|`, empty pieces dropped.
        public func list(_ column: String) -> [String] {
            self[column].split(separator: "|").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        }

        public func error(_ message: String) -> StageError {
            .rules(file: file, line: line, message: message)
        }
    }

    public let path: String
    public let columns: [String]
    public let rows: [Row]

    /// Reads `path`, which must have the `required` columns.
    public init(path: String, required: [String] = []) throws(StageError) {
        self.path = path
        let source: ByteSource
        do {
            source = try ByteSource(path: path)
        } catch {
            throw .rules(file: path, line: nil, message: "cannot read the rules file (\(error))")
        }
        defer { source.close() }
        var header: [String]?
        var index: [String: Int] = [:]
        var rows: [Row] = []
        var failure: StageError?
        do {
            try CSVReader(lines: LineReader(source: source)).forEach { event in
                guard failure == nil else { return }
                switch event {
                case .broken(_, let line, let reason):
                    failure = .rules(file: path, line: line, message: reason)
                case .row(let row):
                    if row.count > 0 && row.field(0).first == 35 { return }
                    guard let names = header else {
                        let names = (0..<row.count).map { row.string($0).trimmingSpaces }
                        header = names
                        for (i, name) in names.enumerated() where index[name] == nil { index[name] = i }
                        return
                    }
                    if row.count > names.count {
                        let extra = (names.count..<row.count).contains { !row.string($0).trimmingSpaces.isEmpty }
                        if extra {
                            failure = .rules(file: path, line: row.line,
                                             message: "\(row.count) cells, but the header names \(names.count) columns")
                            return
                        }
                    }
                    rows.append(Row(file: path, line: row.line, cells: (0..<min(row.count, names.count)).map { row.string($0) }, index: index))
                }
            }
        } catch let error as StageError {
            throw .rules(file: path, line: nil, message: "\(error)")
        } catch {
            throw .rules(file: path, line: nil, message: "\(error)")
        }
        if let failure { throw failure }
        guard let header else { throw .rules(file: path, line: nil, message: "empty rules file (no header row)") }
        for column in required where !header.contains(column) {
            throw .rules(file: path, line: 1, message: "missing column '\(column)' (columns: \(header.joined(separator: ", ")))")
        }
        columns = header
        self.rows = rows
    }

    /// The file's text with one cell changed: column `column` of the row on line `line`. Every
    /// other byte (comments, spacing, other rows) stays as it was; the row is written back as
    /// CSV, quoting only cells that need it. For commands that edit a rules file
    /// (`lead-tag retro --apply`).
    public func replacingCell(line: Int, column: String, with value: String) throws(StageError) -> [UInt8] {
        guard let index = columns.firstIndex(of: column) else {
            throw .rules(file: path, line: nil, message: "no column '\(column)'")
        }
        let text = try ByteSource.readAll(path)
        // The byte range of the line.
        var start = 0, current = 1
        while current < line, let newline = text[start...].firstIndex(of: 10) {
            start = newline + 1
            current += 1
        }
        guard current == line, start <= text.count else { throw .rules(file: path, line: line, message: "no such line") }
        var end = text[start...].firstIndex(of: 10) ?? text.count
        if end > start && text[end - 1] == 13 { end -= 1 }
        var cells: [String] = []
        var cell = "", quoted = false, i = 0
        let lineBytes = Array(text[start..<end])
        while i < lineBytes.count {
            let b = lineBytes[i]
            if quoted {
                if b == 34 {
                    if i + 1 < lineBytes.count && lineBytes[i + 1] == 34 { cell.append("\""); i += 1 } else { quoted = false }
                } else {
                    cell.unicodeScalars.append(Unicode.Scalar(b))
                }
            } else if b == 34 {
                quoted = true
            } else if b == 44 {
                cells.append(cell)
                cell = ""
            } else {
                cell.unicodeScalars.append(Unicode.Scalar(b))
            }
            i += 1
        }
        cells.append(cell)
        // Non-ASCII bytes were taken one by one; decode the cells properly.
        cells = cells.map { String(decoding: $0.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }, as: UTF8.self) }
        while cells.count <= index { cells.append("") }
        cells[index] = value
        let row = cells.map { c -> String in
            c.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + c.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : c
        }.joined(separator: ",")
        return Array(text[..<start]) + Array(row.utf8) + Array(text[end...])
    }

    /// A `setting,value` file as a dictionary; unknown settings are an error when `known` is given.
    public func settings(known: Set<String>? = nil) throws(StageError) -> [String: Row] {
        var out: [String: Row] = [:]
        for row in rows {
            let name = try row.required("setting")
            if let known, !known.contains(name) {
                throw row.error("unknown setting '\(name)' (known: \(known.sorted().joined(separator: ", ")))")
            }
            if out[name] != nil { throw row.error("setting '\(name)' is given twice") }
            out[name] = row
        }
        return out
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and line breaks.
    public var trimmingSpaces: String {
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }
        guard let first = utf8.first, let last = utf8.last, isSpace(first) || isSpace(last) else { return self }
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" || c == "\r" { s.removeLast() }
        return String(s)
    }
}
