import CSimdJSON
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Puts a stage's outputs in place when it succeeds (see `Stage.committer`).
public protocol OutputCommitter: AnyObject {
    /// Installs `sinks` (opened, written, not yet committed; the main output, when it is a
    /// file, last) and removes `removals`, as one change.
    func commit(_ sinks: [ByteSink], removing removals: [String]) throws(StageError)
}

/// Where a record came from: the input path (`-` for stdin) and the line it starts on.
public struct SourceLocation: CustomStringConvertible, Sendable {
    public let path: String
    public let line: Int

    public init(path: String, line: Int) {
        self.path = path
        self.line = line
    }

    public var displayPath: String { path == "-" ? "stdin" : path }
    public var description: String { "\(displayPath):\(line)" }
}

/// One run of one stage: everything the stage contract asks of every executable. It owns
/// the outputs (committed atomically at the end, or discarded on failure), the rejects file,
/// the clock, the counts and the summary line, and reads inputs in any supported format.
///
/// Executables call `Stage.run(...)` with a closure that reads inputs, applies rules and
/// writes records; `run` maps the outcome to an exit status and never returns.
public final class Stage {
    /// The stage name, e.g. `flatten`.
    public let name: String
    /// The subcommand, e.g. `json`.
    public let command: String?
    public let options: CommonOptions
    public let clock: Clock
    public let environment: [String: String]

    /// Records read (including rejected ones), written, and rejected.
    public var recordsIn = 0
    public var recordsOut = 0
    public private(set) var recordsRejected = 0
    /// Extra members for the summary line, appended after the standard ones.
    public var summary = Record()
    /// The encoding the inputs are read in (`--encoding`; a source may set its own).
    public var inputEncoding: TextEncoding
    /// Which of several processes side by side this is (`--shard`, `LEAD_SHARD`), if any.
    public let shard: Shard?
    /// Whether this stage is the first to read its records (the flatten stages): each record
    /// it writes gets `_origin`, the file and line it came from, unless it has one already.
    public var stampsOrigin = false
    /// The provenance field: `path:line` of the input a record was first read from. Later
    /// stages keep it, rejects name it (`origin`), and exports leave it out unless asked.
    public static let originField = "_origin"

    /// Stamps `record` with `location` as its origin when this stage stamps origins and the
    /// record has none.
    public func stampOrigin(_ record: inout Record, at location: SourceLocation) {
        guard stampsOrigin, !record.hasValue(Stage.originField) else { return }
        record[Stage.originField] = .string(location.description)
    }

    /// The main output's schema (`--schema`): every record written has its fields.
    public private(set) var schema: RecordSchema?
    private lazy var schemaParser = RecordParser()
    /// When the run started, on the wall clock: a rejects file written after it is another
    /// process's.
    private let startedAt = Clock.systemNow()

    private var mainSink: ByteSink?
    private var extraSinks: [ByteSink] = []
    private var rejectsSink: ByteSink?
    private var cleanupPaths: [String] = []
    private let progress: Progress
    private let started = Stage.monotonicSeconds()
    private var rejectMessages = 0

    /// The number of reject messages printed on stderr before they are only counted.
    public static let rejectMessageLimit = 10

    init(name: String, command: String?, options: CommonOptions, clock: Clock, environment: [String: String], shard: Shard?) {
        self.shard = shard
        self.name = name
        self.command = command
        self.options = options
        self.clock = clock
        self.environment = environment
        inputEncoding = options.encoding
        progress = Progress(label: "lead-\(name)" + (command.map { " " + $0 } ?? ""),
                            enabled: !options.quiet && isatty(2) != 0)
    }

    /// Runs `body` as stage `name` and exits with the contract's status.
    /// `errorStatus` replaces the contract's error statuses for a tool with its own (lead-diff:
    /// 2 for any error, as diff); the body may set `exitStatus` for a successful run.
    public static func run(_ name: String, command: String? = nil, options: CommonOptions, errorStatus: Int32? = nil,
                           _ body: (Stage) throws -> Void) -> Never {
        signal(SIGPIPE, SIG_IGN)
        let program = "lead-\(name)"
        let stage: Stage
        do throws(StageError) {
            let environment = ProcessInfoLite.environment
            let clock = try Clock.resolve(option: options.now, environment: environment)
            var shard: Shard?
            if let text = options.shard ?? environment["LEAD_SHARD"].flatMap({ $0.isEmpty ? nil : $0 }) {
                guard let parsed = Shard(text) else {
                    throw StageError.usage("--shard / LEAD_SHARD must be i/n with 1 <= i <= n (got '\(text)')")
                }
                shard = parsed
            }
            stage = Stage(name: name, command: command, options: options, clock: clock, environment: environment, shard: shard)
            if let name = options.schema {
                stage.schema = try RecordSchema.load(stage.rulesFile(name + ".json", stage: "schemas"), name: name)
            }
        } catch {
            fail(error, program: program, status: errorStatus)
        }
        do {
            try body(stage)
            try stage.finish()
            exit(stage.exitStatus)
        } catch let error as StageError {
            stage.abandon(error)
            fail(error, program: program, status: errorStatus)
        } catch let error as RecordRejected {
            stage.abandon(.data(error.reason))
            fail(StageError.data(error.reason), program: program, status: errorStatus)
        } catch {
            stage.abandon(.io("\(error)"))
            fail(StageError.io("\(error)"), program: program, status: errorStatus)
        }
    }

    /// The status a run that ends without error exits with (0 unless the stage says).
    public var exitStatus: Int32 = 0

    /// Prints `error` the contract's way and exits with its status.
    public static func fail(_ error: StageError, program: String, status: Int32? = nil) -> Never {
        if error == .brokenPipe { exit(0) }
        standardError("\(program): \(error)\n")
        exit(status ?? error.exitCode)
    }

    // MARK: Outputs

    /// The main output (`-o`, else stdout), opened on first use.
    public func output() throws(StageError) -> ByteSink {
        if let mainSink { return mainSink }
        let sink = try ByteSink(path: options.output)
        mainSink = sink
        return sink
    }

    /// Makes the main output (`-o`, required) resumable: see `ByteSink(resumablePath:keep:)`.
    public func resumableOutput(keep: Int) throws(StageError) -> ByteSink {
        guard let path = options.output, path != "-" else {
            throw .usage("resuming needs an output file (-o PATH), not stdout")
        }
        let sink = try ByteSink(resumablePath: path, keep: keep)
        mainSink = sink
        return sink
    }

    /// Writes `record` as one JSONL line to the main output.
    public func write(_ record: Record) throws(StageError) {
        let sink = try output()
        if let schema {
            var record = record
            schema.fill(&record)
            JSONWriter.writeLine(record, into: sink.buffer)
        } else {
            JSONWriter.writeLine(record, into: sink.buffer)
        }
        recordsOut += 1
        try sink.flushIfNeeded()
    }

    /// Whether the main output is put in place after the other outputs rather than before
    /// them: for a main output (a run report) whose presence says the others are complete.
    public var commitsOutputLast = false

    /// Opens another output file, committed with the main output when the stage succeeds,
    /// in the order they were opened.
    public func openOutput(_ path: String) throws(StageError) -> ByteSink {
        let sink = try ByteSink(path: path)
        extraSinks.append(sink)
        return sink
    }

    /// Who puts the outputs in place when the stage succeeds: by default each file is renamed
    /// in the order opened; a store (LeadStores) takes this over to commit them, its log
    /// lines and removals as one change, under its lock and journal.
    public var committer: OutputCommitter?

    /// Runs `body` when the stage ends, however it ends (after the outputs are committed or
    /// discarded): a store releases its lock here.
    public func atExit(_ body: @escaping () -> Void) { exitHooks.append(body) }

    private var exitHooks: [() -> Void] = []

    /// A file to remove when the stage ends, however it ends.
    public func removeOnExit(_ path: String) { cleanupPaths.append(path) }

    /// A file to remove once the stage has succeeded and its outputs are in place.
    public func removeOnSuccess(_ path: String) { successPaths.append(path) }

    private var successPaths: [String] = []

    // MARK: Rejects

    /// The rejects file path of this run (its shard's, with `--shard`).
    public var rejectsPath: String { sidePath(unshardedRejectsPath) }

    /// The path of a side file this run writes (rejects, replaced rows, a report): `path`,
    /// or with `--shard i/n` the shard's own, `<name>.shard-<i>-of-<n>.<ext>`.
    public func sidePath(_ path: String) -> String { shard.map { $0.path(path) } ?? path }

    private var unshardedRejectsPath: String {
        if let path = options.rejects { return path }
        if let out = options.output, out != "-" {
            // Not beside /dev/null or a FIFO: there is no directory of outputs there.
            var st = stat()
            if stat(out, &st) != 0 || (st.st_mode & S_IFMT) == S_IFREG { return Stage.rejectsPath(forOutput: out) }
        }
        return "lead-\(name).rejects.jsonl"
    }

    /// `out.jsonl` -> `out.rejects.jsonl`, `out.csv.gz` -> `out.rejects.jsonl`.
    public static func rejectsPath(forOutput out: String) -> String {
        var base = out
        for ext in [".gz", ".jsonl", ".json", ".csv", ".tsv"] where base.hasSuffix(ext) {
            base.removeLast(ext.count)
        }
        return base + ".rejects.jsonl"
    }

    /// Where line `line` of input `path` is, as rejects and origins name it: with
    /// `--input-name FILE` the input is a part of FILE (a chunk of a CSV split by lines, a
    /// Spark partition on standard input) and is named FILE, and with `--first-line N` it
    /// starts on line N of it.
    public func inputLocation(_ path: String, line: Int) -> SourceLocation {
        SourceLocation(path: options.inputName ?? path, line: line + max(0, (options.firstLine ?? 1) - 1))
    }

    /// The `_origin` of a JSON object's text, nil when it is not one or has none.
    static func origin(ofRaw raw: UnsafeBufferPointer<UInt8>, parser: RecordParser) -> String? {
        guard raw.count > 2, raw.first == 123, let record = parser.record(raw) else { return nil }
        return record.text(originField)
    }

    /// Sends one record to the rejects file: where it came from, why, and its raw text.
    public func reject(_ reason: String, at location: SourceLocation, raw: UnsafeBufferPointer<UInt8>) throws(StageError) {
        var reason = reason
        if inputEncoding == .utf8 && reason.hasPrefix("invalid UTF-8") { reason += "; " + TextEncoding.notUTF8Hint }
        recordsRejected += 1
        if rejectsSink == nil { rejectsSink = try ByteSink(path: rejectsPath) }
        let out = rejectsSink!.buffer
        var entry = Record()
        entry.append("stage", .string(name))
        entry.append("command", command.map { .string($0) } ?? .null)
        entry.append("source", .string(location.displayPath))
        entry.append("line", .int(location.line))
        // Where the record was first read: its _origin, or (for the first stage) here.
        entry.append("origin", .string(Stage.origin(ofRaw: raw, parser: schemaParser) ?? location.description))
        entry.append("reason", .string(reason))
        JSONWriter.write(entry, into: out)
        out.removeLast()
        out.append(",\"raw\":")
        // Every reject has the same fields: raw_base64 is null unless raw is not UTF-8.
        if raw.count == 0 || validUTF8(raw) {
            JSONWriter.writeString(bytes: raw, into: out)
            out.append(",\"raw_base64\":null")
        } else {
            JSONWriter.writeString(String(decoding: raw, as: UTF8.self), into: out)
            out.append(",\"raw_base64\":\"")
            out.append(Base64.encode(raw))
            out.append(34)
        }
        out.append("}\n")
        try rejectsSink!.flushIfNeeded()
        if rejectMessages < Stage.rejectMessageLimit && !options.quiet {
            rejectMessages += 1
            progress.clear()
            standardError("lead-\(name): \(location): \(reason)\n")
        }
        if let limit = options.maxRejects, recordsRejected > limit {
            throw .data("more than \(limit) records rejected (--max-rejects \(limit)); see \(rejectsPath)")
        }
    }

    /// Rejects a record that has a `Record` but no raw text at hand: its JSON is the raw text.
    public func reject(_ reason: String, at location: SourceLocation, record: Record) throws(StageError) {
        var text = record.json
        var failure: StageError?
        text.withUTF8 { bytes in
            do throws(StageError) { try reject(reason, at: location, raw: bytes) } catch { failure = error }
        }
        if let failure { throw failure }
    }

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

    private var progressBytesBase = 0

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
    private func forEachRecordInBatches(_ paths: [String], transform: @escaping (inout Record) throws -> Void,
                                        encoding: LineEncoding, _ body: @escaping (Record, UnsafeBufferPointer<UInt8>, SourceLocation) throws -> Void) throws {
        let workers = workerCount
        let batchSize = 2048
        // With --schema the workers fill the schema's fields as they encode.
        let shared = UncheckedBox(schema.map { schema in { (record: inout Record) throws -> Void in
            try transform(&record)
            schema.fill(&record)
        } } ?? transform)
        // Two batches, used in turn; a batch's buffers are touched by one side at a time.
        let batches = [RecordBatch(workers: workers), RecordBatch(workers: workers)]
        var filling = 0
        var inFlight: (batch: RecordBatch, group: DispatchGroup)?

        func deliver(_ batch: RecordBatch) throws {
            let count = batch.items.count
            var chunk = 0, first = 0
            for (i, item) in batch.items.enumerated() {
                while i >= count * (chunk + 1) / batch.chunks { chunk += 1; first = i }
                let raw = UnsafeBufferPointer(start: batch.texts.base + item.offset, count: item.length)
                let location = item.location
                switch batch.pool[chunk].outcomes[i - first] {
                case .record(let record, let offset, let length):
                    let line = encoding == .input ? UnsafeBufferPointer(start: raw.baseAddress, count: raw.count)
                        : UnsafeBufferPointer(start: batch.pool[chunk].out.base + offset, count: length)
                    do {
                        try body(record, line, location)
                    } catch let rejected as RecordRejected {
                        try reject(rejected.reason, at: location, raw: raw)
                    }
                case .rejected(let reason, let line):
                    try reject(reason, at: SourceLocation(path: location.path, line: line), raw: raw)
                }
            }
        }

        /// Sends the batch being filled to the workers, and hands out the one before it.
        func launch() throws {
            let batch = batches[filling]
            guard !batch.items.isEmpty else { return }
            // The parser reads a little past each text: the next text is there, and after
            // the last one, this padding.
            batch.texts.append(JSONParser.zeroPadding)
            let group = DispatchGroup()
            let job = UncheckedBox(batch)
            let origins = stampsOrigin
            DispatchQueue.global().async(group: group) { job.value.transform(shared.value, encoding: encoding, stampingOrigin: origins) }
            if let previous = inFlight {
                previous.group.wait()
                try deliver(previous.batch)
            }
            inFlight = (batch, group)
            filling = 1 - filling
            // The batch now filling was handed out above (or never used): clear it for reuse.
            batches[filling].reset()
        }

        func finish() throws {
            try launch()
            if let last = inFlight {
                last.group.wait()
                inFlight = nil
                try deliver(last.batch)
                last.batch.reset()
            }
        }

        for path in try inputs(paths) {
            let source = try ByteSource(path: path, encoding: inputEncoding)
            defer { source.close() }
            let reader = JSONTextReader(lines: LineReader(source: source))
            try reader.forEach { event in
                let batch = batches[filling]
                var bytes: UnsafeBufferPointer<UInt8>
                var item: RecordBatch.Item
                switch event {
                case .warning(let line, let message):
                    warn(message, at: inputLocation(path, line: line))
                    return
                case .broken(let raw, let line, let reason):
                    bytes = raw
                    item = .init(offset: batch.texts.count, length: raw.count, location: inputLocation(path, line: line), broken: reason)
                case .text(let text, let line):
                    bytes = text
                    item = .init(offset: batch.texts.count, length: text.count, location: inputLocation(path, line: line), broken: nil)
                }
                recordsIn += 1
                progress.tick(records: recordsIn, bytes: progressBytesBase + reader.bytesRead)
                batch.texts.append(bytes)
                batch.items.append(item)
                if batch.items.count == batchSize { try launch() }
            }
            try finish()
            progressBytesBase += reader.bytesRead
        }
    }

    /// Writes one JSON line, already encoded, to the main output.
    public func writeLine(_ json: UnsafeBufferPointer<UInt8>) throws(StageError) {
        if let schema, var record = schemaParser.record(json), schema.fill(&record) { return try write(record) }
        let sink = try output()
        sink.buffer.append(json)
        sink.buffer.append(10)
        recordsOut += 1
        try sink.flushIfNeeded()
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
    /// read their input twice.
    public func spoolStdin() throws(StageError) -> String {
        let dir = environment["TMPDIR"] ?? "/tmp"
        let path = "\(dir)/lead-\(name)-stdin-\(getpid()).tmp"
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

    // MARK: Rules

    /// The directory holding a stage's rules: for this stage `--rules` when given; else
    /// `$LEAD_STAGES/<stage>`, else `stages/<stage>` in the current directory, else the
    /// install prefix's `share/leadetl/stages/<stage>` (`make install`) or `stages/<stage>`
    /// beside the executable, else the checkout the executable was built in. Rules this stage shares with another (the
    /// pipeline list in stages/fetch/) come from that stage's directory.
    public func rulesDirectory(stage: String? = nil) -> String {
        let stageName = stage ?? name
        if stageName == name, let dir = options.rules { return dir }
        if let root = environment["LEAD_STAGES"], !root.isEmpty { return root + "/" + stageName }
        let local = "stages/" + stageName
        if Stage.isDirectory(local) { return local }
        if let exe = Stage.executableDirectory() {
            // Installed: PREFIX/bin/lead-x -> PREFIX/share/leadetl/stages; or stages/ beside the binary.
            let prefix = AtomicFiles.splitPath(exe).dir
            for candidate in [prefix + "/share/leadetl/stages/" + stageName, exe + "/stages/" + stageName] where Stage.isDirectory(candidate) {
                return candidate
            }
            // .build/<config>/lead-x -> checkout root
            var root = exe
            for _ in 0..<2 { root = AtomicFiles.splitPath(root).dir }
            let candidate = root + "/stages/" + stageName
            if Stage.isDirectory(candidate) { return candidate }
            root = AtomicFiles.splitPath(root).dir
            let deeper = root + "/stages/" + stageName
            if Stage.isDirectory(deeper) { return deeper }
        }
        return local
    }

    /// The path of rules file `file` of this stage (or of `stage`).
    public func rulesFile(_ file: String, stage: String? = nil) -> String {
        rulesDirectory(stage: stage) + "/" + file
    }

    /// True when `path` is a directory.
    public static func isDirectoryPath(_ path: String) -> Bool { isDirectory(path) }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return AtomicFiles.splitPath(path).dir
    }

    // MARK: Finishing

    func finish() throws(StageError) {
        progress.clear()
        if mainSink == nil, let out = options.output, out != "-" { _ = try output() }
        var ordered = extraSinks
        if let mainSink {
            if commitsOutputLast { ordered.append(mainSink) } else { ordered.insert(mainSink, at: 0) }
        }
        do {
            if let committer {
                // The main output last: what make takes as done is put in place last.
                try committer.commit(extraSinks + (mainSink.map { [$0] } ?? []), removing: successPaths)
            } else {
                for sink in ordered { try sink.commit() }
                for path in successPaths { unlink(path) }
            }
            try finishRejects()
        } catch {
            runExitHooks()
            throw error
        }
        removeCleanupPaths()
        runExitHooks()
        printSummary()
    }

    func abandon(_ error: StageError) {
        progress.clear()
        mainSink?.discard()
        for sink in extraSinks { sink.discard() }
        if error == .brokenPipe {
            rejectsSink?.discard()
        } else {
            try? finishRejects()
        }
        removeCleanupPaths()
        runExitHooks()
        if error != .brokenPipe { printSummary(error: error) }
    }

    private func runExitHooks() {
        let hooks = exitHooks
        exitHooks.removeAll()
        for hook in hooks.reversed() { hook() }
    }

    private func finishRejects() throws(StageError) {
        if let sink = rejectsSink {
            try sink.commit()
        } else {
            // No rejects this run: a rejects file from an earlier run would mislead. One
            // written since this run started is another process's, running beside it: kept.
            var st = stat()
            if stat(rejectsPath, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
                && Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) < startedAt.seconds * 1_000_000_000 + Int64(startedAt.nanoseconds) {
                unlink(rejectsPath)
            }
        }
    }

    private func removeCleanupPaths() {
        for path in cleanupPaths { unlink(path) }
        cleanupPaths.removeAll()
    }

    private func printSummary(error: StageError? = nil) {
        let log = SummaryLog.path(option: options.summaries)
        guard !options.quiet || log != nil else { return }
        var line = Record()
        line.append("stage", .string(name))
        if let command { line.append("command", .string(command)) }
        line.append("in", .int(recordsIn))
        line.append("out", .int(recordsOut))
        line.append("rejected", .int(recordsRejected))
        for field in summary.fields { line[field.key] = field.value }
        if recordsRejected > 0 { line.append("rejects", .string(rejectsPath)) }
        let seconds = (Stage.monotonicSeconds() - started) * 1000
        line.append("seconds", .double(seconds.rounded() / 1000))
        if error == nil && !options.quiet { standardError(line.json + "\n") }
        guard let log else { return }
        line.append("error", error.map { .string($0.description) } ?? .null)
        line.append("output", options.output.map { .string($0) } ?? .null)
        line.append("argv", .array(CommandLine.arguments.dropFirst().map { .string($0) }))
        line.append("at", .string(Clock.systemNow().iso8601))
        // In the log every line has every field any stage reports (stages/schemas/summaries.json).
        if let schema = try? RecordSchema.load(rulesFile("summaries.json", stage: "schemas"), name: "summaries") {
            schema.fill(&line)
        }
        do throws(StageError) {
            try SummaryLog.append(line.json, to: log)
        } catch {
            standardError("lead-\(name): the summary log: \(error)\n")
        }
    }

    // MARK: Helpers

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func kindName(_ kind: UInt32) -> String {
        switch kind {
        case LJ_ARRAY.rawValue: return "an array"
        case LJ_STRING.rawValue: return "a string"
        case LJ_NULL.rawValue: return "null"
        case LJ_TRUE.rawValue, LJ_FALSE.rawValue: return "a boolean"
        case LJ_OBJECT.rawValue: return "an object"
        default: return "a number"
        }
    }

    /// Says why a text is not valid JSON and where: the line, and the column when known.
    /// simdjson's first pass gives no position for NUL bytes, control characters and bad
    /// UTF-8, so those are located here.
    public static func describe(_ error: JSONParser.SyntaxError, in bytes: UnsafeBufferPointer<UInt8>,
                         startLine: Int) -> (line: Int, reason: String) {
        var message = error.message
        var offset = error.offset
        if bytes.count > 0, let nul = memchr(bytes.baseAddress!, 0, bytes.count) {
            // A NUL byte is never valid JSON, and usually the real cause.
            message = "NUL byte"
            offset = UnsafeRawPointer(nul) - UnsafeRawPointer(bytes.baseAddress!)
        } else if offset < 0 || offset > bytes.count {
            offset = -1
            if let bad = firstInvalidUTF8(bytes) {
                message = "invalid UTF-8"
                offset = bad
            } else if message.contains("control character"),
                      let c = bytes.firstIndex(where: { $0 < 0x20 && $0 != 9 && $0 != 10 && $0 != 13 }) {
                offset = c
            }
        }
        guard offset >= 0 else { return (startLine, message) }
        var line = startLine
        var lineStart = 0
        for i in 0..<offset where bytes[i] == 10 {
            line += 1
            lineStart = i + 1
        }
        return (line, message + " at column \(offset - lineStart + 1)")
    }

    /// A note on stderr about the run (`lead-<stage>: message`), unless quiet.
    public func note(_ message: String) {
        guard !options.quiet else { return }
        progress.clear()
        standardError("lead-\(name): \(message)\n")
    }

    /// A note on stderr about the input that loses no record.
    public func warn(_ message: String, at location: SourceLocation) {
        guard !options.quiet else { return }
        progress.clear()
        standardError("lead-\(name): \(location): warning: \(message)\n")
    }
}

/// True when `bytes` is valid UTF-8.
public func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
    return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { lj_validate_utf8($0, bytes.count) }
}

/// The offset of the first byte that makes `bytes` invalid UTF-8, or nil.
public func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    if validUTF8(bytes) { return nil }
    var i = 0
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        let length: Int
        if b < 0x80 { length = 1 } else if b >> 5 == 0x6 && b >= 0xC2 { length = 2 } else if b >> 4 == 0xE { length = 3 } else if b >> 3 == 0x1E && b <= 0xF4 { length = 4 } else { return i }
        if i + length > n { return i }
        for k in 1..<length where bytes[i + k] >> 6 != 0x2 { return i }
        if length > 1 && !validUTF8(UnsafeBufferPointer(rebasing: bytes[i..<(i + length)])) { return i }
        i += length
    }
    return nil
}

/// Standard base64, for raw bytes that are not UTF-8.
public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], 61, 61]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], 61]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The process environment without Foundation.
public enum ProcessInfoLite {
    public static var environment: [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }
}

/// A value handed to other threads by code that keeps their accesses apart (or takes the lock).
final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    private var mutex = pthread_mutex_t()
    init(_ value: T) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }
    deinit { pthread_mutex_destroy(&mutex) }

    func withLock(_ body: () -> Void) {
        pthread_mutex_lock(&mutex)
        body()
        pthread_mutex_unlock(&mutex)
    }
}

/// One batch of `forEachRecord(_:transform:_:)`: the texts read, and per worker the records
/// made of them, transformed, and their JSON.
final class RecordBatch: @unchecked Sendable {
    /// One text of the batch: where its bytes are in `texts`, where it came from, and for
    /// input that could not be cut into a text, why.
    struct Item {
        var offset: Int
        var length: Int
        var location: SourceLocation
        var broken: String?
    }

    enum Outcome {
        case record(Record, offset: Int, length: Int)
        case rejected(String, line: Int)
    }

    final class Worker {
        let parser = JSONParser()
        let keys = KeyCache()
        let out = ByteBuffer(capacity: 1 << 20)
        var outcomes: [Outcome] = []
    }

    let texts = ByteBuffer(capacity: 1 << 22)
    var items: [Item] = []
    let pool: [Worker]
    private(set) var chunks = 1

    init(workers: Int) {
        pool = (0..<workers).map { _ in Worker() }
        items.reserveCapacity(2048)
    }

    /// Empties the batch for the next texts (the records made of the last ones are released
    /// by the workers, when the batch is next transformed).
    func reset() {
        items.removeAll(keepingCapacity: true)
        texts.removeAll()
    }

    /// Parses and transforms every text, on as many threads as there are workers.
    func transform(_ transform: @escaping (inout Record) throws -> Void, encoding: Stage.LineEncoding, stampingOrigin: Bool = false) {
        let transform = UncheckedBox(transform)
        let count = items.count
        chunks = min(pool.count, max(1, count / 64))
        let chunks = self.chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let worker = pool[chunk]
            // Last use's records are released here, on the worker.
            worker.outcomes.removeAll(keepingCapacity: true)
            worker.out.removeAll()
            let base = texts.base
            for item in items[(count * chunk / chunks)..<(count * (chunk + 1) / chunks)] {
                if let reason = item.broken {
                    worker.outcomes.append(.rejected(reason, line: item.location.line))
                    continue
                }
                let bytes = UnsafeBufferPointer(start: base + item.offset, count: item.length)
                var record: Record
                switch worker.parser.parse(bytes) {
                case .failure(let error):
                    let (line, reason) = Stage.describe(error, in: bytes, startLine: item.location.line)
                    worker.outcomes.append(.rejected("invalid JSON: " + reason, line: line))
                    continue
                case .success(let tape):
                    guard tape.isObject else {
                        worker.outcomes.append(.rejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))", line: item.location.line))
                        continue
                    }
                    record = Record(tape: tape, keys: worker.keys)
                }
                do {
                    try transform.value(&record)
                    if stampingOrigin && !record.hasValue(Stage.originField) {
                        record[Stage.originField] = .string(item.location.description)
                    }
                    let offset = worker.out.count
                    if encoding == .json { JSONWriter.write(record, into: worker.out) }
                    worker.outcomes.append(.record(record, offset: offset, length: worker.out.count - offset))
                } catch let rejected as RecordRejected {
                    worker.outcomes.append(.rejected(rejected.reason, line: item.location.line))
                } catch {
                    worker.outcomes.append(.rejected("\(error)", line: item.location.line))
                }
            }
        }
    }
}
