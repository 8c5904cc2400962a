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
///
/// This file holds the run itself (state, run, finish, summary line, messages); the record
/// path is in `Stage+Inputs.swift` (every input format, the batched parallel reading) with
/// `RecordBatch.swift`, the outputs and rejects in `Stage+Outputs.swift`, the rules lookup in
/// `Stage+Rules.swift`.
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
    public internal(set) var recordsRejected = 0
    /// Extra members for the summary line, appended after the standard ones.
    public var summary = Record()
    /// The encoding the inputs are read in (`--encoding`; a source may set its own).
    public var inputEncoding: TextEncoding
    /// Which of several processes side by side this is (`--shard`, `LEAD_SHARD`), if any.
    public let shard: Shard?
    /// Whether this stage is the first to read its records (the flatten stages): each record
    /// it writes gets `_origin`, the file and line it came from, unless it has one already.
    public var stampsOrigin = false
    /// Whether every shard of this stage reads the whole input and keeps its keys (a keyed
    /// stage with --shard: the dedupe, event scoring, the exports). A text that cannot be read
    /// as a record has no key: it is shard 1's to reject, once, and the others pass it over.
    public var shardsReadWholeInput = false
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
    public internal(set) var schema: RecordSchema?
    lazy var schemaParser = RecordParser()
    /// When the run started, on the wall clock: a rejects file written after it is another
    /// process's.
    let startedAt = Clock.systemNow()

    var mainSink: ByteSink?
    var extraSinks: [ByteSink] = []
    var rejectsSink: ByteSink?
    var cleanupPaths: [String] = []
    let progress: Progress
    let started = Stage.monotonicSeconds()
    /// `--input-name` and how far `--first-line` moves line numbers, read once: an option's
    /// getter costs a runtime metadata lookup, and every text read asks for its location.
    let inputNameOption: String?
    let firstLineShift: Int
    /// The temporary copy of stdin, when `spoolStdin` made one.
    var stdinSpool: String?
    var rejectMessages = 0

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
        inputNameOption = options.inputName
        firstLineShift = max(0, (options.firstLine ?? 1) - 1)
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


    // MARK: State of the outputs and inputs (used by the extensions in Stage+*.swift)

    /// Whether the main output is put in place after the other outputs rather than before
    /// them: for a main output (a run report) whose presence says the others are complete.
    public var commitsOutputLast = false
    /// Who puts the outputs in place when the stage succeeds: by default each file is renamed
    /// in the order opened; a store (LeadStores) takes this over to commit them, its log
    /// lines and removals as one change, under its lock and journal.
    public var committer: OutputCommitter?
    var exitHooks: [() -> Void] = []
    var successPaths: [String] = []
    var progressBytesBase = 0
    /// Whether the lines the record path hands out were filled to the schema by its workers.
    var linesFilled = false

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

    func runExitHooks() {
        let hooks = exitHooks
        exitHooks.removeAll()
        for hook in hooks.reversed() { hook() }
    }

    func finishRejects() throws(StageError) {
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

    func removeCleanupPaths() {
        for path in cleanupPaths { unlink(path) }
        cleanupPaths.removeAll()
    }

    func printSummary(error: StageError? = nil) {
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
