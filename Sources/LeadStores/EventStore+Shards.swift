import LeadRules
import StageKit

/// The events store in shards: `lead-export events --shard i/n` applies the run to the
/// listings shard i owns (`Shard.of(listing_id)`) and leaves its part in
/// `<dir>/shards/i-of-n/`; `lead-export events --join-shards n` makes the store of the n
/// parts, exactly what one process writes.
///
///     <dir>/shards/i-of-n/leads.jsonl              the run's lead records of its listings,
///                                                  each with its place in the input ({seq, lead})
///     <dir>/shards/i-of-n/analytics_parts.jsonl    the parts file, listing_analytics.jsonl and
///     <dir>/shards/i-of-n/listing_analytics.jsonl  listings.jsonl of its listings, sorted as
///     <dir>/shards/i-of-n/listings.jsonl           the whole files are
///     <dir>/shards/i-of-n/report.json              its counts, the run, the clock, the store it read
///
/// Every shard reads the whole input (the run record, and the run id of every lead) and the
/// whole parts file, keeping its listings. What the shards read is fingerprinted; the join
/// refuses parts that read another store than it finds.
extension EventLedger {
    var shards: ShardParts { ShardParts(folder: dir + "/shards", command: "lead-export events") }

    /// The store's files, as a shard read them.
    func fingerprint() throws -> String {
        ShardParts.fingerprint(of: [leadsPath, partsPath, analyticsPath, listingsPath, statePath])
    }

    /// Locks shard `shard`'s part; the store is only read.
    public func openShard(_ stage: Stage, _ shard: Shard) throws {
        try shards.lockPart(stage, shard, reading: [dir])
    }

    /// Applies the run the parts of `count` shards hold: the leads merged in input order into
    /// leads.jsonl, the analytics files merged by listing and hour, the state, the report.
    public func join(_ stage: Stage, count: Int) throws {
        let current = try fingerprint()
        let (reports, now) = try shards.reports(count: count, clock: stage.clock, current: current)
        let parts = (1...count).map { EventShardPart(ledger: self, shard: Shard("\($0)/\(count)")!) }
        for (i, report) in reports.enumerated() where report.text("run_id") != reports[0].text("run_id") {
            throw StageError.data("\(parts[i].dir): shard \(i + 1) applied run \(report.text("run_id") ?? "?"), shard 1 run \(reports[0].text("run_id") ?? "?")")
        }
        // The parts are used up, whatever the outcome.
        shards.removeOnSuccess(count: count, stage: stage)
        // Not applied (applied before, without --force): the shards' report says why.
        if let skipped = reports.first?["report"]?.object {
            stage.summary.append("applied", false)
            try stage.write(skipped)
            return
        }
        let runID = reports[0].text("run_id") ?? ""
        var run: EventRun?
        if let record = reports[0]["run"]?.object {
            do { run = try EventRun(record: record) } catch { throw StageError.data("\(parts[0].reportPath): \(error.reason)") }
        }
        func sum(_ key: String) -> Int { reports.reduce(0) { $0 + ($1[key]?.int ?? 0) } }

        // leads.jsonl: the run's records in input order (each shard's are in order).
        let leads = try SpoolFile()
        var spans: [SpoolFile.Span] = []
        let encoded = ByteBuffer(capacity: 1 << 12)
        try SortedMerge.lines(parts.map(\.leadsPath), key: { $0.topLevelInt("seq") ?? 0 }, before: <) { line in
            guard let entry = RecordParser().record(line), let lead = entry["lead"]?.object else {
                throw StageError.data("\(dir)/shards: a lead of a shard's part is not {seq, lead}")
            }
            encoded.removeAll()
            JSONWriter.write(lead, into: encoded)
            spans.append(try leads.append(encoded))
        }
        try writeLeads(leads, spans, runID: runID, stage: stage)
        // The analytics files: each shard's, of its listings, merged by listing and hour.
        func byHour(_ tape: JSONTape) -> (String, String, Int) {
            (tape.topLevelString("listing_id") ?? "", tape.topLevelString("date") ?? "", tape.topLevelInt("hour") ?? 0)
        }
        func hourBefore(_ a: (String, String, Int), _ b: (String, String, Int)) -> Bool {
            a.0 != b.0 ? a.0.precedesInByteOrder(b.0) : (a.1 != b.1 ? a.1 < b.1 : a.2 < b.2)
        }
        for (path, of) in [(partsPath, \EventShardPart.partsPath), (analyticsPath, \EventShardPart.analyticsPath)] {
            let sink = try stage.openOutput(path)
            try SortedMerge.lines(parts.map { $0[keyPath: of] }, key: byHour, before: hourBefore) { line in
                sink.buffer.append(line)
                sink.buffer.append(10)
                try sink.flushIfNeeded()
            }
        }
        let listings = try stage.openOutput(listingsPath)
        try SortedMerge.lines(parts.map(\.listingsPath), key: { $0.topLevelString("listing_id") ?? "" }, before: { $0.precedesInByteOrder($1) }) { line in
            listings.buffer.append(line)
            listings.buffer.append(10)
            try listings.flushIfNeeded()
        }
        var state = try EventState.load(statePath)
        var report = Record()
        report.append("run_id", .string(runID))
        report.append("from", run.map { JSONValue.string($0.from.iso8601) } ?? .null)
        report.append("to", run.map { JSONValue.string($0.to.iso8601) } ?? .null)
        let counts = Counts(rows: sum("analytics_rows"), listings: sum("listings"), newHours: sum("new_hours"), replacedParts: sum("replaced_parts"))
        try finish(report, run: run, state: &state, replaced: reports[0]["already"]?.bool == true || counts.replacedParts > 0,
                   events: sum("events"), leads: spans.count, hours: sum("hours"), counts: counts, now: now, stage: stage)
    }
}

/// Where shard i of n of an events export leaves its part.
struct EventShardPart {
    let dir: String

    init(ledger: EventLedger, shard: Shard) {
        dir = ledger.shards.dir(shard)
    }

    var leadsPath: String { dir + "/leads.jsonl" }
    var partsPath: String { dir + "/analytics_parts.jsonl" }
    var analyticsPath: String { dir + "/listing_analytics.jsonl" }
    var listingsPath: String { dir + "/listings.jsonl" }
    var reportPath: String { dir + "/report.json" }

    func writeLeads(_ leads: SpoolFile, _ spans: [SpoolFile.Span], order: [Int], stage: Stage) throws {
        let sink = try stage.openOutput(leadsPath)
        var i = 0
        try leads.readInOrder(spans) { json in
            // {"seq":N,"lead":{...}}, the lead as it was encoded.
            sink.buffer.append("{\"seq\":")
            sink.buffer.append(decimal: order[i])
            sink.buffer.append(",\"lead\":")
            sink.buffer.append(json)
            sink.buffer.append("}\n")
            i += 1
            try sink.flushIfNeeded()
        }
    }

    func writeReport(_ report: Record, stage: Stage) throws {
        let sink = try stage.openOutput(reportPath)
        JSONWriter.writeLine(report, into: sink.buffer)
    }
}
