import ArgumentParser
import StageKit

@main
struct LeadCleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-cleanup",
        abstract: "Remove records past their retention from the staged tree.",
        discussion: "No pipeline subcommands are available in this build yet."
    )

    static func main() { stageMain() }

    func run() throws {
        throw StageError.usage("lead-cleanup has no subcommands in this build yet (see --help)")
    }
}
