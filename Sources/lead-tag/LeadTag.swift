import ArgumentParser
import StageKit

@main
struct LeadTag: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-tag",
        abstract: "Assign tags and trade classes to leads, with per-assignment expiry.",
        discussion: "No pipeline subcommands are available in this build yet."
    )

    static func main() { stageMain() }

    func run() throws {
        throw StageError.usage("lead-tag has no subcommands in this build yet (see --help)")
    }
}
