import ArgumentParser
import StageKit

@main
struct LeadNormalize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-normalize",
        abstract: "Standardise addresses (USPS Publication 28) and dedupe leads.",
        discussion: "No pipeline subcommands are available in this build yet."
    )

    static func main() { stageMain() }

    func run() throws {
        throw StageError.usage("lead-normalize has no subcommands in this build yet (see --help)")
    }
}
