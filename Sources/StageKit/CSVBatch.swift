import Dispatch

/// The fields of one CSV row as a worker of `Stage.forEachCSVWritten` sees it: the row's
/// bytes copied into its batch, valid while the worker writes it.
public struct CSVFields {
    let base: UnsafePointer<UInt8>
    /// Where each field ends, from `base`; the first starts at 0.
    let ends: UnsafeBufferPointer<Int>
    /// The number of fields.
    public var count: Int { ends.count }

    /// The bytes of field `i`.
    @inline(__always) public func field(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let start = i == 0 ? 0 : ends[i - 1]
        return UnsafeBufferPointer(start: base + start, count: ends[i] - start)
    }

    public func string(_ i: Int) -> String { String(decoding: field(i), as: UTF8.self) }
}

/// Some columns of a CSV file, to be written into a row's JSON object as they were read
/// (`"name":"value"`, every value a string): the columns a column map passes through untouched,
/// written from the row's bytes instead of through a String and a record field each.
public struct RawColumns: Sendable {
    /// The columns, by position in the header.
    public let positions: [Int]
    /// `"name":` for every column, back to back; keyEnds[i] is where column i's ends.
    let keys: [UInt8]
    let keyEnds: [Int]

    public init(_ positions: [Int], header: [String]) {
        self.positions = positions
        let buffer = ByteBuffer(capacity: 1024)
        keyEnds = positions.map { p in
            JSONWriter.writeString(header[p], into: buffer)
            buffer.append(58)
            return buffer.count
        }
        keys = Array(buffer.bytes)
    }

    /// Adds the columns of `row` to the JSON object that ends `out`, before its closing brace.
    public func write(_ row: CSVFields, toObjectIn out: ByteBuffer) {
        guard !positions.isEmpty else { return }
        out.removeLast()
        var needsComma = out.count > 0 && out.base[out.count - 1] != 123
        keys.withUnsafeBufferPointer { keys in
            var keyStart = 0
            for (i, p) in positions.enumerated() {
                if needsComma { out.append(44) }
                needsComma = true
                out.append(keys.baseAddress! + keyStart, count: keyEnds[i] - keyStart)
                keyStart = keyEnds[i]
                JSONWriter.writeString(bytes: row.field(p), into: out)
            }
        }
        out.append(125)
    }
}

/// One batch of `Stage.forEachCSVWritten`: the rows read, copied field by field, and per
/// worker what its writer made of them.
final class CSVBatch: @unchecked Sendable {
    /// One row: its fields' bytes and ends, its text as read (for the rejects), its line;
    /// `broken`, for a row that cannot be used, says why.
    struct Item {
        var bytes: Int
        var firstEnd: Int
        var fields: Int
        var raw: Int
        var rawLength: Int
        /// The line of `path` the row starts on.
        var line: Int
        var broken: String?
    }

    enum Outcome {
        /// What the writer wrote, in the worker's `out`, and the tag it returned.
        case written(offset: Int, length: Int, tag: Int)
        case rejected(String)
    }

    final class Worker {
        let out = ByteBuffer(capacity: 1 << 20)
        var outcomes: [Outcome] = []
        var writer: CSVWriterJob?
        /// The batch's path, in this worker's own copy.
        var path = BatchPath.Copy()
    }

    /// The file the rows come from.
    var path = BatchPath()

    /// Where `item` came from (for the reading thread).
    func location(_ item: Item) -> SourceLocation { SourceLocation(path: path.path, line: item.line) }

    /// What a worker does with one row: writes its bytes to the buffer and returns a tag
    /// for the reading thread, or throws `RecordRejected`.
    typealias CSVWriterJob = (CSVFields, SourceLocation, ByteBuffer) throws -> Int

    /// The rows' field bytes, then each row's raw text.
    let bytes = ByteBuffer(capacity: 1 << 22)
    var ends: [Int] = []
    var items: [Item] = []
    let pool: [Worker]
    private(set) var chunks = 1

    init(workers: Int) {
        pool = (0..<workers).map { _ in Worker() }
        items.reserveCapacity(2048)
    }

    func reset() {
        items.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        bytes.removeAll()
    }

    /// Adds a row that reads: its fields back to back, then its text as read.
    func add(_ row: CSVReader.Row, line: Int, raw: UnsafeBufferPointer<UInt8>) {
        let start = bytes.count
        let firstEnd = ends.count
        for i in 0..<row.count {
            bytes.append(row.field(i))
            ends.append(bytes.count - start)
        }
        let rawAt = bytes.count
        bytes.append(raw)
        items.append(Item(bytes: start, firstEnd: firstEnd, fields: row.count, raw: rawAt, rawLength: raw.count,
                          line: line, broken: nil))
    }

    /// Adds a row that goes to the rejects as it is, in its place among the others.
    func add(broken raw: UnsafeBufferPointer<UInt8>, line: Int, reason: String) {
        let rawAt = bytes.count
        bytes.append(raw)
        items.append(Item(bytes: rawAt, firstEnd: ends.count, fields: 0, raw: rawAt, rawLength: raw.count,
                          line: line, broken: reason))
    }

    func raw(_ item: Item) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: bytes.base + item.raw, count: item.rawLength)
    }

    /// Has each row written by a worker's writer (made by `make`, once per worker), on as
    /// many threads as there are workers, each worker a chunk of the rows in order.
    func write(_ make: @escaping () -> CSVWriterJob) {
        let make = UncheckedBox(make)
        let count = items.count
        chunks = min(pool.count, max(1, count / 64))
        let chunks = self.chunks
        ends.withUnsafeBufferPointer { endsBuffer in
            let ends = UncheckedBox(endsBuffer)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let worker = pool[chunk]
                worker.outcomes.removeAll(keepingCapacity: true)
                worker.out.removeAll()
                if worker.writer == nil { worker.writer = make.value() }
                let writer = worker.writer!
                worker.path.update(from: path)
                let path = worker.path.path
                let base = UnsafePointer(bytes.base)
                for item in items[(count * chunk / chunks)..<(count * (chunk + 1) / chunks)] {
                    if let reason = item.broken {
                        worker.outcomes.append(.rejected(reason))
                        continue
                    }
                    let fields = CSVFields(base: base + item.bytes,
                                           ends: UnsafeBufferPointer(rebasing: ends.value[item.firstEnd..<(item.firstEnd + item.fields)]))
                    let offset = worker.out.count
                    do {
                        let tag = try writer(fields, SourceLocation(path: path, line: item.line), worker.out)
                        worker.outcomes.append(.written(offset: offset, length: worker.out.count - offset, tag: tag))
                    } catch let rejected as RecordRejected {
                        worker.out.truncate(to: offset)
                        worker.outcomes.append(.rejected(rejected.reason))
                    } catch {
                        worker.out.truncate(to: offset)
                        worker.outcomes.append(.rejected("\(error)"))
                    }
                }
            }
        }
    }
}

extension Stage {
    /// Reads CSV files with a header row as `forEachCSV` does (the same header names, the
    /// same rejects for rows that cannot be read or have the wrong number of fields), and has
    /// the rows written on every processor: `header` runs on this thread when a file's header
    /// is read and returns the writer maker for that file's rows; each worker makes its own
    /// writer, which writes a row's output bytes and returns a tag, or throws
    /// `RecordRejected`. `body` then gets each row's bytes and tag, in input order, on this
    /// thread; a `RecordRejected` from it rejects the row. Rows are read in batches of 2,048,
    /// two batches in flight: while the workers write one, this thread reads the next and
    /// hands out the one before.
    public func forEachCSVWritten(_ paths: [String], delimiter: UInt8 = 44,
                                  header: ([String], String) throws -> (() -> (CSVFields, SourceLocation, ByteBuffer) throws -> Int),
                                  _ body: (UnsafeBufferPointer<UInt8>, Int, SourceLocation) throws -> Void) throws {
        let given = try options.headerFrom.map { file throws in try Stage.headerNames(Stage.firstCSVRow(file, delimiter: delimiter, encoding: inputEncoding)) }
        if let first = options.firstLine, first < 1 { throw StageError.usage("--first-line must be 1 or more (got \(first))") }
        let workers = workerCount
        let batchSize = 2048
        var pipeline = BatchPipeline { CSVBatch(workers: workers) }

        func hand(_ batch: CSVBatch) throws {
            let count = batch.items.count
            var chunk = 0, first = 0
            var worker = batch.pool[0]
            for (i, item) in batch.items.enumerated() {
                while i >= count * (chunk + 1) / batch.chunks { chunk += 1; first = i; worker = batch.pool[chunk] }
                switch worker.outcomes[i - first] {
                case .rejected(let reason):
                    try reject(reason, at: batch.location(item), raw: batch.raw(item))
                case .written(let offset, let length, let tag):
                    do {
                        try body(UnsafeBufferPointer(start: worker.out.base + offset, count: length), tag, batch.location(item))
                    } catch let rejected as RecordRejected {
                        try reject(rejected.reason, at: batch.location(item), raw: batch.raw(item))
                    }
                }
            }
        }

        func launch(_ make: @escaping () -> CSVBatch.CSVWriterJob) throws {
            guard !pipeline.current.items.isEmpty else { return }
            try pipeline.launch({ $0.write(make) }, hand: hand, reset: { $0.reset() })
        }

        func finish(_ make: (() -> CSVBatch.CSVWriterJob)?) throws {
            if let make { try launch(make) }
            try pipeline.finish(hand: hand, reset: { $0.reset() })
        }

        for path in try inputs(paths) {
            let source = try ByteSource(path: path, encoding: inputEncoding)
            defer { source.close() }
            let reader = CSVReader(lines: LineReader(source: source), delimiter: delimiter)
            var names: [String]? = given
            var make: (() -> CSVBatch.CSVWriterJob)?
            if let given { make = try header(given, path) }
            // Where line 0 of the file is: the path its records name, and the lines to add.
            let origin = inputLocation(path, line: 0)
            try reader.forEach { event in
                let batch = pipeline.current
                if batch.items.isEmpty { batch.path.set(origin.path) }
                switch event {
                case .broken(let raw, let line, let reason):
                    recordsIn += 1
                    batch.add(broken: raw, line: origin.line + line, reason: reason)
                case .row(let row):
                    guard let columns = names else {
                        let read = Stage.headerNames((0..<row.count).map { row.string($0) })
                        names = read
                        make = try header(read, path)
                        return
                    }
                    recordsIn += 1
                    var raw = row.raw
                    while let last = raw.last, last == 10 || last == 13 { raw = UnsafeBufferPointer(rebasing: raw.dropLast()) }
                    if row.count != columns.count {
                        batch.add(broken: raw, line: origin.line + row.line,
                                  reason: "expected \(columns.count) fields as in the header, found \(row.count)")
                    } else {
                        batch.add(row, line: origin.line + row.line, raw: raw)
                    }
                }
                progress.tick(records: recordsIn, bytes: progressBytesBase + reader.bytesRead)
                if batch.items.count == batchSize, let make { try launch(make) }
            }
            // Broken rows before any header are rejected as they stand.
            if make == nil {
                let batch = pipeline.current
                for item in batch.items { try reject(item.broken ?? "no header", at: batch.location(item), raw: batch.raw(item)) }
                batch.reset()
            }
            try finish(make)
            progressBytesBase += reader.bytesRead
        }
    }
}
