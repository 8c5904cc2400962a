import ArgumentParser
import LeadRules
import StageKit

@main
struct LeadExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-export",
        abstract: "Deliver records: CSV, smart lists, delivery profiles, the permits tree, the events analytics.",
        version: LeadETL.version,
        subcommands: [CSV.self, List.self, Profile.self, Permits.self, Deliver.self, Sold.self, Events.self, Report.self, DB.self]
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
            cell. The header is known only at the end, so the rows wait in a temporary file \
            (the input is read once; stdin works as any file). --spreadsheet prefixes a ' to cells a spreadsheet would run as a \
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

        /// Keep the provenance column.
        @Flag(help: "Keep the _origin column (where each record was first read), left out by default.")
        var withOrigin = false

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
                                           crlf: crlf, separator: separator, withOrigin: withOrigin)
            }
        }
    }
}

extension LeadExport {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "Export a smart list: the leads a saved filter picks, as CSV.",
            discussion: """
            A smart list is a file stages/export/lists/<name>.list with a where: filter (the \
            filter language: score >= 2000 and tag == "Foreclosure", has_tag("Probate"), \
            absentee() == "out-of-state", expiration_at < now + 7d, in [...], contains, and, or, \
            not), and optionally columns:, sort: and limit:. The leads come from the master \
            (<logs>/leads/leads.jsonl) unless inputs are given; the CSV goes to \
            <exports>/lists/<name>.csv unless -o is given. Cells are made safe for spreadsheets \
            (--raw to leave them as they are). --where runs a filter without a saved list.

            Examples:
              lead-export list hot-foreclosures
              lead-export list --where 'has_tag("Vacant") and score > 1000' -o vacant.csv
            """
        )

        /// The saved list.
        @Argument(help: ArgumentHelp("The smart list's name (stages/export/lists/<name>.list).", valueName: "name"))
        var name: String?

        /// An ad hoc filter.
        @Option(name: .customLong("where"), help: ArgumentHelp("A filter to run instead of a saved list.", valueName: "expr"))
        var expression: String?

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: the master is <logs>/leads/leads.jsonl.", valueName: "dir"))
        var logs = "local-logs"

        /// The exports root.
        @Option(help: ArgumentHelp("The exports root: lists go to <exports>/lists/<name>.csv.", valueName: "dir"))
        var exports = "exports"

        /// Leave cells as they are.
        @Flag(help: "Do not neutralise cells a spreadsheet would run as formulas.")
        var raw = false

        @OptionGroup var common: CommonOptions

        /// Leads; default the master.
        @Option(name: .customLong("input"), help: ArgumentHelp("Lead records to read instead of the master (repeatable; - for stdin).", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if (name == nil) == (expression == nil) { throw ValidationError("give a list name or --where, not both") }
            if let name, name.contains("/") || name.hasPrefix(".") { throw ValidationError("a list name is a file name in stages/export/lists/, without .list") }
        }

        func run() throws {
            var options = common
            if options.output == nil {
                options.output = name.map { exports + "/lists/" + $0 + ".csv" } ?? "-"
            }
            Stage.run("export", command: "list", options: options) { stage in
                let absentee = try Absentee.load(directory: stage.rulesDirectory(stage: "tag"))
                let list: SmartList
                if let name {
                    let path = stage.rulesDirectory() + "/lists/" + name + ".list"
                    guard Stage.fileExists(path) else {
                        throw StageError.usage("no smart list \(path) (lists: \(SmartListFiles.names(in: stage.rulesDirectory() + "/lists").joined(separator: ", ")))")
                    }
                    list = try SmartList(name: name, text: String(decoding: try ByteSource.readAll(path), as: UTF8.self), path: path, functions: Absentee.functions)
                } else {
                    list = try SmartList(name: "where", where: expression!, functions: Absentee.functions)
                }
                let catalogue = try TagCatalogue.load(stage.rulesFile("tags.csv", stage: "tag"))
                if let unknown = catalogue.unknownTags(in: list.filter).first {
                    throw StageError.usage("\(name.map { "list \($0)" } ?? "--where"): unknown tag '\(unknown)' (tags: \(catalogue.tags.map(\.name).joined(separator: ", ")))")
                }
                let context = FilterContext(now: stage.clock.now, functions: absentee.filterFunctions())
                var check = FilterFieldCheck([list.filter])
                var rows: [(sort: [FilterValue], cells: [String])] = []
                let paths = inputs.isEmpty ? [logs + "/leads/leads.jsonl"] : inputs
                if inputs.isEmpty && !Stage.fileExists(paths[0]) {
                    throw StageError.usage("no master lead file at \(paths[0]) (run make leads, or give --input)")
                }
                try stage.forEachRecord(paths) { lead, _ in
                    check.observe(lead)
                    guard list.filter.matches(lead, context: context) else { return }
                    rows.append((list.sort.map { $0.value.evaluate(lead, context: context) },
                                 list.columns.map { SmartList.cell($0.value.evaluate(lead, context: context)) }))
                }
                // A stable sort: rows the keys cannot tell apart keep the input order.
                let order = rows.indices.sorted { a, b in
                    if list.ordered(rows[a].sort, rows[b].sort) { return true }
                    if list.ordered(rows[b].sort, rows[a].sort) { return false }
                    return a < b
                }
                for warning in check.warnings { stage.note("warning: \(name.map { "list \($0)" } ?? "--where"): " + warning) }
                let sink = try stage.output()
                var csv = CSVWriter(out: sink.buffer, delimiter: 44, spreadsheetSafe: !raw, crlf: false)
                csv.writeRow(list.columns.map(\.name))
                for i in order.prefix(list.limit ?? Int.max) {
                    csv.writeRow(rows[i].cells)
                    stage.recordsOut += 1
                    try sink.flushIfNeeded()
                }
                stage.summary.append("list", .string(list.name))
                stage.summary.append("matched", .int(rows.count))
            }
        }
    }
}

/// The smart lists in a directory.
enum SmartListFiles {
    static func names(in directory: String) -> [String] {
        Directory.files(in: directory, suffix: ".list").map { String($0.split(separator: "/").last!.dropLast(5)) }
    }
}
