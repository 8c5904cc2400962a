#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import LeadRules
import StageKit

/// The rules a rebuild of the permits store needs: the trade categories that name the tree's
/// folders, the tier bands and review rules, and the scorer that re-ages kept permits.
public struct PermitStoreRules: Sendable {
    public let categories: Set<String>
    public let tiers: TierRules
    public let scorer: PermitScorer

    public init(categories: Set<String>, tiers: TierRules, scorer: PermitScorer) {
        self.categories = categories
        self.tiers = tiers
        self.scorer = scorer
    }

    /// From `stages/tag/` (trades.csv, commercial.csv), `stages/tier/` and `stages/score/`.
    public static func load(_ stage: Stage) throws -> PermitStoreRules {
        let trades = try TradeRules.load(directory: stage.rulesDirectory(stage: "tag"))
        let tiers = try TierRules.load(tiers: stage.rulesFile("tiers.csv", stage: "tier"),
                                       review: stage.rulesFile("review.csv", stage: "tier"))
        let scorer = try PermitScorer.load(directory: stage.rulesDirectory(stage: "score"))
        return PermitStoreRules(categories: Set(trades.categories.map { $0.group + "/" + $0.category }), tiers: tiers, scorer: scorer)
    }
}

/// The permits store: every scored permit the exports tree ever held, and what became of it.
///
///     <logs>/permits/permits.jsonl    every permit, its whole tiered record, sorted by permit_id,
///                                     with status (new, sold, delivered, dropped), review_status,
///                                     sold_to, sold_price, sold_at, delivered_to, delivered_at, export_file
///     <logs>/permits/sold.csv         the sold ledger (lead-export sold)
///     <logs>/permits/deliveries.jsonl the delivery log (lead-export deliver)
///     <logs>/permits/reviews.jsonl    approvals and drops of flagged permits (lead-tier review)
///     <logs>/permits/report.json      counts of the last rebuild
///     <exports>/<trade_group>/<category>/tier_a.csv, tier_b.csv, tier_c.csv
///     <exports>/flagged/needs_review.csv   permits a review rule picked and nobody approved yet
///     <exports>/pending_retry/retry_queue.csv  permits whose scoring failed (score -1)
///     <exports>/other/other/tier_c.csv
///     <exports>/_delivered/YYYY-MM-DD/...  files handed to buyers
///
/// The CSV files are views of the permits in status new, written again from the records on
/// every rebuild (the seed's 17 columns, then contractor_name and contractor_phone; rows by score
/// descending then permit_id). A rebuild merges the
/// incoming permits (which replace the stored ones of the same id) with the stored ones in
/// permit_id order, re-ages the kept permits to the clock (days_old, and for rule-scored
/// permits the whole score, reasoning and scored_at, then the tier), and applies the ledgers.
/// Memory stays within the budget (`LEAD_MEMORY`) whatever the number of permits: the
/// incoming permits and the view rows go through sorts (`ExternalSort`) that spill to scratch
/// files past it; the stored records are read as a stream.
public struct PermitStore {
    /// The seed's 17 columns, in its order.
    public static let columns = [
        "permit_id", "city", "property_address", "owner_name", "project_description", "market_value", "days_old",
        "is_absentee", "score", "tier", "trade_group", "category", "reasoning", "ideal_contractor", "contact_priority",
        "flags", "scored_at",
    ]
    /// After the seed's columns: the contractor the city names on the permit.
    public static let contractorColumns = ["contractor_name", "contractor_phone"]
    /// The columns of every view: the seed's 17, then the contractor's.
    public static var viewColumns: [String] { columns + contractorColumns }
    public static let reviewColumn = "review_reasons"
    public static let flaggedFile = "flagged/needs_review.csv"
    public static let retryFile = "pending_retry/retry_queue.csv"
    public static let otherFile = "other/other/tier_c.csv"
    public static let deliveredFolder = "_delivered"
    public static let retryTier = "RETRY"
    /// The fields a rebuild sets on every stored record, appended in this order.
    public static let statusFields = ["status", "review_status", "sold_to", "sold_price", "sold_at", "delivered_to",
                                      "delivered_at", "export_file"]

    public let exports: String
    public let logs: String

    public init(exports: String, logs: String) {
        var dir = exports
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        self.exports = dir
        self.logs = logs
    }

    public var recordsPath: String { logs + "/permits/permits.jsonl" }
    public var soldPath: String { logs + "/permits/sold.csv" }
    public var deliveriesPath: String { logs + "/permits/deliveries.jsonl" }
    public var reviewsPath: String { logs + "/permits/reviews.jsonl" }
    public var reportPath: String { logs + "/permits/report.json" }

    /// Locks the tree and the permits logs for this run.
    @discardableResult
    public func open(_ stage: Stage) throws(StageError) -> Store {
        try Store.open([exports, logs + "/permits"], for: stage)
    }

    // MARK: Ledgers

    public struct Sale: Sendable {
        public var to: String, price: String, at: String
        public init(to: String, price: String, at: String) { self.to = to; self.price = price; self.at = at }
    }
    public struct Delivery: Sendable {
        public var to: String, at: String
        public init(to: String, at: String) { self.to = to; self.at = at }
    }
    public struct Review: Sendable {
        public var action: String, at: String, by: String
        public init(action: String, at: String, by: String) { self.action = action; self.at = at; self.by = by }
    }

    public static let soldColumns = ["permit_id", "sold_to", "sold_price", "sold_at"]

    /// The sold ledger's rows (header first), by permit_id.
    public func sales() throws -> (rows: [[String]], byID: [String: Sale]) {
        guard Stage.fileExists(soldPath) else { return ([PermitStore.soldColumns], [:]) }
        let table = try CSVReader.readAll(soldPath)
        guard table.first?.cells == PermitStore.soldColumns else {
            throw StageError.data("\(soldPath):1: not a sold ledger (\(PermitStore.soldColumns.joined(separator: ",")))")
        }
        var byID: [String: Sale] = [:]
        for (line, cells) in table.dropFirst() {
            guard cells.count == 4 else { throw StageError.data("\(soldPath):\(line): expected 4 fields, found \(cells.count)") }
            guard Double(cells[2]) != nil else { throw StageError.data("\(soldPath):\(line): sold_price '\(cells[2])' is not an amount (25.00)") }
            byID[cells[0]] = Sale(to: cells[1], price: cells[2], at: cells[3])
        }
        return (table.map(\.cells), byID)
    }

    /// The files handed to buyers, relative to the tree.
    public var deliveredFiles: [String] {
        Directory.files(in: exports + "/" + PermitStore.deliveredFolder, suffix: ".csv", recursive: true)
    }

    /// Every delivered permit: who got it and when (from the delivery log, by file).
    public func deliveries() throws -> [String: Delivery] {
        var byFile: [String: Delivery] = [:]
        if Stage.fileExists(deliveriesPath) {
            let parser = RecordParser()
            for line in try ByteSource.readAll(deliveriesPath).split(separator: 10) where !line.isEmpty {
                guard let entry = line.withUnsafeBufferPointer({ parser.record($0) }), let file = entry.text("delivered_to") else { continue }
                byFile[file] = Delivery(to: entry.text("buyer") ?? "", at: entry.text("delivered_at") ?? "")
            }
        }
        var out: [String: Delivery] = [:]
        for path in deliveredFiles {
            let relative = String(path.dropFirst(exports.count + 1))
            let delivery = byFile[relative] ?? Delivery(to: "", at: "")
            for id in try PermitFields.ids(inCSV: [path]) { out[id] = delivery }
        }
        return out
    }

    /// The last review of each permit.
    public func reviews() throws -> [String: Review] {
        var out: [String: Review] = [:]
        guard Stage.fileExists(reviewsPath) else { return out }
        let parser = RecordParser()
        for (n, line) in try ByteSource.readAll(reviewsPath).split(separator: 10, omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            guard let entry = line.withUnsafeBufferPointer({ parser.record($0) }), let id = entry.text("permit_id"),
                  let action = entry.text("action") else {
                throw StageError.data("\(reviewsPath):\(n + 1): not a review (permit_id, action)")
            }
            out[id] = Review(action: action, at: entry.text("at") ?? "", by: entry.text("by") ?? "")
        }
        return out
    }

    // MARK: Records

    /// Calls `body` with every stored record, in permit_id order.
    public func forEachRecord(_ body: (Record) throws -> Void) throws {
        guard Stage.fileExists(recordsPath) else { return }
        let source = try ByteSource(path: recordsPath)
        defer { source.close() }
        let reader = JSONTextReader(lines: LineReader(source: source))
        let parser = RecordParser()
        try reader.forEach { event in
            switch event {
            case .warning: break
            case .broken(_, let line, let reason): throw StageError.data("\(recordsPath):\(line): \(reason)")
            case .text(let bytes, let line):
                guard let record = parser.record(bytes) else { throw StageError.data("\(recordsPath):\(line): not a JSON object") }
                try body(record)
            }
        }
    }

    /// Calls `body` with every stored record's text (and its tape, for a field or two), in
    /// permit_id order.
    func forEachStoredText(_ body: (JSONTape, UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard Stage.fileExists(recordsPath) else { return }
        let source = try ByteSource(path: recordsPath)
        defer { source.close() }
        let reader = JSONTextReader(lines: LineReader(source: source))
        let parser = JSONParser()
        let padded = ByteBuffer(capacity: 1 << 12)
        try reader.forEach { event in
            switch event {
            case .warning: break
            case .broken(_, let line, let reason): throw StageError.data("\(recordsPath):\(line): \(reason)")
            case .text(let bytes, let line):
                padded.removeAll()
                padded.append(bytes)
                padded.append(JSONParser.zeroPadding)
                guard case .success(let tape) = parser.parse(padded.bytes(0..<bytes.count)), tape.isObject else {
                    throw StageError.data("\(recordsPath):\(line): not a JSON object")
                }
                try body(tape, bytes)
            }
        }
    }

    /// The stored record of `id`, if any.
    public func record(_ id: String) throws -> Record? {
        var found: Record?
        try forEachRecord { record in if record.text(PermitFields.id) == id { found = record } }
        return found
    }

    /// Whether a record waits in the flagged file: a review rule picked it and nobody approved it.
    public static func isFlagged(_ record: Record) -> Bool {
        record["needs_review"]?.bool == true && record.text("review_status") != "approved"
    }

    // MARK: Rebuild

    /// What a rebuild did, for the report.
    public struct Outcome {
        public var input = 0, kept = 0, reaged = 0
        public var report = Record()
    }

    /// Merges `inputs` (tiered permits; none for a rebuild that only applies the ledgers) into
    /// the store and writes the store and every view again. With `reage`, kept permits are
    /// brought to the clock. With `replace`, the stored permits in status new are forgotten
    /// first (sold, delivered and dropped ones stay on record).
    /// `sales`, `deliveries` and `reviews` are changes this run makes to the ledgers, taken as
    /// made.
    ///
    /// With `shard` (lead-export permits --shard i/n), the run places only the permits whose
    /// trade (`trade_group/category`, see `shardKey`) the shard owns, stored or incoming, and
    /// writes its part under `<logs>/permits/shards/i-of-n/` instead of the store and the
    /// tree; `join` makes the store and the tree of the n parts.
    public func rebuild(_ stage: Stage, store: Store, rules: PermitStoreRules, inputs: [String]?, reage: Bool,
                        replace: Bool = false, sales newSales: [String: Sale] = [:],
                        deliveries newDeliveries: [String: Delivery] = [:], reviews newReviews: [String: Review] = [:],
                        shard: Shard? = nil) throws -> Outcome {
        let now = stage.clock.now
        var outcome = Outcome()
        let part = shard.map { ShardPart(store: self, shard: $0) }
        stage.shardsReadWholeInput = true
        let before = try part.map { _ in try fingerprint() }

        // The incoming permits, sorted by permit_id (on disk past the memory budget); the last
        // of an id wins. A shard reads every input permit but keeps its own: of the others it
        // keeps the id (and where it came), so that the stored permit an incoming one replaces
        // leaves every shard, and of the same id twice the last stays, whichever shards own them.
        let budget = try ExternalSort.budget(stage.environment)
        let incoming = ExternalSort(budget: budget)
        if let inputs {
            let framed = ByteBuffer(capacity: 1 << 12)
            // A permit another shard owns is checked there (and rejected there, once).
            try stage.forEachRecord(inputs, transform: { permit in
                if let shard, !shard.owns(PermitStore.shardKey(permit)) { return }
                try PermitStore.check(permit, rules: rules)
            }, encoding: .input) { permit, line, _ in
                let own = shard.map { $0.owns(PermitStore.shardKey(permit)) } ?? true
                if !own && (try? PermitStore.check(permit, rules: rules)) == nil { return }
                framed.removeAll()
                framed.append(own ? 1 : 0)
                if own {
                    framed.append(line)
                    outcome.input += 1
                }
                try incoming.add(key: permit.text(PermitFields.id) ?? "", line: framed.bytes)
            }
        }
        let replacing = try IncomingPermits(incoming.sorted())

        let sales = try self.sales().byID.merging(newSales) { $1 }
        let deliveries = try self.deliveries().merging(newDeliveries) { $1 }
        let reviews = try self.reviews().merging(newReviews) { $1 }

        // Each permit of the merge, written to the new store and, when it is in the tree, as
        // the CSV row its view file gets, to a sort by file, score and permit_id (on disk past
        // the budget). The merge (this thread) hands the permits' texts in permit_id order to a
        // batch; the workers place a batch's permits side by side (parse, ledgers, re-age,
        // tier, store line and view row), and this thread writes the results in order. The
        // view sort gets half the budget: the incoming permits are read back from theirs meanwhile.
        let views = ExternalSort(budget: budget / 2)
        var files = Set<String>()
        var names: [String] = []
        var nameIndex: [String: Int64] = [:]
        func intern(_ name: String) -> Int64 {
            if let known = nameIndex[name] { return known }
            names.append(name)
            nameIndex[name] = Int64(names.count - 1)
            return Int64(names.count - 1)
        }
        let viewKey = ByteBuffer(capacity: 256), viewLine = ByteBuffer(capacity: 1 << 12)
        let out = try stage.openOutput(part?.storePath ?? recordsPath)
        var counts: [String: Int] = [:]
        let context = PlaceContext(sales: sales, deliveries: deliveries, reviews: reviews, rules: rules, now: now, reage: reage)
        let batch = PlaceBatch(workers: stage.workerCount)

        func place() throws {
            batch.place(context)
            for (worker, n) in batch.order {
                let result = try batch.pool[worker].results[n].get()
                let bytes = batch.pool[worker].out
                out.buffer.append(bytes.bytes(result.line))
                out.buffer.append(10)
                try out.flushIfNeeded()
                counts[result.status, default: 0] += 1
                if result.reaged { outcome.reaged += 1 }
                guard let file = result.file, let row = result.row else { continue }
                files.insert(file)
                PermitStore.viewKey(file: file, score: result.score, id: result.id, into: viewKey)
                viewLine.removeAll()
                viewLine.appendBinary(Int64(result.score))
                viewLine.appendBinary(intern(result.tier))
                viewLine.appendBinary(intern(result.category))
                viewLine.appendBinary(result.id)
                viewLine.append(bytes.bytes(row))
                try views.add(key: viewKey.bytes, line: viewLine.bytes)
            }
            batch.reset()
        }
        func enqueue(_ text: UnsafeBufferPointer<UInt8>, fromInput: Bool) throws {
            batch.add(text, fromInput: fromInput)
            if batch.items.count >= PlaceBatch.size { try place() }
        }

        // The merge: incoming ids and stored ids in byte order; an incoming permit replaces
        // the stored one of its id (a shard places it when it owns the last of the id).
        var last: String?
        func takeIncoming(before bound: String?) throws {
            while let id = replacing.id, bound.map({ id.precedesInByteOrder($0) }) ?? true {
                if let text = replacing.ownText { try enqueue(text, fromInput: true) }
                try replacing.advance()
            }
        }
        try checkTreeHasStore(replace: replace)
        try forEachStoredText { tape, text in
            guard let id = tape.topLevelString("permit_id") else { throw StageError.data("\(recordsPath): a record without permit_id") }
            if let last, !last.precedesInByteOrder(id) {
                throw StageError.data("\(recordsPath): permit \(id) out of order after \(last); the file is written sorted, was it edited?")
            }
            last = id
            try takeIncoming(before: id)
            if replacing.id == id {
                try takeIncoming(before: id + "\u{0}")
                return
            }
            // A shard places the stored permits of its trades that no input permit replaces.
            if let shard, !shard.owns(PermitStore.shardKey(tape)) { return }
            let isNew = (tape.topLevelString("status") ?? "new") == "new"
            if replace && isNew { return }
            if isNew { outcome.kept += 1 }
            try enqueue(text, fromInput: false)
        }
        try takeIncoming(before: nil)
        try place()
        if let before, try fingerprint() != before {
            throw StageError.data("\(recordsPath) or a ledger changed while this shard read it: run the shards again")
        }

        // The views: every file again, from the sort (file by file, each by score descending,
        // then permit_id); files left without permits are removed.
        var written = Set<String>()
        var tierCounts: [String: Int] = [:]
        var categoryCounts: [String: [String: Int]] = [:]
        var flagged = 0, retry = 0, rows = 0
        for always in [PermitStore.flaggedFile, PermitStore.retryFile, PermitStore.otherFile] where !files.contains(always) && part == nil {
            _ = try openView(always, stage: stage)
            written.insert(always)
        }
        let sorted = try views.sorted()
        var file = "", fileKey: [UInt8] = []
        var sink: ByteSink?, shared = false
        while try sorted.next() {
            let key = sorted.key
            let nameEnd = key.firstIndex(of: 0) ?? key.count
            if sink == nil || !fileKey.elementsEqual(key[0..<nameEnd]) {
                fileKey = Array(key[0..<nameEnd])
                file = String(decoding: fileKey, as: UTF8.self)
                // A shard's flagged and retry rows are merged with the other shards' by `join`.
                shared = part != nil && (file == PermitStore.flaggedFile || file == PermitStore.retryFile)
                sink = try shared ? stage.openOutput(part!.sharedRowsPath(file)) : openView(file, stage: stage, under: part?.treePath)
                written.insert(file)
            }
            var fields = BinaryFields(sorted.line)
            guard let score = fields.int(), let tier = fields.int(), let category = fields.int(), let id = fields.string() else {
                throw StageError.io("a view row of the sort did not read back")
            }
            let row = fields.rest
            if shared {
                ShardPart.writeSharedRow(score: Int(score), id: id, row: String(decoding: row, as: UTF8.self), into: sink!.buffer)
            } else {
                sink!.buffer.append(row)
            }
            try sink!.flushIfNeeded()
            rows += 1
            if file == PermitStore.flaggedFile { flagged += 1 } else if file == PermitStore.retryFile { retry += 1 } else {
                let tier = names[Int(tier)]
                tierCounts[tier, default: 0] += 1
                categoryCounts[names[Int(category)], default: [:]][tier, default: 0] += 1
            }
        }
        if views.spilledRuns + incoming.spilledRuns > 0 { stage.summary.append("runs_on_disk", .int(views.spilledRuns + incoming.spilledRuns)) }
        stage.recordsOut += rows
        let tally = Tally(input: outcome.input, kept: outcome.kept, reaged: outcome.reaged, permits: rows,
                          flagged: flagged, retry: retry, statuses: counts, tiers: tierCounts, categories: categoryCounts)
        if let part, let shard {
            let report = try stage.openOutput(part.reportPath)
            report.buffer.append(PermitStore.pretty(part.report(tally, shard: shard, now: now, replace: replace,
                                                                 fingerprint: before ?? "", files: written.sorted())))
            outcome.report = tally.report(now: now, exports: exports, rules: rules)
            return outcome
        }
        for relative in existingViewFiles() where !written.contains(relative) {
            stage.removeOnSuccess(exports + "/" + relative)
        }
        outcome.report = tally.report(now: now, exports: exports, rules: rules)
        let report = try stage.openOutput(reportPath)
        report.buffer.append(PermitStore.pretty(outcome.report))
        return outcome
    }

    /// The counts of a rebuild (or of the shards of one), for the report.
    struct Tally {
        var input = 0, kept = 0, reaged = 0, permits = 0, flagged = 0, retry = 0
        var statuses: [String: Int] = [:]
        var tiers: [String: Int] = [:]
        var categories: [String: [String: Int]] = [:]

        /// report.json: run_at, exports, input, kept_from_tree, reaged, permits, tiers,
        /// flagged, retry, sold, delivered, dropped, groups, categories.
        func report(now: Timestamp, exports: String, rules: PermitStoreRules) -> Record {
            var tierRecord = Record()
            for band in rules.tiers.bands where band.tier != PermitStore.retryTier { tierRecord.append(band.tier, .int(self.tiers[band.tier] ?? 0)) }
            var groups = Record()
            var groupTotals: [String: Int] = [:]
            for (key, c) in self.categories { groupTotals[String(key.split(separator: "/")[0]), default: 0] += c.values.reduce(0, +) }
            for (group, n) in groupTotals.sorted(by: { $0.key < $1.key }) { groups.append(group, .int(n)) }
            var categoryRecord = Record()
            for (key, c) in self.categories.sorted(by: { $0.key < $1.key }) {
                var r = Record()
                for band in rules.tiers.bands where c[band.tier] != nil { r.append(band.tier, .int(c[band.tier]!)) }
                categoryRecord.append(key, .object(r))
            }
            return [
                "run_at": .string(now.iso8601), "exports": .string(exports), "input": .int(input),
                "kept_from_tree": .int(kept), "reaged": .int(reaged), "permits": .int(permits),
                "tiers": .object(tierRecord), "flagged": .int(flagged), "retry": .int(retry),
                "sold": .int(statuses["sold"] ?? 0), "delivered": .int(statuses["delivered"] ?? 0),
                "dropped": .int(statuses["dropped"] ?? 0), "groups": .object(groups), "categories": .object(categoryRecord),
            ]
        }
    }

    /// Brings a kept permit to the clock: rule-scored permits are scored again (days_old,
    /// freshness, reasoning, scored_at); others get their days_old again; then the tier.
    static func reageKept(_ permit: inout Record, rules: PermitStoreRules, now: Timestamp) throws {
        if permit.text("scored_by") == "rules" || !permit.hasValue("scored_by") {
            rules.scorer.score(&permit, now: now)
        } else {
            rules.scorer.derive(&permit, now: now)
            // A store written before flags became a list holds them pipe-separated.
            if let text = permit["flags"]?.string {
                permit["flags"] = .array(text.split(separator: "|").map { .string(String($0)) })
            }
        }
        do { try rules.tiers.tier(&permit, now: now) } catch { throw StageError.data("permit \(permit.text(PermitFields.id) ?? "?"): \(error)") }
    }

    /// A tree with permit files but no store was written by an earlier version: refused,
    /// unless `replace` rebuilds it from this run alone.
    func checkTreeHasStore(replace: Bool) throws {
        guard !Stage.fileExists(recordsPath) && !replace else { return }
        let old = existingViewFiles().filter { $0 != PermitStore.flaggedFile && $0 != PermitStore.retryFile && $0 != PermitStore.otherFile }
        if !old.isEmpty {
            throw StageError.usage("\(exports) holds permit files (\(old[0]), ...) but there is no \(recordsPath): it was written by an earlier version; move it aside, or rebuild it from this run alone with --replace")
        }
    }

    /// Whether an input permit can be placed: it has a permit_id, a tier and a known trade.
    static func check(_ permit: Record, rules: PermitStoreRules) throws(RecordRejected) {
        guard let id = permit.text(PermitFields.id), !id.isEmpty else { throw RecordRejected("no permit_id") }
        guard let tier = permit.text("tier"), !tier.isEmpty else { throw RecordRejected("permit \(id) has no tier (run lead-tier)") }
        _ = try viewFile(of: permit, tier: tier, rules: rules)
    }

    /// The view file (relative to the tree) a permit in status new belongs in.
    static func viewFile(of permit: Record, tier: String, rules: PermitStoreRules) throws(RecordRejected) -> String {
        if tier == PermitStore.retryTier { return PermitStore.retryFile }
        if PermitStore.isFlagged(permit) { return PermitStore.flaggedFile }
        let group = PermitStore.cell(permit["trade_group"]), category = PermitStore.cell(permit["category"])
        guard rules.categories.contains(group + "/" + category) else {
            throw RecordRejected("trade_group/category '\(group)/\(category)' is not one of stages/tag/trades.csv (run lead-tag trades)")
        }
        guard rules.tiers.bands.contains(where: { $0.tier == tier }) else {
            throw RecordRejected("tier '\(tier)' is not one of stages/tier/tiers.csv (run lead-tier)")
        }
        return group + "/" + category + "/tier_" + tier.lowercased() + ".csv"
    }

    /// Opens a view file (in the tree, or where `under` puts it) and writes its header; its
    /// rows follow, each from `writeViewRow`.
    func openView(_ relative: String, stage: Stage, under: ((String) -> String)? = nil) throws -> ByteSink {
        // The tree has a file per trade and tier, all open until the run commits: small buffers.
        let sink = try stage.openOutput(under?(relative) ?? exports + "/" + relative, bufferSize: 1 << 16)
        var csv = CSVWriter(out: sink.buffer, delimiter: 44, spreadsheetSafe: true, crlf: false)
        csv.writeRow(relative == PermitStore.flaggedFile ? PermitStore.viewColumns + [PermitStore.reviewColumn] : PermitStore.viewColumns)
        return sink
    }

    /// A permit's row of a view file (flagged/ has review_reasons last), made safe to open in
    /// a spreadsheet.
    static func writeViewRow(_ record: Record, flagged: Bool, into out: ByteBuffer) {
        var csv = CSVWriter(out: out, delimiter: 44, spreadsheetSafe: true, crlf: false)
        var cells = PermitStore.viewColumns.map { PermitStore.cell(record[$0]) }
        if flagged { cells.append(PermitStore.cell(record[PermitStore.reviewColumn])) }
        csv.writeRow(cells)
    }

    /// The sort key of a view row: its file, a 0 byte, the score (highest first: 4 bytes that
    /// compare as bytes the other way round), then the permit_id; rows come out file by file
    /// in byte order, each by score descending, then permit_id.
    static func viewKey(file: String, score: Int32, id: String, into key: ByteBuffer) {
        key.removeAll()
        key.append(file)
        key.append(0)
        let descending = ~(UInt32(bitPattern: score) ^ 0x8000_0000)
        for shift in [24, 16, 8, 0] as [UInt32] { key.append(UInt8(truncatingIfNeeded: descending >> shift)) }
        key.append(id)
    }

    /// The CSV cell of a value: text as is, booleans as true/false, null empty, others as JSON.
    public static func cell(_ value: JSONValue?) -> String {
        guard let value, !value.isNull else { return "" }
        if let b = value.bool { return b ? "true" : "false" }
        // A list of words (flags, review_reasons) is one cell, pipe-separated as the seed's CSVs.
        if let items = value.array, let words = Optional(items.compactMap(\.text)), words.count == items.count {
            return words.joined(separator: "|")
        }
        return value.text ?? value.json
    }

    /// The view files now in the tree, relative to it (not _delivered/, not other exports).
    public func existingViewFiles() -> [String] {
        Directory.files(in: exports, suffix: ".csv", recursive: true).compactMap { path in
            let relative = String(path.dropFirst(exports.count + 1))
            if relative == PermitStore.flaggedFile || relative == PermitStore.retryFile { return relative }
            let parts = relative.split(separator: "/")
            guard parts.count == 3, !parts[0].hasPrefix("_"), parts[2].hasPrefix("tier_") else { return nil }
            return relative
        }
    }

    /// A report as pretty JSON, one member per line.
    public static func pretty(_ report: Record) -> String {
        var out = "{\n"
        for (n, field) in report.fields.enumerated() {
            out += "  " + JSONValue.string(field.key).json + ": " + field.value.json + (n + 1 < report.fields.count ? ",\n" : "\n")
        }
        return out + "}\n"
    }

    /// The report as lines for a terminal.
    public static func text(_ report: Record) -> String {
        var out = "lead-export permits: \(report["permits"]?.int ?? 0) permits in \(report["exports"]?.text ?? "")"
        if let tiers = report["tiers"]?.object {
            out += " (" + tiers.fields.map { "\($0.key) \($0.value.int ?? 0)" }.joined(separator: ", ") + ")"
        }
        out += "; flagged \(report["flagged"]?.int ?? 0), retry \(report["retry"]?.int ?? 0)"
        out += "; sold \(report["sold"]?.int ?? 0), delivered \(report["delivered"]?.int ?? 0), dropped \(report["dropped"]?.int ?? 0)\n"
        for field in report["categories"]?.object?.fields ?? [] {
            let counts = field.value.object?.fields.map { "\($0.key) \($0.value.int ?? 0)" }.joined(separator: ", ") ?? ""
            out += "  \(field.key): \(counts)\n"
        }
        return out
    }
}

/// The incoming permits of a rebuild in permit_id order, one per id: the last of each id (a
/// sort's lines, each a byte saying whether this run places it, then its text).
final class IncomingPermits {
    private let cursor: ExternalSort.Cursor
    private var more: Bool
    private let last = ByteBuffer(capacity: 1 << 12)
    /// The current permit_id; nil past the last.
    private(set) var id: String?

    init(_ cursor: ExternalSort.Cursor) throws(StageError) {
        self.cursor = cursor
        more = try cursor.next()
        try advance()
    }

    /// The text of the current id's last permit, when this run places it (nil: another
    /// shard does).
    var ownText: UnsafeBufferPointer<UInt8>? {
        guard id != nil, last.count > 0, last.bytes[0] == 1 else { return nil }
        return UnsafeBufferPointer(rebasing: last.bytes[1...])
    }

    /// Moves to the next id.
    func advance() throws(StageError) {
        guard more else {
            id = nil
            return
        }
        let key = cursor.key
        id = String(decoding: key, as: UTF8.self)
        let current = Array(key)
        repeat {
            last.removeAll()
            last.append(cursor.line)
            more = try cursor.next()
        } while more && cursor.key.elementsEqual(current)
    }
}

// MARK: Placing permits, side by side

/// What placing a permit needs: the ledgers, the rules and the clock (read only, shared by
/// the workers).
struct PlaceContext: @unchecked Sendable {
    let sales: [String: PermitStore.Sale]
    let deliveries: [String: PermitStore.Delivery]
    let reviews: [String: PermitStore.Review]
    let rules: PermitStoreRules
    let now: Timestamp
    let reage: Bool
}

/// What placing one permit gave: its store line and, when it is in the tree, its view row
/// (both in the worker's buffer), with what the report counts.
struct Placed {
    var line: Range<Int>
    var row: Range<Int>?
    var file: String?
    var score: Int32
    var tier: String
    var category: String
    var status: String
    var reaged: Bool
    var id: String
}

/// A batch of the merge's permit texts, placed on all processors; results stay in input order.
final class PlaceBatch: @unchecked Sendable {
    static let size = 2048

    final class Worker {
        let parser = RecordParser()
        let out = ByteBuffer(capacity: 1 << 20)
        var results: [Result<Placed, Error>] = []
    }

    let texts = ByteBuffer(capacity: 1 << 22)
    var items: [(offset: Int, count: Int, fromInput: Bool)] = []
    let pool: [Worker]
    /// (worker, result) of each item, in input order, after `place`.
    private(set) var order: [(Int, Int)] = []

    init(workers: Int) {
        pool = (0..<max(1, workers)).map { _ in Worker() }
    }

    func add(_ text: UnsafeBufferPointer<UInt8>, fromInput: Bool) {
        items.append((texts.count, text.count, fromInput))
        texts.append(text)
    }

    func reset() {
        items.removeAll(keepingCapacity: true)
        texts.removeAll()
        order.removeAll(keepingCapacity: true)
    }

    func place(_ context: PlaceContext) {
        let count = items.count
        let chunks = min(pool.count, max(1, count / 64))
        order.removeAll(keepingCapacity: true)
        for chunk in 0..<chunks {
            for n in 0..<((count * (chunk + 1) / chunks) - (count * chunk / chunks)) { order.append((chunk, n)) }
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let worker = pool[chunk]
            worker.results.removeAll(keepingCapacity: true)
            worker.out.removeAll()
            for item in items[(count * chunk / chunks)..<(count * (chunk + 1) / chunks)] {
                let text = texts.bytes(item.offset..<(item.offset + item.count))
                guard let permit = worker.parser.record(text) else {
                    worker.results.append(.failure(StageError.io("a permit of the merge did not read back")))
                    continue
                }
                worker.results.append(Result { try PermitStore.place(permit, fromInput: item.fromInput, context, into: worker.out) })
            }
        }
    }
}

extension PermitStore {
    /// One permit of the merge: its status from the ledgers, kept permits re-aged, the view
    /// file it belongs in; its store line (status fields last) and view row go to `out`.
    static func place(_ original: Record, fromInput: Bool, _ context: PlaceContext, into out: ByteBuffer) throws -> Placed {
        var permit = original
        let id = permit.text(PermitFields.id) ?? ""
        for field in PermitStore.statusFields { _ = permit.removeValue(forKey: field) }
        var status = "new"
        if let sale = context.sales[id] {
            status = "sold"
            permit.append("sold_to", .string(sale.to))
            permit.append("sold_price", Double(sale.price).map { .double($0) } ?? .null)
            permit.append("sold_at", .string(sale.at))
        } else if let delivery = context.deliveries[id] {
            status = "delivered"
            permit.append("delivered_to", .string(delivery.to))
            permit.append("delivered_at", .string(delivery.at))
        } else if context.reviews[id]?.action == "drop" {
            status = "dropped"
        }
        var reaged = false
        if status == "new" && !fromInput && context.reage {
            try reageKept(&permit, rules: context.rules, now: context.now)
            reaged = true
        }
        var reviewStatus: JSONValue = .null
        if let review = context.reviews[id] { reviewStatus = .string(review.action == "approve" ? "approved" : "dropped") }
        var file: String?
        if status == "new" {
            let tier = permit.text("tier") ?? ""
            var probe = permit
            probe.append("review_status", reviewStatus)
            file = try viewFile(of: probe, tier: tier, rules: context.rules)
        }
        var ordered = Record(permit.fields.filter { !PermitStore.statusFields.contains($0.key) })
        ordered.append("status", .string(status))
        ordered.append("review_status", reviewStatus)
        for field in ["sold_to", "sold_price", "sold_at", "delivered_to", "delivered_at"] {
            ordered.append(field, permit[field] ?? .null)
        }
        ordered.append("export_file", file.map { .string($0) } ?? .null)
        let start = out.count
        JSONWriter.write(ordered, into: out)
        let line = start..<out.count
        var row: Range<Int>?
        if let file {
            let rowStart = out.count
            writeViewRow(ordered, flagged: file == flaggedFile, into: out)
            row = rowStart..<out.count
        }
        return Placed(line: line, row: row, file: file,
                      score: ordered["score"]?.double.map { Int32(clamping: Int($0.rounded())) } ?? Int32.min,
                      tier: ordered.text("tier") ?? "",
                      category: (ordered.text("trade_group") ?? "") + "/" + (ordered.text("category") ?? ""),
                      status: status, reaged: reaged, id: id)
    }
}
