import ArgumentParser
import StageKit

@main
struct LeadScore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-score",
        abstract: "Score leads with explainable rules.",
        discussion: "No pipeline subcommands are available in this build yet."
    )

    static func main() { stageMain() }

    func run() throws {
        throw StageError.usage("lead-score has no subcommands in this build yet (see --help)")
    }
}
