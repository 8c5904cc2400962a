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
    /// keys in first-seen order, known only at the end, so the rows wait in a scratch file
    /// (`SpoolFile`), each with the number of columns it was written with: a row written
    /// before a later column was seen gets its empty cells when the rows are copied out
    /// under the header. The input is read once.
    /// `_origin` (provenance) is left out unless `withOrigin`.
    public static func exportCSV(_ stage: Stage, inputs: [String], delimiter: UInt8, spreadsheetSafe: Bool,
                                 crlf: Bool, separator: String, withOrigin: Bool = false) throws {
        let origin = Array(Stage.originField.utf8)
        let skipped: (UnsafeBufferPointer<UInt8>) -> Bool = { key in !withOrigin && key.elementsEqual(origin) }
        // The columns, numbered in first-seen order: this thread adds them, in input order;
        // the workers read the latest copy (`published`). Numbers never change once given, so
        // a row laid out with any copy that has all of its keys is laid out right.
        let columns = ByteKeyTable()
        let published = UncheckedBox(columns.copy())
        func latest() -> ByteKeyTable {
            var table: ByteKeyTable!
            published.withLock { table = published.value }
            return table
        }
        // A worker writes a row whose keys its copy has as its cells up to its last column,
        // tagged with that number of cells; a row with a key its copy lacks it writes as its
        // leaves (each key, then its cell's text, as `appendBinary` writes them), tagged -1, and
        // this thread, which reads the rows in order, numbers the new keys and lays it out.
        let unresolved = -1
        let lineEnd = crlf ? 2 : 1
        let rows = try SpoolFile()
        var width = 0
        let cells = CSVRowCells(width: 0)
        let laidOut = ByteBuffer(capacity: 1 << 12)
        // A spooled row: its number of cells (`appendBinary`), then the row as written.
        let count = ByteBuffer(capacity: 8)
        func spool(_ row: UnsafeBufferPointer<UInt8>, cells n: Int) throws {
            count.removeAll()
            count.appendBinary(Int64(n))
            try rows.appendFramed(count.bytes, row)
        }
        func lay(_ cells: CSVRowCells, upTo n: Int, into out: ByteBuffer) {
            guard n > 0 else { return }
            var csv = CSVWriter(out: out, delimiter: delimiter, spreadsheetSafe: spreadsheetSafe, crlf: crlf)
            for i in 0..<n { csv.writeField(bytes: cells.cell(i)) }
            csv.endRow()
        }
        try stage.forEachJSONWritten(inputs, tagged: {
            let flattener = JSONFlattener(separator: separator)
            let row = CSVRowCells(width: 0)
            let text = ByteBuffer(capacity: 1 << 10)
            var table = latest()
            return { tape, _, out in
                guard tape.isObject else {
                    throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))")
                }
                flattener.collect(tape)
                let leaves = flattener.leaves
                row.clear(width: table.count)
                var predicted = 0, last = -1
                for l in 0..<leaves.count {
                    let key = leaves.key(l)
                    let column: Int
                    if predicted < table.count && table.keyEquals(predicted, key) {
                        column = predicted
                    } else if let found = table.find(key) {
                        column = found
                    } else if skipped(key) {
                        continue
                    } else {
                        table = latest()
                        row.grow(to: table.count)
                        guard let found = table.find(key) else {
                            for l in 0..<leaves.count where !skipped(leaves.key(l)) {
                                text.removeAll()
                                JSONFlattener.writeLeafText(tape, leaves.node(l), into: text)
                                out.appendBinary(leaves.key(l))
                                out.appendBinary(text.bytes)
                            }
                            return unresolved
                        }
                        column = found
                    }
                    predicted = column + 1
                    last = max(last, column)
                    row.set(column) { JSONFlattener.writeLeafText(tape, leaves.node(l), into: $0) }
                }
                lay(row, upTo: last + 1, into: out)
                return last + 1
            }
        }) { written, _, tag, _ in
            stage.recordsOut += 1
            guard tag == unresolved else { return try spool(written, cells: tag) }
            // A row with keys new to the workers' copy: its keys numbered here, in input order.
            var leaves: [(column: Int, text: UnsafeBufferPointer<UInt8>)] = []
            var fields = BinaryFields(written)
            while !fields.atEnd {
                guard case .some(.some(let key)) = fields.bytesOfText(), case .some(.some(let text)) = fields.bytesOfText() else {
                    fatalError("a row's leaves that do not read back")
                }
                leaves.append((columns.insert(key), text))
            }
            if columns.count > width {
                width = columns.count
                let copy = columns.copy()
                published.withLock { published.value = copy }
            }
            cells.clear(width: width)
            var last = -1
            for leaf in leaves {
                cells.set(leaf.column) { $0.append(leaf.text) }
                last = max(last, leaf.column)
            }
            laidOut.removeAll()
            lay(cells, upTo: last + 1, into: laidOut)
            try spool(laidOut.bytes, cells: last + 1)
        }

        let sink = try stage.output()
        guard width > 0 else { return }
        var csv = CSVWriter(out: sink.buffer, delimiter: delimiter, spreadsheetSafe: spreadsheetSafe, crlf: crlf)
        for i in 0..<width { csv.writeField(bytes: columns.key(i)) }
        csv.endRow()
        // Each row with its missing cells (empty) before its line end.
        try rows.forEachFramed { piece in
            var fields = BinaryFields(piece)
            guard let cells = fields.int() else { throw StageError.io("scratch file of the rows: a row did not read back") }
            let n = Int(cells), row = fields.rest
            let out = sink.buffer
            if n == width {
                out.append(row)
            } else {
                if n > 0 { out.append(UnsafeBufferPointer(rebasing: row[..<(row.count - lineEnd)])) }
                for _ in 0..<(n > 0 ? width - n : width - 1) { out.append(delimiter) }
                if crlf { out.append(13) }
                out.append(10)
            }
            try sink.flushIfNeeded()
        }
    }
}

/// One CSV row's cells while a record's leaves are placed in their columns: each cell's text
/// in one buffer, by column; a worker's own, reused from record to record, and widened when
/// more columns are known.
final class CSVRowCells {
    private(set) var width: Int
    private let text = ByteBuffer(capacity: 1 << 12)
    private var starts: [Int]
    private var lengths: [Int]

    init(width: Int) {
        self.width = width
        starts = [Int](repeating: 0, count: width)
        lengths = [Int](repeating: 0, count: width)
    }

    /// Empties every cell, with room for `width` of them.
    func clear(width: Int) {
        text.removeAll()
        grow(to: width)
        for i in 0..<self.width { lengths[i] = 0 }
    }

    /// Room for `width` cells, the cells set so far kept.
    func grow(to width: Int) {
        guard width > self.width else { return }
        starts.append(contentsOf: repeatElement(0, count: width - self.width))
        lengths.append(contentsOf: repeatElement(0, count: width - self.width))
        self.width = width
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
