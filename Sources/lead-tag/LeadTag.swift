import ArgumentParser
import LeadRules
import LeadStores
import StageKit

@main
struct LeadTag: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-tag",
        abstract: "Tag leads: assignments with per-assignment expiry, derived tags, retroactive changes, bulk edits.",
        version: LeadETL.version,
        subcommands: [Leads.self, Retro.self, Add.self, Remove.self, SetFields.self, Expiring.self, Trades.self]
    )

    static func main() { stageMain() }
}

/// The rules lead-tag reads: the catalogue, derived tags and ZIP counties (stages/tag/), and
/// the decay rules (stages/score/) for rescoring leads a bulk change touches.
struct TagStageRules {
    let catalogue: TagCatalogue
    let assigner: TagAssigner
    let scorer: LeadScorer
    let absentee: Absentee

    static func load(_ stage: Stage) throws -> TagStageRules {
        let catalogue = try TagCatalogue.load(stage.rulesFile("tags.csv"))
        let absentee = try Absentee.load(directory: stage.rulesDirectory())
        let derived = try DerivedTag.load(stage.rulesFile("derived.csv"), catalogue: catalogue)
        let decay = try DecayRules.load(stage.rulesFile("decay.csv", stage: "score"), catalogue: catalogue)
        return TagStageRules(catalogue: catalogue, assigner: TagAssigner(catalogue: catalogue, derived: derived, absentee: absentee),
                             scorer: LeadScorer(catalogue: catalogue, decay: decay), absentee: absentee)
    }

    func tag(named name: String) throws -> TagDefinition {
        guard let tag = catalogue.tag(named: name) else {
            throw StageError.usage("unknown tag '\(name)' (tags: \(catalogue.tags.map(\.name).joined(separator: ", ")))")
        }
        return tag
    }

    /// A --where filter; a tag it names that the catalogue does not know is a usage error.
    func filter(_ text: String) throws -> LeadFilter {
        let filter: LeadFilter
        do {
            filter = try LeadFilter(text, functions: Absentee.functions)
        } catch {
            throw StageError.usage("--where: \(error)")
        }
        if let unknown = catalogue.unknownTags(in: filter).first {
            throw StageError.usage("--where: unknown tag '\(unknown)' (tags: \(catalogue.tags.map(\.name).joined(separator: ", ")))")
        }
        return filter
    }
}

/// Options of the subcommands that change the master file in place.
/// What `lead-tag add` and `remove` edit: a tag, on the leads a filter picks.
struct BulkEditOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The tag to assign or remove.", valueName: "name")) var tag: String
    @Option(name: .customLong("where"), help: ArgumentHelp("Which leads (filter language, as in smart lists).", valueName: "expr"))
    var expression: String
    @Flag(help: "Report only; change nothing.") var dryRun = false
}

struct MasterOptions: ParsableArguments {
    /// The logs root.
    @Option(help: ArgumentHelp("The logs root: the master is <logs>/leads/leads.jsonl, the audit log <logs>/leads/audit.jsonl.", valueName: "dir"))
    var logs = "local-logs"

    /// The master lead file.
    @Option(help: ArgumentHelp("The master lead file (default <logs>/leads/leads.jsonl).", valueName: "file"))
    var master: String?

    /// The master's store.
    var store: LeadMaster { LeadMaster(logs: logs, master: master) }
    var auditPath: String { store.auditPath }

    func requireMaster() throws -> String { try store.require() }

    /// Ends an edit of the master: the report (with `applied`) on stdout, and when the edit
    /// was applied and changed something, the same as a line of the audit log (`at` first,
    /// then `action` when the report has none).
    func finish(_ report: Record, applied: Bool, changed: Bool, action: String? = nil, stage: Stage, store: Store) throws {
        var report = report
        if applied && changed {
            var audit = Record()
            audit.append("at", .string(stage.clock.now.iso8601))
            if let action { audit.append("action", .string(action)) }
            for field in report.fields { audit.append(field.key, field.value) }
            store.appendLog([audit], to: auditPath)
        }
        report.append("applied", .bool(applied))
        let out = try stage.output()
        JSONWriter.writeLine(report, into: out.buffer)
    }
}

extension LeadTag {
    struct Leads: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "leads",
            abstract: "Tag the lead stream: assignments, derived tags and expiry as of --now.",
            discussion: """
            Each lead's tags (names from the import, or assignments from an earlier run) become \
            assignments of catalogue tags (stages/tag/tags.csv; names match without case and \
            through aliases): {tag, name, assigned_at, expiration_at, status, via}. \
            expiration_at is assigned_at plus the tag's expiration_days; once --now passes it the \
            status is expired and the name "Expired - <tag>". Tags of stages/tag/derived.csv are \
            derived from the lead (absentee owners by comparing property and mailing address and \
            county, expired listings), and removed when they no longer hold. Tag names the \
            catalogue does not know are kept in unknown_tags, with a warning, until it does.

            Example:
              lead-tag leads normalized.jsonl -o tagged.jsonl --now 2026-11-23
            """
        )

        @OptionGroup var common: CommonOptions

        /// Leads; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Lead records (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("tag", command: "leads", options: common) { stage in
                let rules = try TagStageRules.load(stage)
                let now = stage.clock.now
                let assigner = rules.assigner
                var unknown = 0
                try stage.forEachRecord(inputs, transform: { lead in try assigner.tag(&lead, now: now) }) { lead, json, location in
                    if let names = lead["unknown_tags"]?.array {
                        unknown += 1
                        let list = names.compactMap { TagAssignment.record($0)?.text("tag") }.map { "'\($0)'" }.joined(separator: ", ")
                        stage.warn("unknown tag \(list) (not in \(rules.catalogue.path)); kept in unknown_tags", at: location)
                    }
                    try stage.writeLine(json)
                }
                stage.summary.append("leads_with_unknown_tags", .int(unknown))
            }
        }
    }

    struct Retro: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retro",
            abstract: "Change a tag's expiration_days and apply it to every existing assignment.",
            discussion: """
            Recomputes expiration_at of every assignment of the tag in the master from its own \
            assigned_at, so assignments expire or become active again as the new period says, \
            and rescores the leads that have it. Without --apply it only reports (on stdout, as \
            JSON) how many assignments and leads it would affect and how many would be \
            reactivated or expire. With --apply it rewrites the master and the expiration_days \
            of stages/tag/tags.csv, and appends {at, tag, old, new, affected, ...} to \
            <logs>/leads/audit.jsonl.

            Example:
              lead-tag retro --tag Probate --expiration-days 180 --apply
            """
        )

        /// The tag to change.
        @Option(help: ArgumentHelp("The tag whose expiration_days changes.", valueName: "name"))
        var tag: String

        /// The new period.
        @Option(help: ArgumentHelp("The new expiration_days (0: never expires).", valueName: "N"))
        var expirationDays: Int

        /// Make the change.
        @Flag(help: "Rewrite the master and tags.csv and log the change (default: only report).")
        var apply = false

        @OptionGroup var master: MasterOptions
        @OptionGroup var common: CommonOptions

        func validate() throws {
            if expirationDays < 0 { throw ValidationError("--expiration-days must not be negative") }
        }

        func run() throws {
            Stage.run("tag", command: "retro", options: common) { stage in
                let rules = try TagStageRules.load(stage)
                let definition = try rules.tag(named: tag)
                _ = try master.requireMaster()
                let store = try master.store.open(stage)
                let newDays = expirationDays == 0 ? nil : expirationDays
                let catalogue = rules.catalogue.settingExpiration(of: definition.name, to: newDays)
                let expiry = TagExpiry(catalogue: catalogue)
                let scorer = LeadScorer(catalogue: catalogue, decay: rules.scorer.decay)
                let now = stage.clock.now
                var total = TagExpiry.Change()
                var leads = 0
                try master.store.rewrite(stage, dryRun: !apply) { lead, location in
                    do {
                        let change = try expiry.refresh(&lead, now: now, onlyTag: definition.name)
                        if change.assignments > 0 {
                            leads += 1
                            total += change
                            if lead.hasValue("score") { try scorer.score(&lead, now: now) }
                        }
                    } catch let rejected as RecordRejected {
                        throw StageError.data("\(location): \(rejected.reason)")
                    }
                }
                var report = Record()
                report.append("tag", .string(definition.name))
                report.append("old", definition.expirationDays.map { .int($0) } ?? .null)
                report.append("new", newDays.map { .int($0) } ?? .null)
                report.append("affected", .int(total.assignments))
                report.append("leads", .int(leads))
                report.append("reactivated", .int(total.reactivated))
                report.append("expired", .int(total.expired))
                if apply {
                    let tagsFile = try RulesFile(path: stage.rulesFile("tags.csv"), required: ["name", "expiration_days"])
                    let edited = try tagsFile.replacingCell(line: definition.line, column: "expiration_days", with: newDays.map(String.init) ?? "")
                    let rulesSink = try stage.openOutput(tagsFile.path)
                    rulesSink.buffer.append(edited)
                }
                try master.finish(report, applied: apply, changed: true, action: "retro", stage: stage, store: store)
                if !apply && !common.quiet {
                    standardError("lead-tag retro: \(definition.name) \(definition.expirationDays.map(String.init) ?? "never") -> \(newDays.map(String.init) ?? "never") days would change \(counted(total.assignments, "assignment")) on \(counted(leads, "lead")) (\(total.reactivated) active again, \(total.expired) expired); rerun with --apply to make the change\n")
                }
            }
        }
    }

    /// `add` and `remove`: a bulk edit of the master.
    static func bulk(_ adding: Bool, _ edit: BulkEditOptions, master: MasterOptions, common: CommonOptions) -> Never {
        let (tag, expression, dryRun) = (edit.tag, edit.expression, edit.dryRun)
        Stage.run("tag", command: adding ? "add" : "remove", options: common) { stage in
            let rules = try TagStageRules.load(stage)
            let definition = try rules.tag(named: tag)
            let filter = try rules.filter(expression)
            _ = try master.requireMaster()
            let store = try master.store.open(stage)
            let now = stage.clock.now
            let expiry = TagExpiry(catalogue: rules.catalogue)
            let context = FilterContext(now: now, functions: rules.absentee.filterFunctions())
            var matched = 0, changed = 0
            var check = FilterFieldCheck([filter])
            try master.store.rewrite(stage, dryRun: dryRun) { lead, location in
                check.observe(lead)
                if filter.matches(lead, context: context) {
                    matched += 1
                    let did = adding ? expiry.add(definition, to: &lead, now: now) : expiry.remove(definition, from: &lead)
                    if did {
                        changed += 1
                        lead["updated_at"] = .string(now.iso8601)
                        do {
                            if lead.hasValue("score") { try rules.scorer.score(&lead, now: now) }
                        } catch let rejected as RecordRejected {
                            throw StageError.data("\(location): \(rejected.reason)")
                        }
                    }
                }
            }
            for warning in check.warnings { stage.note("warning: --where: " + warning) }
            var report = Record()
            report.append("action", .string(adding ? "add" : "remove"))
            report.append("tag", .string(definition.name))
            report.append("where", .string(expression))
            report.append("matched", .int(matched))
            report.append("affected", .int(changed))
            try master.finish(report, applied: !dryRun, changed: changed > 0, stage: stage, store: store)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Assign a tag to every master lead that matches a filter.",
            discussion: """
            Leads that match --where (the smart-list filter language) and have no active \
            assignment of the tag get one, assigned at --now (via bulk); they are rescored. The \
            master is rewritten in place and the edit appended to <logs>/leads/audit.jsonl. A \
            report goes to stdout; --dry-run reports without changing anything.

            Example:
              lead-tag add --tag Vacant --where 'property_zip in ["78702", "78721"] and score < 500'
            """
        )

        @OptionGroup var edit: BulkEditOptions
        @OptionGroup var master: MasterOptions
        @OptionGroup var common: CommonOptions

        func run() throws { LeadTag.bulk(true, edit, master: master, common: common) }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove a tag from every master lead that matches a filter.",
            discussion: """
            Every assignment of the tag (active or expired) goes from the leads that match \
            --where; they are rescored. The master is rewritten in place and the edit appended to \
            <logs>/leads/audit.jsonl. A report goes to stdout; --dry-run reports only.

            Example:
              lead-tag remove --tag Vacant --where 'owner_name contains "LLC"'
            """
        )

        @OptionGroup var edit: BulkEditOptions
        @OptionGroup var master: MasterOptions
        @OptionGroup var common: CommonOptions

        func run() throws { LeadTag.bulk(false, edit, master: master, common: common) }
    }

    struct Expiring: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "expiring",
            abstract: "List the active tag assignments that expire within a window.",
            discussion: """
            One JSONL line per assignment that is active at --now and expires within --within \
            (7d, 12h, 2w): address_key, property_address, property_city, property_state, \
            property_zip, owner_name, tag, assigned_at, expiration_at, days_left; soonest first. \
            Reads the master unless inputs are given.

            Example:
              lead-tag expiring --within 7d | lead-export csv -o expiring.csv
            """
        )

        @Option(help: ArgumentHelp("The window: 7d, 12h, 2w.", valueName: "duration")) var within = "7d"
        @OptionGroup var master: MasterOptions
        @OptionGroup var common: CommonOptions

        /// Leads; default the master.
        @Argument(help: ArgumentHelp("Lead records (JSONL); default the master; - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if parseDuration(within) == nil { throw ValidationError("--within must be a number and d, h or w (7d)") }
        }

        func run() throws {
            Stage.run("tag", command: "expiring", options: common) { stage in
                let now = stage.clock.now
                let until = now.adding(seconds: parseDuration(within)!)
                var soon: [(at: Timestamp, key: String, line: Record)] = []
                let paths = inputs.isEmpty ? [try master.requireMaster()] : inputs
                try stage.forEachRecord(paths) { lead, _ in
                    for item in lead["tags"]?.array ?? [] {
                        guard let a = TagAssignment.record(item), a.text("status") != "expired",
                              let at = a.text("expiration_at").flatMap(Timestamp.init(iso8601:)), at > now, at <= until else { continue }
                        var line = Record()
                        for field in ["address_key", "property_address", "property_city", "property_state", "property_zip", "owner_name"] {
                            line.append(field, lead[field] ?? .null)
                        }
                        line.append("tag", a["tag"] ?? .null)
                        line.append("assigned_at", a["assigned_at"] ?? .null)
                        line.append("expiration_at", .string(at.iso8601))
                        line.append("days_left", .int(now.days(until: at)))
                        soon.append((at, lead.text("address_key") ?? "", line))
                    }
                }
                soon.sort { ($0.at, $0.key) < ($1.at, $1.key) }
                for item in soon { try stage.write(item.line) }
            }
        }
    }
}

/// "1 lead", "3 leads".
func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

extension LeadTag {
    struct Trades: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trades",
            abstract: "Classify building permits into a trade group and category (pool, roof, hvac, ...).",
            discussion: """
            Keyword rules over the description, permit type, work type and permit number \
            (stages/tag/trades.csv; the first rule in file order that matches wins) give \
            trade_group and category; stages/tag/commercial.csv tells commercial work from \
            residential, and commercial work takes the rule's commercial category \
            (commercial/commercial_pool, ...) or other/other. Appended: trade_group, category, \
            is_commercial, and trade_rule naming the rules that decided (file:line, field and \
            the words found). No rule: other/other. Counts per category go to the summary.

            Example:
              lead-flatten permits --map stages/flatten/permits-austin.csv permits.csv | lead-normalize | lead-tag trades
            """
        )

        @OptionGroup var common: CommonOptions

        /// Permits; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Permit records (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("tag", command: "trades", options: common) { stage in
                let rules = try TradeRules.load(directory: stage.rulesDirectory())
                var counts: [String: Int] = [:]
                try stage.forEachRecord(inputs, transform: { permit in rules.tag(&permit) }) { permit, json, _ in
                    counts[(permit.text("trade_group") ?? "") + "/" + (permit.text("category") ?? ""), default: 0] += 1
                    try stage.writeLine(json)
                }
                var byCategory = Record()
                for (key, n) in counts.sorted(by: { $0.key < $1.key }) { byCategory.append(key, .int(n)) }
                stage.summary.append("categories", .object(byCategory))
            }
        }
    }
}
