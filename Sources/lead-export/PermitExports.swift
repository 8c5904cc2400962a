import ArgumentParser
import LeadRules
import LeadStores
import StageKit
#if canImport(Glibc)
import Glibc
#endif

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

            The tree is a view of the permits store, <logs>/permits/permits.jsonl: every permit \
            ever exported, its whole record, sorted by permit_id, with status new, sold, delivered \
            or dropped. The input replaces the stored permits of the same id (a retried permit \
            moves from the retry queue to its tier); the kept ones are re-aged to --now (days_old; \
            permits scored by the rules are scored again, so freshness points and scored_at \
            follow the clock) and tiered again. Sold (<logs>/permits/sold.csv), delivered \
            (<dir>/_delivered/) and dropped (lead-tier review --drop) permits stay on record but \
            leave the files; approved ones (lead-tier review --approve) leave flagged/ for their \
            tier. --replace forgets the permits in status new first. The incoming permits and the \
            tree's rows are sorted within the memory budget (LEAD_MEMORY, default 256M), on disk \
            past it (the summary gives runs_on_disk); the files are the same either way. A report (counts per group, \
            category and tier of what the tier files hold; flagged and retry apart) goes to stderr \
            and <logs>/permits/report.json. The store and the tree are locked for the run and \
            change as one.

            In shards: with --shard i/n (or LEAD_SHARD), the run places only the permits whose \
            trade (trade_group/category, FNV-1a 64 mod n) shard i owns, stored or incoming, \
            reading the whole input, and leaves its part (store records, tier files, flagged and \
            retry rows, counts) in <logs>/permits/shards/i-of-n/; the store and the tree are \
            only read. Then --join-shards n makes the store, the tree and the report of the n \
            parts: the same files one process writes. The join refuses parts that read another \
            store or ledgers than it finds (a run in between), or another --now.

            Example:
              lead-tier scored.jsonl | lead-export permits --dir exports/
            """
        )

        /// The exports root.
        @Option(help: ArgumentHelp("The exports tree.", valueName: "dir"))
        var dir = "exports"

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: <logs>/permits/ holds the store, its ledgers and report.json.", valueName: "dir"))
        var logs = "local-logs"

        /// Ignore what the tree holds.
        @Flag(help: "Start from an empty tree instead of keeping the permits already in it.")
        var replace = false

        /// Join the parts of n shards.
        @Option(help: ArgumentHelp("Make the store and the tree of the parts that lead-export permits --shard i/n left (no input).", valueName: "n"))
        var joinShards: Int?

        @OptionGroup var common: CommonOptions

        /// Tiered permits; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Tiered permit records (JSONL from lead-tier); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if common.output != nil { throw ValidationError("lead-export permits writes the tree under --dir; -o is not used") }
            if let n = joinShards {
                if n < 1 { throw ValidationError("--join-shards must be at least 1") }
                if !inputs.isEmpty { throw ValidationError("--join-shards reads the shards' parts, not input files") }
                if common.shard != nil { throw ValidationError("--join-shards joins every shard: do not give --shard") }
            }
        }

        func run() throws {
            Stage.run("export", command: "permits", options: common) { stage in
                let permits = PermitStore(exports: dir, logs: logs)
                let rules = try PermitStoreRules.load(stage)
                let outcome: PermitStore.Outcome
                if let n = joinShards {
                    try permits.open(stage)
                    outcome = try permits.join(stage, count: n, rules: rules)
                } else if let shard = stage.shard {
                    let store = try permits.openShard(stage, shard)
                    outcome = try permits.rebuild(stage, store: store, rules: rules, inputs: inputs, reage: true, replace: replace, shard: shard)
                    stage.summary.append("shard", .string(shard.description))
                } else {
                    let store = try permits.open(stage)
                    outcome = try permits.rebuild(stage, store: store, rules: rules, inputs: inputs, reage: true, replace: replace)
                }
                if !common.quiet { standardError(PermitStore.text(outcome.report)) }
                for key in ["permits", "flagged", "retry", "reaged"] { stage.summary.append(key, outcome.report[key] ?? .int(0)) }
            }
        }
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
                let permits = PermitStore(exports: dir, logs: logs)
                let store = try permits.open(stage)
                let rules = try PermitStoreRules.load(stage)
                let day = stage.clock.now.date.iso8601
                let at = stage.clock.now.iso8601
                var log: [Record] = []
                var targets: [String] = []
                var delivered: [String: PermitStore.Delivery] = [:]
                for file in files {
                    guard let full = realPath(file), full.hasPrefix(root + "/") else {
                        throw StageError.usage("\(file): not a file in the exports tree \(dir)")
                    }
                    let relative = String(full.dropFirst(root.count + 1))
                    guard !relative.hasPrefix(PermitStore.deliveredFolder + "/") else { throw StageError.usage("\(file): already delivered") }
                    guard permits.existingViewFiles().contains(relative) else {
                        throw StageError.usage("\(file): not a permits file of the tree (a tier file, flagged/ or pending_retry/)")
                    }
                    let ids = try PermitFields.ids(inCSV: [full])
                    var target = dir + "/" + PermitStore.deliveredFolder + "/" + day + "/" + relative
                    var n = 2
                    while Stage.fileExists(target) || targets.contains(target) {
                        target = dir + "/" + PermitStore.deliveredFolder + "/" + day + "/" + String(relative.dropLast(4)) + "-\(n).csv"
                        n += 1
                    }
                    targets.append(target)
                    try store.move(full, to: target)
                    let deliveredTo = String(target.dropFirst(dir.count + 1))
                    for id in ids { delivered[id] = PermitStore.Delivery(to: buyer, at: at) }
                    log.append(["delivered_at": .string(at), "buyer": .string(buyer), "file": .string(relative),
                                "delivered_to": .string(deliveredTo), "permits": .int(ids.count)])
                    if !common.quiet { standardError("lead-export: delivered \(file) to \(buyer): \(target)\n") }
                }
                store.appendLog(log, to: permits.deliveriesPath)
                _ = try permits.rebuild(stage, store: store, rules: rules, inputs: nil, reage: false, deliveries: delivered)
                stage.recordsOut = files.count
                stage.summary.append("permits", .int(delivered.count))
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
            <logs>/permits/sold.csv and takes the permit out of the tree's files (it stays in the \
            store with status sold); lead-export permits never exports it again. The permit must \
            be in the store (in the tree or delivered from it) unless --force; a permit sold \
            before is refused, and so is one waiting for review in flagged/ or dropped by a \
            reviewer, unless --force.

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
                let permits = PermitStore(exports: dir, logs: logs)
                let store = try permits.open(stage)
                let rules = try PermitStoreRules.load(stage)
                let (rows, byID) = try permits.sales()
                if let earlier = byID[permitId] {
                    throw StageError.usage("permit \(permitId) was sold to \(earlier.to) at \(earlier.at)")
                }
                let record = try permits.record(permitId)
                if !force {
                    guard let record else {
                        throw StageError.usage("permit \(permitId) is in no file under \(dir)/ (check the id, or give --force)")
                    }
                    if record.text("status") == "dropped" {
                        throw StageError.usage("permit \(permitId) was dropped by a reviewer (give --force to sell it anyway)")
                    }
                    if record.text("status") == "new" && PermitStore.isFlagged(record) {
                        let reasons = record.text(PermitStore.reviewColumn) ?? ""
                        throw StageError.usage("permit \(permitId) waits for review (\(reasons.split(separator: "|").joined(separator: ", "))): approve it with lead-tier review --approve '\(permitId)', or give --force")
                    }
                }
                let amount = ColumnMap.money(price)!
                let cents = Int((amount * 100).rounded())
                let sale = PermitStore.Sale(to: to, price: "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)", at: stage.clock.now.iso8601)
                let sink = try stage.openOutput(permits.soldPath)
                var csv = CSVWriter(out: sink.buffer)
                for row in rows { csv.writeRow(row) }
                csv.writeRow([permitId, sale.to, sale.price, sale.at])
                _ = try permits.rebuild(stage, store: store, rules: rules, inputs: nil, reage: false, sales: [permitId: sale])
                stage.recordsOut = 1
            }
        }
    }
}
