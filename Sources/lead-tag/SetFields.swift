import ArgumentParser
import LeadRules
import LeadStores
import StageKit

extension LeadTag {
    struct SetFields: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Edit lead tracking fields (leadStatus, skipTraced, ...) in the master and the flattened listings.",
            discussion: """
            The leads are picked by key (an address_key of the master, or a ListingKey) and/or \
            --where (the filter language); FIELD=VALUE sets a lead tracking field of \
            stages/flatten/listing-tracking.csv: leadStatus (new, contacted, qualified, \
            unqualified, dead), skipTraced, voicemailSent, emailSent (true/false), ownerName, \
            ownerPhone, ownerEmail, notes, lastContactDate (an ISO date); FIELD= clears one. A \
            value of the wrong kind, an unknown field or a key that matches nothing is refused \
            (exit 2) and nothing changes. Each change is appended to the lead's status_history \
            ({field, old, new, at, by}) and the lead's updated_at is --now. The same edit is made \
            to the flattened listing of every picked lead that came from one (same ListingKey, \
            in <logs>/<kind>/<mls>/flattened_*.jsonl), so the next refresh and make leads keep \
            it: an edit is never overwritten by an older one. The master, the listings and the \
            audit line (<logs>/leads/audit.jsonl) change as one. A report goes to stdout.

            Examples:
              lead-tag set 'GPS-1001' leadStatus=contacted skipTraced=true --by ana
              lead-tag set --where 'has_tag("Probate") and leadStatus == "new"' leadStatus=qualified
              lead-tag set '431 MARIETTA ST NW # 3|30303' notes='call after 5pm' lastContactDate=2026-11-24
            """
        )

        @Argument(help: ArgumentHelp("Keys (address_key or ListingKey) of the leads to edit, then FIELD=VALUE assignments.",
                                     valueName: "key-or-assignment"))
        var words: [String] = []

        @Option(name: .customLong("where"), help: ArgumentHelp("Edit the master leads this filter picks.", valueName: "expr"))
        var expression: String?

        @Option(help: ArgumentHelp("Who makes the edit, for status_history (default $USER).", valueName: "name"))
        var by: String?

        @Flag(help: "Report only; change nothing.") var dryRun = false

        @OptionGroup var master: MasterOptions
        @OptionGroup var common: CommonOptions

        var assignments: [String] { words.filter { $0.contains("=") } }
        var keys: [String] { words.filter { !$0.contains("=") } }

        func validate() throws {
            if assignments.isEmpty { throw ValidationError("give at least one FIELD=VALUE to set") }
            if keys.isEmpty && expression == nil { throw ValidationError("give the keys of the leads to edit, or --where") }
        }

        func run() throws {
            Stage.run("tag", command: "set", options: common) { stage in
                let tracking = try TrackingRules.load(stage.rulesFile("listing-tracking.csv", stage: "flatten"))
                var changes: [(String, JSONValue)] = []
                for assignment in assignments {
                    let eq = assignment.firstIndex(of: "=")!
                    let field = String(assignment[..<eq]).trimmingSpaces
                    let text = String(assignment[assignment.index(after: eq)...])
                    switch tracking.coerce(field, text.isEmpty ? .null : .string(text)) {
                    case .success(let value): changes.append((field, value))
                    case .failure(let problem): throw StageError.usage("\(assignment): \(problem)")
                    }
                }
                let rules = try TagStageRules.load(stage)
                let filter = try expression.map { try rules.filter($0) }
                let masterPath = try master.requireMaster()
                let leads = master.store
                let pipelines = try ListingRules.load(directory: stage.rulesDirectory(stage: "fetch")).pipelines
                let listingFiles = pipelines.map { ListingLayout(logs: master.logs, pipeline: $0) }
                    .filter { Stage.fileExists($0.flattened) }
                let store = try leads.open(stage, also: dryRun ? [] : listingFiles.map(\.folder))
                let now = stage.clock.now
                let who = by ?? stage.environment["USER"] ?? "unknown"
                let context = FilterContext(now: now, functions: rules.absentee.filterFunctions())
                let wanted = Swift.Set(keys)
                var found = Swift.Set<String>()
                var listingKeys = Swift.Set<String>()
                var matched = 0, changed = 0
                var check = FilterFieldCheck(filter.map { [$0] } ?? [])

                func edit(_ record: inout Record) -> Bool {
                    // Hand edits made to the file before this one join the history first.
                    let before = TrackingRules.history(of: record).count
                    tracking.stampEdits(&record, at: now, by: "hand edit")
                    var any = TrackingRules.history(of: record).count != before
                    for (field, value) in changes where tracking.set(field, to: value, in: &record, at: now, by: who) { any = true }
                    return any
                }

                try leads.rewrite(stage, dryRun: dryRun) { lead, _ in
                    check.observe(lead)
                    let ids = [lead.text(LeadNormalizer.keyField), lead.text("ListingKey")].compactMap { $0 }
                    let byKey = ids.filter { wanted.contains($0) }
                    if !byKey.isEmpty || (filter?.matches(lead, context: context) ?? false) {
                        matched += 1
                        found.formUnion(byKey)
                        if let listing = lead.text("ListingKey") { listingKeys.insert(listing) }
                        if edit(&lead) {
                            changed += 1
                            lead["updated_at"] = .string(now.iso8601)
                        }
                    }
                }
                // The listings the leads came from, and listings named by their key.
                var listingsChanged = 0
                for layout in listingFiles {
                    var records: [Record] = []
                    var touched = false
                    try stage.readRecords(layout.flattened) { record, _ in
                        var listing = record
                        if let key = listing.text("ListingKey"), listingKeys.contains(key) || wanted.contains(key) {
                            found.insert(key)
                            if !listingKeys.contains(key) { matched += 1 }
                            if edit(&listing) { touched = true; listingsChanged += 1 }
                        }
                        records.append(listing)
                    }
                    if touched && !dryRun {
                        let out = try stage.openOutput(layout.flattened)
                        for record in records { JSONWriter.writeLine(record, into: out.buffer) }
                    }
                }
                if let missing = keys.first(where: { !found.contains($0) }) {
                    throw StageError.usage("no lead or listing has the key '\(missing)' (an address_key of \(masterPath), or a ListingKey)")
                }
                for warning in check.warnings { stage.note("warning: --where: " + warning) }
                var report = Record()
                report.append("action", "set")
                report.append("fields", .object(Record(changes.map { Record.Field(key: $0.0, value: $0.1) })))
                report.append("keys", .array(keys.map { .string($0) }))
                report.append("where", expression.map { .string($0) } ?? .null)
                report.append("by", .string(who))
                report.append("matched", .int(matched))
                report.append("changed", .int(changed))
                report.append("listings_changed", .int(listingsChanged))
                try master.finish(report, applied: !dryRun, changed: changed > 0 || listingsChanged > 0, stage: stage, store: store)
            }
        }
    }
}
