import ArgumentParser
import LeadRules
import LeadStores
import StageKit

@main
struct LeadNormalize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-normalize",
        abstract: "Standardise addresses (USPS Publication 28) and, with --dedupe, merge duplicate leads.",
        discussion: """
        For each address prefix P (property and mailing, or --prefix), P_address, P_city, \
        P_state and P_zip are rewritten in USPS standard form (uppercase, no punctuation, \
        directionals, street suffixes and unit designators abbreviated, states as codes, ZIP \
        or ZIP+4); P_address_parts and P_address_raw (the line as received) are appended, then \
        address_key (standard line|ZIP5, or line|CITY|ST, or the line alone when it has no \
        ZIP and no city) and address_key_scope (zip, city or line). A one-line address with \
        empty city, state and zip is split into all four. A lead whose first address cannot \
        be read goes to the rejects file with the reason; the first prefix must be present. A \
        later address that cannot be read (a mailing address without a house number) is kept \
        as it came, with P_address_error saying why, and the lead goes on.

        With --dedupe, leads with the same address_key are merged with each other and with the \
        master (--master): merge fills empty fields, update lets the newer lead win, skip keeps \
        the existing one (stages/normalize/dedupe.csv, or --on-duplicate); tag assignments are \
        united keeping the earliest assigned_at. The lead tracking fields \
        (stages/flatten/listing-tracking.csv: leadStatus, skipTraced, ...) are owned by people: \
        whatever the policy each takes the value of the lead whose last edit of it (in \
        status_history) is later, so a refresh never overwrites a newer edit; a value edited \
        by hand in an import is stamped into status_history at --now, and one that is not \
        valid (leadStatus "Contacted!!") is not taken but kept in tracking_errors. A lead with dnama: true keeps its mailing \
        address: a duplicate's other mailing address is logged, not applied. The output is the \
        new master: its leads in their order, then new leads in the order first seen, with \
        created_at and updated_at. Every merge that changes a lead is appended to \
        <logs>/leads/dedupe.jsonl (key, kept, merged, fields changed). With --shard i/n the run \
        handles only the address keys of shard i (FNV-1a 64 of the key, mod n): its input's and \
        its master's, and writes that shard of the master; n shards, each over the whole input \
        and master, give the leads of a single run. Give each shard its own --master, -o and \
        --logs folder to run them side by side.

        Examples:
          lead-normalize imported.jsonl -o normalized.jsonl
          lead-normalize --dedupe --master local-logs/leads/leads.jsonl imported/*.jsonl -o normalized.jsonl
        """,
        version: LeadETL.version
    )

    /// Address prefixes.
    @Option(name: .customLong("prefix"), help: ArgumentHelp("An address to standardise: P_address, P_city, P_state, P_zip (repeatable; default property and mailing; the first is required).", valueName: "P"))
    var prefixes: [String] = []

    /// Merge duplicates.
    @Flag(help: "Merge leads with the same address_key, within the input and with the master.")
    var dedupe = false

    /// The master file.
    @Option(help: ArgumentHelp("The master lead file to merge into (with --dedupe; read whole before any output).", valueName: "file"))
    var master: String?

    /// The duplicate policy.
    @Flag(help: "With --dedupe: incoming leads only update leads the master has (skip-trace results, enrichment); one whose address_key the master lacks goes to the rejects.")
    var existingOnly = false

    @Option(help: ArgumentHelp("merge, update or skip (default: on_duplicate in stages/normalize/dedupe.csv).", valueName: "policy"))
    var onDuplicate: String?

    /// The logs root.
    @Option(help: ArgumentHelp("The logs root: merges are logged in <logs>/leads/dedupe.jsonl.", valueName: "dir"))
    var logs = "local-logs"

    @OptionGroup var common: CommonOptions

    /// Leads; none or `-` means stdin.
    @Argument(help: ArgumentHelp("Lead records (JSONL); none or - for stdin.", valueName: "file"))
    var inputs: [String] = []

    static func main() { stageMain() }

    /// Marks, within one run, a lead that another shard rejects.
    static let otherShardMark = "\u{1}other_shard"

    func validate() throws {
        if let onDuplicate, DuplicatePolicy(rawValue: onDuplicate) == nil {
            throw ValidationError("--on-duplicate must be merge, update or skip")
        }
        if !dedupe && (master != nil || onDuplicate != nil || existingOnly) { throw ValidationError("--master, --on-duplicate and --existing-only need --dedupe") }
    }

    func run() throws {
        Stage.run("normalize", options: common) { stage in
            let rules = try AddressRules.load(directory: stage.rulesDirectory())
            let tag = stage.rulesDirectory(stage: "tag")
            let zipStates = try ZIPCodes.loadStates([tag + "/zip-counties.csv", tag + "/zip-counties-local.csv"])
            let normalizer = LeadNormalizer(addresses: AddressNormalizer(rules: rules),
                                            prefixes: prefixes.isEmpty ? ["property", "mailing"] : prefixes, zipStates: zipStates)
            let standardize: (inout Record) throws -> Void = { lead in try normalizer.normalize(&lead) }
            // A secondary address that does not read is warned about (the lead goes on), and
            // leads keyed by their line alone (no ZIP, no city) are counted in the summary.
            var unreadSecondary = 0, keyedByLine = 0
            let check: (Record, SourceLocation) -> Void = { lead, location in
                for names in normalizer.fields {
                    if let problem = lead.text(names.zipError) { stage.warn("\(names.zip): \(problem)", at: location) }
                    if let problem = lead.text(names.error) {
                        unreadSecondary += 1
                        stage.warn("\(names.line): \(problem); kept as it came, in \(names.error)", at: location)
                    }
                }
                if lead.text(LeadNormalizer.keyScopeField) == "line" { keyedByLine += 1 }
            }
            defer {
                if unreadSecondary > 0 { stage.summary["unread_secondary_addresses"] = .int(unreadSecondary) }
                if dedupe { stage.summary["keyed_by_line"] = .int(keyedByLine) }
            }
            guard dedupe else {
                try stage.forEachRecord(inputs, transform: standardize) { lead, json, location in
                    check(lead, location)
                    try stage.writeLine(json)
                }
                return
            }
            let tracking = try TrackingRules.load(stage.rulesFile("listing-tracking.csv", stage: "flatten"))
            var dedupeRules = try DedupeRules.load(stage.rulesFile("dedupe.csv"), tracking: tracking)
            if let onDuplicate { dedupeRules.policy = DuplicatePolicy(rawValue: onDuplicate)! }
            let leads = LeadMaster(logs: logs, master: master)
            let logPath = leads.dedupeLogPath
            let store = try leads.open(stage)
            var deduper = try LeadDeduper(stage: stage, merge: LeadMerge(rules: dedupeRules))
            deduper.existingOnly = existingOnly
            deduper.expect(inputs: inputs.isEmpty ? ["-"] : inputs)
            let clock = stage.clock.now
            let now = clock.iso8601
            let stamped: (inout Record) throws -> Void = { lead in
                try normalizer.normalize(&lead)
                // A tracking value edited by hand in the import joins its history, at this run.
                tracking.stampEdits(&lead, at: clock, by: "import:" + (lead.text("source") ?? "leads"))
                if !lead.hasValue("created_at") { lead["created_at"] = .string(now) }
                if !lead.hasValue("updated_at") { lead["updated_at"] = .string(now) }
            }
            var otherShards = 0
            defer { if stage.shard != nil { stage.summary["other_shards"] = .int(otherShards) } }
            // Every shard reads every lead: one that cannot be read (it has no address_key to
            // shard by) is shard 1's to reject, once.
            let shard = stage.shard
            stage.shardsReadWholeInput = true
            let sharded: (inout Record) throws -> Void = { lead in
                do {
                    try stamped(&lead)
                } catch let rejected as RecordRejected {
                    guard let shard, shard.index != 1 else { throw rejected }
                    lead = [LeadNormalize.otherShardMark: .bool(true)]
                }
            }
            try stage.forEachRecord(inputs, transform: sharded) { lead, json, location in
                // With --shard, only the leads whose address_key this shard owns (the others
                // are another shard's, which reads the same input).
                if lead[LeadNormalize.otherShardMark] != nil {
                    otherShards += 1
                    return
                }
                if let shard, !shard.owns(lead.text(LeadNormalizer.keyField) ?? "") {
                    otherShards += 1
                    return
                }
                check(lead, location)
                if let errors = lead["tracking_errors"]?.object, !errors.isEmpty {
                    stage.warn(errors.fields.compactMap { $0.value.object?.text("error") }.joined(separator: "; ") + "; kept in tracking_errors", at: location)
                }
                try deduper.add(lead, json: json, at: location)
            }
            try deduper.finish(master: master, log: logPath, store: store)
        }
    }
}
