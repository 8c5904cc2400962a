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
            its leads' run_id (or --run-id) and leaves the watermark alone. The main output is a one-line \
            report of the run.

            In shards: with --shard i/n (or LEAD_SHARD), the run takes the run record and the \
            records of the listings shard i owns (listing_id, FNV-1a 64 mod n), reading the whole \
            input and parts file, and leaves its part (its leads with their place in the input, \
            its listings' parts, analytics rows and totals, its counts) in <dir>/shards/i-of-n/; \
            the store is only read. Then --join-shards n applies the run from the n parts: the \
            same files and report one process writes. The join refuses parts that read another \
            store than it finds, or ran at another --now.

            Example:
              lead-score events scored.jsonl | lead-export events --dir local-logs/events
            """
        )

        @Option(help: ArgumentHelp("Where the events files are.", valueName: "dir"))
        var dir = "local-logs/events"

        @Flag(help: "Apply a run that was applied already, replacing its rows.")
        var force = false

        @Option(help: ArgumentHelp("The run_id of input without a run record (default: its leads' run_id, else --now); a run record of another id is refused.", valueName: "id"))
        var runID: String?

        @Option(help: ArgumentHelp("Apply the run from the parts that lead-export events --shard i/n left (no input).", valueName: "n"))
        var joinShards: Int?

        @OptionGroup var common: CommonOptions

        @Argument(help: ArgumentHelp("Scored events (lead-score events); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if let n = joinShards {
                if n < 1 { throw ValidationError("--join-shards must be at least 1") }
                if !inputs.isEmpty { throw ValidationError("--join-shards reads the shards' parts, not input files") }
                if common.shard != nil { throw ValidationError("--join-shards joins every shard: do not give --shard") }
            }
        }

        func run() throws {
            Stage.run("export", command: "events", options: common) { stage in
                stage.commitsOutputLast = true
                let ledger = EventLedger(dir: dir)
                if let n = joinShards {
                    try ledger.open(stage)
                    try ledger.join(stage, count: n)
                } else if let shard = stage.shard {
                    try ledger.openShard(stage, shard)
                    try ledger.apply(inputs, force: force, stage: stage, shard: shard, runID: runID)
                } else {
                    try ledger.open(stage)
                    try ledger.apply(inputs, force: force, stage: stage, runID: runID)
                }
            }
        }
    }
}

