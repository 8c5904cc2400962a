import CSimdJSON
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The inputs of a stage: every format it reads (JSONL, JSON texts, CSV), the batched parallel
// record path, standard input and where a record came from.
extension Stage {
    // MARK: Inputs

    /// The inputs to read: the given paths, or stdin when there are none. Refuses to wait
    /// on a terminal for input nobody is going to type.
    public func inputs(_ paths: [String]) throws(StageError) -> [String] {
        if paths.isEmpty || paths == ["-"] {
            if isatty(0) != 0 {
                throw .usage("no input: give input files or pipe records into stdin (see --help)")
            }
            return ["-"]
        }
        return paths
    }

    /// Reads JSON texts from `paths` (JSONL, a JSON array, or pretty-printed objects, gzip or
    /// not) and calls `body` with each parsed tape. Invalid JSON goes to the rejects file, as
    /// does any text for which `body` throws `RecordRejected`.
    /// With `counting: false` nothing is counted and bad input is skipped silently (for a
    /// first pass over input that a second pass will read and report).
    public func forEachJSON(_ paths: [String], counting: Bool = true,
                            _ body: (JSONTape, SourceLocation) throws -> Void) throws {
        let parser = JSONParser()
        for path in try inputs(paths) {
            let source = try ByteSource(path: path, encoding: inputEncoding)
            defer { source.close() }
            let lines = LineReader(source: source)
            let reader = JSONTextReader(lines: lines)
            try reader.forEach { event in
                if case .warning(let line, let message) = event {
                    if counting { warn(message, at: inputLocation(path, line: line)) }
                    return
                }
                if counting {
                    recordsIn += 1
                    progress.tick(records: recordsIn, bytes: progressBytesBase + reader.bytesRead)
                }
                switch event {
                case .warning:
                    break
                case .broken(let raw, let line, let reason):
                    if counting { try reject(reason, at: inputLocation(path, line: line), raw: raw) }
                case .text(let bytes, let line):
                    switch parser.parse(bytes) {
                    case .failure(let error):
                        if counting {
                            let (l, reason) = Stage.describe(error, in: bytes, startLine: line)
                            try reject("invalid JSON: " + reason, at: inputLocation(path, line: l), raw: bytes)
                        }
                    case .success(let tape):
                        let location = inputLocation(path, line: line)
                        do {
                            try body(tape, location)
                        } catch let rejected as RecordRejected {
                            if counting { try reject(rejected.reason, at: location, raw: bytes) }
                        }
                    }
                }
            }
            progressBytesBase += reader.bytesRead
        }
    }


    /// Like `forEachJSON`, for stages that work on whole records: each object becomes a
    /// `Record` (members kept raw until used); a value that is not an object is rejected.
    public func forEachRecord(_ paths: [String], _ body: (Record, SourceLocation) throws -> Void) throws {
        let keys = KeyCache()
        try forEachJSON(paths) { tape, location in
            guard tape.isObject else {
                throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))")
            }
            try body(Record(tape: tape, keys: keys), location)
        }
    }

    /// The number of threads `forEachRecord(_:transform:_:)` uses: `$LEAD_THREADS`, else the
    /// number of processors.
    public var workerCount: Int {
        if let text = environment["LEAD_THREADS"], let n = Int(text), n >= 1 { return min(n, 64) }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Like `forEachRecord`, with a per-record `transform` that runs on all processors: records
    /// are read in batches, each batch is transformed (and written out as JSON) in parallel,
    /// and `body` then gets the results one by one in input order, with the record's JSON
    /// line (no newline), so the output is the same as a one-thread run. A record for which
    /// `transform` or `body` throws `RecordRejected` goes to the rejects. `transform` must be
    /// safe to call from several threads at once (pure rules are).
    /// What `body` gets as the record's JSON line: the transformed record written out
    /// (`.json`), the text as read (`.input`, for a transform that changes nothing), or nothing.
    public enum LineEncoding: Sendable { case json, input, none }

    public func forEachRecord(_ paths: [String], transform: @escaping (inout Record) throws -> Void, encoding: LineEncoding = .json,
                              _ body: (Record, UnsafeBufferPointer<UInt8>, SourceLocation) throws -> Void) throws {
        try withoutActuallyEscaping(body) { body in
            try forEachRecordInBatches(paths, transform: transform, encoding: encoding, body)
        }
    }

    /// The batched, parallel reading behind `forEachRecord(_:transform:_:)`. This thread only
    /// cuts the input into JSON texts and copies each batch's texts into one buffer; the
    /// workers parse them, build the records, transform them and write their JSON, each into
    /// its own buffer; then this thread hands the results to `body` in input order. Two
    /// batches are in flight: while the workers transform one, this thread reads the next and
    /// hands out the one before. Texts that cannot be parsed, and input that cannot be cut
    /// into texts, travel in the batch too, so rejects keep the input order.
    func forEachRecordInBatches(_ paths: [String], transform: @escaping (inout Record) throws -> Void,
                                        encoding: LineEncoding, _ body: @escaping (Record, UnsafeBufferPointer<UInt8>, SourceLocation) throws -> Void) throws {
        // With --schema the workers fill the schema's fields as they encode.
        // The lines handed to `body` are then the workers' JSON, filled already: writeLine
        // need not parse them again.
        linesFilled = schema != nil && encoding == .json
        defer { linesFilled = false }
        let shared = UncheckedBox(schema.map { schema in { (record: inout Record) throws -> Void in
            try transform(&record)
            schema.fill(&record)
        } } ?? transform)
        let origins = stampsOrigin
        try forEachBatch(paths, run: { $0.transform(shared.value, encoding: encoding, stampingOrigin: origins) }) { location, raw, outcome, out in
            switch outcome {
            case .record(let record, let offset, let length):
                let line = encoding == .input ? raw : UnsafeBufferPointer(start: out.base + offset, count: length)
                do {
                    try body(record, line, location)
                } catch let rejected as RecordRejected {
                    try reject(rejected.reason, at: location, raw: raw)
                }
            case .written:
                break
            case .rejected:
                fatalError("rejects are handled by forEachBatch")
            }
        }
    }

    /// Like `forEachJSON`, with the work on every processor: each worker parses texts and
    /// hands each tape to its own writer (made by `writer`, once per worker; it must keep its
    /// state to itself), which writes the text's output bytes or throws `RecordRejected`;
    /// `body` then gets the bytes written for each text, in input order, on this thread.
    /// Input that is not JSON, and texts the writer rejects, go to the rejects in order.
    /// With `counting: false` nothing is counted and bad input is skipped silently (a first
    /// pass over input that a second pass will read and report).
    public func forEachJSONWritten(_ paths: [String], counting: Bool = true,
                                   writer: @escaping () -> (JSONTape, SourceLocation, ByteBuffer) throws -> Void,
                                   _ body: (UnsafeBufferPointer<UInt8>, SourceLocation) throws -> Void) throws {
        try forEachJSONWritten(paths, counting: counting, tagged: {
            let write = writer()
            return { tape, location, out in
                try write(tape, location, out)
                return 0
            }
        }) { bytes, _, _, location in try body(bytes, location) }
    }

    /// A file the stage keeps between runs (`path`, one JSON object a line), read on every
    /// processor as `forEachJSONWritten(_:counting:tagged:_:)` reads input: each worker's
    /// writer turns a text into bytes and a tag, and `body` gets them in file order on this
    /// thread. Nothing goes to the rejects: a line that does not read, or that the writer
    /// rejects, stops the stage with an error naming the file and line (a store is written by
    /// the stages, so a bad line is damage, not input).
    public func readStoreWritten(_ path: String, writer: @escaping () -> (JSONTape, SourceLocation, ByteBuffer) throws -> Int,
                                 _ body: (_ written: UnsafeBufferPointer<UInt8>, _ tag: Int, SourceLocation) throws -> Void) throws {
        try withoutActuallyEscaping(body) { body in
            try forEachBatch([path], counting: false, store: true, run: { batch in
                batch.write {
                    let write = writer()
                    return { tape, location, out in
                        guard tape.isObject else { throw RecordRejected("not a JSON object") }
                        return try write(tape, location, out)
                    }
                }
            }) { location, _, outcome, out in
                if case .written(let offset, let length, let tag) = outcome {
                    try body(UnsafeBufferPointer(start: out.base + offset, count: length), tag, location)
                }
            }
        }
    }

    /// Like `forEachJSONWritten(_:counting:writer:_:)`, with a writer that also returns a tag
    /// for each text (what it made of it: a kind, a count to keep), which `body` gets with
    /// the bytes written and the text as read: the workers classify, and this thread only
    /// tallies and writes. A `RecordRejected` from `body` rejects the text.
    public func forEachJSONWritten(_ paths: [String], counting: Bool = true,
                                   tagged writer: @escaping () -> (JSONTape, SourceLocation, ByteBuffer) throws -> Int,
                                   _ body: (_ written: UnsafeBufferPointer<UInt8>, _ read: UnsafeBufferPointer<UInt8>, _ tag: Int,
                                            SourceLocation) throws -> Void) throws {
        try withoutActuallyEscaping(body) { body in
            try forEachBatch(paths, counting: counting, run: { $0.write(writer) }) { location, raw, outcome, out in
                if case .written(let offset, let length, let tag) = outcome {
                    do {
                        try body(UnsafeBufferPointer(start: out.base + offset, count: length), raw, tag, location)
                    } catch let rejected as RecordRejected {
                        try reject(rejected.reason, at: location, raw: raw)
                    }
                }
            }
        }
    }

    /// The batched, parallel reading behind `forEachRecord(_:transform:_:)` and
    /// `forEachJSONWritten`: this thread cuts the input into JSON texts and copies each batch's
    /// texts into one buffer; `run` has the workers do a batch's work; then this thread hands
    /// each text's outcome to `deliver`, in input order (rejects it handles itself). Two batches
    /// are in flight: while the workers do one, this thread reads the next and hands out the
    /// one before. Texts that cannot be parsed, and input that cannot be cut into texts,
    /// travel in the batch too, so rejects keep the input order.
    /// With `store`, `paths` are files a stage keeps between runs: read as they are (UTF-8,
    /// no input options, nothing counted), and a text that does not read, or that the work
    /// rejects, stops the stage with an error naming the file and line instead of going to
    /// the rejects.
    func forEachBatch(_ paths: [String], counting: Bool = true, store: Bool = false, run job: @escaping (RecordBatch) -> Void,
                      deliver: (SourceLocation, UnsafeBufferPointer<UInt8>, RecordBatch.Outcome, ByteBuffer) throws -> Void) throws {
        let workers = workerCount
        let batchSize = 2048
        var pipeline = BatchPipeline { RecordBatch(workers: workers) }

        func hand(_ batch: RecordBatch) throws {
            let count = batch.items.count
            var chunk = 0, first = 0
            for (i, item) in batch.items.enumerated() {
                while i >= count * (chunk + 1) / batch.chunks { chunk += 1; first = i }
                let raw = UnsafeBufferPointer(start: batch.texts.base + item.offset, count: item.length)
                let outcome = batch.pool[chunk].outcomes[i - first]
                if case .rejected(let reason, let line, let unread) = outcome {
                    if store { throw StageError.data("\(batch.path.path):\(line): \(reason)") }
                    if !counting || (unread && shardsReadWholeInput && shard.map({ $0.index != 1 }) == true) { continue }
                    try reject(reason, at: SourceLocation(path: batch.path.path, line: line), raw: raw)
                    continue
                }
                try deliver(SourceLocation(path: batch.path.path, line: item.line), raw, outcome, batch.pool[chunk].out)
            }
        }

        /// Sends the batch being filled to the workers, and hands out the one before it.
        func launch() throws {
            guard !pipeline.current.items.isEmpty else { return }
            // The parser reads a little past each text: the next text is there, and after
            // the last one, this padding.
            pipeline.current.texts.append(JSONParser.zeroPadding)
            try pipeline.launch(job, hand: hand, reset: { $0.reset() })
        }

        func finish() throws {
            try launch()
            try pipeline.finish(hand: hand, reset: { $0.reset() })
        }

        for path in store ? paths : try inputs(paths) {
            let source = try ByteSource(path: path, encoding: store ? .utf8 : inputEncoding)
            defer { source.close() }
            let reader = JSONTextReader(lines: LineReader(source: source))
            let located: (Int) -> SourceLocation = store ? { SourceLocation(path: path, line: $0) } : { self.inputLocation(path, line: $0) }
            // Where line 0 of the file is: the path its records name, and the lines to add.
            let origin = located(0)
            try reader.forEach { event in
                let batch = pipeline.current
                if batch.items.isEmpty { batch.path.set(origin.path) }
                var bytes: UnsafeBufferPointer<UInt8>
                var item: RecordBatch.Item
                switch event {
                case .warning(let line, let message):
                    if counting && !store { warn(message, at: located(line)) }
                    return
                case .broken(let raw, let line, let reason):
                    bytes = raw
                    item = .init(offset: batch.texts.count, length: raw.count, line: origin.line + line, broken: reason)
                case .text(let text, let line):
                    bytes = text
                    item = .init(offset: batch.texts.count, length: text.count, line: origin.line + line, broken: nil)
                }
                if counting && !store {
                    recordsIn += 1
                    progress.tick(records: recordsIn, bytes: progressBytesBase + reader.bytesRead)
                }
                batch.texts.append(bytes)
                batch.items.append(item)
                if batch.items.count == batchSize { try launch() }
            }
            try finish()
            if counting && !store { progressBytesBase += reader.bytesRead }
        }
    }

    /// Reads every record of a side file (a previous output, a master file); a line that is
    /// not a JSON object is an error naming the file. With `counting`, the records count as
    /// this run's input and show in the progress display (a master rewritten in place).
    public func readRecords(_ path: String, counting: Bool = false, _ body: (Record, SourceLocation) throws -> Void) throws {
        let keys = KeyCache()
        let parser = JSONParser()
        let source = try ByteSource(path: path)
        defer { source.close() }
        let reader = JSONTextReader(lines: LineReader(source: source))
        try reader.forEach { event in
            if counting, case .text = event {
                recordsIn += 1
                progress.tick(records: recordsIn, bytes: reader.bytesRead)
            }
            switch event {
            case .warning: break
            case .broken(_, let line, let reason):
                throw StageError.io("\(path):\(line): \(reason)")
            case .text(let bytes, let line):
                guard case .success(let tape) = parser.parse(bytes), tape.isObject else {
                    throw StageError.io("\(path):\(line): not a JSON object")
                }
                try body(Record(tape: tape, keys: keys), SourceLocation(path: path, line: line))
            }
        }
    }

    /// True when `path` exists (file or directory).
    public static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// About how many bytes of text the input `path` holds, to judge ahead of reading whether
    /// a keyed stage can hold it (`LEAD_MEMORY`): its size, a `.gz` counted five times; nil for
    /// standard input and anything that is not a regular file.
    public static func inputTextSize(_ path: String) -> Int? {
        guard path != "-" else { return nil }
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size) * (path.lowercased().hasSuffix(".gz") ? 5 : 1)
    }

    /// Reads CSV files with a header row. `body` gets each data row and the file's header
    /// (duplicate names get `_2`, `_3`, ...; an empty name becomes the column number). Rows
    /// with a different number of fields than the header, and unreadable rows, are rejected.
    /// With `--header-from FILE` the inputs are headerless chunks of a CSV split by lines and
    /// FILE's first row names their columns; `--first-line N` says which line of the whole
    /// file a chunk starts on, so locations name the line of the original.
    public func forEachCSV(_ paths: [String], delimiter: UInt8 = 44,
                           _ body: (CSVReader.Row, [String], SourceLocation) throws -> Void) throws {
        let given = try options.headerFrom.map { file throws in try Stage.headerNames(Stage.firstCSVRow(file, delimiter: delimiter, encoding: inputEncoding)) }
        if let first = options.firstLine, first < 1 { throw StageError.usage("--first-line must be 1 or more (got \(first))") }
        for path in try inputs(paths) {
            let source = try ByteSource(path: path, encoding: inputEncoding)
            defer { source.close() }
            let reader = CSVReader(lines: LineReader(source: source), delimiter: delimiter)
            var header: [String]? = given
            try reader.forEach { event in
                switch event {
                case .broken(let raw, let line, let reason):
                    recordsIn += 1
                    try reject(reason, at: inputLocation(path, line: line), raw: raw)
                case .row(let row):
                    guard let header else {
                        header = Stage.headerNames((0..<row.count).map { row.string($0) })
                        return
                    }
                    recordsIn += 1
                    let location = inputLocation(path, line: row.line)
                    if row.count != header.count {
                        var raw = row.raw
                        while let last = raw.last, last == 10 || last == 13 { raw = UnsafeBufferPointer(rebasing: raw.dropLast()) }
                        try reject("expected \(header.count) fields as in the header, found \(row.count)", at: location, raw: raw)
                        return
                    }
                    do {
                        try body(row, header, location)
                    } catch let rejected as RecordRejected {
                        var raw = row.raw
                        while let last = raw.last, last == 10 || last == 13 { raw = UnsafeBufferPointer(rebasing: raw.dropLast()) }
                        try reject(rejected.reason, at: location, raw: raw)
                    }
                }
                progress.tick(records: recordsIn, bytes: progressBytesBase + reader.bytesRead)
            }
            progressBytesBase += reader.bytesRead
        }
    }

    /// The cells of the first row of a CSV file (a header for headerless chunks).
    static func firstCSVRow(_ path: String, delimiter: UInt8, encoding: TextEncoding) throws -> [String] {
        let source = try ByteSource(path: path, encoding: encoding)
        defer { source.close() }
        var cells: [String]?
        struct Done: Error {}
        do {
            try CSVReader(lines: LineReader(source: source), delimiter: delimiter).forEach { event in
                switch event {
                case .broken(_, let line, let reason): throw StageError.usage("\(path):\(line): the header cannot be read: \(reason)")
                case .row(let row):
                    cells = (0..<row.count).map { row.string($0) }
                    throw Done()
                }
            }
        } catch is Done {}
        guard let cells else { throw StageError.usage("\(path): no header row (--header-from)") }
        return cells
    }

    static func headerNames(_ cells: [String]) -> [String] {
        var names: [String] = []
        var seen: [String: Int] = [:]
        for (i, cell) in cells.enumerated() {
            var name = cell
            if name.isEmpty { name = String(i + 1) }
            if let n = seen[name] {
                var k = n + 1
                while seen["\(name)_\(k)"] != nil { k += 1 }
                seen[name] = k
                name = "\(name)_\(k)"
            }
            seen[name] = seen[name] ?? 1
            names.append(name)
        }
        return names
    }

    /// Copies stdin to a temporary file (removed when the stage ends), for stages that must
    /// read their input twice. What is read from it is located in `-`, as stdin is.
    public func spoolStdin() throws(StageError) -> String {
        let dir = environment["TMPDIR"] ?? "/tmp"
        let path = "\(dir)/lead-\(name)-stdin-\(getpid()).tmp"
        stdinSpool = path
        let source = try ByteSource(path: "-")
        defer { source.close() }
        let sink = try ByteSink(path: path)
        removeOnExit(path)
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
        defer { buffer.deallocate() }
        while true {
            let n = try source.read(into: buffer, count: 1 << 20)
            if n == 0 { break }
            sink.buffer.append(UnsafeRawPointer(buffer), count: n)
            try sink.flush()
        }
        try sink.commit()
        return path
    }
}
