import ArgumentParser
import StageKit

@main
struct LeadFlatten: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-flatten",
        abstract: "Turn raw input (nested JSON, CSV) into flat JSONL records.",
        subcommands: [JSON.self, CSV.self]
    )

    static func main() { stageMain() }
}

extension LeadFlatten {
    struct JSON: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "json",
            abstract: "Flatten nested JSON objects into flat records, as Miller's flatten verb does.",
            discussion: """
            Nested keys are joined with the separator (photos.1.url: arrays count from 1); an \
            empty object or array becomes the string "{}" or "[]"; scalars keep their JSON type. \
            Input may be JSONL, a JSON array of objects, or pretty-printed objects, gzipped or not. \
            A line that is not valid JSON, or not an object, goes to the rejects file.

            Example:
              echo '{"id":1,"owner":{"name":"Ann"},"photos":[{"url":"a.jpg"}]}' | lead-flatten json
              {"id":1,"owner.name":"Ann","photos.1.url":"a.jpg"}
            """
        )

        /// The string that joins nested keys.
        @Option(name: .shortAndLong, help: "Join nested keys with this string.")
        var separator = "."

        @OptionGroup var common: CommonOptions

        /// JSON inputs; none or `-` means stdin.
        @Argument(help: ArgumentHelp("JSON/JSONL inputs (.gz read transparently); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("flatten", command: "json", options: common) { stage in
                try FormatStages.flattenJSON(stage, inputs: inputs, separator: separator)
            }
        }
    }

    struct CSV: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csv",
            abstract: "Read CSV with a header row into JSONL records, one per row.",
            discussion: """
            Every value is a string; an empty cell is an empty string. Quoted fields may hold \
            commas, quotes and line breaks (RFC 4180). A row with more or fewer fields than the \
            header, bad quoting, NUL bytes or invalid UTF-8 goes to the rejects file with its line.

            Example:
              printf 'id,city\\n1,Austin\\n' | lead-flatten csv
              {"id":"1","city":"Austin"}
            """
        )

        /// The field delimiter.
        @Option(name: .shortAndLong, help: "Field delimiter (one character; \\t for tab).")
        var delimiter = ","

        @OptionGroup var common: CommonOptions

        /// CSV inputs; none or `-` means stdin.
        @Argument(help: ArgumentHelp("CSV inputs (.gz read transparently); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            _ = try delimiterByte(delimiter)
        }

        func run() throws {
            let byte = try delimiterByte(delimiter)
            Stage.run("flatten", command: "csv", options: common) { stage in
                try FormatStages.flattenCSV(stage, inputs: inputs, delimiter: byte)
            }
        }
    }
}
