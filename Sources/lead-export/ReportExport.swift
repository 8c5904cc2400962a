import ArgumentParser
import LeadRules
import StageKit

#if canImport(Glibc)
import Glibc
#endif

extension LeadExport {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Write the run report: one self-contained HTML page of what the runs left.",
            discussion: """
            Reads the pipelines' summary logs (<logs>/<pipeline>/summaries.jsonl, which every \
            stage adds its summary line to when LEAD_SUMMARIES or --summaries names it, as the \
            Makefile does), the rejects files they name, the leads master, the tiered and stored \
            permits, the events analytics, and the kept earlier runs (<logs>/_previous/run-*/), \
            and writes one HTML page (default <logs>/report.html): per pipeline the funnel of \
            records through the stages with the top reject reasons and an example of each, the \
            tags and scores of the leads, the permits' tiers per trade, scores and review \
            reasons, the busiest listings' hourly views and leads and the conversion per listing, \
            the listings fetched, flattened and cleaned, and each against the earlier runs. The \
            charts are inline SVG: the page needs no network, script or font.

            Example:
              make && make report && xdg-open local-logs/report.html
            """
        )

        @Option(help: ArgumentHelp("The logs root the runs wrote.", valueName: "dir"))
        var logs = "local-logs"

        @Option(help: ArgumentHelp("The kept earlier runs (default <logs>/_previous).", valueName: "dir"))
        var previous: String?

        @OptionGroup var common: CommonOptions

        static let pipelines = ["listings", "leads", "permits", "events"]

        func run() throws {
            var options = common
            if options.output == nil { options.output = logs + "/report.html" }
            Stage.run("export", command: "report", options: options) { stage in
                let kept = previous ?? logs + "/_previous"
                var sections: [RunReport.Pipeline] = []
                for name in Report.pipelines {
                    let log = logs + "/" + name + "/summaries.jsonl"
                    var steps = RunReport.latestSteps(try Report.lines(log, stage))
                    for i in steps.indices where steps[i].rejected > 0 {
                        if let path = steps[i].rejectsPath { steps[i].reasons = try Report.reasons(path, stage) }
                    }
                    var trend: [(run: String, metrics: [(String, Double)])] = []
                    for run in Directory.subdirectories(of: kept).filter({ $0.hasPrefix("run-") }).sorted() {
                        let old = kept + "/" + run + "/logs/" + name + "/summaries.jsonl"
                        guard Stage.fileExists(old), !Report.sameFile(old, log) else { continue }
                        trend.append((run, RunReport.metrics(RunReport.latestSteps(try Report.lines(old, stage)))))
                    }
                    if !steps.isEmpty { trend.append(("now", RunReport.metrics(steps))) }
                    stage.recordsOut += steps.count
                    sections.append(RunReport.Pipeline(name: name, steps: steps, trend: trend))
                }
                let report = RunReport(generatedAt: stage.clock.now.iso8601, pipelines: sections,
                                       leads: try Report.leads(logs + "/leads/leads.jsonl", stage),
                                       permits: try Report.permits(logs + "/permits", stage),
                                       events: try Report.events(logs + "/events", stage))
                let sink = try stage.output()
                sink.buffer.append(report.html())
                stage.summary.append("pipelines", .int(sections.filter { !$0.steps.isEmpty }.count))
            }
        }

        /// The lines of a summary log (none when there is none yet).
        static func lines(_ path: String, _ stage: Stage) throws -> [Record] {
            guard Stage.fileExists(path) else { return [] }
            var lines: [Record] = []
            try stage.forEachRecord([path]) { line, _ in lines.append(line) }
            return lines
        }

        /// The five commonest reasons in a rejects file, each with its count and first example.
        static func reasons(_ path: String, _ stage: Stage) throws -> [RunReport.Reason] {
            guard Stage.fileExists(path) else { return [] }
            var order: [String] = []
            var found: [String: RunReport.Reason] = [:]
            try stage.forEachRecord([path]) { reject, _ in
                let reason = reject.text("reason") ?? "(no reason given)"
                let key = RunReport.reasonClass(reason)
                if found[key] == nil {
                    order.append(key)
                    let source = (reject.text("source") ?? "").split(separator: "/").last.map(String.init) ?? ""
                    let line = reject["line"]?.int.map { ":\($0)" } ?? ""
                    found[key] = RunReport.Reason(text: key, count: 0, example: "\(source)\(line): \(reason)")
                }
                found[key]!.count += 1
            }
            let ranked = order.enumerated().sorted { a, b in
                let ca = found[a.element]!.count, cb = found[b.element]!.count
                return ca != cb ? ca > cb : a.offset < b.offset
            }
            return ranked.prefix(5).map { found[$0.element]! }
        }

        static func sameFile(_ a: String, _ b: String) -> Bool {
            var sa = stat(), sb = stat()
            return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
        }

        static func leads(_ path: String, _ stage: Stage) throws -> RunReport.Leads? {
            guard Stage.fileExists(path) else { return nil }
            var leads = RunReport.Leads()
            try stage.forEachRecord([path]) { lead, _ in
                leads.total += 1
                var active = Set<String>()
                for tag in lead["tags"]?.array ?? [] {
                    guard let tag = tag.object, let name = tag.text("tag") ?? tag.text("name") else { continue }
                    if let status = tag.text("status"), status != "active" { continue }
                    active.insert(name)
                }
                for name in active { leads.tagCounts[name, default: 0] += 1 }
                leads.stackCounts[active.count, default: 0] += 1
                if let score = lead["score"]?.double { leads.scores.append(score) }
            }
            return leads
        }

        static func permits(_ dir: String, _ stage: Stage) throws -> RunReport.Permits? {
            let tiered = dir + "/tiered.jsonl"
            guard Stage.fileExists(tiered) else { return nil }
            var permits = RunReport.Permits()
            try stage.forEachRecord([tiered]) { permit, _ in
                permits.total += 1
                let row = (permit.text("trade_group") ?? "?") + " / " + (permit.text("category") ?? "?")
                permits.tiers[row, default: [:]][permit.text("tier") ?? "?", default: 0] += 1
                if let score = permit["score"]?.double { permits.scores.append(score) }
                for reason in Report.list(permit["review_reasons"]) { permits.reviewReasons[reason, default: 0] += 1 }
            }
            let store = dir + "/permits.jsonl"
            if Stage.fileExists(store) {
                try stage.forEachRecord([store]) { permit, _ in
                    permits.statuses[permit.text("status") ?? "new", default: 0] += 1
                }
            }
            return permits
        }

        /// A list field: a JSON array, or the `|`-joined string older outputs wrote.
        static func list(_ value: JSONValue?) -> [String] {
            if let array = value?.array { return array.compactMap(\.text).filter { !$0.isEmpty } }
            guard let text = value?.text, !text.isEmpty else { return [] }
            return text.split(separator: "|").map(String.init)
        }

        static func events(_ dir: String, _ stage: Stage) throws -> RunReport.Events? {
            let totals = dir + "/listings.jsonl", hourly = dir + "/listing_analytics.jsonl"
            guard Stage.fileExists(totals) else { return nil }
            var events = RunReport.Events()
            try stage.forEachRecord([totals]) { row, _ in
                guard let id = row.text("listing_id") else { return }
                events.listings.append(.init(id: id, views: row["total_views"]?.double ?? 0, leads: row["total_leads"]?.double ?? 0,
                                             conversion: row["conversion_rate"]?.double ?? 0))
            }
            if Stage.fileExists(hourly) {
                try stage.forEachRecord([hourly]) { row, _ in
                    guard let id = row.text("listing_id"), let date = row.text("date") else { return }
                    let hour = row["hour"]?.int ?? 0
                    let key = date + " " + (hour < 10 ? "0" : "") + String(hour) + ":00"
                    events.hourly[id, default: [:]][key] = (row["total_views"]?.double ?? 0, row["total_leads"]?.double ?? 0)
                }
            }
            return events
        }
    }
}
