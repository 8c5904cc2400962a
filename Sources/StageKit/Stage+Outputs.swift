import CSimdJSON
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The outputs of a stage: the main output, the other outputs committed with it, side paths
// and the rejects file.
extension Stage {
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


    /// Writes one JSON line, already encoded, to the main output. With `--schema`, a line that
    /// lacks fields of the schema is parsed and filled first (not one the record path's
    /// workers encoded, which they filled).
    /// `filled`: the line has the schema's fields already (its writer filled them).
    public func writeLine(_ json: UnsafeBufferPointer<UInt8>, filled: Bool = false) throws(StageError) {
        if let schema, !linesFilled, !filled, var record = schemaParser.record(json), schema.fill(&record) { return try write(record) }
        let sink = try output()
        sink.buffer.append(json)
        sink.buffer.append(10)
        recordsOut += 1
        try sink.flushIfNeeded()
    }

    /// Opens another output file, committed with the main output when the stage succeeds,
    /// in the order they were opened.
    /// `bufferSize`: the bytes it gathers before a write (smaller for a stage that keeps many
    /// files open at once).
    public func openOutput(_ path: String, bufferSize: Int = 1 << 20) throws(StageError) -> ByteSink {
        let sink = try ByteSink(path: path, bufferSize: bufferSize)
        extraSinks.append(sink)
        return sink
    }


    /// Runs `body` when the stage ends, however it ends (after the outputs are committed or
    /// discarded): a store releases its lock here.
    public func atExit(_ body: @escaping () -> Void) { exitHooks.append(body) }


    /// A file to remove when the stage ends, however it ends.
    public func removeOnExit(_ path: String) { cleanupPaths.append(path) }

    /// A file to remove once the stage has succeeded and its outputs are in place.
    public func removeOnSuccess(_ path: String) { successPaths.append(path) }


    // MARK: Rejects

    /// The rejects file path of this run (its shard's, with `--shard`).
    public var rejectsPath: String { sidePath(unshardedRejectsPath) }

    /// The path of a side file this run writes (rejects, replaced rows, a report): `path`,
    /// or with `--shard i/n` the shard's own, `<name>.shard-<i>-of-<n>.<ext>`.
    public func sidePath(_ path: String) -> String { shard.map { $0.path(path) } ?? path }

    var unshardedRejectsPath: String {
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
        SourceLocation(path: inputNameOption ?? (path == stdinSpool ? "-" : path), line: line + firstLineShift)
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
}
