import ArgumentParser
import StageKit
#if canImport(Glibc)
import Glibc
#endif

@main
struct LeadDiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-diff",
        abstract: "Keyed, field-level diff of two stage outputs (JSONL or CSV, gzip too).",
        discussion: """
        Records are matched by --key; the report lists records added in NEW, removed from OLD, \
        and for records with the same key each field whose value changed (numbers by value, so \
        1 and 1.0 are equal; nested values compared as JSON). A CSV side compares as text with \
        the other side flattened the way lead-export csv writes it. Duplicate keys within a side \
        are reported, and matched occurrence by occurrence. A record without a key goes to the \
        rejects file.

        --format text (the default) prints +++ added, --- removed and -> changed lines, coloured \
        on a terminal; jsonl one object per difference {op, key, field, old, new}; csv the same \
        as rows. --summary prints counts instead, and per field how many records changed it, \
        with the transitions of fields that have few values (tier: 312 changed (B->A 120, ...)).

        OLD is held in memory, keyed (NEW streams), and the report follows NEW's order. An OLD \
        file too big for the memory budget (LEAD_MEMORY, default 256M: its size, a .gz counted \
        five times, and 160 bytes a record) is not held: both sides are sorted by key, in \
        sorted runs on temporary files past the budget, then merged, and the report comes in \
        key order. With --sorted both inputs stream, in key order (byte order, as LC_ALL=C \
        sort), and must be JSONL.

        Exit status: 0 no differences, 1 differences, 2 trouble (as diff), including records         that could not be compared (no key, not JSON): they are in the rejects file.

        Examples:
          lead-diff old/leads.jsonl local-logs/leads/leads.jsonl --key address_key --ignore updated_at
          lead-diff a.csv b.jsonl --key ListingKey --summary
        """,
        version: LeadETL.version,
    )

    static func main() { stageMain() }

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, jsonl, csv }
    enum Color: String, ExpressibleByArgument, CaseIterable { case auto, always, never }

    @Argument(help: ArgumentHelp("The earlier file.", valueName: "old"))
    var old: String

    @Argument(help: ArgumentHelp("The later file.", valueName: "new"))
    var new: String

    @Option(help: ArgumentHelp("The key field(s), comma-separated.", valueName: "field[,field...]"))
    var key: String

    @Option(help: ArgumentHelp("Fields not to compare, comma-separated (_origin, where a record was first read, is never compared).", valueName: "field[,field...]"))
    var ignore: String = ""

    @Option(help: "text, jsonl or csv.")
    var format: Format = .text

    @Flag(help: "Print counts, and per field how many records changed it, instead of every difference.")
    var summary = false

    @Flag(help: "Both inputs are JSONL sorted by key: stream both instead of holding OLD in memory.")
    var sorted = false

    @Option(help: "Colour the text report: auto (on a terminal), always or never.")
    var color: Color = .auto

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if summary && format == .csv { throw ValidationError("--summary prints text or jsonl, not csv") }
        if key.split(separator: ",").isEmpty { throw ValidationError("--key needs at least one field") }
    }

    func run() throws {
        Stage.run("diff", options: common, errorStatus: 2) { stage in
            let keys = key.split(separator: ",").map { String($0).trimmingSpaces }
            // A record read from another line of its input is not a changed record.
            let ignored = Set(ignore.split(separator: ",").map { String($0).trimmingSpaces } + [Stage.originField])
            for path in [old, new] where path != "-" && !Stage.fileExists(path) {
                throw StageError.usage("no such file: \(path)")
            }
            let oldCSV = Side.isCSV(old), newCSV = Side.isCSV(new)
            if sorted && (oldCSV || newCSV) { throw StageError.usage("--sorted reads JSONL; a CSV side is diffed in memory (drop --sorted)") }
            let coloured = color == .always || (color == .auto && common.output == nil && isatty(1) != 0
                                                 && stage.environment["NO_COLOR"] == nil)
            var report = Report(format: format, summaryOnly: summary, coloured: coloured, out: try stage.output(),
                                old: old, new: new)
            let comparison = Comparison(keys: keys, ignore: ignored, loose: oldCSV || newCSV,
                                        flattenOld: newCSV && !oldCSV, flattenNew: oldCSV && !newCSV)
            let budget = try ExternalSort.budget(stage.environment)
            if sorted {
                try comparison.streamSorted(stage, old: old, new: new, into: &report)
            } else if Comparison.overflows(old, budget: budget) {
                let spilled = try comparison.sortedOnDisk(stage, old: old, new: new, budget: budget, into: &report)
                stage.summary.append("runs_on_disk", .int(spilled))
            } else {
                try comparison.inMemory(stage, old: old, new: new, into: &report)
            }
            try report.finish()
            stage.recordsOut = report.lines
            stage.summary.append("added", .int(report.counts.added))
            stage.summary.append("removed", .int(report.counts.removed))
            stage.summary.append("changed", .int(report.counts.changed))
            stage.summary.append("unchanged", .int(report.counts.unchanged))
            if report.counts.duplicates > 0 { stage.summary.append("duplicate_keys", .int(report.counts.duplicates)) }
            stage.exitStatus = report.counts.differs ? 1 : 0
            // Records that could not be compared leave the answer open: trouble, as diff says it.
            if stage.recordsRejected > 0 { stage.exitStatus = 2 }
        }
    }
}

/// Reading one side: CSV by extension, else JSON (JSONL, an array, pretty objects).
enum Side {
    static func isCSV(_ path: String) -> Bool {
        [".csv", ".csv.gz", ".tsv", ".tsv.gz"].contains { path.lowercased().hasSuffix($0) }
    }

    static func read(_ stage: Stage, _ path: String, _ body: (Record, SourceLocation) throws -> Void) throws {
        guard isCSV(path) else { return try stage.forEachRecord([path], body) }
        let delimiter: UInt8 = path.lowercased().contains(".tsv") ? 9 : 44
        try stage.forEachCSV([path], delimiter: delimiter) { row, header, location in
            var record = Record()
            record.fields.reserveCapacity(header.count)
            for (i, name) in header.enumerated() { record.append(name, .string(row.string(i))) }
            try body(record, location)
        }
    }
}

struct Comparison {
    static let matchField = "\u{1}lead-diff-match", changesField = "\u{1}lead-diff-changes"
    let keys: [String]
    let ignore: Set<String>
    let loose: Bool
    let flattenOld: Bool
    let flattenNew: Bool

    func keyOf(_ record: Record) throws(RecordRejected) -> String {
        guard let k = RecordDiff.key(record, fields: keys) else {
            let missing = keys.filter { record[$0] == nil || record[$0]!.isNull }
            throw RecordRejected("no key: \(missing.map { "'\($0)'" }.joined(separator: ", ")) missing or null")
        }
        return k
    }

    /// OLD held keyed in memory, as JSON text; NEW streams against it. Records are parsed
    /// (and OLD's re-encoded) on every core; the matching runs here, in input order.
    func inMemory(_ stage: Stage, old: String, new: String, into report: inout Report) throws {
        let store = ByteBuffer(capacity: 1 << 24)
        var spans: [(offset: Int, length: Int)] = []
        var oldKeys: [String] = []
        // Per key: its first and last record in OLD; records with one key are chained.
        var chain: [String: (first: Int32, last: Int32)] = [:]
        var nextSame: [Int32] = []
        // OLD's text is kept as read, unless it is flattened for a CSV side.
        try read(stage, old, flatten: flattenOld, encoding: flattenOld ? .json : .input) { record, json in
            let k = try keyOf(record)
            let i = Int32(spans.count)
            let offset = store.count
            store.append(json)
            spans.append((offset, json.count))
            oldKeys.append(k)
            nextSame.append(-1)
            if let ends = chain[k] {
                nextSame[Int(ends.last)] = i
                chain[k] = (ends.first, i)
            } else {
                chain[k] = (i, i)
            }
        }
        // Texts follow one another in the store; the parser's padding is only needed at the end.
        store.append(JSONParser.zeroPadding)
        var matched = [Bool](repeating: false, count: spans.count)
        // NEW records beyond what OLD has for their key (added ones), by key: how many.
        var extra: [String: Int] = [:]
        var extraOrder: [String] = []
        let parser = JSONParser()
        let cache = KeyCache()
        let storeBase = store.bytes.baseAddress!
        func parse(_ span: (offset: Int, length: Int), _ parser: JSONParser, _ cache: KeyCache) -> Record {
            let bytes = UnsafeBufferPointer(start: storeBase + span.offset, count: span.length)
            guard case .success(let tape) = parser.parse(bytes) else { fatalError("lead-diff: re-reading its own JSON failed") }
            return Record(tape: tape, keys: cache)
        }
        func oldRecord(_ i: Int) -> Record { parse(spans[i], parser, cache) }
        // The workers compare each NEW record with the first OLD record of its key and pass the
        // changes along in two hidden fields; only a repeated key is compared again here.
        let frozenChain = chain, frozenSpans = spans, pool = ParserPool()
        let (ignore, loose, keys) = (self.ignore, self.loose, self.keys)
        let compare: (inout Record) -> Void = { record in
            guard let k = RecordDiff.key(record, fields: keys), let i = frozenChain[k]?.first else { return }
            let (parser, cache) = pool.take()
            let old = parse(frozenSpans[Int(i)], parser, cache)
            pool.give(parser, cache)
            let changes = RecordDiff.changes(old: old, new: record, ignore: ignore, loose: loose)
            record.append(Comparison.matchField, .int(Int(i)))
            record.append(Comparison.changesField, .array(changes.map { change in
                var r = Record()
                r.append("field", .string(change.field))
                if let o = change.old { r.append("old", o) }
                if let n = change.new { r.append("new", n) }
                return .object(r)
            }))
        }
        try read(stage, new, flatten: flattenNew, encoding: .none, then: compare) { record, _ in
            var record = record
            // The hidden fields are the last two, when the workers found the key.
            var hinted: Int?, encoded: [JSONValue]?
            if record.fields.last?.key == Comparison.changesField {
                encoded = record.fields.removeLast().value.array
                hinted = record.fields.removeLast().value.int
            }
            let k = try keyOf(record)
            // The first OLD record of the key not matched yet: occurrences pair up in order.
            var i = Int(chain[k]?.first ?? -1)
            while i >= 0 && matched[i] { i = Int(nextSame[i]) }
            if i < 0 {
                if extra[k] == nil { extraOrder.append(k) }
                extra[k, default: 0] += 1
                try report.added(k, record)
                return
            }
            matched[i] = true
            if let hinted, hinted == i, let encoded {
                try report.compared(k, encoded.compactMap(\.object).map {
                    RecordDiff.Change(field: $0.text("field") ?? "", old: $0["old"], new: $0["new"])
                })
            } else {
                try report.compared(k, RecordDiff.changes(old: oldRecord(i), new: record, ignore: ignore, loose: loose))
            }
        }
        for i in spans.indices where !matched[i] {
            try report.removed(oldKeys[i], oldRecord(i))
        }
        // Duplicate keys: OLD's in the order they first appear, then NEW's.
        var newDuplicates: [(String, Int)] = []
        for (i, k) in oldKeys.enumerated() {
            guard let ends = chain[k], Int(ends.first) == i, ends.first != ends.last || extra[k] != nil else { continue }
            var n = 0, used = 0, j = i
            while j >= 0 { n += 1; if matched[j] { used += 1 }; j = Int(nextSame[j]) }
            if n > 1 { try report.duplicate(k, side: "old", count: n) }
            if used + (extra[k] ?? 0) > 1 { newDuplicates.append((k, used + (extra[k] ?? 0))) }
        }
        for k in extraOrder where chain[k] == nil && extra[k]! > 1 { newDuplicates.append((k, extra[k]!)) }
        for (k, n) in newDuplicates { try report.duplicate(k, side: "new", count: n) }
        withExtendedLifetime(parser) {}
    }

    /// Reads a side: JSON on every core (with its JSON text unless `encoding` is false, after
    /// `then` has run on it there), or CSV rows (and `then` here).
    func read(_ stage: Stage, _ path: String, flatten: Bool, encoding: Stage.LineEncoding = .json,
              then extra: @escaping (inout Record) -> Void = { _ in },
              _ body: (Record, UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        if Side.isCSV(path) {
            let json = ByteBuffer(capacity: 1 << 12)
            try Side.read(stage, path) { record, _ in
                var record = record
                extra(&record)
                json.removeAll()
                if encoding != .none { JSONWriter.write(record, into: json) }
                try body(record, json.bytes)
            }
        } else {
            try stage.forEachRecord([path], transform: { record in
                if flatten { record = RecordDiff.flattened(record) }
                extra(&record)
            }, encoding: encoding) { record, json, _ in try body(record, json) }
        }
    }

    /// Whether holding OLD would pass the memory budget: its text (a .gz counted at five times
    /// its size) and about 160 bytes a record of index, at 100 bytes a record or more. Standard
    /// input, whose size is not known, is held.
    static func overflows(_ path: String, budget: Int) -> Bool {
        guard let text = Stage.inputTextSize(path) else { return false }
        return text + text / 100 * 160 > budget
    }

    /// OLD too big to hold: each side is sorted by key (`ExternalSort`, which writes sorted
    /// runs past the budget and merges them), then the two sorted streams are merge-joined as
    /// with --sorted, read straight from the sorts. Records that cannot be compared are
    /// rejected while sorting, once. Returns how many runs went to disk.
    func sortedOnDisk(_ stage: Stage, old: String, new: String, budget: Int, into report: inout Report) throws -> Int {
        let dir = stage.environment["TMPDIR"] ?? "/tmp"
        var sorters: [ExternalSort] = []
        for (path, flatten) in [(old, flattenOld), (new, flattenNew)] {
            let sorter = ExternalSort(budget: budget, directory: dir)
            try read(stage, path, flatten: flatten, encoding: flatten || Side.isCSV(path) ? .json : .input) { record, json in
                try sorter.add(key: try keyOf(record), line: json)
            }
            // OLD's last lines go to disk too, so that NEW has the memory while it is sorted.
            if sorters.isEmpty && sorter.spilledRuns > 0 { try sorter.spillHeld() }
            sorters.append(sorter)
        }
        try mergeJoin(SortedRecords(try sorters[0].sorted()), SortedRecords(try sorters[1].sorted()), into: &report)
        return sorters[0].spilledRuns + sorters[1].spilledRuns
    }

    /// Both sides JSONL sorted by key: a merge join, in constant memory.
    func streamSorted(_ stage: Stage, old: String, new: String, into report: inout Report) throws {
        let a = try SortedReader(stage, old, comparison: self), b = try SortedReader(stage, new, comparison: self)
        defer { a.close(); b.close() }
        try mergeJoin(a, b, into: &report)
    }

    /// Two streams of keyed records, each in key order, compared: what only OLD has is
    /// removed, what only NEW has added, the rest compared; repeated keys are reported.
    func mergeJoin(_ a: some KeyedRecords, _ b: some KeyedRecords, into report: inout Report) throws {
        var x = try a.next(), y = try b.next()
        var runOld: (String, Int)?, runNew: (String, Int)?
        func track(_ run: inout (String, Int)?, _ k: String, side: String) throws {
            if let r = run, r.0 == k { run = (k, r.1 + 1); return }
            if let r = run, r.1 > 1 { try report.duplicate(r.0, side: side, count: r.1) }
            run = (k, 1)
        }
        while x != nil || y != nil {
            if let o = x, y == nil || o.key.utf8.lexicographicallyPrecedes(y!.key.utf8) {
                try track(&runOld, o.key, side: "old")
                try report.removed(o.key, o.record)
                x = try a.next()
            } else if let n = y, x == nil || n.key.utf8.lexicographicallyPrecedes(x!.key.utf8) {
                try track(&runNew, n.key, side: "new")
                try report.added(n.key, n.record)
                y = try b.next()
            } else {
                let o = x!, n = y!
                try track(&runOld, o.key, side: "old")
                try track(&runNew, n.key, side: "new")
                try report.compared(n.key, RecordDiff.changes(old: o.record, new: n.record, ignore: ignore, loose: loose))
                x = try a.next()
                y = try b.next()
            }
        }
        if let r = runOld, r.1 > 1 { try report.duplicate(r.0, side: "old", count: r.1) }
        if let r = runNew, r.1 > 1 { try report.duplicate(r.0, side: "new", count: r.1) }
    }
}

/// JSON parsers for the workers, one each, handed out under a lock.
final class ParserPool: @unchecked Sendable {
    private var free: [(JSONParser, KeyCache)] = []
    private var mutex = pthread_mutex_t()

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func take() -> (JSONParser, KeyCache) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return free.popLast() ?? (JSONParser(), KeyCache())
    }

    func give(_ parser: JSONParser, _ cache: KeyCache) {
        pthread_mutex_lock(&mutex)
        free.append((parser, cache))
        pthread_mutex_unlock(&mutex)
    }
}

/// Keyed records, one at a time, in key order (nil at the end).
protocol KeyedRecords {
    func next() throws -> (key: String, record: Record)?
}

/// The records of a side sorted by `ExternalSort`, each line parsed again as it comes.
final class SortedRecords: KeyedRecords {
    let cursor: ExternalSort.Cursor
    let parser = RecordParser()

    init(_ cursor: ExternalSort.Cursor) { self.cursor = cursor }

    func next() throws -> (key: String, record: Record)? {
        guard try cursor.next() else { return nil }
        guard let record = parser.record(cursor.line) else { throw StageError.io("a record of lead-diff's sort did not read back") }
        return (String(decoding: cursor.key, as: UTF8.self), record)
    }
}

/// Pulls keyed records from a JSONL file one at a time, checking that keys never go down.
final class SortedReader: KeyedRecords {
    let stage: Stage
    let path: String
    let comparison: Comparison
    let source: ByteSource
    let lines: LineReader
    let parser = JSONParser()
    let cache = KeyCache()
    var previous: String?

    init(_ stage: Stage, _ path: String, comparison: Comparison) throws {
        self.stage = stage
        self.path = path
        self.comparison = comparison
        source = try ByteSource(path: path)
        lines = LineReader(source: source)
    }

    func close() { source.close() }

    func next() throws -> (key: String, record: Record)? {
        while let line = try lines.next() {
            if line.isBlank { continue }
            let bytes = line.withoutCR
            let location = SourceLocation(path: path, line: line.number)
            stage.recordsIn += 1
            let record: Record
            switch parser.parse(bytes) {
            case .failure(let error):
                let (l, reason) = Stage.describe(error, in: bytes, startLine: line.number)
                try stage.reject("invalid JSON: " + reason, at: SourceLocation(path: path, line: l), raw: bytes)
                continue
            case .success(let tape):
                guard tape.isObject else {
                    try stage.reject("not a JSON object (found \(Stage.kindName(tape.kind(0))))", at: location, raw: bytes)
                    continue
                }
                record = Record(tape: tape, keys: cache)
            }
            let k: String
            do { k = try comparison.keyOf(record) } catch {
                try stage.reject(error.reason, at: location, raw: bytes)
                continue
            }
            if let previous, k.utf8.lexicographicallyPrecedes(previous.utf8) {
                throw StageError.usage("\(location): not sorted by key ('\(k)' after '\(previous)'); sort both inputs (LC_ALL=C) or drop --sorted")
            }
            previous = k
            return (k, record)
        }
        return nil
    }
}

/// Writes the differences as they are found, or only counts them for --summary.
struct Report {
    let format: LeadDiff.Format
    let summaryOnly: Bool
    let coloured: Bool
    let out: ByteSink
    let old: String
    let new: String
    var counts = DiffSummary()
    var lines = 0
    var started = false

    init(format: LeadDiff.Format, summaryOnly: Bool, coloured: Bool, out: ByteSink, old: String, new: String) {
        self.format = format
        self.summaryOnly = summaryOnly
        self.coloured = coloured
        self.out = out
        self.old = old
        self.new = new
    }

    mutating func start() {
        guard !started else { return }
        started = true
        switch format {
        case .text: line(paint("--- " + old, "1;31") + "\n" + paint("+++ " + new, "1;32"))
        case .csv: csvRow(["op", "key", "field", "old", "new"])
        case .jsonl: break
        }
    }

    func paint(_ text: String, _ code: String) -> String { coloured ? "\u{1B}[\(code)m" + text + "\u{1B}[0m" : text }

    mutating func line(_ text: String) {
        out.buffer.append(text)
        out.buffer.append(10)
        lines += 1
    }

    mutating func csvRow(_ fields: [String]) {
        var csv = CSVWriter(out: out.buffer)
        csv.writeRow(fields)
        lines += 1
    }

    mutating func flush() throws { try out.flushIfNeeded() }

    mutating func added(_ key: String, _ record: Record) throws {
        counts.added += 1
        try emit(op: "add", key: key, field: nil, old: nil, new: .object(record))
    }

    mutating func removed(_ key: String, _ record: Record) throws {
        counts.removed += 1
        try emit(op: "remove", key: key, field: nil, old: .object(record), new: nil)
    }

    mutating func duplicate(_ key: String, side: String, count: Int) throws {
        counts.duplicates += 1
        guard !summaryOnly else { return }
        start()
        switch format {
        case .text: line(paint("!!! " + key, "1;35") + "  duplicate key: \(count) records in \(side == "old" ? old : new)")
        case .jsonl:
            line(Record([.init(key: "op", value: "duplicate"), .init(key: "key", value: .string(key)),
                         .init(key: "side", value: .string(side)), .init(key: "count", value: .int(count))]).json)
        case .csv: csvRow(["duplicate", key, side, "", String(count)])
        }
        try flush()
    }

    mutating func compared(_ key: String, _ changes: [RecordDiff.Change]) throws {
        counts.count(changes)
        guard !changes.isEmpty, !summaryOnly else { return }
        start()
        switch format {
        case .text:
            let fields = changes.map { "\($0.field): \(RecordDiff.plain($0.old))->\(RecordDiff.plain($0.new))" }
            line(paint("->  " + key, "33") + "  " + fields.joined(separator: "  "))
            try flush()
        case .jsonl, .csv:
            for change in changes { try emit(op: "change", key: key, field: change.field, old: change.old, new: change.new) }
        }
    }

    mutating func emit(op: String, key: String, field: String?, old: JSONValue?, new: JSONValue?) throws {
        guard !summaryOnly else { return }
        start()
        switch format {
        case .text:
            let record = (new ?? old)!
            line(op == "add" ? paint("+++ " + key, "32") + "  " + record.json : paint("--- " + key, "31") + "  " + record.json)
        case .jsonl:
            var r = Record()
            r.append("op", .string(op))
            r.append("key", .string(key))
            r.append("field", field.map { .string($0) } ?? .null)
            if let old { r.append("old", old) }
            if let new { r.append("new", new) }
            line(r.json)
        case .csv:
            csvRow([op, key, field ?? "", old.map(RecordDiff.cell) ?? "", new.map(RecordDiff.cell) ?? ""])
        }
        try flush()
    }

    mutating func finish() throws {
        if summaryOnly {
            switch format {
            case .text:
                line("\(old) -> \(new)")
                line("added \(counts.added), removed \(counts.removed), changed \(counts.changed), unchanged \(counts.unchanged)"
                     + (counts.duplicates > 0 ? ", duplicate keys \(counts.duplicates)" : ""))
                for field in counts.fieldsByCount {
                    var text = "  \(field): \(counts.count(of: field)) changed"
                    if let transitions = counts.transitions(of: field) {
                        text += " (" + transitions.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ")"
                    }
                    line(text)
                }
            case .jsonl, .csv:
                var r = Record()
                for (name, n) in [("added", counts.added), ("removed", counts.removed), ("changed", counts.changed),
                                  ("unchanged", counts.unchanged), ("duplicate_keys", counts.duplicates)] {
                    r.append(name, .int(n))
                }
                r.append("fields", .array(counts.fieldsByCount.map { field in
                    var f = Record()
                    f.append("field", .string(field))
                    f.append("changed", .int(counts.count(of: field)))
                    if let transitions = counts.transitions(of: field) {
                        f.append("transitions", .object(Record(transitions.map { .init(key: $0.0, value: .int($0.1)) })))
                    }
                    return .object(f)
                }))
                line(r.json)
            }
        }
        try out.flushIfNeeded()
    }
}
