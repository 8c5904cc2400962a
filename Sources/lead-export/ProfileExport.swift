import ArgumentParser
import LeadRules
import StageKit

extension LeadExport {
    struct Profile: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "profile",
            abstract: "Export leads (or permits) shaped for a delivery service: skip tracing, voicemail, email, mail, a buyer.",
            discussion: """
            A profile (stages/export/profiles.csv and stages/export/profiles/<name>.csv) names \
            the columns a service takes and where each comes from: a field or an expression of \
            the filter language, with the owner's name split by stages/export/names.csv \
            (owner_first_name, owner_last_name, owner_is_entity), phones in E.164 and emails \
            checked (a row without a valid one goes to the rejects with the reason). The \
            suppression lists of stages/export/suppress/ (do-not-call phones, opted-out \
            emails, do-not-mail addresses) drop the rows they name; the summary counts them. \
            Leads come from the master, permits from the permits store, unless --input is \
            given; the file goes to <exports>/profiles/<name>.csv (.jsonl) unless -o is given. \
            Only profiles marked spreadsheet_safe get the spreadsheet guard: an upload's typed \
            columns (phones, emails) go as they are.

            Examples:
              lead-export profile tracerfy --where 'has_tag("Vacant")' -o vacant-trace.csv
              lead-export profile dropcowboy
              lead-export profile buyer-csv --where 'tier == "A" and category == "pool"' -o pool-a.csv
            """
        )

        @Argument(help: ArgumentHelp("The profile (tracerfy, dropcowboy, resend, lob, buyer-csv, or one of yours).", valueName: "name"))
        var name: String

        @Option(name: .customLong("where"), help: ArgumentHelp("Only the records this filter picks (with the profile's own).", valueName: "expr"))
        var expression: String?

        @Option(help: ArgumentHelp("The logs root: the lead master and the permits store are under it.", valueName: "dir"))
        var logs = "local-logs"

        @Option(help: ArgumentHelp("The exports root: files go to <exports>/profiles/<name>.csv unless -o is given.", valueName: "dir"))
        var exports = "exports"

        @OptionGroup var common: CommonOptions

        @Option(name: .customLong("input"), help: ArgumentHelp("Records to read instead of the master or the permits store (repeatable; - for stdin).", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if name.contains("/") || name.hasPrefix(".") { throw ValidationError("a profile name is a name in stages/export/profiles.csv") }
        }

        func run() throws {
            Stage.run("export", command: "profile", options: common.output == nil ? withDefaultOutput(common) : common) { stage in
                let directory = stage.rulesDirectory()
                let profile = try DeliveryProfile.load(directory: directory, name: name, functions: Absentee.functions)
                let names = try OwnerNames.load(directory + "/names.csv")
                let lists = try SuppressionLists.load(directory: directory + "/suppress")
                let absentee = try Absentee.load(directory: stage.rulesDirectory(stage: "tag"))
                let context = FilterContext(now: stage.clock.now, functions: absentee.filterFunctions())
                var extra: LeadFilter?
                if let expression {
                    do { extra = try LeadFilter(expression, functions: Absentee.functions) } catch { throw StageError.usage("--where: \(error)") }
                }
                let paths: [String]
                if inputs.isEmpty {
                    let store = profile.input == .leads ? logs + "/leads/leads.jsonl" : logs + "/permits/permits.jsonl"
                    guard Stage.fileExists(store) else {
                        throw StageError.usage("no \(profile.input == .leads ? "lead master" : "permits store") at \(store) (run make \(profile.input == .leads ? "leads" : "permits"), or give --input)")
                    }
                    paths = [store]
                } else {
                    paths = inputs
                }
                let sink = try stage.output()
                var csv = CSVWriter(out: sink.buffer, delimiter: 44, spreadsheetSafe: profile.spreadsheetSafe, crlf: false)
                if profile.output == .csv { csv.writeRow(profile.columns.map(\.name)) }
                var matched = 0
                var suppressed: [String: Int] = ["phones": 0, "emails": 0, "addresses": 0]
                try stage.forEachRecord(paths) { record, _ in
                    let lead = DeliveryProfile.withOwnerName(record, names: names)
                    if let filter = profile.filter, !filter.matches(lead, context: context) { return }
                    if let extra, !extra.matches(lead, context: context) { return }
                    matched += 1
                    switch profile.row(lead, context: context, lists: lists) {
                    case .rejected(let why): throw RecordRejected(why)
                    case .suppressed(let kind): suppressed[kind, default: 0] += 1
                    case .cells(let cells):
                        if profile.output == .csv {
                            csv.writeRow(cells.map(\.text))
                        } else {
                            JSONWriter.writeLine(ProfileExport.nested(cells), into: sink.buffer)
                        }
                        stage.recordsOut += 1
                        try sink.flushIfNeeded()
                    }
                }
                stage.summary.append("profile", .string(profile.name))
                stage.summary.append("matched", .int(matched))
                for kind in ["phones", "emails", "addresses"] where profile.suppress.contains(kind) {
                    stage.summary.append("suppressed_" + kind, .int(suppressed[kind] ?? 0))
                }
            }
        }

        func withDefaultOutput(_ options: CommonOptions) -> CommonOptions {
            var o = options
            // The profile's output kind decides the extension; read it before the stage runs.
            let directory = options.rules ?? ProcessInfoLite.environment["LEAD_STAGES"].map { $0 + "/export" } ?? "stages/export"
            let jsonl = (try? DeliveryProfile.load(directory: directory, name: name, functions: Absentee.functions).output) == .jsonl
            o.output = exports + "/profiles/" + name + (jsonl ? ".jsonl" : ".csv")
            return o
        }
    }
}

enum ProfileExport {
    /// The cells as one JSON object, dotted names nested (`variables.address`).
    static func nested(_ cells: [(name: String, value: FilterValue, text: String)]) -> Record {
        var out = Record()
        for cell in cells {
            let path = cell.name.split(separator: ".").map(String.init)
            out = set(out, path[...], json(cell.value))
        }
        return out
    }

    static func set(_ record: Record, _ path: ArraySlice<String>, _ value: JSONValue) -> Record {
        var r = record
        guard let first = path.first else { return r }
        if path.count == 1 {
            r[first] = value
        } else {
            r[first] = .object(set(r[first]?.object ?? Record(), path.dropFirst(), value))
        }
        return r
    }

    static func json(_ value: FilterValue) -> JSONValue {
        switch value {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .number(let d): return d == d.rounded() && abs(d) < 1e15 ? .int(Int(d)) : .double(d)
        case .string(let s): return .string(s)
        case .time(let t): return .string(t.iso8601)
        case .duration(let s): return .int(Int(s))
        case .list(let items): return .array(items.map(json))
        }
    }
}
