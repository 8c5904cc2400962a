import StageKit

/// The run report: one self-contained HTML page of what the runs left (the summary logs of
/// the pipelines, their rejects and their outputs). `lead-export report` gathers the numbers;
/// this builds the page from them, and holds the rules for reading the summary logs.
public struct RunReport {
    /// One stage run of a pipeline, from its newest summary line.
    public struct Step {
        public var stage: String
        public var command: String?
        public var output: String?
        public var recordsIn: Int
        public var recordsOut: Int
        public var rejected: Int
        public var seconds: Double
        public var at: String
        public var error: String?
        public var argv: [String]
        public var rejectsPath: String?
        /// The top reject reasons, with how many and an example of each.
        public var reasons: [Reason] = []

        /// "normalize", "tag leads", ...
        public var name: String { command.map { stage + " " + $0 } ?? stage }

        /// What the step wrote, for people: the output's file name, else the pipeline or the
        /// first input named on its command line.
        public var target: String {
            if let output { return output.split(separator: "/").suffix(2).joined(separator: "/") }
            if let i = argv.firstIndex(of: "--pipeline"), i + 1 < argv.count { return argv[i + 1] }
            return argv.last(where: { !$0.hasPrefix("-") }).map { String($0.split(separator: "/").last ?? "") } ?? ""
        }

        /// The value of `--option` on the step's command line.
        public func argument(_ option: String) -> String? {
            guard let i = argv.firstIndex(of: option), i + 1 < argv.count else { return nil }
            return argv[i + 1]
        }

        public init?(_ line: Record) {
            guard let stage = line.text("stage") else { return nil }
            self.stage = stage
            command = line.text("command")
            output = line["output"]?.string
            recordsIn = line["in"]?.int ?? 0
            recordsOut = line["out"]?.int ?? 0
            rejected = line["rejected"]?.int ?? 0
            seconds = line["seconds"]?.double ?? 0
            at = line.text("at") ?? ""
            error = line["error"]?.string
            argv = line["argv"]?.array?.compactMap(\.string) ?? []
            rejectsPath = line["rejects"]?.string
        }
    }

    public struct Reason {
        public var text: String
        public var count: Int
        public var example: String
        public init(text: String, count: Int, example: String) {
            self.text = text
            self.count = count
            self.example = example
        }
    }

    public struct Pipeline {
        public var name: String
        public var steps: [Step]
        /// The kept earlier runs (oldest first) and this one: the out counts per stage and
        /// the rejected total.
        public var trend: [(run: String, metrics: [(String, Double)])]
        public init(name: String, steps: [Step], trend: [(run: String, metrics: [(String, Double)])]) {
            self.name = name
            self.steps = steps
            self.trend = trend
        }
    }

    public struct Leads {
        public var total = 0
        public var tagCounts: [String: Int] = [:]
        public var stackCounts: [Int: Int] = [:]
        public var scores: [Double] = []
        public init() {}
    }

    public struct Permits {
        public var total = 0
        /// "group / category" -> count per tier.
        public var tiers: [String: [String: Int]] = [:]
        public var scores: [Double] = []
        public var reviewReasons: [String: Int] = [:]
        public var statuses: [String: Int] = [:]
        public init() {}
    }

    public struct Events {
        public struct Listing {
            public var id: String
            public var views: Double
            public var leads: Double
            public var conversion: Double
            public init(id: String, views: Double, leads: Double, conversion: Double) {
                self.id = id
                self.views = views
                self.leads = leads
                self.conversion = conversion
            }
        }
        public var listings: [Listing] = []
        /// listing -> "date hour" -> (views, leads).
        public var hourly: [String: [String: (views: Double, leads: Double)]] = [:]
        public init() {}
    }

    public var generatedAt: String
    public var pipelines: [Pipeline]
    public var leads: Leads?
    public var permits: Permits?
    public var events: Events?

    public init(generatedAt: String, pipelines: [Pipeline], leads: Leads?, permits: Permits?, events: Events?) {
        self.generatedAt = generatedAt
        self.pipelines = pipelines
        self.leads = leads
        self.permits = permits
        self.events = events
    }

    /// The tiers, in the order the charts stack them.
    public static let tierOrder = ["A", "B", "C", "RETRY"]

    // MARK: Reading the summary logs

    /// The newest line of each step in a pipeline's summary log, in the order the steps last
    /// ran. A step is a stage command and what it wrote (its output, or its command line
    /// without the clock when it names no output).
    public static func latestSteps(_ lines: [Record]) -> [Step] {
        var newest: [String: Int] = [:]
        var steps: [Step?] = []
        for line in lines {
            guard let step = Step(line) else { continue }
            let key = stepKey(step)
            if let old = newest[key] { steps[old] = nil }
            newest[key] = steps.count
            steps.append(step)
        }
        return steps.compactMap { $0 }
    }

    static func stepKey(_ step: Step) -> String {
        if let output = step.output { return step.name + "\u{1}" + output }
        var args: [String] = []
        var skip = false
        for a in step.argv {
            if skip { skip = false; continue }
            if a == "--now" { skip = true; continue }
            if a.hasPrefix("--now=") { continue }
            args.append(a)
        }
        return step.name + "\u{1}" + args.joined(separator: "\u{2}")
    }

    /// A reject reason with its particulars taken out ('...' quoted values, and words that
    /// hold a digit: numbers, ids, dates), so that rejects for the same cause count together.
    public static func reasonClass(_ reason: String) -> String {
        var out = "", word = "", quoted = false
        func endWord() {
            out += word.contains(where: \.isNumber) ? "N" : word
            word = ""
        }
        for c in reason {
            if quoted {
                if c == "'" { quoted = false; out += "…'" }
                continue
            }
            if c == "'" { endWord(); quoted = true; out.append(c); continue }
            if c == " " || c == "," || c == ";" || c == ":" || c == "(" || c == ")" || c == "[" || c == "]" || c == "=" {
                endWord()
                out.append(c)
                continue
            }
            word.append(c)
        }
        endWord()
        if quoted { out += "…" }
        // A time split at its colons is one particular: 12:45:00 -> N.
        let chars = Array(out)
        var collapsed = ""
        var k = 0
        func placeholder(_ at: Int, in text: [Character]) -> Bool {
            text[at] == "N" && (at == 0 || !text[at - 1].isLetter) && (at + 1 == text.count || !text[at + 1].isLetter)
        }
        while k < chars.count {
            if chars[k] == ":", k > 0, k + 1 < chars.count, placeholder(k - 1, in: chars), placeholder(k + 1, in: chars) {
                k += 2
                continue
            }
            collapsed.append(chars[k])
            k += 1
        }
        return collapsed
    }

    /// The trend numbers of one run: the records out of each stage command (summed over its
    /// steps, as "fetch listings"), and everything rejected.
    public static func metrics(_ steps: [Step]) -> [(String, Double)] {
        var order: [String] = []
        var sums: [String: Double] = [:]
        var rejected = 0.0
        for step in steps {
            if sums[step.name] == nil { order.append(step.name) }
            sums[step.name, default: 0] += Double(step.recordsOut)
            rejected += Double(step.rejected)
        }
        return order.map { ($0, sums[$0]!) } + [("rejected", rejected)]
    }

    // MARK: The page

    public func html() -> String {
        var page = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
        <title>LeadETL run report</title>
        <style>
        body { font-family: sans-serif; margin: 24px auto; max-width: 1000px; color: #222; background: #fff; }
        h1 { font-size: 24px; } h2 { font-size: 20px; border-bottom: 2px solid #0072B2; padding-bottom: 4px; margin-top: 40px; }
        h3 { font-size: 15px; margin-top: 24px; }
        table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
        th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
        td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
        tr.failed td { background: #fde8e0; }
        .reasons { font-size: 12px; color: #444; margin: 0; padding-left: 16px; }
        .reasons code { background: #f4f4f4; }
        nav a { margin-right: 14px; }
        svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0 16px; font-family: sans-serif; }
        .muted { color: #777; }
        </style></head><body>
        <h1>LeadETL run report</h1>
        <p class="muted">Made \(esc(generatedAt)) from the summary logs, rejects and outputs the runs left.</p>

        """
        page += "<nav>" + pipelines.map { "<a href=\"#\(esc($0.name))\">\(esc($0.name))</a>" }.joined() + "</nav>\n"
        for pipeline in pipelines {
            page += "<section id=\"\(esc(pipeline.name))\" class=\"pipeline\" data-pipeline=\"\(esc(pipeline.name))\">\n"
            page += "<h2>\(esc(pipeline.name))</h2>\n"
            if pipeline.steps.isEmpty {
                page += "<p class=\"muted\">No run of this pipeline has left a summary log yet (make \(esc(pipeline.name))).</p>\n</section>\n"
                continue
            }
            page += funnel(pipeline)
            switch pipeline.name {
            case "listings": page += listingCharts(pipeline)
            case "leads": if let leads { page += leadCharts(leads) }
            case "permits": if let permits { page += permitCharts(permits) }
            case "events": if let events { page += eventCharts(events) }
            default: break
            }
            page += trendChart(pipeline)
            page += "</section>\n"
        }
        return page + "</body></html>\n"
    }

    func esc(_ s: String) -> String { SVGChart.escape(s) }

    func funnel(_ pipeline: Pipeline) -> String {
        var out = "<h3>Records through the stages</h3>\n<table class=\"funnel\"><thead><tr><th>step</th><th>wrote</th>"
            + "<th class=\"n\">in</th><th class=\"n\">out</th><th class=\"n\">rejected</th><th class=\"n\">seconds</th><th>ran at</th></tr></thead><tbody>\n"
        for step in pipeline.steps {
            let failed = step.error != nil
            out += "<tr class=\"step\(failed ? " failed" : "")\" data-stage=\"\(esc(step.stage))\" data-command=\"\(esc(step.command ?? ""))\" "
                + "data-output=\"\(esc(step.output ?? ""))\" data-in=\"\(step.recordsIn)\" data-out=\"\(step.recordsOut)\" data-rejected=\"\(step.rejected)\">"
            out += "<td>\(esc(step.name))</td><td>\(esc(step.target))\(failed ? " <b>failed:</b> " + esc(step.error!) : "")</td>"
            out += "<td class=\"n\">\(step.recordsIn)</td><td class=\"n\">\(step.recordsOut)</td><td class=\"n\">\(step.rejected)</td>"
            out += "<td class=\"n\">\(SVGChart.number(step.seconds))</td><td>\(esc(String(step.at.prefix(19).map { $0 == "T" ? " " : $0 })))</td></tr>\n"
            if !step.reasons.isEmpty {
                out += "<tr class=\"reasons-row\"><td></td><td colspan=\"6\"><ul class=\"reasons\">"
                for reason in step.reasons {
                    out += "<li>\(reason.count) × \(esc(reason.text)) <span class=\"muted\">e.g.</span> <code>\(esc(reason.example))</code></li>"
                }
                out += "</ul></td></tr>\n"
            }
        }
        out += "</tbody></table>\n"
        let rows = pipeline.steps.map { step in
            (label: step.name + " → " + step.target,
             values: [Double(step.recordsOut), Double(step.rejected), Double(max(0, step.recordsIn - step.recordsOut - step.rejected))])
        }
        out += SVGChart.stackedBars(rows, series: ["out", "rejected", "not passed on"], title: "Funnel: records out, rejected, and not passed on (merged, filtered) per step")
        return out
    }

    func listingCharts(_ pipeline: Pipeline) -> String {
        var byPipeline: [String: [String: Double]] = [:]
        var order: [String] = []
        var cleanup: [Step] = []
        for step in pipeline.steps {
            if step.stage == "cleanup" { cleanup.append(step); continue }
            guard let name = step.argument("--pipeline") else { continue }
            if byPipeline[name] == nil { order.append(name) }
            byPipeline[name, default: [:]][step.name] = Double(step.recordsOut)
        }
        let series = ["fetch listings", "flatten listings", "fetch photos"]
        var out = "<h3>Fetched, flattened and photographed per MLS pipeline</h3>\n<table class=\"listings\"><thead><tr><th>pipeline</th>"
            + series.map { "<th class=\"n\">\(esc($0))</th>" }.joined() + "</tr></thead><tbody>"
        for name in order {
            out += "<tr><td>\(esc(name))</td>" + series.map { "<td class=\"n\">\(SVGChart.number(byPipeline[name]?[$0] ?? 0))</td>" }.joined() + "</tr>"
        }
        out += "</tbody></table>\n"
        out += SVGChart.stackedBars(order.map { name in (label: name, values: [byPipeline[name]?["fetch listings"] ?? 0]) },
                                    series: ["fetched"], title: "Listings fetched per pipeline")
        for step in cleanup {
            out += "<p>Cleanup: \(step.recordsIn) listings looked at, \(step.recordsOut) kept, \(step.recordsIn - step.recordsOut) expired and removed with their photos.</p>\n"
        }
        return out
    }

    func leadCharts(_ leads: Leads) -> String {
        var out = "<h3>Tags on the \(leads.total) leads of the master</h3>\n"
        let tags = leads.tagCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        out += SVGChart.stackedBars(tags.map { (label: $0.key, values: [Double($0.value)]) }, series: ["leads"], title: "Leads carrying each active tag")
        let stacks = leads.stackCounts.keys.sorted()
        out += SVGChart.stackedBars(stacks.map { (label: "\($0) tag\($0 == 1 ? "" : "s")", values: [Double(leads.stackCounts[$0]!)]) },
                                    series: ["leads"], title: "Tags stacked per lead: leads by how many active tags they carry")
        out += SVGChart.columns(SVGChart.histogram(leads.scores), title: "Score distribution")
        return out
    }

    func permitCharts(_ permits: Permits) -> String {
        var out = "<h3>Tiers of the \(permits.total) scored permits by trade group and category</h3>\n"
        let rows = permits.tiers.sorted { a, b in
            let ta = a.value.values.reduce(0, +), tb = b.value.values.reduce(0, +)
            return ta != tb ? ta > tb : a.key < b.key
        }
        out += SVGChart.stackedBars(rows.map { row in (label: row.key, values: RunReport.tierOrder.map { Double(row.value[$0] ?? 0) }) },
                                    series: RunReport.tierOrder.map { "tier " + $0 }, title: "Tiers per trade group / category")
        out += SVGChart.columns(SVGChart.histogram(permits.scores), title: "Score histogram")
        let reasons = permits.reviewReasons.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        out += SVGChart.stackedBars(reasons.map { (label: $0.key, values: [Double($0.value)]) }, series: ["permits"], title: "Reasons for review")
        if !permits.statuses.isEmpty {
            out += "<p>In the permits store: " + permits.statuses.sorted { $0.key < $1.key }.map { "\($0.value) \(esc($0.key))" }.joined(separator: ", ") + ".</p>\n"
        }
        return out
    }

    func eventCharts(_ events: Events) -> String {
        var out = "<h3>Views and leads of the busiest listings, per hour</h3>\n"
        let busiest = events.listings.sorted { $0.views != $1.views ? $0.views > $1.views : $0.id < $1.id }
        for listing in busiest.prefix(3) {
            let hours = (events.hourly[listing.id] ?? [:]).keys.sorted()
            let rows = hours.map { events.hourly[listing.id]![$0]! }
            out += SVGChart.lines(x: hours, series: [("views", rows.map { $0.views }), ("leads", rows.map { $0.leads })],
                                  title: "Listing \(listing.id): views and leads per hour")
        }
        out += SVGChart.stackedBars(busiest.prefix(15).map { (label: $0.id, values: [$0.conversion]) }, series: ["conversion %"],
                                    title: "Conversion per listing (leads per 100 views)")
        out += "<table class=\"events\"><thead><tr><th>listing</th><th class=\"n\">views</th><th class=\"n\">leads</th><th class=\"n\">conversion %</th></tr></thead><tbody>"
        for l in busiest.prefix(15) {
            out += "<tr><td>\(esc(l.id))</td><td class=\"n\">\(SVGChart.number(l.views))</td><td class=\"n\">\(SVGChart.number(l.leads))</td><td class=\"n\">\(SVGChart.number(l.conversion))</td></tr>"
        }
        return out + "</tbody></table>\n"
    }

    func trendChart(_ pipeline: Pipeline) -> String {
        guard pipeline.trend.count > 1 else {
            return "<p class=\"muted\">No earlier run is kept yet to compare with (make keeps the last five in _previous/).</p>\n"
        }
        var names: [String] = []
        for run in pipeline.trend { for (name, _) in run.metrics where !names.contains(name) { names.append(name) } }
        let series = names.map { name in
            (name: name, values: pipeline.trend.map { run in run.metrics.first { $0.0 == name }?.1 })
        }
        return "<h3>Against the kept earlier runs</h3>\n"
            + SVGChart.lines(x: pipeline.trend.map(\.run), series: series, title: "Records out per stage and rejected, run by run")
    }
}
