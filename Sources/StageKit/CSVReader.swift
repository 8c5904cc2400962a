import CCSVRows
import CSimdJSON

/// Reads CSV (RFC 4180) with libcsv in strict mode. Rows are numbered by the line they start
/// on; a row that cannot be read (bad quoting, a quoted field that never closes, NUL bytes,
/// invalid UTF-8) is handed to the caller as broken, with its raw text, and reading goes on
/// at the next line. Blank lines are skipped. Spaces around unquoted fields are kept.
public final class CSVReader {
    /// One row. Its fields are valid until the next row.
    public struct Row {
        let view: csvrows_view
        let firstField: Int
        /// The number of fields.
        public let count: Int
        /// The line the row starts on.
        public let line: Int
        /// The row's text as read (all its lines, without the final line end).
        public let raw: UnsafeBufferPointer<UInt8>

        /// The bytes of field `i`.
        @inline(__always) public func field(_ i: Int) -> UnsafeBufferPointer<UInt8> {
            let k = firstField + i
            let start = k == 0 ? 0 : view.ends[k - 1]
            return UnsafeBufferPointer(start: view.bytes.map { $0 + start }, count: view.ends[k] - start)
        }

        public func string(_ i: Int) -> String { String(decoding: field(i), as: UTF8.self) }

        /// All field bytes of the row, back to back.
        var allBytes: UnsafeBufferPointer<UInt8> {
            guard count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
            let start = firstField == 0 ? 0 : view.ends[firstField - 1]
            return UnsafeBufferPointer(start: view.bytes.map { $0 + start }, count: view.ends[firstField + count - 1] - start)
        }

        /// Why the row cannot be used, if it cannot.
        var problem: String? {
            let all = allBytes
            guard all.count > 0 else { return nil }
            if memchr(all.baseAddress!, 0, all.count) != nil {
                for i in 0..<count where field(i).count > 0 && memchr(field(i).baseAddress!, 0, field(i).count) != nil {
                    return "NUL byte in field \(i + 1)"
                }
            }
            if !validUTF8(all) {
                for i in 0..<count where !validUTF8(field(i)) {
                    return "invalid UTF-8 in field \(i + 1)"
                }
                return "invalid UTF-8"
            }
            return nil
        }
    }

    /// One piece of input.
    public enum Event {
        case row(Row)
        case broken(UnsafeBufferPointer<UInt8>, line: Int, reason: String)
    }

    private let lines: LineReader
    private let rows: OpaquePointer
    private let raw = ByteBuffer(capacity: 1 << 12)
    private var rowLine = 0
    private var rowOpen = false

    public init(lines: LineReader, delimiter: UInt8 = 44) {
        self.lines = lines
        guard let r = csvrows_new(delimiter) else { fatalError("out of memory creating the CSV parser") }
        rows = r
    }

    deinit { csvrows_free(rows) }

    /// Bytes read from the source so far.
    public var bytesRead: Int { lines.bytesRead }

    /// Calls `body` for every row or broken piece, in input order.
    public func forEach(_ body: (Event) throws -> Void) throws {
        while let line = try lines.next() {
            if !rowOpen {
                if line.bytes.isEmpty || (line.bytes.count == 1 && line.bytes[0] == 13) { continue }
                rowOpen = true
                rowLine = line.number
                raw.removeAll()
            }
            let chunk = line.withNewline
            let multiLine = raw.count > 0
            if multiLine { raw.append(chunk) }
            let rc = csvrows_feed(rows, chunk.baseAddress, chunk.count)
            if rc != 0 {
                if !multiLine { raw.append(chunk) }
                let reason = rc == -1
                    ? "malformed CSV: a quote inside an unquoted field, or text after a closing quote"
                    : "CSV field too large for memory"
                try body(.broken(trimmedRaw(raw.bytes), line: rowLine, reason: reason))
                csvrows_reset(rows)
                rowOpen = false
                continue
            }
            let view = csvrows_collected(rows)
            if view.row_count == 0 {
                if !multiLine { raw.append(chunk) }
                continue
            }
            try deliver(view, body, raw: multiLine ? trimmedRaw(raw.bytes) : trimmedRaw(chunk))
            rowOpen = false
        }
        if rowOpen {
            if csvrows_finish(rows) != 0 {
                try body(.broken(trimmedRaw(raw.bytes), line: rowLine,
                                 reason: "unterminated quoted field: the input ended inside quotes opened on line \(rowLine)"))
                csvrows_reset(rows)
                rowOpen = false
                return
            }
            let view = csvrows_collected(rows)
            try deliver(view, body, raw: trimmedRaw(raw.count > 0 ? raw.bytes : UnsafeBufferPointer(start: nil, count: 0)))
            rowOpen = false
        }
    }

    private func deliver(_ view: csvrows_view, _ body: (Event) throws -> Void, raw rowRaw: UnsafeBufferPointer<UInt8>) throws {
        var first = 0
        for r in 0..<view.row_count {
            let end = view.row_ends[r]
            let row = Row(view: view, firstField: first, count: end - first, line: rowLine, raw: rowRaw)
            if let problem = row.problem {
                try body(.broken(rowRaw, line: rowLine, reason: problem))
            } else {
                try body(.row(row))
            }
            first = end
        }
        csvrows_clear_completed(rows)
        raw.removeAll()
    }

    private func trimmedRaw(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var b = bytes
        if b.last == 10 { b = UnsafeBufferPointer(rebasing: b.dropLast()) }
        if b.last == 13 { b = UnsafeBufferPointer(rebasing: b.dropLast()) }
        return b
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CSVReader {
    /// A small CSV file read whole (state files, queues, ledgers): its rows as strings, the
    /// header first. A row that cannot be read stops with an error naming the file and line.
    public static func readAll(_ path: String) throws -> [(line: Int, cells: [String])] {
        let source = try ByteSource(path: path)
        defer { source.close() }
        var rows: [(Int, [String])] = []
        try CSVReader(lines: LineReader(source: source)).forEach { event in
            switch event {
            case .broken(_, let line, let reason): throw StageError.data("\(path):\(line): \(reason)")
            case .row(let row): rows.append((row.line, (0..<row.count).map { row.string($0) }))
            }
        }
        return rows
    }
}
