import ArgumentParser
import StageKit

@main
struct LeadTier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-tier",
        abstract: "Put scored leads into tiers (A, B, C, RETRY).",
        discussion: "No pipeline subcommands are available in this build yet."
    )

    static func main() { stageMain() }

    func run() throws {
        throw StageError.usage("lead-tier has no subcommands in this build yet (see --help)")
    }
}
