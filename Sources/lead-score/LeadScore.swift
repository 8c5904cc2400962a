import ArgumentParser
import LeadRules
import StageKit

@main
struct LeadScore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-score",
        abstract: "Score leads.",
        subcommands: [Tags.self]
    )

    static func main() { stageMain() }
}

extension LeadScore {
    struct Tags: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tags",
            abstract: "Score leads from their active tag assignments, with a line-by-line breakdown.",
            discussion: """
            score = the sum over the lead's active assignments of the tag's base_score \
            (stages/tag/tags.csv) times a decay factor for the assignment's age in days \
            (stages/score/decay.csv: full value for full_days, then falling linearly to floor by \
            expiration), each term rounded to whole points. Expired assignments add nothing. \
            score and score_breakdown ({tag, base_score, age_days, factor, points} per active \
            assignment) are appended, or replaced when present.

            --recalculate rescores the master file in place (the nightly job, and the \
            "recalculate now" button): assignment expiry is brought up to --now first, then every \
            lead is rescored; progress shows on a terminal.

            Examples:
              lead-score tags tagged.jsonl -o local-logs/leads/leads.jsonl
              lead-score tags --recalculate --now 2026-11-24
            """
        )

        /// Rescore the master in place.
        @Flag(help: "Rescore the master file in place (expiry brought up to --now first).")
        var recalculate = false

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: the master is <logs>/leads/leads.jsonl.", valueName: "dir"))
        var logs = "local-logs"

        /// The master file.
        @Option(help: ArgumentHelp("The master lead file for --recalculate (default <logs>/leads/leads.jsonl).", valueName: "file"))
        var master: String?

        @OptionGroup var common: CommonOptions

        /// Leads; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Lead records (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if recalculate && !inputs.isEmpty { throw ValidationError("--recalculate rescores the master; give no inputs") }
            if recalculate && common.output != nil { throw ValidationError("--recalculate rewrites the master in place; -o is not used") }
        }

        func run() throws {
            Stage.run("score", command: "tags", options: common) { stage in
                let catalogue = try TagCatalogue.load(stage.rulesFile("tags.csv", stage: "tag"))
                let scorer = LeadScorer(catalogue: catalogue, decay: try DecayRules.load(stage.rulesFile("decay.csv"), catalogue: catalogue))
                let now = stage.clock.now
                guard recalculate else {
                    try stage.forEachRecord(inputs, transform: { lead in try scorer.score(&lead, now: now) }) { _, json, _ in
                        try stage.writeLine(json)
                    }
                    return
                }
                let path = master ?? logs + "/leads/leads.jsonl"
                guard Stage.fileExists(path) else { throw StageError.usage("no master lead file at \(path) (run make leads, or give --master)") }
                let expiry = TagExpiry(catalogue: catalogue)
                let sink = try stage.openOutput(path)
                var changed = 0, expired = 0, reactivated = 0
                try stage.readRecords(path, counting: true) { record, location in
                    var lead = record
                    let before = lead["score"]
                    do {
                        let change = try expiry.refresh(&lead, now: now)
                        expired += change.expired
                        reactivated += change.reactivated
                        try scorer.score(&lead, now: now)
                    } catch let rejected as RecordRejected {
                        throw StageError.data("\(location): \(rejected.reason)")
                    }
                    if before == nil || !(before! == lead["score"]!) { changed += 1 }
                    JSONWriter.writeLine(lead, into: sink.buffer)
                    try sink.flushIfNeeded()
                    stage.recordsOut += 1
                }
                stage.summary.append("scores_changed", .int(changed))
                stage.summary.append("assignments_expired", .int(expired))
                stage.summary.append("assignments_reactivated", .int(reactivated))
            }
        }
    }
}
