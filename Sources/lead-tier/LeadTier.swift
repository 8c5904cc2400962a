import ArgumentParser
import LeadRules
import StageKit

@main
struct LeadTier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-tier",
        abstract: "Put scored leads into tiers (A, B, C, RETRY) and mark the ones to review.",
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

    static func main() { stageMain() }

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
