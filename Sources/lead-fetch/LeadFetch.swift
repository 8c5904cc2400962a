import ArgumentParser
import StageKit

@main
struct LeadFetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-fetch",
        abstract: "Fetch raw records from MLS, permit and event sources (Spark, RESO, Socrata, PostHog) or recorded replays.",
        discussion: "No pipeline subcommands are available in this build yet."
    )

    static func main() { stageMain() }

    func run() throws {
        throw StageError.usage("lead-fetch has no subcommands in this build yet (see --help)")
    }
}
