import ArgumentParser
import LeadRules
import LeadStores
import StageKit

@main
struct LeadTier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-tier",
        abstract: "Put scored leads into tiers (A, B, C, RETRY) and mark the ones to review; review flagged permits.",
        version: LeadETL.version,
        subcommands: [Tier.self, Review.self],
        defaultSubcommand: Tier.self
    )

    static func main() { stageMain() }
}

extension LeadTier {
    struct Tier: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tier",
            abstract: "Put scored leads into tiers (A, B, C, RETRY) and mark the ones to review (the default).",
            discussion: """
            The score's band in stages/tier/tiers.csv (A 80-100 call immediately, B 50-79 email \
            within 24h, C 0-49 batch contact, RETRY -1) gives tier and tier_action; the rules of \
            stages/tier/review.csv that hold give review_reasons and needs_review. A record \
            without a score, or with a score no band holds, goes to the rejects file. Counts per \
            tier go to the summary.

            Example:
              lead-score permits tagged.jsonl | lead-tier > tiered.jsonl
            """
        )

        @OptionGroup var common: CommonOptions

        /// Scored records; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Scored records (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("tier", options: common) { stage in
                let rules = try TierRules.load(tiers: stage.rulesFile("tiers.csv"), review: stage.rulesFile("review.csv"))
                let now = stage.clock.now
                var counts: [String: Int] = [:]
                var review = 0
                try stage.forEachRecord(inputs, transform: { record in try rules.tier(&record, now: now) }) { record, json, _ in
                    counts[record.text("tier") ?? "", default: 0] += 1
                    if record["needs_review"]?.bool == true { review += 1 }
                    try stage.writeLine(json)
                }
                var tiers = Record()
                for band in rules.bands { tiers.append(band.tier, .int(counts[band.tier] ?? 0)) }
                stage.summary.append("tiers", .object(tiers))
                stage.summary.append("needs_review", .int(review))
            }
        }
    }

    struct Review: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "review",
            abstract: "Approve flagged permits into their tier, or drop them from the tree; or list what waits.",
            discussion: """
            A permit a review rule picked waits in <dir>/flagged/needs_review.csv. --approve ID \
            moves it into the tier file of its score, and it stays approved in later runs; \
            --drop ID takes a permit (flagged or not) out of the tree for good (it stays in the \
            store with status dropped and is never exported again). Each decision is appended to \
            <logs>/permits/reviews.jsonl ({at, permit_id, action, by, reasons}) and the tree is \
            written again at once. An id that is not in the tree, or an approval of a permit that \
            is not flagged, is refused (exit 2). Without --approve or --drop, lists the flagged \
            permits with their reasons (JSONL on stdout).

            Examples:
              lead-tier review
              lead-tier review --approve "2016-021091 BP" --by ana
              lead-tier review --drop "2016-021200 BP" --by ana
            """
        )

        @Option(parsing: .singleValue, help: ArgumentHelp("A flagged permit to approve into its tier (repeatable).", valueName: "id"))
        var approve: [String] = []

        @Option(parsing: .singleValue, help: ArgumentHelp("A permit to drop from the tree (repeatable).", valueName: "id"))
        var drop: [String] = []

        @Option(help: ArgumentHelp("Who reviews (default $USER).", valueName: "name"))
        var by: String?

        @Option(help: ArgumentHelp("The exports tree.", valueName: "dir")) var dir = "exports"
        @Option(help: ArgumentHelp("The logs root (<logs>/permits/ holds the store).", valueName: "dir")) var logs = "local-logs"

        @OptionGroup var common: CommonOptions

        func validate() throws {
            if let both = approve.first(where: { drop.contains($0) }) { throw ValidationError("permit \(both) is both approved and dropped") }
        }

        func run() throws {
            Stage.run("tier", command: "review", options: common) { stage in
                let permits = PermitStore(exports: dir, logs: logs)
                if approve.isEmpty && drop.isEmpty {
                    try permits.forEachRecord { record in
                        guard record.text("status") == "new", PermitStore.isFlagged(record) else { return }
                        var line = Record()
                        for key in ["permit_id", "city", "property_address", "score", "tier", "trade_group", "category",
                                    PermitStore.reviewColumn, "reasoning"] {
                            line.append(key, record[key] ?? .null)
                        }
                        try stage.write(line)
                    }
                    return
                }
                let store = try permits.open(stage)
                let rules = try PermitStoreRules.load(stage)
                var found: [String: Record] = [:]
                let wanted = Set(approve + drop)
                try permits.forEachRecord { record in
                    if let id = record.text(PermitFields.id), wanted.contains(id) { found[id] = record }
                }
                let at = stage.clock.now.iso8601
                let who = by ?? stage.environment["USER"] ?? "unknown"
                var decisions: [String: PermitStore.Review] = [:]
                var log: [Record] = []
                for (action, ids) in [("approve", approve), ("drop", drop)] {
                    for id in ids {
                        guard let record = found[id], record.text("status") == "new" else {
                            let status = found[id]?.text("status")
                            throw StageError.usage("permit \(id) is not in the tree\(status.map { " (it is \($0))" } ?? " (check the id)")")
                        }
                        if action == "approve" && !PermitStore.isFlagged(record) {
                            throw StageError.usage("permit \(id) is not waiting for review (it is in \(record.text("export_file") ?? "the tree"))")
                        }
                        decisions[id] = PermitStore.Review(action: action, at: at, by: who)
                        log.append(["at": .string(at), "permit_id": .string(id), "action": .string(action), "by": .string(who),
                                    "reasons": record[PermitStore.reviewColumn] ?? .null])
                    }
                }
                store.appendLog(log, to: permits.reviewsPath)
                let outcome = try permits.rebuild(stage, store: store, rules: rules, inputs: nil, reage: false, reviews: decisions)
                stage.recordsOut = 0
                stage.summary.append("approved", .int(approve.count))
                stage.summary.append("dropped", .int(drop.count))
                stage.summary.append("flagged", outcome.report["flagged"] ?? .int(0))
            }
        }
    }
}
