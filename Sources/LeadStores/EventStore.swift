import CSimdJSON
import Dispatch
import LeadRules
import StageKit

/// The events pipeline's state (`local-logs/events/state.json`): the watermark (the end of
/// the last window applied) and every run applied, with its window and counts.
public struct EventState: Sendable {
    public struct Applied: Sendable {
        public var run: EventRun
        public var events: Int
        public var leads: Int
        public var appliedAt: Timestamp

        public init(run: EventRun, events: Int, leads: Int, appliedAt: Timestamp) {
            self.run = run
            self.events = events
            self.leads = leads
            self.appliedAt = appliedAt
        }
    }

    public var runs: [Applied]

    public init(runs: [Applied] = []) { self.runs = runs }

    /// The end of the latest window applied.
    public var watermark: Timestamp? { runs.map(\.run.to).max() }

    public func applied(_ runID: String) -> Applied? { runs.first { $0.run.runID == runID } }

    /// The state file at `path`; no runs when there is no file yet. Read by the fetch (the
    /// window) and the export (what was applied), the one way both read it.
    public static func load(_ path: String) throws(StageError) -> EventState {
        guard let bytes = try? ByteSource.readAll(path) else { return EventState() }
        guard !bytes.isEmpty, let json = JSONValue(parsing: String(decoding: bytes, as: UTF8.self)) else {
            throw .usage("\(path): not JSON; delete it to start from the lookback")
        }
        return try EventState(json: json, path: path)
    }

    /// Reads a state file's JSON; `path` names it in errors.
    public init(json: JSONValue, path: String) throws(StageError) {
        guard let o = json.object, let list = o["runs"]?.array else {
            throw .usage("\(path): not an events state file (no runs); delete it to start from the lookback")
        }
        var runs: [Applied] = []
        for item in list {
            guard let r = item.object, let run = try? EventRun(record: r), let at = r.text("applied_at"),
                  let appliedAt = Timestamp(iso8601: at) else {
                throw .usage("\(path): a run without run_id, from, to or applied_at: \(item.json)")
            }
            runs.append(Applied(run: run, events: r["events"]?.int ?? 0, leads: r["leads"]?.int ?? 0, appliedAt: appliedAt))
        }
        self.runs = runs
    }

    /// The state as written: watermark, then the runs in window order.
    public var record: Record {
        let list: [JSONValue] = runs.sorted { $0.run.to < $1.run.to }.map { applied in
            var r = applied.run.record
            _ = r.removeValue(forKey: "kind")
            r.append("events", .int(applied.events))
            r.append("leads", .int(applied.leads))
            r.append("applied_at", .string(applied.appliedAt.iso8601))
            return .object(r)
        }
        return ["watermark": watermark.map { .string($0.iso8601) } ?? .null, "runs": .array(list)]
    }

    /// The window of a run ending at `now`: a window already applied that ends there (a rerun
    /// of it), else from the watermark, else `lookbackDays` back.
    public func window(now: Timestamp, lookbackDays: Int, source: String) throws(StageError) -> EventRun {
        if let done = runs.first(where: { $0.run.to == now }) { return done.run }
        guard let mark = watermark else { return EventRun(source: source, from: now.adding(days: -lookbackDays), to: now) }
        guard mark < now else {
            throw .usage("--now \(now.iso8601) is before the watermark \(mark.iso8601) and no run ended then: the window was applied already")
        }
        return EventRun(source: source, from: mark, to: now)
    }

    /// Adds or replaces a run. A new run must start where the watermark is, so windows
    /// neither overlap nor leave gaps.
    public mutating func apply(_ applied: Applied) throws(StageError) {
        if let i = runs.firstIndex(where: { $0.run.runID == applied.run.runID }) {
            guard runs[i].run.from == applied.run.from else {
                throw .data("run \(applied.run.runID) was applied with the window from \(runs[i].run.from.iso8601), not \(applied.run.from.iso8601)")
            }
            runs[i] = applied
            return
        }
        if let mark = watermark, mark != applied.run.from {
            throw .data("run \(applied.run.runID) starts at \(applied.run.from.iso8601) but the watermark is \(mark.iso8601): fetch it again")
        }
        runs.append(applied)
    }
}

/// The events store: the files of one directory (`local-logs/events/`) and how a run is
/// applied to them. `leads.jsonl` (lead records, by run), `analytics_parts.jsonl` (what each
/// run added to each listing hour, sorted by listing and hour: the upsert's memory),
/// `listing_analytics.jsonl` and `listings.jsonl` (rebuilt from the parts) and `state.json`
/// (the watermark and the runs applied), written in that order in one commit, state last.
public struct EventLedger {
    public let dir: String

    public init(dir: String) {
        var dir = dir
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        self.dir = dir
    }

    /// Locks the directory for this run.
    @discardableResult
    public func open(_ stage: Stage) throws(StageError) -> Store { try Store.open([dir], for: stage) }

    var leadsPath: String { dir + "/leads.jsonl" }
    var partsPath: String { dir + "/analytics_parts.jsonl" }
    var analyticsPath: String { dir + "/listing_analytics.jsonl" }
    var listingsPath: String { dir + "/listings.jsonl" }
    var statePath: String { dir + "/state.json" }

    /// Applies the run in `inputs` (lead-score events' output): see the type's description.
    /// With `shard` (lead-export events --shard i/n), the run takes only the records of the
    /// listings shard i owns (`Shard.of(listing_id)`) and leaves its part under
    /// `<dir>/shards/i-of-n/`: see `join`.
    /// `given` (--run-id) names the run of input without a run record, so that shards of a
    /// partitioned stream agree on it whichever records they see.
    public func apply(_ inputs: [String], force: Bool, stage: Stage, shard: Shard? = nil, runID given: String? = nil) throws {
        var state = try EventState.load(statePath)
        let part = shard.map { EventShardPart(ledger: self, shard: $0) }
        stage.shardsReadWholeInput = true
        let before = try part.map { _ in try fingerprint() }
        var run: EventRun?
        // The run's lead records wait in a scratch file, in order; the tally of its hours is
        // held within half of the memory budget, and past it drained into a sort by
        // listing and hour (`RunParts`).
        let leads = try SpoolFile()
        var leadSpans: [SpoolFile.Span] = []
        var leadOrder: [Int] = []
        let encoded = ByteBuffer(capacity: 1 << 12)
        var leadRunIDs = Set<String>()
        var tally = RunTally(runID: "")
        let runParts = RunParts(budget: try ExternalSort.budget(stage.environment))
        var events = 0
        var seen = 0
        // The engagement rows, nearly all of the input, are read on every processor: each
        // worker finds the row's kind on the tape and hands this thread the listing, viewer,
        // channel and time (`EngagementRow`); any other row this thread reads whole.
        // A lead record read (here or by a worker): its actions counted, its own fields' JSON
        // kept in place.
        func take(lead listing: String, seeker: String, actions: [(type: String, message: String?, at: Timestamp)], total: Int,
                  json: UnsafeBufferPointer<UInt8>) throws {
            for action in actions {
                tally.addLead(listingID: listing, seekerID: seeker, leadType: action.type, messageType: action.message, at: action.at)
            }
            events += total
            leadSpans.append(try leads.append(json))
            leadOrder.append(seen)
            try runParts.keep(&tally)
        }
        func handle(_ record: Record, _ location: SourceLocation) throws {
            let kind = record.text("kind")
            if kind == "lead", let id = record.text("run_id") { leadRunIDs.insert(id) }
            // A shard takes the run record and the records of its listings (a record without
            // listing_id is the shard of "", which rejects it).
            if let shard, kind != EventRun.kind, !shard.owns(record.text("listing_id") ?? "") { return }
            switch kind {
            case EventRun.kind:
                let this = try EventRun(record: record)
                if let run, run.runID != this.runID {
                    throw StageError.data("\(location): a second run (\(this.runID)) in a stream of run \(run.runID): apply one run at a time")
                }
                run = this
            case "lead":
                guard let id = record.text("run_id") else { throw RecordRejected("a lead record without run_id") }
                let lead = LeadRow.ownFields(record)
                let read = try RunTally.actions(of: lead)
                leadRunIDs.insert(id)
                encoded.removeAll()
                JSONWriter.write(lead, into: encoded)
                try take(lead: read.listing, seeker: read.seeker, actions: read.actions, total: lead["total_actions"]?.int ?? 0,
                         json: encoded.bytes)
            case let kind? where RunTally.Engagement(rawValue: kind) != nil:
                guard let listing = record.text("listing_id"), !listing.isEmpty else { throw RecordRejected("\(kind) without listing_id") }
                guard let text = record.text("timestamp"), let at = Timestamp(iso8601: text) else {
                    throw RecordRejected("\(kind) without a readable timestamp")
                }
                let viewer = record.text("seeker_id").flatMap { $0.isEmpty ? nil : $0 }
                let channel = record.text("share_channel").flatMap { $0.isEmpty ? nil : $0 }
                tally.addEngagement(kind: kind, listingID: listing, viewer: viewer, channel: channel, at: at)
                events += 1
                try runParts.keep(&tally)
            case "action":
                throw RecordRejected("an unscored lead action: run lead-score events before lead-export events")
            case let kind:
                throw RecordRejected(kind.map { "unknown kind '\($0)'" } ?? "no kind (the input of lead-export events is lead-score events' output)")
            }
        }
        let parser = RecordParser()
        try stage.forEachJSONWritten(inputs, tagged: {
            let keys = KeyCache()
            return { tape, _, out in
                guard tape.isObject else { throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))") }
                guard let tag = EngagementRow.tag(tape) else { return EngagementRow.otherTag }
                if tag == LeadRow.tag { return LeadRow.encode(Record(tape: tape, keys: keys), into: out) }
                return EngagementRow.encode(tape, into: out) ? tag : EngagementRow.otherTag
            }
        }) { written, read, tag, location in
            seen += 1
            if tag == LeadRow.tag {
                // A lead record the worker read: its run, listing, seeker, total_actions and
                // actions, then its own fields' JSON.
                var fields = BinaryFields(written)
                guard let id = fields.string(), let listing = fields.string(), let seeker = fields.string(),
                      let total = fields.int(), let count = fields.int() else {
                    fatalError("a lead row that does not decode")
                }
                leadRunIDs.insert(id)
                if let shard, !shard.owns(listing) { return }
                var actions: [(type: String, message: String?, at: Timestamp)] = []
                for _ in 0..<count {
                    guard let type = fields.string(), case .some(let message) = fields.text(), case .some(.some(let at)) = fields.time() else {
                        fatalError("a lead row that does not decode")
                    }
                    actions.append((type, message, at))
                }
                return try take(lead: listing, seeker: seeker, actions: actions, total: Int(total), json: fields.rest)
            }
            guard let kind = EngagementRow.kind(ofTag: tag) else {
                guard let record = parser.record(read) else { throw RecordRejected("not a JSON object") }
                return try handle(record, location)
            }
            var fields = BinaryFields(written)
            guard case .some(let listing) = fields.bytesOfText(), case .some(let viewer) = fields.bytesOfText(),
                  case .some(let channel) = fields.bytesOfText(), case .some(let at) = fields.time() else {
                fatalError("an engagement row that does not decode")
            }
            if let shard, !shard.owns(listing.map { String(decoding: $0, as: UTF8.self) } ?? "") { return }
            guard let listing, !listing.isEmpty else { throw RecordRejected("\(kind) without listing_id") }
            guard let at else { throw RecordRejected("\(kind) without a readable timestamp") }
            tally.addEngagement(kind, listing: listing, viewer: viewer.flatMap { $0.isEmpty ? nil : $0 },
                                channel: channel.flatMap { $0.isEmpty ? nil : $0 }, at: at)
            events += 1
            try runParts.keep(&tally)
        }
        let runID: String
        if let run, let given, given != run.runID {
            throw StageError.usage("--run-id \(given), but the input is run \(run.runID)")
        }
        if let run {
            runID = run.runID
            if let other = leadRunIDs.first(where: { $0 != runID }) {
                throw StageError.data("lead records of run \(other) in the stream of run \(runID)")
            }
        } else {
            guard events > 0 || stage.recordsIn > 0 else {
                throw StageError.data("no run record and no events: nothing to apply (did an earlier stage of the pipe fail?)")
            }
            guard leadRunIDs.count <= 1 else {
                throw StageError.data("lead records of several runs (\(leadRunIDs.sorted().joined(separator: ", "))): apply one run at a time")
            }
            if let given, let other = leadRunIDs.first, other != given {
                throw StageError.data("lead records of run \(other), but --run-id \(given)")
            }
            runID = given ?? leadRunIDs.first ?? stage.clock.now.iso8601
            if shard == nil || shard?.index == 1 {
                stage.warn("no run record (lead-fetch events starts a run): applied as run \(runID); the watermark is left alone",
                           at: SourceLocation(path: inputs.first ?? "-", line: 1))
            }
        }
        var report = Record()
        report.append("run_id", .string(runID))
        report.append("from", run.map { .string($0.from.iso8601) } ?? .null)
        report.append("to", run.map { .string($0.to.iso8601) } ?? .null)
        let already = state.applied(runID)
        if let already, !force {
            report.append("applied", false)
            report.append("reason", .string("already applied at \(already.appliedAt.iso8601); --force applies it again"))
            stage.summary.append("applied", false)
            if let part, let shard {
                try part.writeReport(["shard": .string(shard.description), "now": .string(stage.clock.now.iso8601),
                                      "fingerprint": .string(before ?? ""), "report": .object(report)], stage: stage)
                return
            }
            try stage.write(report)
            return
        }
        let parts = try runParts.parts(&tally, runID: runID)
        let leadCount = leadSpans.count
        if let part, let shard {
            try part.writeLeads(leads, leadSpans, order: leadOrder, stage: stage)
            let counts = try writeAnalytics(parts, runID: runID, stage: stage, shard: shard)
            if let before, try fingerprint() != before {
                throw StageError.data("\(dir) changed while this shard read it: run the shards again")
            }
            try part.writeReport(["shard": .string(shard.description), "now": .string(stage.clock.now.iso8601),
                                  "fingerprint": .string(before ?? ""), "run": run.map { .object($0.record) } ?? .null,
                                  "run_id": .string(runID), "already": .bool(already != nil), "events": .int(events),
                                  "leads": .int(leadCount), "hours": .int(counts.hours), "new_hours": .int(counts.newHours),
                                  "analytics_rows": .int(counts.rows), "listings": .int(counts.listings),
                                  "replaced_parts": .int(counts.replacedParts)], stage: stage)
            stage.summary.append("shard", .string(shard.description))
            stage.recordsOut = leadCount
            return
        }
        try writeLeads(leads, leadSpans, runID: runID, stage: stage)
        let counts = try writeAnalytics(parts, runID: runID, stage: stage)
        if let runs = runParts.runsOnDisk { stage.summary.append("runs_on_disk", .int(runs)) }
        try finish(report, run: run, state: &state, replaced: already != nil || counts.replacedParts > 0, events: events,
                   leads: leadCount, hours: counts.hours, counts: counts, now: stage.clock.now, stage: stage)
    }

    /// The state with the run applied (state.json, last), and the run's report.
    func finish(_ start: Record, run: EventRun?, state: inout EventState, replaced: Bool, events: Int, leads: Int, hours: Int,
                counts: Counts, now: Timestamp, stage: Stage) throws {
        if let run {
            try state.apply(EventState.Applied(run: run, events: events, leads: leads, appliedAt: now))
            let sink = try stage.openOutput(statePath)
            JSONWriter.writeLine(state.record, into: sink.buffer)
        }
        var report = start
        report.append("applied", true)
        report.append("replaced", .bool(replaced))
        report.append("events", .int(events))
        report.append("leads", .int(leads))
        report.append("hours", .int(hours))
        report.append("new_hours", .int(counts.newHours))
        report.append("analytics_rows", .int(counts.rows))
        report.append("listings", .int(counts.listings))
        report.append("watermark", state.watermark.map { .string($0.iso8601) } ?? .null)
        for field in report.fields where field.key != "run_id" && field.key != "from" && field.key != "to" {
            stage.summary.append(field.key, field.value)
        }
        try stage.write(report)
        stage.recordsOut = leads
    }

    /// leads.jsonl with this run's records in place: the runs before it, this run's records,
    /// the runs after it (records of an earlier try of this run are dropped).
    func writeLeads(_ leads: SpoolFile, _ spans: [SpoolFile.Span], runID: String, stage: Stage) throws {
        let sink = try stage.openOutput(leadsPath)
        var written = false
        func writeRun() throws {
            guard !written else { return }
            written = true
            try leads.readInOrder(spans) { json in
                sink.buffer.append(json)
                sink.buffer.append(10)
                try sink.flushIfNeeded()
            }
        }
        if Stage.fileExists(leadsPath) {
            try stage.readRecords(leadsPath) { lead, location in
                guard let id = lead.text("run_id") else { throw StageError.data("\(location): a lead without run_id") }
                if id == runID { return }
                if runID.precedesInByteOrder(id) { try writeRun() }
                JSONWriter.writeLine(lead, into: sink.buffer)
                try sink.flushIfNeeded()
            }
        }
        try writeRun()
    }

    struct Counts {
        var rows = 0, listings = 0, newHours = 0, replacedParts = 0, hours = 0
    }

    /// The parts file with this run's parts in place of any earlier ones of the run, merged in
    /// listing and hour order, and from it listing_analytics.jsonl and listings.jsonl.
    /// With `shard`, the stored parts of the shard's listings only, into the shard's part.
    /// This thread puts each hour's parts together (`AnalyticsBatch`, whole listings at a
    /// time); the workers make the new parts, merge and write them.
    func writeAnalytics(_ parts: RunParts.Parts, runID: String, stage: Stage, shard: Shard? = nil) throws -> Counts {
        let part = shard.map { EventShardPart(ledger: self, shard: $0) }
        let sinks = [try stage.openOutput(part?.partsPath ?? partsPath), try stage.openOutput(part?.analyticsPath ?? analyticsPath),
                     try stage.openOutput(part?.listingsPath ?? listingsPath)]
        var counts = Counts()
        let batch = AnalyticsBatch(tally: parts.held, runID: runID, workers: stage.workerCount)
        // The hour being put together.
        var key: ListingHour?
        var item = AnalyticsBatch.Item()

        func flush() throws {
            batch.format()
            for chunk in batch.chunks.prefix(batch.used) {
                for (sink, buffer) in zip(sinks, [chunk.parts, chunk.analytics, chunk.listings]) {
                    sink.buffer.append(buffer.bytes)
                    try sink.flushIfNeeded()
                }
                counts.rows += chunk.rows
                counts.newHours += chunk.newHours
                counts.listings += chunk.listingCount
            }
            batch.reset()
        }
        func close() throws {
            guard let done = key else { return }
            if batch.isFull && batch.lastListing != done.listingID { try flush() }
            batch.append(item, listing: done.listingID)
            key = nil
            item = AnalyticsBatch.Item()
        }
        func feed(_ next: ListingHour) throws {
            if let key, key != next {
                if next < key {
                    throw StageError.data("\(partsPath): parts out of order at \(next.listingID) \(next.start.iso8601); it is written sorted, was it edited?")
                }
                try close()
            }
            key = next
        }
        // The run's parts, one ahead.
        var upcoming = try parts.next()
        func feedNew() throws {
            let new = upcoming!
            try feed(new.key)
            if let made = new.made { item.parts.append(made) } else { item.held = new.held }
            counts.hours += 1
            upcoming = try parts.next()
        }
        if Stage.fileExists(partsPath) {
            // The stored parts are read on every processor: a worker makes each line a part,
            // handed over in binary (its run id, then `HourPart.encode`'s form), straight from
            // the tape (`StoredPart`), or through a record for a line of another shape; one of
            // another shard's listings it leaves out (tag 1).
            try stage.readStoreWritten(partsPath, writer: {
                let keys = KeyCache()
                let stored = StoredPart()
                return { tape, _, out in
                    if let shard, !shard.owns(tape.topLevelString("listing_id") ?? "") { return 1 }
                    if stored.encode(tape, into: out) { return 0 }
                    let part = try HourPart(record: Record(tape: tape, keys: keys))
                    out.appendBinary(part.runID)
                    part.encode(into: out)
                    return 0
                }
            }) { bytes, tag, location in
                guard tag == 0 else { return }
                var fields = BinaryFields(bytes)
                guard case .some(.some(let run)) = fields.text(), let old = HourPart(encoded: fields.rest, runID: run) else {
                    throw StageError.io("\(location): a stored part did not read back")
                }
                while let next = upcoming, next.key < old.key { try feedNew() }
                if old.runID == runID { counts.replacedParts += 1; return }
                try feed(old.key)
                item.parts.append(old)
            }
        }
        while upcoming != nil { try feedNew() }
        try close()
        try flush()
        return counts
    }
}

/// Hours of the analytics, whole listings at a time, made into their three files' lines on
/// every processor: each worker a run of whole listings, so that a listing's totals are one
/// worker's.
final class AnalyticsBatch: @unchecked Sendable {
    /// One listing hour: the run's new part (its number in the held tally, or made, in
    /// `parts`) and the stored parts of other runs.
    struct Item {
        var held: Int32 = -1
        var parts: [HourPart] = []
    }

    final class Chunk {
        let parts = ByteBuffer(capacity: 1 << 20)
        let analytics = ByteBuffer(capacity: 1 << 20)
        let listings = ByteBuffer(capacity: 1 << 14)
        var rows = 0, newHours = 0, listingCount = 0
    }

    let tally: RunTally?
    let runID: String
    private(set) var items: [Item] = []
    /// The items where a listing starts.
    private var listingStarts: [Int] = []
    private(set) var lastListing: String?
    let chunks: [Chunk]
    private(set) var used = 0
    /// Hours a batch takes before it ends, at the next listing.
    static let size = 16_384

    init(tally: RunTally?, runID: String, workers: Int) {
        self.tally = tally
        self.runID = runID
        chunks = (0..<max(1, workers)).map { _ in Chunk() }
        items.reserveCapacity(AnalyticsBatch.size)
    }

    var isFull: Bool { items.count >= AnalyticsBatch.size }

    func append(_ item: Item, listing: String) {
        if listing != lastListing {
            listingStarts.append(items.count)
            lastListing = listing
        }
        items.append(item)
    }

    func reset() {
        items.removeAll(keepingCapacity: true)
        listingStarts.removeAll(keepingCapacity: true)
        lastListing = nil
        used = 0
    }

    /// Splits the items into runs of whole listings, one per worker, and writes each.
    func format() {
        guard !items.isEmpty else { return }
        var bounds = [0]
        var next = 0
        for c in 1..<chunks.count {
            let target = items.count * c / chunks.count
            while next < listingStarts.count && listingStarts[next] < target { next += 1 }
            if next < listingStarts.count, listingStarts[next] > bounds.last! { bounds.append(listingStarts[next]) }
        }
        bounds.append(items.count)
        used = bounds.count - 1
        let cuts = bounds
        DispatchQueue.concurrentPerform(iterations: used) { c in
            write(items[cuts[c]..<cuts[c + 1]], into: chunks[c])
        }
    }

    private func write(_ items: ArraySlice<Item>, into chunk: Chunk) {
        chunk.parts.removeAll()
        chunk.analytics.removeAll()
        chunk.listings.removeAll()
        (chunk.rows, chunk.newHours, chunk.listingCount) = (0, 0, 0)
        var totals: ListingTotals?
        // The tally's cells asked for some items ahead, and the heads of their lists fewer.
        let far = 16, near = 6
        for k in items.indices {
            if let tally {
                if k + far < items.endIndex, items[k + far].held >= 0 { tally.prefetch(items[k + far].held, lists: false) }
                if k + near < items.endIndex, items[k + near].held >= 0 { tally.prefetch(items[k + near].held, lists: true) }
            }
            let item = items[k]
            var cell = item.parts
            if item.held >= 0, let tally {
                var part = tally.part(item.held)
                part.runID = runID
                cell.append(part)
            }
            if cell.count > 1 { cell.sort { $0.runID.precedesInByteOrder($1.runID) } }
            for part in cell {
                part.writeJSON(into: chunk.parts)
                chunk.parts.append(10)
            }
            let merged = HourPart.merge(cell)
            HourPart.writeAnalyticsRow(merged.counts, uniqueViews: merged.uniqueViews, uniqueLeads: merged.uniqueLeads,
                                       into: chunk.analytics)
            chunk.analytics.append(10)
            chunk.rows += 1
            if !cell.contains(where: { $0.runID != runID }) { chunk.newHours += 1 }
            if totals?.listingID != cell[0].key.listingID {
                if let done = totals { JSONWriter.writeLine(done.record, into: chunk.listings); chunk.listingCount += 1 }
                totals = ListingTotals(listingID: cell[0].key.listingID)
            }
            totals!.add(merged.counts)
        }
        if let done = totals { JSONWriter.writeLine(done.record, into: chunk.listings); chunk.listingCount += 1 }
    }
}

/// The run's parts in listing and hour order: the tally's, when it stayed within half of
/// the memory budget; past it the tally is drained into an `ExternalSort` by listing and hour
/// each time it reaches that, and the pieces of each hour are combined as the sort is read.
public final class RunParts {
    let budget: Int
    var sorter: ExternalSort?
    let line = ByteBuffer(capacity: 1 << 12)
    let key = ByteBuffer(capacity: 64)

    init(budget: Int) { self.budget = budget }

    /// Scratch runs the parts went through on disk; nil when the tally was all held.
    var runsOnDisk: Int? { sorter?.spilledRuns }

    /// Drains `tally` into the sort when it takes more than half of the budget (the sort holds a quarter).
    func keep(_ tally: inout RunTally) throws {
        if tally.bytes > budget / 2 { try drain(&tally) }
    }

    private func drain(_ tally: inout RunTally) throws {
        let sorter = self.sorter ?? ExternalSort(budget: budget)
        self.sorter = sorter
        try tally.drain { part in
            // Listing id, a NUL, then the hour big-endian (offset so that it sorts as signed).
            key.removeAll()
            key.append(part.key.listingID)
            key.append(0)
            let hour = UInt64(bitPattern: part.key.hour) ^ (1 << 63)
            for i in (0..<8).reversed() { key.append(UInt8(truncatingIfNeeded: hour >> (8 * UInt64(i)))) }
            line.removeAll()
            part.encode(into: line)
            try sorter.add(key: key.bytes, line: line.bytes)
        }
    }

    /// The parts, each of run `runID`.
    func parts(_ tally: inout RunTally, runID: String) throws -> Parts {
        guard sorter != nil else { return Parts(held: tally, runID: runID) }
        try drain(&tally)
        return Parts(cursor: try sorter!.sorted(), runID: runID)
    }

    /// One part at a time.
    final class Parts {
        /// The tally held, and its cells in order: the parts are made one at a time.
        let held: RunTally?
        let order: [RunTally.Ordered]
        var index = 0
        let cursor: ExternalSort.Cursor?
        let runID: String
        var pending: HourPart?
        var started = false

        init(held: RunTally, runID: String) {
            self.held = held
            order = held.order()
            cursor = nil
            self.runID = runID
        }

        init(cursor: ExternalSort.Cursor, runID: String) {
            held = nil
            order = []
            self.cursor = cursor
            self.runID = runID
        }

        /// A part of the run: its key, and its number in the held tally or the part made.
        struct New {
            var key: ListingHour
            var held: Int32 = -1
            var made: HourPart?
        }

        func next() throws -> New? {
            guard let cursor else {
                guard index < order.count else { return nil }
                defer { index += 1 }
                return New(key: held!.key(order[index]), held: order[index].cell)
            }
            func read() throws -> HourPart? {
                guard try cursor.next() else { return nil }
                guard let part = HourPart(encoded: cursor.line, runID: runID) else {
                    throw StageError.io("scratch file of the run's parts: a part did not read back")
                }
                return part
            }
            if !started { started = true; pending = try read() }
            guard var part = pending else { return nil }
            while let more = try read() {
                if more.key == part.key { part.combine(more); continue }
                pending = more
                return New(key: part.key, made: part)
            }
            pending = nil
            return New(key: part.key, made: part)
        }
    }
}

/// An engagement row (view, impression, share, save) of lead-export events' input as a
/// worker hands it over: its listing_id, seeker_id and share_channel texts and its time
/// (nil when unreadable), in `BinaryFields`, tagged with its kind.
enum EngagementRow {
    static let kinds = RunTally.Engagement.allCases.map(\.rawValue)
    /// The kinds a worker reads, by tag - 1: the engagement kinds, then lead records.
    static let tagged = kinds + ["lead"]
    /// A row of another kind (or an unusual one): read whole.
    static let otherTag = 0

    static func kind(ofTag tag: Int) -> RunTally.Engagement? { tag >= 1 && tag <= kinds.count ? RunTally.Engagement.allCases[tag - 1] : nil }

    /// The tag of an engagement row (or a lead record: `LeadRow.tag`) whose kind is a plain
    /// string, nil for any other.
    static func tag(_ tape: JSONTape) -> Int? {
        guard let node = tape.topLevelMember("kind"), tape.kind(node) == LJ_STRING.rawValue, !tape.valueIsEscaped(node) else { return nil }
        let kind = tape.rawStringBody(node)
        for (i, name) in tagged.enumerated() where name.utf8.count == kind.count && name.utf8.elementsEqual(kind) {
            // An escaped key could be another "kind" that the record would read first.
            if tape.children(0).contains(where: { tape.keyIsEscaped($0) }) { return nil }
            return i + 1
        }
        return nil
    }

    /// Encodes the listing, viewer, channel and time of an engagement row straight from its
    /// tape (no record built), as `record.text` would read them: a member missing or null is
    /// nil, a plain string its bytes. Returns false, having written nothing, when one of them
    /// is anything else (a number, an escaped string, ...): this thread then reads it whole.
    static func encode(_ tape: JSONTape, into out: ByteBuffer) -> Bool {
        func plain(_ key: StaticString) -> UnsafeBufferPointer<UInt8>?? {
            guard let node = tape.topLevelMember(key) else { return .some(nil) }
            switch tape.kind(node) {
            case LJ_NULL.rawValue: return .some(nil)
            case LJ_STRING.rawValue where !tape.valueIsEscaped(node): return .some(tape.rawStringBody(node))
            default: return nil
            }
        }
        guard case .some(let listing) = plain("listing_id"), case .some(let viewer) = plain("seeker_id"),
              case .some(let channel) = plain("share_channel"), case .some(let time) = plain("timestamp") else { return false }
        out.appendBinary(listing)
        out.appendBinary(viewer)
        out.appendBinary(channel)
        out.appendBinary(time.flatMap { Timestamp.parse($0) })
        return true
    }
}

/// A line of analytics_parts.jsonl encoded straight from its tape, as `HourPart(record:)`
/// reads it and `HourPart.encode` writes it, after its run id. Only a line of the shape the
/// stage writes is encoded (strings without escapes, counts as plain integers, lists of
/// strings, a share breakdown of integers; any member missing or null where a record reads
/// it as absent); for any other `encode` writes nothing and returns false, and the line is
/// read through a record. One per worker: its scratch is reused from line to line.
final class StoredPart {
    private var counts = [Int64](repeating: 0, count: 9)
    private var seen = [Bool](repeating: false, count: StoredPart.names.count)
    private var channels: [(key: UnsafeBufferPointer<UInt8>, count: Int64)] = []

    /// The members read, in the order `encode` numbers them (the counts in `HourPart.encode`'s order).
    nonisolated(unsafe) static let names: [UnsafeBufferPointer<UInt8>] = {
        let all: [StaticString] = ["listing_id", "date", "hour", "run_id", "total_views", "impressions", "shares", "saves",
                                   "total_leads", "phone_leads", "message_leads", "email_leads", "appointment_leads",
                                   "viewers", "seekers", "share_breakdown", "first_at", "last_at"]
        return all.map { UnsafeBufferPointer(start: $0.utf8Start, count: $0.utf8CodeUnitCount) }
    }()

    func encode(_ tape: JSONTape, into out: ByteBuffer) -> Bool {
        var listing: UnsafeBufferPointer<UInt8>?, date: UnsafeBufferPointer<UInt8>?, run: UnsafeBufferPointer<UInt8>?
        var hour: Int64?, first: UnsafeBufferPointer<UInt8>?, last: UnsafeBufferPointer<UInt8>?
        for i in counts.indices { counts[i] = 0 }
        for i in seen.indices { seen[i] = false }
        channels.removeAll(keepingCapacity: true)
        var viewers = -1, seekers = -1, breakdown = -1
        func plainString(_ node: Int) -> UnsafeBufferPointer<UInt8>? {
            tape.kind(node) == LJ_STRING.rawValue && !tape.valueIsEscaped(node) ? tape.rawStringBody(node) : nil
        }
        func plainInt(_ node: Int) -> Int64? {
            guard tape.kind(node) == LJ_INT.rawValue else { return nil }
            let raw = tape.rawValue(node)
            var v: Int64 = 0, negative = false, digits = 0
            for (i, b) in raw.enumerated() {
                if i == 0 && b == 45 { negative = true; continue }
                guard b >= 48 && b <= 57, digits < 18 else { return nil }
                v = v * 10 + Int64(b - 48)
                digits += 1
            }
            return digits > 0 ? (negative ? -v : v) : nil
        }
        let names = StoredPart.names
        for node in tape.children(0) {
            guard !tape.keyIsEscaped(node) else { return false }
            let key = tape.rawKey(node)
            guard let k = names.firstIndex(where: { $0.count == key.count && $0.elementsEqual(key) }) else { continue }
            // The first of a key is the one a record reads.
            if seen[k] { continue }
            seen[k] = true
            let isNull = tape.kind(node) == LJ_NULL.rawValue
            switch k {
            case 0: guard let v = plainString(node) else { return false }; listing = v
            case 1: guard let v = plainString(node) else { return false }; date = v
            case 2: guard let v = plainInt(node) else { return false }; hour = v
            case 3: guard let v = plainString(node) else { return false }; run = v
            case 4...12:
                if isNull { continue }
                guard let v = plainInt(node) else { return false }
                counts[k - 4] = v
            case 13, 14, 15:
                if isNull { continue }
                guard tape.kind(node) == (k == 15 ? LJ_OBJECT.rawValue : LJ_ARRAY.rawValue) else { return false }
                if k == 13 { viewers = node } else if k == 14 { seekers = node } else { breakdown = node }
            default:
                if isNull { continue }
                guard let v = plainString(node) else { return false }
                if k == 16 { first = v } else { last = v }
            }
        }
        guard let listing, let date, let day = Timestamp.parse(date), let hour, (0..<24).contains(hour), let run else { return false }
        // The share breakdown: each channel once (the last of a repeated one, as a record's
        // fields set into a dictionary), and its count.
        if breakdown >= 0 {
            for node in tape.children(breakdown) {
                guard !tape.keyIsEscaped(node), let n = plainInt(node) else { return false }
                let key = tape.rawKey(node)
                if let i = channels.firstIndex(where: { $0.key.elementsEqual(key) }) { channels[i].count = n } else { channels.append((key, n)) }
            }
        }
        // A record keeps the strings of a list and drops the rest: a string with escapes is
        // read through it. The strings each list keeps, counted.
        func kept(_ list: Int) -> Int64? {
            guard list >= 0 else { return 0 }
            var n: Int64 = 0
            for node in tape.children(list) {
                if plainString(node) != nil { n += 1 } else if tape.kind(node) == LJ_STRING.rawValue { return nil }
            }
            return n
        }
        guard let viewerCount = kept(viewers), let seekerCount = kept(seekers) else { return false }
        out.appendBinary(run)
        out.appendBinary(listing)
        out.appendBinary(ListingHour.hour(of: day.adding(seconds: hour * 3600)))
        for v in counts { out.appendBinary(v) }
        out.appendBinary(Int64(channels.count))
        for (channel, n) in channels { out.appendBinary(channel); out.appendBinary(n) }
        func write(_ list: Int, _ n: Int64) {
            out.appendBinary(n)
            guard list >= 0 else { return }
            for node in tape.children(list) { if let id = plainString(node) { out.appendBinary(id) } }
        }
        write(viewers, viewerCount)
        write(seekers, seekerCount)
        out.appendBinary(first.flatMap { Timestamp.parse($0) })
        out.appendBinary(last.flatMap { Timestamp.parse($0) })
        return true
    }
}

/// A lead record of lead-export events' input as a worker hands it over: its run_id,
/// listing_id, seeker_id, total_actions and actions (type, message type, time) in
/// `BinaryFields`, then the JSON of its own fields as leads.jsonl keeps it. A record that
/// would be rejected, or whose fields are not what the tally reads, goes to the reading
/// thread whole (`EngagementRow.otherTag`), which rejects it with its reason.
enum LeadRow {
    static let tag = EngagementRow.kinds.count + 1

    /// The lead's own fields: not kind, not the fields a schema gave the stream's other
    /// records (null here), and no _origin (a lead sums many events).
    static func ownFields(_ record: Record) -> Record {
        var lead = Record()
        for field in LeadGroups.leadFields { lead.append(field, record[field] ?? .null) }
        return lead
    }

    /// Encodes `record` and returns `tag`, or `EngagementRow.otherTag` when this thread must
    /// read it.
    static func encode(_ record: Record, into out: ByteBuffer) -> Int {
        guard let id = record.text("run_id") else { return EngagementRow.otherTag }
        let lead = ownFields(record)
        guard let read = try? RunTally.actions(of: lead) else { return EngagementRow.otherTag }
        out.appendBinary(id)
        out.appendBinary(read.listing)
        out.appendBinary(read.seeker)
        out.appendBinary(Int64(lead["total_actions"]?.int ?? 0))
        out.appendBinary(Int64(read.actions.count))
        for action in read.actions {
            out.appendBinary(action.type)
            out.appendBinary(action.message)
            out.appendBinary(action.at)
        }
        JSONWriter.write(lead, into: out)
        return tag
    }
}
