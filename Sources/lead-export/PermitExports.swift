import ArgumentParser
import LeadRules
import StageKit
#if canImport(Glibc)
import Glibc
#endif

/// The exports tree of scored permits:
///
///     <dir>/<trade_group>/<category>/tier_a.csv, tier_b.csv, tier_c.csv
///     <dir>/flagged/needs_review.csv        permits a review rule picked (not in a tier file)
///     <dir>/pending_retry/retry_queue.csv   permits whose scoring failed (score -1)
///     <dir>/other/other/tier_c.csv
///     <dir>/_delivered/YYYY-MM-DD/...       files handed to buyers (lead-export deliver)
///
/// The tree is its own state: each run reads the permits already in it, replaces those the
/// input scores again (a retried permit leaves the retry queue for its tier), drops the sold
/// and delivered ones, and writes every file again, rows by score descending then permit_id.
struct PermitTree {
    /// The seed's 17 columns, in its order.
    static let columns = [
        "permit_id", "city", "property_address", "owner_name", "project_description", "market_value", "days_old",
        "is_absentee", "score", "tier", "trade_group", "category", "reasoning", "ideal_contractor", "contact_priority",
        "flags", "scored_at",
    ]
    static let reviewColumn = "review_reasons"
    static let flagged = "flagged/needs_review.csv"
    static let retry = "pending_retry/retry_queue.csv"
    static let delivered = "_delivered"
    static let retryTier = "RETRY"

    let dir: String
    let categories: Set<String>
    let tiers: TierRules

    /// One permit in the tree: its 17 cells and, when flagged, the review reasons.
    struct Row {
        var cells: [String]
        var reviewReasons: String
        var file: String

        var id: String { cells[0] }
        var score: Int { Int(cells[8]) ?? Int.min }
    }

    /// The file (relative to the tree) a permit belongs in.
    func file(tier: String, group: String, category: String, review: Bool) throws(RecordRejected) -> String {
        if tier == PermitTree.retryTier { return PermitTree.retry }
        if review { return PermitTree.flagged }
        guard categories.contains(group + "/" + category) else {
            throw RecordRejected("trade_group/category '\(group)/\(category)' is not one of stages/tag/trades.csv (run lead-tag trades)")
        }
        guard tiers.bands.contains(where: { $0.tier == tier }) else {
            throw RecordRejected("tier '\(tier)' is not one of stages/tier/tiers.csv (run lead-tier)")
        }
        return group + "/" + category + "/tier_" + tier.lowercased() + ".csv"
    }

    /// A scored, tiered permit as a row of the tree.
    func row(_ permit: Record) throws(RecordRejected) -> Row {
        guard let id = permit.text(PermitFields.id), !id.isEmpty else { throw RecordRejected("no permit_id") }
        guard let tier = permit.text("tier"), !tier.isEmpty else { throw RecordRejected("permit \(id) has no tier (run lead-tier)") }
        let cells = PermitTree.columns.map { PermitTree.cell(permit[$0]) }
        let review = permit["needs_review"]?.bool == true
        return Row(cells: cells, reviewReasons: permit.text(PermitTree.reviewColumn) ?? "",
                   file: try file(tier: tier, group: cells[10], category: cells[11], review: review))
    }

    static func cell(_ value: JSONValue?) -> String {
        guard let value, !value.isNull else { return "" }
        if let b = value.bool { return b ? "true" : "false" }
        return value.text ?? value.json
    }

    /// The files of the tree that hold permits, relative to it (not _delivered/, not other exports).
    func existingFiles() -> [String] {
        Directory.files(in: dir, suffix: ".csv", recursive: true).compactMap { path in
            let relative = String(path.dropFirst(dir.count + 1))
            let parts = relative.split(separator: "/")
            if relative == PermitTree.flagged || relative == PermitTree.retry { return relative }
            guard parts.count == 3, !parts[0].hasPrefix("_"), parts[2].hasPrefix("tier_") else { return nil }
            return relative
        }
    }

    /// The permits now in the tree, by permit_id.
    func read() throws -> [String: Row] {
        var rows: [String: Row] = [:]
        for relative in existingFiles() {
            let path = dir + "/" + relative
            let table = try CSVReader.readAll(path)
            guard let header = table.first?.cells, Array(header.prefix(PermitTree.columns.count)) == PermitTree.columns else {
                throw StageError.data("\(path):1: not a permits export (its header is not the 17 permit columns); move it out of \(dir)")
            }
            let review = header.firstIndex(of: PermitTree.reviewColumn)
            for (line, cells) in table.dropFirst() {
                guard cells.count == header.count else {
                    throw StageError.data("\(path):\(line): expected \(header.count) fields as in the header, found \(cells.count)")
                }
                rows[cells[0]] = Row(cells: Array(cells.prefix(PermitTree.columns.count)),
                                     reviewReasons: review.map { cells[$0] } ?? "", file: relative)
            }
        }
        return rows
    }

    var deliveredFiles: [String] { Directory.files(in: dir + "/" + PermitTree.delivered, suffix: ".csv", recursive: true) }
}

/// The sold ledger, <logs>/permits/sold.csv.
enum SoldLedger {
    static let columns = ["permit_id", "sold_to", "sold_price", "sold_at"]
    static func path(logs: String) -> String { logs + "/permits/sold.csv" }
}

extension LeadExport {
    struct Permits: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "permits",
            abstract: "Write scored, tiered permits into the exports tree by trade group, category and tier.",
            discussion: """
            Writes <dir>/<trade_group>/<category>/tier_a.csv (b, c), <dir>/flagged/needs_review.csv \
            (permits lead-tier marked for review, with review_reasons), \
            <dir>/pending_retry/retry_queue.csv (score -1) and <dir>/other/other/tier_c.csv, with \
            the 17 columns permit_id, city, property_address, owner_name, project_description, \
            market_value, days_old, is_absentee, score, tier, trade_group, category, reasoning, \
            ideal_contractor, contact_priority, flags, scored_at; rows by score descending, then \
            permit_id. Directory names come only from the groups and categories of \
            stages/tag/trades.csv: a permit naming another goes to the rejects file. Cells are \
            made safe to open in a spreadsheet.

            The permits already in the tree stay, unless the input scores them again (a retried \
            permit moves from the retry queue to its tier) or they were sold \
            (<logs>/permits/sold.csv) or delivered (<dir>/_delivered/); --replace starts from an \
            empty tree. A report (counts per group, category and tier, retries, flagged) goes to \
            stderr and <logs>/permits/report.json.

            Example:
              lead-tier scored.jsonl | lead-export permits --dir exports/
            """
        )

        /// The exports root.
        @Option(help: ArgumentHelp("The exports tree.", valueName: "dir"))
        var dir = "exports"

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: <logs>/permits/sold.csv is read, report.json written.", valueName: "dir"))
        var logs = "local-logs"

        /// Ignore what the tree holds.
        @Flag(help: "Start from an empty tree instead of keeping the permits already in it.")
        var replace = false

        @OptionGroup var common: CommonOptions

        /// Tiered permits; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Tiered permit records (JSONL from lead-tier); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if common.output != nil { throw ValidationError("lead-export permits writes the tree under --dir; -o is not used") }
        }

        func run() throws {
            Stage.run("export", command: "permits", options: common) { stage in
                let dir = self.dir.hasSuffix("/") && self.dir.count > 1 ? String(self.dir.dropLast()) : self.dir
                let trades = try TradeRules.load(trades: stage.rulesFile("trades.csv", stage: "tag"),
                                                 commercial: stage.rulesFile("commercial.csv", stage: "tag"))
                let tiers = try TierRules.load(tiers: stage.rulesFile("tiers.csv", stage: "tier"),
                                               review: stage.rulesFile("review.csv", stage: "tier"))
                let tree = PermitTree(dir: dir, categories: Set(trades.categories.map { $0.group + "/" + $0.category }), tiers: tiers)
                let before = replace ? [:] : try tree.read()
                var rows = before
                var fromInput = 0
                try stage.forEachRecord(inputs) { permit, _ in
                    let row = try tree.row(permit)
                    rows[row.id] = row
                    fromInput += 1
                }
                let soldPath = SoldLedger.path(logs: logs)
                let sold = Stage.fileExists(soldPath) ? try PermitFields.ids(inCSV: [soldPath]) : []
                let delivered = try PermitFields.ids(inCSV: tree.deliveredFiles)
                var droppedSold = 0, droppedDelivered = 0
                for id in Array(rows.keys) {
                    if sold.contains(id) { rows[id] = nil; droppedSold += 1 }
                    else if delivered.contains(id) { rows[id] = nil; droppedDelivered += 1 }
                }
                // Every file again, each atomically; files left without permits are removed.
                var byFile: [String: [PermitTree.Row]] = [:]
                for row in rows.values { byFile[row.file, default: []].append(row) }
                for always in [PermitTree.flagged, PermitTree.retry, "other/other/tier_c.csv"] where byFile[always] == nil {
                    byFile[always] = []
                }
                for relative in tree.existingFiles() where byFile[relative] == nil {
                    stage.removeOnSuccess(dir + "/" + relative)
                }
                for (relative, fileRows) in byFile.sorted(by: { $0.key < $1.key }) {
                    let sorted = fileRows.sorted { a, b in a.score != b.score ? a.score > b.score : a.id < b.id }
                    let sink = try stage.openOutput(dir + "/" + relative)
                    var csv = CSVWriter(out: sink.buffer, delimiter: 44, spreadsheetSafe: true, crlf: false)
                    let flagged = relative == PermitTree.flagged
                    csv.writeRow(flagged ? PermitTree.columns + [PermitTree.reviewColumn] : PermitTree.columns)
                    for row in sorted {
                        csv.writeRow(flagged ? row.cells + [row.reviewReasons] : row.cells)
                        try sink.flushIfNeeded()
                    }
                    stage.recordsOut += sorted.count
                }
                let report = PermitReport.make(rows: Array(rows.values), tiers: tiers, now: stage.clock.now, input: fromInput,
                                               kept: before.count, sold: droppedSold, delivered: droppedDelivered, dir: dir)
                let sink = try stage.openOutput(logs + "/permits/report.json")
                sink.buffer.append(PermitReport.pretty(report))
                if !common.quiet { standardError(PermitReport.text(report)) }
                stage.summary.append("permits", .int(rows.count))
                stage.summary.append("retry", report["retry"] ?? .int(0))
                stage.summary.append("flagged", report["flagged"] ?? .int(0))
            }
        }
    }
}

/// The run report of lead-export permits.
enum PermitReport {
    static func make(rows: [PermitTree.Row], tiers: TierRules, now: Timestamp, input: Int, kept: Int, sold: Int,
                     delivered: Int, dir: String) -> Record {
        var byCategory: [String: [String: Int]] = [:]
        var byTier: [String: Int] = [:]
        var retry = 0, flagged = 0
        for row in rows {
            let key = row.cells[10] + "/" + row.cells[11]
            byCategory[key, default: [:]][row.cells[9], default: 0] += 1
            byTier[row.cells[9], default: 0] += 1
            if row.file == PermitTree.retry { retry += 1 }
            if row.file == PermitTree.flagged { flagged += 1 }
        }
        var tierCounts = Record()
        for band in tiers.bands { tierCounts.append(band.tier, .int(byTier[band.tier] ?? 0)) }
        var groups = Record()
        var groupTotals: [String: Int] = [:]
        for (key, counts) in byCategory { groupTotals[String(key.split(separator: "/")[0]), default: 0] += counts.values.reduce(0, +) }
        for (group, n) in groupTotals.sorted(by: { $0.key < $1.key }) { groups.append(group, .int(n)) }
        var categories = Record()
        for (key, counts) in byCategory.sorted(by: { $0.key < $1.key }) {
            var c = Record()
            for band in tiers.bands where counts[band.tier] != nil { c.append(band.tier, .int(counts[band.tier]!)) }
            categories.append(key, .object(c))
        }
        return [
            "run_at": .string(now.iso8601), "exports": .string(dir), "input": .int(input), "kept_from_tree": .int(kept),
            "permits": .int(rows.count), "tiers": .object(tierCounts), "retry": .int(retry), "flagged": .int(flagged),
            "dropped_sold": .int(sold), "dropped_delivered": .int(delivered), "groups": .object(groups),
            "categories": .object(categories),
        ]
    }

    static func pretty(_ report: Record) -> String {
        var out = "{\n"
        for (n, field) in report.fields.enumerated() {
            out += "  " + JSONValue.string(field.key).json + ": " + field.value.json + (n + 1 < report.fields.count ? ",\n" : "\n")
        }
        return out + "}\n"
    }

    static func text(_ report: Record) -> String {
        var out = "lead-export permits: \(report["permits"]?.int ?? 0) permits in \(report["exports"]?.text ?? "")"
        if let tiers = report["tiers"]?.object {
            out += " (" + tiers.fields.map { "\($0.key) \($0.value.int ?? 0)" }.joined(separator: ", ") + ")"
        }
        out += "; retry \(report["retry"]?.int ?? 0), flagged \(report["flagged"]?.int ?? 0)"
        out += ", dropped sold \(report["dropped_sold"]?.int ?? 0), delivered \(report["dropped_delivered"]?.int ?? 0)\n"
        for field in report["categories"]?.object?.fields ?? [] {
            let counts = field.value.object?.fields.map { "\($0.key) \($0.value.int ?? 0)" }.joined(separator: ", ") ?? ""
            out += "  \(field.key): \(counts)\n"
        }
        return out
    }
}

extension LeadExport {
    struct Deliver: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deliver",
            abstract: "Hand export files to a buyer: move them to <dir>/_delivered/YYYY-MM-DD/ and log it.",
            discussion: """
            Each file (a tier file of the exports tree) moves to \
            <dir>/_delivered/<--now's date>/<its path in the tree> (a second delivery of the same \
            path that day gets -2, -3, ...), and a line {delivered_at, buyer, file, delivered_to, \
            permits} is appended to <logs>/permits/deliveries.jsonl. Its permits are never \
            exported again. A file outside the tree, or already delivered, is refused.

            Example:
              lead-export deliver --buyer "ABC Pool Company" --files exports/luxury_outdoor/pool/tier_a.csv
            """
        )

        @Option(help: ArgumentHelp("Who gets the files.", valueName: "name")) var buyer: String
        @Option(parsing: .upToNextOption, help: ArgumentHelp("The files to deliver.", valueName: "file")) var files: [String]
        @Option(help: ArgumentHelp("The exports tree.", valueName: "dir")) var dir = "exports"
        @Option(help: ArgumentHelp("The logs root: deliveries are logged in <logs>/permits/deliveries.jsonl.", valueName: "dir"))
        var logs = "local-logs"
        @OptionGroup var common: CommonOptions

        func validate() throws {
            if buyer.trimmingSpaces.isEmpty { throw ValidationError("--buyer must name the buyer") }
            if files.isEmpty { throw ValidationError("give --files") }
        }

        func run() throws {
            Stage.run("export", command: "deliver", options: common) { stage in
                guard let root = realPath(dir) else { throw StageError.usage("\(dir): no such exports tree") }
                let day = stage.clock.now.date.iso8601
                var log: [Record] = []
                var moves: [(from: String, given: String, to: String)] = []
                for file in files {
                    guard let full = realPath(file), full.hasPrefix(root + "/") else {
                        throw StageError.usage("\(file): not a file in the exports tree \(dir)")
                    }
                    let relative = String(full.dropFirst(root.count + 1))
                    guard !relative.hasPrefix(PermitTree.delivered + "/") else { throw StageError.usage("\(file): already delivered") }
                    let permits = try CSVReader.readAll(full).count - 1
                    var target = dir + "/" + PermitTree.delivered + "/" + day + "/" + relative
                    var n = 2
                    while Stage.fileExists(target) || moves.contains(where: { $0.to == target }) {
                        target = dir + "/" + PermitTree.delivered + "/" + day + "/" + String(relative.dropLast(4)) + "-\(n).csv"
                        n += 1
                    }
                    moves.append((full, file, target))
                    log.append(["delivered_at": .string(stage.clock.now.iso8601), "buyer": .string(buyer),
                                "file": .string(relative), "delivered_to": .string(String(target.dropFirst(dir.count + 1))),
                                "permits": .int(max(0, permits))])
                }
                for move in moves {
                    try AtomicFiles.makeDirectories(String(move.to[..<move.to.lastIndex(of: "/")!]))
                    guard rename(move.from, move.to) == 0 else { throw StageError.io("\(move.from): cannot move to \(move.to): \(errnoText())") }
                    if !common.quiet { standardError("lead-export: delivered \(move.given) to \(buyer): \(move.to)\n") }
                    stage.recordsOut += 1
                }
                try stage.appendToLog(log, at: logs + "/permits/deliveries.jsonl")
            }
        }

        func realPath(_ path: String) -> String? {
            guard let resolved = realpath(path, nil) else { return nil }
            defer { free(resolved) }
            return String(cString: resolved)
        }
    }

    struct Sold: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sold",
            abstract: "Record a permit lead as sold: append it to <logs>/permits/sold.csv.",
            discussion: """
            Appends permit_id, sold_to, sold_price (two decimals) and sold_at (--now) to \
            <logs>/permits/sold.csv; lead-export permits never exports a sold permit again. The \
            permit must be in the exports tree (or delivered from it) unless --force; a permit \
            sold before is refused.

            Example:
              lead-export sold --permit-id "2016-021091 BP" --to "ABC Pool Company" --price 25.00
            """
        )

        @Option(help: ArgumentHelp("The permit sold.", valueName: "id")) var permitId: String
        @Option(help: ArgumentHelp("The buyer.", valueName: "name")) var to: String
        @Option(help: ArgumentHelp("The price ($25.00, 25).", valueName: "amount")) var price: String
        @Option(help: ArgumentHelp("The exports tree.", valueName: "dir")) var dir = "exports"
        @Option(help: ArgumentHelp("The logs root.", valueName: "dir")) var logs = "local-logs"
        @Flag(help: "Record the sale even when the permit is in no export file.") var force = false
        @OptionGroup var common: CommonOptions

        func validate() throws {
            guard let amount = ColumnMap.money(price), amount >= 0 else { throw ValidationError("--price must be an amount of money, like 25.00") }
            if to.trimmingSpaces.isEmpty { throw ValidationError("--to must name the buyer") }
        }

        func run() throws {
            Stage.run("export", command: "sold", options: common) { stage in
                let path = SoldLedger.path(logs: logs)
                var rows = Stage.fileExists(path) ? try CSVReader.readAll(path).map(\.cells) : [SoldLedger.columns]
                if rows.first != SoldLedger.columns { throw StageError.data("\(path):1: not a sold ledger (\(SoldLedger.columns.joined(separator: ",")))") }
                if let earlier = rows.dropFirst().first(where: { $0.first == permitId }) {
                    throw StageError.usage("permit \(permitId) was sold to \(earlier[1]) at \(earlier[3])")
                }
                if !force {
                    let tree = PermitTree(dir: dir, categories: [], tiers: TierRules(bands: [], review: []))
                    let known = try PermitFields.ids(inCSV: tree.existingFiles().map { dir + "/" + $0 } + tree.deliveredFiles)
                    guard known.contains(permitId) else {
                        throw StageError.usage("permit \(permitId) is in no file under \(dir)/ (check the id, or give --force)")
                    }
                }
                let amount = ColumnMap.money(price)!
                let cents = Int((amount * 100).rounded())
                rows.append([permitId, to, "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)", stage.clock.now.iso8601])
                let sink = try stage.openOutput(path)
                var csv = CSVWriter(out: sink.buffer)
                for row in rows { csv.writeRow(row) }
                stage.recordsOut += 1
            }
        }
    }
}
