import ArgumentParser
import Connectors
import LeadRules
import LeadStores
import StageKit
#if canImport(Glibc)
import Glibc
#endif

@main
struct LeadCleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-cleanup",
        abstract: "Remove records past their retention from the staged tree; settle stores after a crash.",
        version: LeadETL.version,
        subcommands: [Listings.self, Stores.self]
    )

    static func main() { stageMain() }
}

extension LeadCleanup {
    struct Listings: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "listings",
            abstract: "Remove flattened listings whose expiresAt is before --now, with their photos.",
            discussion: """
            For each pipeline whose kind has a retention rule (stages/cleanup/retention.csv), \
            rewrites <logs>/<kind>/<mls>/flattened_<mls>_<kind>_listings.jsonl without the \
            expired listings, deletes their cached photos and drops them from the photo skip \
            index. Files are rewritten atomically, and only when something goes. Every removed \
            listing is reported on stdout as JSONL; --dry-run reports without changing anything.

            Example:
              lead-cleanup listings --logs local-logs --now 2026-11-23 --dry-run
            """
        )

        /// Pipelines to clean; default all with a retention rule.
        @Option(name: .customLong("pipeline"), help: ArgumentHelp("Clean only this pipeline (repeatable; default: every pipeline with a retention rule).", valueName: "name"))
        var pipelines: [String] = []

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root holding the pipelines' folders.", valueName: "dir"))
        var logs: String = "local-logs"

        /// Report only.
        @Flag(help: "Report what would be removed; change nothing.")
        var dryRun = false

        @OptionGroup var common: CommonOptions

        func run() throws {
            Stage.run("cleanup", command: "listings", options: common) { stage in
                let rules = try ListingRules.load(directory: stage.rulesDirectory(stage: "fetch"))
                let retention = try RetentionRule.load(stage.rulesFile("retention.csv"))
                var chosen: [ListingPipeline] = []
                for name in pipelines { chosen.append(try rules.pipeline(name)) }
                if chosen.isEmpty { chosen = rules.pipelines.filter { p in retention.contains { $0.kind == p.kind } } }
                let now = stage.clock.now
                var removed = 0, photos = 0
                if !dryRun {
                    // Every folder the cleanup may rewrite, locked for the run and changed as one.
                    let layouts = chosen.map { ListingLayout(logs: logs, pipeline: $0) }
                    let existing = layouts.flatMap { [$0.folder, $0.photoLogsDirectory, $0.photosDirectory] }.filter(Stage.fileExists)
                    if !existing.isEmpty { try Store.open(existing, for: stage) }
                }
                for pipeline in chosen {
                    guard retention.contains(where: { $0.kind == pipeline.kind }) else {
                        throw StageError.usage("\(pipeline.name): kind \(pipeline.kind) has no retention rule in retention.csv")
                    }
                    let layout = ListingLayout(logs: logs, pipeline: pipeline)
                    guard Stage.fileExists(layout.flattened) else { continue }
                    var kept: [Record] = []
                    var gone: [Record] = []
                    try stage.readRecords(layout.flattened) { record, _ in
                        stage.recordsIn += 1
                        if ListingRetention.isExpired(record, now: now) { gone.append(record) } else { kept.append(record) }
                    }
                    guard !gone.isEmpty else { continue }
                    var index = PhotoIndex.load(layout.skipIndex)
                    for record in gone {
                        let key = record.text("ListingKey") ?? ""
                        var photo: JSONValue = .null
                        if let file = index[key]?["file"]?.string {
                            photo = .string(layout.photosDirectory + "/" + file)
                            if !dryRun { stage.removeOnSuccess(layout.photosDirectory + "/" + file) }
                            photos += 1
                        }
                        index[key] = nil
                        try stage.write(["pipeline": .string(pipeline.name), "ListingKey": .string(key),
                                         "expiresAt": record["expiresAt"] ?? .null, "photo": photo])
                        removed += 1
                    }
                    if dryRun { continue }
                    let flattened = try stage.openOutput(layout.flattened)
                    for record in kept { JSONWriter.writeLine(record, into: flattened.buffer) }
                    if Stage.fileExists(layout.skipIndex) {
                        let sink = try stage.openOutput(layout.skipIndex)
                        JSONWriter.write(.object(PhotoIndex.record(index)), into: sink.buffer)
                        sink.buffer.append(10)
                    }
                }
                stage.recordsOut = stage.recordsIn - removed
                stage.summary.append("removed", .int(removed))
                stage.summary.append("photos_removed", .int(photos))
                if dryRun { stage.summary.append("dry_run", .bool(true)) }
            }
        }
    }
}

extension LeadCleanup {
    struct Stores: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stores",
            abstract: "Settle store directories: roll back changes killed runs left half made, remove their leftovers.",
            discussion: """
            Each directory is opened as a store: locked (waiting for a run that holds it), a \
            change a killed run left half made (its .journal) rolled back, and the temporary \
            files and old versions that dead runs left removed, in it and three levels below. \
            Nothing a live run writes is touched. make runs it at the start of every pipeline, \
            so a run after a crash starts from a clean store; run it by hand after a crash, or \
            from cron before the jobs. Directories that do not exist are skipped. The summary \
            counts the stores settled and the changes rolled back.

            Example:
              lead-cleanup stores local-logs/leads local-logs/permits exports
            """
        )

        @OptionGroup var common: CommonOptions

        @Argument(help: ArgumentHelp("Store directories (local-logs/leads, local-logs/permits, exports, local-logs/events, a listing folder, ...).",
                                     valueName: "dir"))
        var directories: [String] = []

        func run() throws {
            Stage.run("cleanup", command: "stores", options: common) { stage in
                let existing = directories.filter(Stage.isDirectoryPath)
                stage.summary.append("stores", .int(existing.count))
                guard !existing.isEmpty else { return }
                let outcome = try Store.settle(existing, for: stage)
                stage.summary.append("rolled_back", .int(outcome.rolledBack))
                stage.summary.append("removed", .int(outcome.removed))
            }
        }
    }
}
