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
/// groups follow in the order first seen. Memory holds only the keys.
public struct LeadDeduper {
    let stage: Stage
    let merge: LeadMerge
    let spool: SpoolFile
    var groups: [String: Int] = [:]
    var members: [[(span: SpoolFile.Span, origin: String)]] = []
    var order: [String] = []
    let scratch = ByteBuffer(capacity: 1 << 12)
    let now: String
    /// Incoming leads only update the master's: one with a key the master lacks is rejected.
    public var existingOnly = false

    public init(stage: Stage, merge: LeadMerge) throws(StageError) {
        self.stage = stage
        self.merge = merge
        spool = try SpoolFile()
        now = stage.clock.now.iso8601
    }

    /// Where a lead came from, for the log: its import row when it has one.
    static func origin(_ lead: Record, fallback: String) -> String {
        if let file = lead.text(LeadFields.importFile), let line = lead.text(LeadFields.importLine) { return file + ":" + line }
        return fallback
    }

    /// Takes one normalised lead (with created_at and updated_at) and its JSON.
    public mutating func add(_ lead: Record, json: UnsafeBufferPointer<UInt8>, at location: SourceLocation) throws(StageError) {
        let span = try spool.append(json)
        let key = lead.text(LeadNormalizer.keyField) ?? ""
        let origin = LeadDeduper.origin(lead, fallback: location.description)
        if let g = groups[key] {
            members[g].append((span, origin))
        } else {
            groups[key] = members.count
            members.append([(span, origin)])
            order.append(key)
        }
    }

    func load(_ span: SpoolFile.Span) throws -> Record {
        try spool.read(span, into: scratch)
        guard let value = JSONValue(parsing: scratch.string), let record = value.object else {
            throw StageError.io("spool file: a lead did not read back")
        }
        return record
    }

    public mutating func finish(master: String?, log logPath: String, store: Store) throws {
        var done = [Bool](repeating: false, count: members.count)
        var entries: [Record] = []
        var masterCount = 0, duplicates = 0, changedLeads = 0
        func absorb(_ kept: Record, keptOrigin: String, group: Int, from first: Int) throws -> Record {
            var lead = kept
            var changedAny = false
            for member in members[group].dropFirst(first) {
                duplicates += 1
                let incoming = try load(member.span)
                let outcome = merge.merge(kept: lead, incoming: incoming)
                var entry = Record()
                entry.append("at", .string(now))
                entry.append("key", .string(lead.text(LeadNormalizer.keyField) ?? ""))
                entry.append("policy", .string(merge.rules.policy.rawValue))
                entry.append("kept", .string(keptOrigin))
                entry.append("merged", .string(member.origin))
                entry.append("fields_changed", .array(outcome.changed.map { .string($0) }))
                entry.append("dnama_blocked", outcome.blocked.isEmpty ? .null : .object(outcome.blocked))
                entries.append(entry)
                lead = outcome.lead
                if !outcome.changed.isEmpty { changedAny = true }
            }
            if changedAny {
                lead["updated_at"] = .string(now)
                changedLeads += 1
            }
            return lead
        }
        var otherShards = 0
        if let master, master != "-", Stage.fileExists(master) {
            let clock = stage.clock.now
            try stage.readRecords(master) { original, location in
                guard let key = original.text(LeadNormalizer.keyField) else {
                    throw StageError.io("\(location): a master lead without address_key (was it made by lead-normalize --dedupe?)")
                }
                // With --shard, this run writes its shard of the master: the leads whose key it owns.
                if let shard = stage.shard, !shard.owns(key) {
                    otherShards += 1
                    return
                }
                masterCount += 1
                var record = original
                merge.rules.tracking.stampEdits(&record, at: clock, by: "hand edit")
                guard let g = groups[key], !done[g] else {
                    try stage.write(record)
                    return
                }
                done[g] = true
                try stage.write(try absorb(record, keptOrigin: LeadDeduper.origin(record, fallback: location.description), group: g, from: 0))
            }
        }
        var newLeads = 0, notInMaster = 0
        for (g, key) in order.enumerated() where !done[groups[key]!] {
            let group = members[g]
            if existingOnly {
                for member in group {
                    notInMaster += 1
                    try spool.read(member.span, into: scratch)
                    let colon = member.origin.lastIndex(of: ":")
                    let location = SourceLocation(path: colon.map { String(member.origin[..<$0]) } ?? member.origin,
                                                  line: colon.flatMap { Int(member.origin[member.origin.index(after: $0)...]) } ?? 0)
                    let bytes = Array(scratch.bytes)
                    try bytes.withUnsafeBufferPointer { raw throws(StageError) in
                        try stage.reject("no lead with address_key '\(key)' in the master (--existing-only)", at: location, raw: raw)
                    }
                }
                continue
            }
            newLeads += 1
            if group.count == 1 {
                try spool.read(group[0].span, into: scratch)
                try stage.writeLine(scratch.bytes)
                continue
            }
            try stage.write(try absorb(try load(group[0].span), keptOrigin: group[0].origin, group: g, from: 1))
        }
        store.appendLog(entries, to: logPath)
        stage.summary.append("master", .int(masterCount))
        stage.summary.append("new", .int(newLeads))
        if existingOnly { stage.summary.append("not_in_master", .int(notInMaster)) }
        if let shard = stage.shard {
            stage.summary.append("shard", .string(shard.description))
            stage.summary.append("master_other_shards", .int(otherShards))
        }
        stage.summary.append("duplicates", .int(duplicates))
        stage.summary.append("changed", .int(changedLeads))
        stage.summary.append("policy", .string(merge.rules.policy.rawValue))
    }
}
