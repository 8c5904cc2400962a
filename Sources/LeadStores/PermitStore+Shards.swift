import LeadRules
import StageKit

/// The permits store in shards: `lead-export permits --shard i/n` places the permits of the
/// trades shard i owns and leaves its part in `<logs>/permits/shards/i-of-n/`; `lead-export
/// permits --join-shards n` makes the store, the tree and the report of the n parts, exactly
/// those of one process.
///
///     <logs>/permits/shards/i-of-n/permits.jsonl   the shard's store records, by permit_id
///     <logs>/permits/shards/i-of-n/tree/...         its tier files, whole (a trade belongs to
///                                                   one shard, so does its folder)
///     <logs>/permits/shards/i-of-n/flagged.jsonl    its rows of flagged/ and pending_retry/
///     <logs>/permits/shards/i-of-n/retry.jsonl      ({score, permit_id, row}, in file order)
///     <logs>/permits/shards/i-of-n/report.json      its counts, clock and the ledgers it read
///
/// A permit belongs to the shard of its trade, `trade_group/category` (`Shard.of`). A shard
/// reads the whole input and the whole store: it keeps its own permits and notes the ids of
/// the others, so that a permit whose trade changed leaves its old shard. What the shards
/// read is fingerprinted (the store and ledgers' inode, size and change time); the join
/// refuses parts that read another state than the one it finds, so a run between the shards
/// and the join fails it instead of being lost.
extension PermitStore {
    /// The key a permit is sharded by: its trade, `trade_group/category`.
    public static func shardKey(_ permit: Record) -> String {
        cell(permit["trade_group"]) + "/" + cell(permit["category"])
    }

    static func shardKey(_ tape: JSONTape) -> String {
        (tape.topLevelString("trade_group") ?? "") + "/" + (tape.topLevelString("category") ?? "")
    }

    var shards: ShardParts { ShardParts(folder: logs + "/permits/shards", command: "lead-export permits") }

    /// What a shard reads besides its input: the store and the ledgers.
    func fingerprint() throws -> String {
        ShardParts.fingerprint(of: [recordsPath, soldPath, deliveriesPath, reviewsPath] + deliveredFiles.sorted())
    }

    /// Locks shard `shard`'s part for this run; the store and the tree are only read.
    public func openShard(_ stage: Stage, _ shard: Shard) throws -> Store {
        try shards.lockPart(stage, shard, reading: [exports, logs + "/permits"])
    }

    /// Makes the store, the tree and the report of the parts of `count` shards (the store and
    /// tree are locked by the caller). Each part must be there, of this many shards and this
    /// clock, and have read the store and ledgers as they are now.
    public func join(_ stage: Stage, count: Int, rules: PermitStoreRules) throws -> Outcome {
        let current = try fingerprint()
        var parts: [ShardPart] = []
        var tally = Tally()
        var written = Set<String>()
        var replace: Bool?
        let (reports, now) = try shards.reports(count: count, clock: stage.clock, current: current)
        for (i, report) in reports.enumerated() {
            let part = ShardPart(store: self, shard: Shard("\(i + 1)/\(count)")!)
            let partReplace = report["replace"]?.bool ?? false
            if let replace, replace != partReplace { throw StageError.usage("\(part.reportPath): the shards disagree on --replace") }
            replace = partReplace
            tally.add(report)
            for file in report["files"]?.array ?? [] { if let f = file.text { written.insert(f) } }
            parts.append(part)
        }
        try checkTreeHasStore(replace: replace == true)

        // The store: the parts' records merged in permit_id order (each part is sorted).
        let out = try stage.openOutput(recordsPath)
        try SortedMerge.lines(parts.map(\.storePath), key: { $0.topLevelString("permit_id") ?? "" }, before: { $0.precedesInByteOrder($1) }) { line in
            out.buffer.append(line)
            out.buffer.append(10)
            try out.flushIfNeeded()
        }

        // The tier files are whole in their shard's part; flagged and retry rows are merged by
        // score (highest first), then permit_id, as one process orders them
        for file in written.sorted() where file != PermitStore.flaggedFile && file != PermitStore.retryFile {
            guard let part = parts.first(where: { Stage.fileExists($0.treePath(file)) }) else {
                throw StageError.data("\(file): named by a shard's report but in no shard's part")
            }
            let sink = try stage.openOutput(exports + "/" + file)
            let source = try ByteSource(path: part.treePath(file))
            defer { source.close() }
            let chunk = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
            defer { chunk.deallocate() }
            while case let n = try source.read(into: chunk, count: 1 << 16), n > 0 {
                sink.buffer.append(UnsafeBufferPointer(start: chunk, count: n))
                try sink.flushIfNeeded()
            }
        }
        // (through a sort, on disk past the memory budget).
        let budget = try ExternalSort.budget(stage.environment)
        let key = ByteBuffer(capacity: 256)
        var spilled = 0
        for file in [PermitStore.flaggedFile, PermitStore.retryFile] {
            let sink = try openView(file, stage: stage)
            let rows = ExternalSort(budget: budget)
            for part in parts where Stage.fileExists(part.sharedRowsPath(file)) {
                try stage.readRecords(part.sharedRowsPath(file)) { entry, location in
                    guard let score = entry["score"]?.int, let id = entry.text("permit_id"), let row = entry.text("row") else {
                        throw StageError.data("\(location): not a shard's row (score, permit_id, row)")
                    }
                    PermitStore.viewKey(file: "", score: Int32(clamping: score), id: id, into: key)
                    var text = row
                    try text.withUTF8 { try rows.add(key: key.bytes, line: $0) }
                }
            }
            try rows.finish { _, row in
                sink.buffer.append(row)
                try sink.flushIfNeeded()
            }
            spilled += rows.spilledRuns
            written.insert(file)
        }
        if spilled > 0 { stage.summary.append("runs_on_disk", .int(spilled)) }
        if !written.contains(PermitStore.otherFile) {
            _ = try openView(PermitStore.otherFile, stage: stage)
            written.insert(PermitStore.otherFile)
        }
        for relative in existingViewFiles() where !written.contains(relative) {
            stage.removeOnSuccess(exports + "/" + relative)
        }
        shards.removeOnSuccess(count: count, stage: stage)
        stage.recordsOut += tally.permits
        var outcome = Outcome()
        outcome.input = tally.input
        outcome.kept = tally.kept
        outcome.reaged = tally.reaged
        outcome.report = tally.report(now: now, exports: exports, rules: rules)
        let report = try stage.openOutput(reportPath)
        report.buffer.append(PermitStore.pretty(outcome.report))
        return outcome
    }
}

/// Where shard i of n of a permits export leaves its part.
struct ShardPart {
    let dir: String

    init(store: PermitStore, shard: Shard) {
        dir = store.shards.dir(shard)
    }

    var storePath: String { dir + "/permits.jsonl" }
    var reportPath: String { dir + "/report.json" }
    func treePath(_ relative: String) -> String { dir + "/tree/" + relative }
    func sharedRowsPath(_ relative: String) -> String {
        dir + (relative == PermitStore.flaggedFile ? "/flagged.jsonl" : "/retry.jsonl")
    }

    /// A row of flagged/ or pending_retry/, with what orders it among the other shards'.
    static func writeSharedRow(score: Int, id: String, row: String, into out: ByteBuffer) {
        JSONWriter.writeLine(["score": .int(score), "permit_id": .string(id), "row": .string(row)], into: out)
    }

    func report(_ tally: PermitStore.Tally, shard: Shard, now: Timestamp, replace: Bool, fingerprint: String, files: [String]) -> Record {
        var tiers = Record(), categories = Record(), statuses = Record()
        for (tier, n) in tally.tiers.sorted(by: { $0.key < $1.key }) { tiers.append(tier, .int(n)) }
        for (key, c) in tally.categories.sorted(by: { $0.key < $1.key }) {
            categories.append(key, .object(Record(c.sorted(by: { $0.key < $1.key }).map { Record.Field(key: $0.key, value: .int($0.value)) })))
        }
        for (status, n) in tally.statuses.sorted(by: { $0.key < $1.key }) { statuses.append(status, .int(n)) }
        return [
            "shard": .string(shard.description), "now": .string(now.iso8601), "replace": .bool(replace), "fingerprint": .string(fingerprint),
            "input": .int(tally.input), "kept": .int(tally.kept), "reaged": .int(tally.reaged), "permits": .int(tally.permits),
            "flagged": .int(tally.flagged), "retry": .int(tally.retry), "statuses": .object(statuses), "tiers": .object(tiers),
            "categories": .object(categories), "files": .array(files.map { .string($0) }),
        ]
    }
}

extension PermitStore.Tally {
    /// Adds a shard's counts (its report).
    mutating func add(_ report: Record) {
        input += report["input"]?.int ?? 0
        kept += report["kept"]?.int ?? 0
        reaged += report["reaged"]?.int ?? 0
        permits += report["permits"]?.int ?? 0
        flagged += report["flagged"]?.int ?? 0
        retry += report["retry"]?.int ?? 0
        for field in report["statuses"]?.object?.fields ?? [] { statuses[field.key, default: 0] += field.value.int ?? 0 }
        for field in report["tiers"]?.object?.fields ?? [] { tiers[field.key, default: 0] += field.value.int ?? 0 }
        for field in report["categories"]?.object?.fields ?? [] {
            for tier in field.value.object?.fields ?? [] { categories[field.key, default: [:]][tier.key, default: 0] += tier.value.int ?? 0 }
        }
    }
}
