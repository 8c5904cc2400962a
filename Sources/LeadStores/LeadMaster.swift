import LeadRules
import StageKit

/// The lead master's store: `<logs>/leads/` holds the master `leads.jsonl` (every lead,
/// tagged and scored), the merge log `dedupe.jsonl`, the audit log `audit.jsonl` and the
/// import archive `imports/`. Stages that read the master and write it again open the
/// store first (`open`), so runs take turns.
public struct LeadMaster {
    public let logs: String
    public let path: String

    /// The master at `master`, or `<logs>/leads/leads.jsonl`.
    public init(logs: String, master: String? = nil) {
        self.logs = logs
        path = master ?? logs + "/leads/leads.jsonl"
    }

    public var dedupeLogPath: String { logs + "/leads/dedupe.jsonl" }
    public var auditPath: String { logs + "/leads/audit.jsonl" }

    /// Locks the master's directory (and the logs', when elsewhere) for this run.
    @discardableResult
    public func open(_ stage: Stage, also: [String] = []) throws(StageError) -> Store {
        try Store.open([AtomicFiles.directory(of: path), AtomicFiles.directory(of: auditPath)] + also, for: stage)
    }

    /// The master, or a usage error saying how to make one.
    public func require() throws(StageError) -> String {
        guard Stage.fileExists(path) else { throw .usage("no master lead file at \(path) (run make leads, or give --master)") }
        return path
    }

    /// Rewrites the master in place: each lead through `body`, in order, written back (unless
    /// `dryRun`), counted as the run's input and output.
    public func rewrite(_ stage: Stage, dryRun: Bool = false, _ body: (inout Record, SourceLocation) throws -> Void) throws {
        let sink = dryRun ? nil : try stage.openOutput(path)
        try stage.readRecords(path, counting: true) { record, location in
            var lead = record
            try body(&lead, location)
            stage.schema?.fill(&lead)
            if let sink {
                JSONWriter.writeLine(lead, into: sink.buffer)
                try sink.flushIfNeeded()
                stage.recordsOut += 1
            }
        }
    }
}

/// The dedupe of `lead-normalize --dedupe`: incoming leads wait in a spool file, grouped by
/// address_key, while the master is read; each master lead takes in its group, then the new
/// groups follow in the order first seen. Memory holds only the keys, while they take no more
/// than half the memory budget (`LEAD_MEMORY`, see `expect`); past it the incoming leads are
/// sorted by key instead (`ExternalSort`, on disk past a quarter of the budget), the master is
/// sorted by key the same way, and the two are merged: the master comes out in key order, new
/// leads among the others.
/// Either way the merge log is written out as it is made (`Store.logSink`).
public struct LeadDeduper {
    let stage: Stage
    let merge: LeadMerge
    let spool: SpoolFile
    var groups: [String: Int] = [:]
    var members: [[(span: SpoolFile.Span, origin: String)]] = []
    var order: [String] = []
    let scratch = ByteBuffer(capacity: 1 << 12)
    /// Reads spooled and sorted leads back into records (one parser for the run).
    let reader = RecordParser()
    let now: String
    /// Incoming leads only update the master's: one with a key the master lacks is rejected.
    public var existingOnly = false
    let budget: Int
    /// What the groups take in memory, about.
    var held = 0
    /// The incoming leads sorted by key, once the groups would pass half the budget.
    var sorter: ExternalSort?
    let line = ByteBuffer(capacity: 1 << 12)

    public init(stage: Stage, merge: LeadMerge) throws(StageError) {
        self.stage = stage
        self.merge = merge
        spool = try SpoolFile()
        now = stage.clock.now.iso8601
        budget = try ExternalSort.budget(stage.environment)
    }

    /// Where a lead came from, for the log: its import row when it has one.
    static func origin(_ lead: Record, fallback: String) -> String {
        if let file = lead.text(LeadFields.importFile), let line = lead.text(LeadFields.importLine) { return file + ":" + line }
        return fallback
    }

    /// Incoming leads whose text is this many bytes are sorted from the start: held, their keys
    /// would take about 60% of it (a lead line of some 650 bytes, 390 held), which past half the
    /// budget is better not held at all (memory freed in small pieces is not given back).
    /// Standard input, of unknown size, starts held.
    public mutating func expect(inputs: [String]) {
        var bytes = 0
        for path in inputs {
            guard let size = Stage.inputTextSize(path) else { return }
            bytes += size
        }
        if bytes / 10 * 6 > budget / 2 { sorter = ExternalSort(budget: budget) }
    }

    /// Bytes a grouped lead takes besides its key and origin: the dictionary entry, the group's
    /// array, the key in the first-seen order, the strings' headers.
    static let memberOverhead = 200

    /// Takes one normalised lead (with created_at and updated_at) and its JSON.
    public mutating func add(_ lead: Record, json: UnsafeBufferPointer<UInt8>, at location: SourceLocation) throws(StageError) {
        let key = lead.text(LeadNormalizer.keyField) ?? ""
        let origin = LeadDeduper.origin(lead, fallback: location.description)
        if let sorter {
            try sorter.add(key: key, line: LeadDeduper.sortLine(origin, json, into: line))
            return
        }
        let span = try spool.append(json)
        if let g = groups[key] {
            members[g].append((span, origin))
        } else {
            groups[key] = members.count
            members.append([(span, origin)])
            order.append(key)
            held += key.utf8.count
        }
        held += origin.utf8.count + LeadDeduper.memberOverhead
        if held > budget / 2 { try sortFromHere() }
    }

    /// A sorted line: the lead's origin, a NUL (no JSON text holds one), its JSON.
    static func sortLine(_ origin: String, _ json: UnsafeBufferPointer<UInt8>, into line: ByteBuffer) -> UnsafeBufferPointer<UInt8> {
        line.removeAll()
        line.append(origin)
        line.append(0)
        line.append(json)
        return line.bytes
    }

    /// Splits a sorted line into origin and JSON.
    static func split(_ line: UnsafeBufferPointer<UInt8>) -> (origin: String, json: UnsafeBufferPointer<UInt8>) {
        let nul = line.firstIndex(of: 0) ?? -1
        return (String(decoding: UnsafeBufferPointer(rebasing: line[..<max(nul, 0)]), as: UTF8.self),
                UnsafeBufferPointer(rebasing: line[(nul + 1)...]))
    }

    /// The groups held so far go to the sorter (each group's leads in the order they came),
    /// and every later lead goes straight there.
    mutating func sortFromHere() throws(StageError) {
        let sorter = ExternalSort(budget: budget)
        for key in order {
            for member in members[groups[key]!] {
                try spool.read(member.span, into: scratch)
                try sorter.add(key: key, line: LeadDeduper.sortLine(member.origin, scratch.bytes, into: line))
            }
        }
        groups = [:]
        members = []
        order = []
        held = 0
        self.sorter = sorter
    }

    func load(_ span: SpoolFile.Span) throws -> Record {
        try spool.read(span, into: scratch)
        return try parse(scratch.bytes)
    }

    func parse(_ json: UnsafeBufferPointer<UInt8>) throws -> Record {
        guard let record = reader.record(json) else { throw StageError.io("spool file: a lead did not read back") }
        return record
    }

    /// Counts, and the merge log written as it is made.
    struct Tally {
        var masterCount = 0, duplicates = 0, changedLeads = 0, newLeads = 0, notInMaster = 0, otherShards = 0
        let log: ByteSink
    }

    /// `incoming` merged into `kept`, one at a time, each merge logged.
    func absorb(_ kept: Record, keptOrigin: String, tally: inout Tally,
                _ incoming: () throws -> (origin: String, lead: Record)?) throws -> Record {
        var lead = kept
        var changedAny = false
        while let (origin, record) = try incoming() {
            tally.duplicates += 1
            let outcome = merge.merge(kept: lead, incoming: record)
            var entry = Record()
            entry.append("at", .string(now))
            entry.append("key", .string(lead.text(LeadNormalizer.keyField) ?? ""))
            entry.append("policy", .string(merge.rules.policy.rawValue))
            entry.append("kept", .string(keptOrigin))
            entry.append("merged", .string(origin))
            entry.append("fields_changed", .array(outcome.changed.map { .string($0) }))
            entry.append("dnama_blocked", outcome.blocked.isEmpty ? .null : .object(outcome.blocked))
            JSONWriter.writeLine(entry, into: tally.log.buffer)
            try tally.log.flushIfNeeded()
            lead = outcome.lead
            if !outcome.changed.isEmpty { changedAny = true }
        }
        if changedAny {
            lead["updated_at"] = .string(now)
            tally.changedLeads += 1
        }
        return lead
    }

    /// A lead of `--existing-only` whose key the master lacks goes to the rejects, where it came from.
    func rejectNotInMaster(_ key: String, origin: String, json: UnsafeBufferPointer<UInt8>) throws(StageError) {
        let colon = origin.lastIndex(of: ":")
        let location = SourceLocation(path: colon.map { String(origin[..<$0]) } ?? origin,
                                      line: colon.flatMap { Int(origin[origin.index(after: $0)...]) } ?? 0)
        try stage.reject("no lead with address_key '\(key)' in the master (--existing-only)", at: location, raw: json)
    }

    /// Reads the master (when there is one): each lead of this run's shard, its hand edits
    /// stamped, with its key and where it was read.
    /// Returns how many it read of this shard and of others.
    func readMaster(_ master: String?, _ body: (String, Record, SourceLocation) throws -> Void) throws -> (ours: Int, others: Int) {
        var ours = 0, others = 0
        guard let master, master != "-", Stage.fileExists(master) else { return (0, 0) }
        let clock = stage.clock.now
        try stage.readRecords(master) { original, location in
            guard let key = original.text(LeadNormalizer.keyField) else {
                throw StageError.io("\(location): a master lead without address_key (was it made by lead-normalize --dedupe?)")
            }
            // With --shard, this run writes its shard of the master: the leads whose key it owns.
            if let shard = stage.shard, !shard.owns(key) {
                others += 1
                return
            }
            ours += 1
            var record = original
            merge.rules.tracking.stampEdits(&record, at: clock, by: "hand edit")
            try body(key, record, location)
        }
        return (ours, others)
    }

    public mutating func finish(master: String?, log logPath: String, store: Store) throws {
        var tally = Tally(log: try store.logSink(logPath))
        if let sorter {
            try finishSorted(sorter, master: master, tally: &tally)
        } else {
            try finishHeld(master: master, tally: &tally)
        }
        stage.summary.append("master", .int(tally.masterCount))
        stage.summary.append("new", .int(tally.newLeads))
        if existingOnly { stage.summary.append("not_in_master", .int(tally.notInMaster)) }
        if let shard = stage.shard {
            stage.summary.append("shard", .string(shard.description))
            stage.summary.append("master_other_shards", .int(tally.otherShards))
        }
        stage.summary.append("duplicates", .int(tally.duplicates))
        stage.summary.append("changed", .int(tally.changedLeads))
        stage.summary.append("policy", .string(merge.rules.policy.rawValue))
        if let sorter { stage.summary.append("runs_on_disk", .int(sorter.spilledRuns)) }
    }

    /// The groups held: the master streams past them in its own order, then the new groups
    /// follow in the order first seen.
    func finishHeld(master: String?, tally: inout Tally) throws {
        var done = [Bool](repeating: false, count: self.members.count)
        func members(ofGroup g: Int, from first: Int) -> () throws -> (origin: String, lead: Record)? {
            var next = first
            return {
                guard next < self.members[g].count else { return nil }
                defer { next += 1 }
                return (self.members[g][next].origin, try self.load(self.members[g][next].span))
            }
        }
        (tally.masterCount, tally.otherShards) = try readMaster(master) { key, record, location in
            guard let g = groups[key], !done[g] else { return try stage.write(record) }
            done[g] = true
            try stage.write(try absorb(record, keptOrigin: LeadDeduper.origin(record, fallback: location.description),
                                       tally: &tally, members(ofGroup: g, from: 0)))
        }
        // The new groups in the order first seen: their first leads were spooled in that
        // order, and are read back a block at a time (the others one by one).
        let new = order.indices.filter { !done[$0] }
        var next = 0
        try spool.readInOrder(new.map { self.members[$0][0].span }) { first in
            let g = new[next]
            next += 1
            let key = order[g], group = self.members[g]
            if existingOnly {
                tally.notInMaster += 1
                try rejectNotInMaster(key, origin: group[0].origin, json: first)
                for member in group.dropFirst() {
                    tally.notInMaster += 1
                    try spool.read(member.span, into: scratch)
                    try rejectNotInMaster(key, origin: member.origin, json: scratch.bytes)
                }
                return
            }
            tally.newLeads += 1
            if group.count == 1 {
                try stage.writeLine(first)
                return
            }
            try stage.write(try absorb(try parse(first), keptOrigin: group[0].origin, tally: &tally, members(ofGroup: g, from: 1)))
        }
    }

    /// The incoming leads sorted by key: the master is sorted by key too (with its edits
    /// stamped), and the two merged; equal keys keep the order they came in.
    func finishSorted(_ incoming: ExternalSort, master: String?, tally: inout Tally) throws {
        // The incoming leads' memory is given back before the master is sorted in its turn.
        try incoming.spillHeld()
        let masterSort = ExternalSort(budget: budget)
        let encoded = ByteBuffer(capacity: 1 << 12)
        (tally.masterCount, tally.otherShards) = try readMaster(master) { key, record, location in
            encoded.removeAll()
            JSONWriter.write(record, into: encoded)
            try masterSort.add(key: key, line: LeadDeduper.sortLine(LeadDeduper.origin(record, fallback: location.description),
                                                                 encoded.bytes, into: line))
        }
        let m = try masterSort.sorted(), i = try incoming.sorted()
        var mHas = try m.next(), iHas = try i.next()
        let first = ByteBuffer(capacity: 1 << 12)
        // The incoming leads of `key` after the current one, read as they are merged.
        func rest(of key: [UInt8]) -> () throws -> (origin: String, lead: Record)? {
            return {
                guard iHas, key.withUnsafeBufferPointer({ ExternalSort.compare(i.key, $0) == 0 }) else { return nil }
                let (origin, json) = LeadDeduper.split(i.line)
                let lead = try parse(json)
                iHas = try i.next()
                return (origin, lead)
            }
        }
        while mHas || iHas {
            let order = mHas && iHas ? ExternalSort.compare(m.key, i.key) : (mHas ? -1 : 1)
            if order < 0 {
                // A master lead no incoming lead has the key of (or a second with that key).
                try stage.writeLine(LeadDeduper.split(m.line).json)
                mHas = try m.next()
                continue
            }
            let key = Array(i.key)
            if order == 0 {
                let (origin, json) = LeadDeduper.split(m.line)
                let kept = try parse(json)
                try stage.write(try absorb(kept, keptOrigin: origin, tally: &tally, rest(of: key)))
                mHas = try m.next()
                continue
            }
            // A new key: its first lead, then the others merged into it.
            let keyText = String(decoding: key, as: UTF8.self)
            if existingOnly {
                while iHas, key.withUnsafeBufferPointer({ ExternalSort.compare(i.key, $0) == 0 }) {
                    tally.notInMaster += 1
                    let (origin, json) = LeadDeduper.split(i.line)
                    try rejectNotInMaster(keyText, origin: origin, json: json)
                    iHas = try i.next()
                }
                continue
            }
            tally.newLeads += 1
            let (origin, json) = LeadDeduper.split(i.line)
            first.removeAll()
            first.append(json)
            iHas = try i.next()
            if !iHas || key.withUnsafeBufferPointer({ ExternalSort.compare(i.key, $0) != 0 }) {
                try stage.writeLine(first.bytes)
                continue
            }
            try stage.write(try absorb(try parse(first.bytes), keptOrigin: origin, tally: &tally, rest(of: key)))
        }
    }
}
