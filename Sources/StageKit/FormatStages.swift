import CSimdJSON

/// The format conversions that need no rules: the generic `lead-flatten json`,
/// `lead-flatten csv` and `lead-export csv`. They work on tapes and bytes directly, so they
/// run at the speed of the parsers.
public enum FormatStages {
    /// Adds `"_origin":"path:line"` to the object just written (its closing brace reopened).
    static func appendOrigin(_ location: SourceLocation, into out: ByteBuffer) {
        out.removeLast()
        if out.count > 0, out.base[out.count - 1] != 123 { out.append(44) }
        JSONWriter.writeString(Stage.originField, into: out)
        out.append(58)
        location.writeJSON(into: out)
        out.append(125)
    }

    /// `lead-flatten json`: each object flattened (see `JSONFlattener`), one per line.
    /// The objects are flattened on every processor and written in input order.
    public static func flattenJSON(_ stage: Stage, inputs: [String], separator: String) throws {
        let sink = try stage.output()
        let origin = Array(Stage.originField.utf8)
        let stamps = stage.stampsOrigin
        try stage.forEachJSONWritten(inputs, writer: {
            let flattener = JSONFlattener(separator: separator)
            return { tape, location, out in
                guard tape.isObject else {
                    throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))")
                }
                flattener.write(tape, into: out)
                if stamps, !tape.children(0).contains(where: { tape.rawKey($0).elementsEqual(origin) }) {
                    FormatStages.appendOrigin(location, into: out)
                }
                out.append(10)
            }
        }) { line, _ in
            sink.buffer.append(line)
            stage.recordsOut += 1
            try sink.flushIfNeeded()
        }
    }

    /// `lead-flatten csv`: each CSV row as a JSON object keyed by the header, all values strings.
    public static func flattenCSV(_ stage: Stage, inputs: [String], delimiter: UInt8) throws {
        let sink = try stage.output()
        let out = sink.buffer
        var encodedHeader: [String] = []
        // `"name":` for every column, back to back; keyEnds[i] is where column i's ends.
        let keys = ByteBuffer(capacity: 1024)
        var keyEnds: [Int] = []
        var stampsOrigin = false
        try stage.forEachCSV(inputs, delimiter: delimiter) { row, header, location in
            if header != encodedHeader {
                encodedHeader = header
                keys.removeAll()
                keyEnds = header.map { name in
                    JSONWriter.writeString(name, into: keys)
                    keys.append(58)
                    return keys.count
                }
                stampsOrigin = stage.stampsOrigin && !header.contains(Stage.originField)
            }
            out.append(123)
            var keyStart = 0
            for i in 0..<row.count {
                if i > 0 { out.append(44) }
                out.append(keys.base + keyStart, count: keyEnds[i] - keyStart)
                keyStart = keyEnds[i]
                JSONWriter.writeString(bytes: row.field(i), into: out)
            }
            out.append(125)
            if stampsOrigin { FormatStages.appendOrigin(location, into: out) }
            out.append(10)
            stage.recordsOut += 1
            try sink.flushIfNeeded()
        }
    }

    /// `lead-export csv`: JSON records to CSV. The header is the union of the (flattened)
    /// keys in first-seen order, so the input is read twice; stdin is spooled to a
    /// temporary file first.
    /// `_origin` (provenance) is left out unless `withOrigin`.
    public static func exportCSV(_ stage: Stage, inputs: [String], delimiter: UInt8, spreadsheetSafe: Bool,
                                 crlf: Bool, separator: String, withOrigin: Bool = false) throws {
        var paths = try stage.inputs(inputs)
        if paths.contains("-") {
            let spooled = try stage.spoolStdin()
            paths = paths.map { $0 == "-" ? spooled : $0 }
        }
        let columns = ByteKeyTable()
        let origin = Array(Stage.originField.utf8)
        let skipped: (UnsafeBufferPointer<UInt8>) -> Bool = { key in !withOrigin && key.elementsEqual(origin) }
        // The first pass on every processor: a worker writes a record's keys (each as its
        // length, 4 bytes, then its bytes) when one of them is new to that worker. A key's
        // first record in the input is always one its worker writes, and a worker sees its
        // records in input order, so inserting what is written, in order, gives the keys in
        // first-seen order.
        try stage.forEachJSONWritten(paths, counting: false, writer: {
            let flattener = JSONFlattener(separator: separator)
            let seen = ByteKeyTable()
            let leaves = flattener.leaves
            return { tape, _, out in
                guard tape.isObject else { return }
                flattener.collect(tape)
                var new = false
                for i in 0..<leaves.count where seen.find(leaves.key(i)) == nil {
                    new = true
                    break
                }
                guard new else { return }
                for i in 0..<leaves.count {
                    let key = leaves.key(i)
                    seen.insert(key)
                    let n = UInt32(key.count)
                    out.append(UInt8(truncatingIfNeeded: n))
                    out.append(UInt8(truncatingIfNeeded: n >> 8))
                    out.append(UInt8(truncatingIfNeeded: n >> 16))
                    out.append(UInt8(truncatingIfNeeded: n >> 24))
                    out.append(key)
                }
            }
        }) { keys, _ in
            var at = 0
            while at + 4 <= keys.count {
                let n = Int(keys[at]) | Int(keys[at + 1]) << 8 | Int(keys[at + 2]) << 16 | Int(keys[at + 3]) << 24
                let key = UnsafeBufferPointer(rebasing: keys[(at + 4)..<(at + 4 + n)])
                if !skipped(key) { columns.insert(key) }
                at += 4 + n
            }
        }

        let sink = try stage.output()
        var csv = CSVWriter(out: sink.buffer, delimiter: delimiter, spreadsheetSafe: spreadsheetSafe, crlf: crlf)
        let width = columns.count
        if width > 0 {
            for i in 0..<width { csv.writeField(bytes: columns.key(i)) }
            csv.endRow()
        }
        // The rows are made on every processor (each worker with its own buffers) and written
        // in input order.
        try stage.forEachJSONWritten(paths, writer: {
            let flattener = JSONFlattener(separator: separator)
            let row = CSVRowCells(width: width)
            return { tape, _, out in
                guard tape.isObject else {
                    throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))")
                }
                flattener.collect(tape)
                row.clear()
                let leaves = flattener.leaves
                var predicted = 0
                for l in 0..<leaves.count {
                    let key = leaves.key(l)
                    let column: Int
                    if predicted < width && columns.keyEquals(predicted, key) {
                        column = predicted
                    } else if let found = columns.find(key) {
                        column = found
                    } else if skipped(key) {
                        continue
                    } else {
                        throw RecordRejected("field '\(String(decoding: key, as: UTF8.self))' was not in the input on the first pass (did the input change while it was read?)")
                    }
                    predicted = column + 1
                    row.set(column) { JSONFlattener.writeLeafText(tape, leaves.node(l), into: $0) }
                }
                guard width > 0 else { return }
                var csv = CSVWriter(out: out, delimiter: delimiter, spreadsheetSafe: spreadsheetSafe, crlf: crlf)
                for i in 0..<width { csv.writeField(bytes: row.cell(i)) }
                csv.endRow()
            }
        }) { row, _ in
            sink.buffer.append(row)
            stage.recordsOut += 1
            try sink.flushIfNeeded()
        }
    }
}

/// One CSV row's cells while a record's leaves are placed in their columns: each cell's text
/// in one buffer, by column; a worker's own, reused from record to record.
final class CSVRowCells {
    let width: Int
    private let text = ByteBuffer(capacity: 1 << 12)
    private let starts: UnsafeMutablePointer<Int>
    private let lengths: UnsafeMutablePointer<Int>

    init(width: Int) {
        self.width = width
        starts = .allocate(capacity: max(width, 1))
        lengths = .allocate(capacity: max(width, 1))
        clear()
    }

    deinit {
        starts.deallocate()
        lengths.deallocate()
    }

    func clear() {
        text.removeAll()
        lengths.update(repeating: 0, count: width)
    }

    /// Column `i`'s text, as `write` puts it in the buffer.
    @inline(__always) func set(_ i: Int, _ write: (ByteBuffer) -> Void) {
        starts[i] = text.count
        write(text)
        lengths[i] = text.count - starts[i]
    }

    /// Column `i`'s text (empty when no leaf had it).
    @inline(__always) func cell(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        lengths[i] > 0 ? UnsafeBufferPointer(start: text.base + starts[i], count: lengths[i]) : UnsafeBufferPointer(start: nil, count: 0)
    }
}
