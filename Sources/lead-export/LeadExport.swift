import ArgumentParser
import StageKit

@main
struct LeadExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-export",
        abstract: "Deliver records: write them as CSV for people and spreadsheets.",
        subcommands: [CSV.self]
    )

    static func main() { stageMain() }
}

extension LeadExport {
    struct CSV: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csv",
            abstract: "Write JSON records as CSV; the header is the union of keys in first-seen order.",
            discussion: """
            Nested values are flattened first (owner.name, photos.1.url), as lead-flatten json \
            does. Strings are written decoded, numbers as they were written, null as an empty \
            cell. The input is read twice (once for the header), so stdin is spooled to a \
            temporary file. --spreadsheet prefixes a ' to cells a spreadsheet would run as a \
            formula (starting with = + - @, tab or CR), leaving plain numbers like -12.5 alone.

            Example:
              printf '{"id":1,"name":"=HYPERLINK()"}\\n{"id":2,"city":"Austin"}\\n' | lead-export csv --spreadsheet
              id,name,city
              1,'=HYPERLINK(),
              2,,Austin
            """
        )

        /// Neutralise formula injection.
        @Flag(help: "Make cells safe to open in a spreadsheet (neutralise formula injection).")
        var spreadsheet = false

        /// End rows with CRLF.
        @Flag(help: "End rows with CRLF instead of LF.")
        var crlf = false

        /// The field delimiter.
        @Option(name: .shortAndLong, help: "Field delimiter (one character; \\t for tab).")
        var delimiter = ","

        /// The string that joins nested keys.
        @Option(name: .shortAndLong, help: "Join nested keys with this string.")
        var separator = "."

        @OptionGroup var common: CommonOptions

        /// JSON inputs; none or `-` means stdin.
        @Argument(help: ArgumentHelp("JSON/JSONL inputs (.gz read transparently); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            _ = try delimiterByte(delimiter)
        }

        func run() throws {
            let byte = try delimiterByte(delimiter)
            Stage.run("export", command: "csv", options: common) { stage in
                try FormatStages.exportCSV(stage, inputs: inputs, delimiter: byte, spreadsheetSafe: spreadsheet,
                                           crlf: crlf, separator: separator)
            }
        }
    }
}
