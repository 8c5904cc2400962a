import ArgumentParser
import LeadRules
import LeadStores
import StageKit

extension LeadExport {
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "events",
            abstract: "Apply one run of scored events: append its lead records, upsert the hourly listing analytics.",
            discussion: """
            Writes under --dir (local-logs/events): leads.jsonl (the lead records of every run, \
            by run; a run's records appended), listing_analytics.jsonl (one row per listing_id, \
            date, hour in UTC: total_views, unique_views, total_leads, phone_leads, message_leads, \
            email_leads, appointment_leads, unique_leads, conversion_rate, impressions, shares, \
            saves, share_breakdown), listings.jsonl (per listing, every count summed over its \
            analytics rows, with leads_breakdown and share_breakdown), analytics_parts.jsonl (what \
            each run added to each hour, with the viewer and seeker ids, so an hour that a later \
            run adds to stays right: unique counts stay unique) and state.json (the watermark and \
            the runs applied), state.json last. Every file is rewritten atomically, so a run \
            killed half-way leaves the previous state and watermark; run again, it replaces its \
            own rows and ends where an uninterrupted run would.

            A run already applied (the same window) changes nothing; --force applies it again, \
            replacing that run's rows, never adding them twice. A new run must start at the \
            watermark. Input without a run record (not from lead-fetch events) is applied under \
            its leads' run_id and leaves the watermark alone. The main output is a one-line \
            report of the run.

            Example:
              lead-score events scored.jsonl | lead-export events --dir local-logs/events
            """
        )

        @Option(help: ArgumentHelp("Where the events files are.", valueName: "dir"))
        var dir = "local-logs/events"

        @Flag(help: "Apply a run that was applied already, replacing its rows.")
        var force = false

        @OptionGroup var common: CommonOptions

        @Argument(help: ArgumentHelp("Scored events (lead-score events); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("export", command: "events", options: common) { stage in
                stage.commitsOutputLast = true
                var dir = self.dir
                while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
                try Store.open([dir], for: stage)
                try EventLedger(dir: dir).apply(inputs, force: force, stage: stage)
            }
        }
    }
}

/// The events files of one directory and how a run is applied to them.
struct EventLedger {
    let dir: String
    var leadsPath: String { dir + "/leads.jsonl" }
    var partsPath: String { dir + "/analytics_parts.jsonl" }
    var analyticsPath: String { dir + "/listing_analytics.jsonl" }
    var listingsPath: String { dir + "/listings.jsonl" }
    var statePath: String { dir + "/state.json" }

    func apply(_ inputs: [String], force: Bool, stage: Stage) throws {
        var state = try EventState.load(statePath)
        var run: EventRun?
        var leads: [Record] = []
        var leadRunIDs = Set<String>()
        var tally = RunTally(runID: "")
        var events = 0
        try stage.forEachRecord(inputs, transform: { _ in }, encoding: .none) { record, _, location in
            switch record.text("kind") {
            case EventRun.kind:
                let this = try EventRun(record: record)
                if let run, run.runID != this.runID {
                    throw StageError.data("\(location): a second run (\(this.runID)) in a stream of run \(run.runID): apply one run at a time")
                }
                run = this
            case "lead":
                guard let id = record.text("run_id") else { throw RecordRejected("a lead record without run_id") }
                var lead = record
                _ = lead.removeValue(forKey: "kind")
                try tally.addLead(record: lead)
                leadRunIDs.insert(id)
                events += lead["total_actions"]?.int ?? 0
                leads.append(lead)
            case let kind? where kind == "view" || kind == "impression" || kind == "share" || kind == "save":
                guard let listing = record.text("listing_id"), !listing.isEmpty else { throw RecordRejected("\(kind) without listing_id") }
                guard let text = record.text("timestamp"), let at = Timestamp(iso8601: text) else {
                    throw RecordRejected("\(kind) without a readable timestamp")
                }
                let viewer = record.text("seeker_id").flatMap { $0.isEmpty ? nil : $0 }
                let channel = record.text("share_channel").flatMap { $0.isEmpty ? nil : $0 }
                tally.addEngagement(kind: kind, listingID: listing, viewer: viewer, channel: channel, at: at)
                events += 1
            case "action":
                throw RecordRejected("an unscored lead action: run lead-score events before lead-export events")
            case let kind:
                throw RecordRejected(kind.map { "unknown kind '\($0)'" } ?? "no kind (the input of lead-export events is lead-score events' output)")
            }
        }
        let runID: String
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
            runID = leadRunIDs.first ?? stage.clock.now.iso8601
            stage.warn("no run record (lead-fetch events starts a run): applied as run \(runID); the watermark is left alone",
                       at: SourceLocation(path: inputs.first ?? "-", line: 1))
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
            try stage.write(report)
            return
        }
        var parts = tally.parts()
        for i in parts.indices { parts[i].runID = runID }
        try writeLeads(leads, runID: runID, stage: stage)
        let counts = try writeAnalytics(parts, runID: runID, stage: stage)
        if let run {
            try state.apply(EventState.Applied(run: run, events: events, leads: leads.count, appliedAt: stage.clock.now))
            let sink = try stage.openOutput(statePath)
            JSONWriter.writeLine(state.record, into: sink.buffer)
        }
        report.append("applied", true)
        report.append("replaced", .bool(already != nil || counts.replacedParts > 0))
        report.append("events", .int(events))
        report.append("leads", .int(leads.count))
        report.append("hours", .int(parts.count))
        report.append("new_hours", .int(counts.newHours))
        report.append("analytics_rows", .int(counts.rows))
        report.append("listings", .int(counts.listings))
        report.append("watermark", state.watermark.map { .string($0.iso8601) } ?? .null)
        for field in report.fields where field.key != "run_id" && field.key != "from" && field.key != "to" {
            stage.summary.append(field.key, field.value)
        }
        try stage.write(report)
        stage.recordsOut = leads.count
    }

    /// leads.jsonl with this run's records in place: the runs before it, this run's records,
    /// the runs after it (records of an earlier try of this run are dropped).
    func writeLeads(_ leads: [Record], runID: String, stage: Stage) throws {
        let sink = try stage.openOutput(leadsPath)
        var written = false
        func writeRun() throws {
            guard !written else { return }
            written = true
            for lead in leads {
                JSONWriter.writeLine(lead, into: sink.buffer)
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
        var rows = 0, listings = 0, newHours = 0, replacedParts = 0
    }

    /// The parts file with this run's parts in place of any earlier ones of the run, merged in
    /// listing and hour order, and from it listing_analytics.jsonl and listings.jsonl.
    func writeAnalytics(_ parts: [HourPart], runID: String, stage: Stage) throws -> Counts {
        let partsSink = try stage.openOutput(partsPath)
        let analyticsSink = try stage.openOutput(analyticsPath)
        let listingsSink = try stage.openOutput(listingsPath)
        var counts = Counts()
        var cell: [HourPart] = []
        var cellHasOld = false
        var totals: ListingTotals?

        func emitCell() throws {
            guard !cell.isEmpty else { return }
            cell.sort { $0.runID.precedesInByteOrder($1.runID) }
            for part in cell { JSONWriter.writeLine(part.record, into: partsSink.buffer) }
            let merged = HourPart.merge(cell)
            JSONWriter.writeLine(HourPart.analyticsRow(merged.counts, uniqueViews: merged.uniqueViews, uniqueLeads: merged.uniqueLeads),
                                 into: analyticsSink.buffer)
            counts.rows += 1
            if !cellHasOld { counts.newHours += 1 }
            if totals?.listingID != cell[0].key.listingID {
                if let done = totals { JSONWriter.writeLine(done.record, into: listingsSink.buffer); counts.listings += 1 }
                totals = ListingTotals(listingID: cell[0].key.listingID)
            }
            totals!.add(merged.counts)
            cell.removeAll(keepingCapacity: true)
            cellHasOld = false
            try partsSink.flushIfNeeded()
            try analyticsSink.flushIfNeeded()
            try listingsSink.flushIfNeeded()
        }
        func feed(_ part: HourPart, old: Bool) throws {
            if let first = cell.first, first.key != part.key {
                if part.key < first.key {
                    throw StageError.data("\(partsPath): parts out of order at \(part.key.listingID) \(part.key.start.iso8601); it is written sorted, was it edited?")
                }
                try emitCell()
            }
            if old && part.runID != runID { cellHasOld = true }
            cell.append(part)
        }
        var next = 0
        if Stage.fileExists(partsPath) {
            try stage.readRecords(partsPath) { record, location in
                let part: HourPart
                do { part = try HourPart(record: record) } catch let bad as RecordRejected { throw StageError.data("\(location): \(bad.reason)") }
                while next < parts.count && parts[next].key < part.key { try feed(parts[next], old: false); next += 1 }
                if part.runID == runID { counts.replacedParts += 1; return }
                try feed(part, old: true)
            }
        }
        while next < parts.count { try feed(parts[next], old: false); next += 1 }
        try emitCell()
        if let done = totals { JSONWriter.writeLine(done.record, into: listingsSink.buffer); counts.listings += 1 }
        return counts
    }
}
