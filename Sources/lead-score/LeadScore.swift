import ArgumentParser
import CSimdJSON
#if canImport(Glibc)
import Glibc
#endif
import Connectors
import LeadRules
import LeadStores
import StageKit

@main
struct LeadScore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-score",
        abstract: "Score leads: tagged property leads, building permits, engagement events.",
        version: LeadETL.version,
        subcommands: [Tags.self, Permits.self, Events.self]
    )

    static func main() { stageMain() }
}

extension LeadScore {
    struct Tags: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tags",
            abstract: "Score leads from their active tag assignments, with a line-by-line breakdown.",
            discussion: """
            score = the sum over the lead's active assignments of the tag's base_score \
            (stages/tag/tags.csv) times a decay factor for the assignment's age in days \
            (stages/score/decay.csv: full value for full_days, then falling linearly to floor by \
            expiration), each term rounded to whole points. Expired assignments add nothing. \
            score and score_breakdown ({tag, base_score, age_days, factor, points} per active \
            assignment) are appended, or replaced when present.

            --recalculate rescores the master file in place (the nightly job, and the \
            "recalculate now" button): assignment expiry is brought up to --now first, then every \
            lead is rescored; progress shows on a terminal.

            Examples:
              lead-score tags tagged.jsonl -o local-logs/leads/leads.jsonl
              lead-score tags --recalculate --now 2026-11-24
            """
        )

        /// Rescore the master in place.
        @Flag(help: "Rescore the master file in place (expiry brought up to --now first).")
        var recalculate = false

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: the master is <logs>/leads/leads.jsonl.", valueName: "dir"))
        var logs = "local-logs"

        /// The master file.
        @Option(help: ArgumentHelp("The master lead file for --recalculate (default <logs>/leads/leads.jsonl).", valueName: "file"))
        var master: String?

        @OptionGroup var common: CommonOptions

        /// Leads; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Lead records (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if recalculate && !inputs.isEmpty { throw ValidationError("--recalculate rescores the master; give no inputs") }
            if recalculate && common.output != nil { throw ValidationError("--recalculate rewrites the master in place; -o is not used") }
        }

        func run() throws {
            Stage.run("score", command: "tags", options: common) { stage in
                let catalogue = try TagCatalogue.load(stage.rulesFile("tags.csv", stage: "tag"))
                let scorer = LeadScorer(catalogue: catalogue, decay: try DecayRules.load(stage.rulesFile("decay.csv"), catalogue: catalogue))
                let now = stage.clock.now
                guard recalculate else {
                    try stage.forEachRecord(inputs, transform: { lead in try scorer.score(&lead, now: now) }) { _, json, _ in
                        try stage.writeLine(json)
                    }
                    return
                }
                let leads = LeadMaster(logs: logs, master: master)
                _ = try leads.require()
                try leads.open(stage)
                let expiry = TagExpiry(catalogue: catalogue)
                var changed = 0, expired = 0, reactivated = 0
                try leads.rewrite(stage) { lead, location in
                    let before = lead["score"]
                    do {
                        let change = try expiry.refresh(&lead, now: now)
                        expired += change.expired
                        reactivated += change.reactivated
                        try scorer.score(&lead, now: now)
                    } catch let rejected as RecordRejected {
                        throw StageError.data("\(location): \(rejected.reason)")
                    }
                    if before == nil || !(before! == lead["score"]!) { changed += 1 }
                }
                stage.summary.append("scores_changed", .int(changed))
                stage.summary.append("assignments_expired", .int(expired))
                stage.summary.append("assignments_reactivated", .int(reactivated))
            }
        }
    }
}

extension LeadScore {
    struct Permits: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "permits",
            abstract: "Score building permits 0-100 with explainable rules, or with an external reasoner.",
            discussion: """
            The default scorer derives days_old (issued_at to --now), is_absentee, \
            commercial_owner and category_demand, then adds the points of every rule of \
            stages/score/permit-rules.csv that holds (job value, age, owner, absentee, ...) and \
            the category's demand (permit-categories.csv), held to 0-100. Appended: score, \
            reasoning (each rule that fired with its points), ideal_contractor, contact_priority \
            (call/email/skip, permit-contact.csv), flags (pipe-separated concerns), \
            score_breakdown, scored_by and scored_at.

            --reasoner CMD starts CMD once (sh -c) and sends each permit as one JSON line on its \
            stdin (the permit's record, permit_id first); it answers each with one JSON line \
            {permit_id, score, reasoning, ideal_contractor, contact_priority, flags} naming the \
            permit it answers. A timeout, a crash, a line that is not such an object or one that \
            names another permit gives the permit score -1 (tier RETRY) with the reason, the \
            reasoner is restarted (so a stray line can never shift answers onto later permits) \
            and the run goes on. --retry-from LOGS scores the retry queue's own records (every \
            permit of <logs>/permits/permits.jsonl waiting in tier RETRY, whatever run it came \
            from) instead of inputs; --retry-only scores only the permits of a retry queue CSV \
            found in the input.

            Examples:
              lead-score permits tagged.jsonl -o scored.jsonl
              lead-score permits --cities plano,frisco --limit 100 tagged.jsonl
              lead-score permits --reasoner ./score.py --retry-from local-logs -o retried.jsonl
            """
        )

        /// An external scorer.
        @Option(help: ArgumentHelp("Score with this command (JSON line in, JSON line out) instead of the rules.", valueName: "cmd"))
        var reasoner: String?

        /// Seconds to wait for each answer.
        @Option(help: ArgumentHelp("Seconds to wait for the reasoner's answer to one permit.", valueName: "s"))
        var reasonerTimeout: Double = 30

        /// At most N permits.
        @Option(help: ArgumentHelp("Score at most N permits (the first N that pass --cities and --retry-only).", valueName: "N"))
        var limit: Int?

        /// Only these cities.
        @Option(help: ArgumentHelp("Score only permits of these cities (comma-separated, any case).", valueName: "list"))
        var cities: String?

        /// Only the permits of a retry queue.
        @Option(help: ArgumentHelp("Score only the permits listed (permit_id column) in this retry queue CSV.", valueName: "file"))
        var retryOnly: String?

        /// The retry queue's own records.
        @Option(help: ArgumentHelp("Score the permits waiting in tier RETRY in <logs>/permits/permits.jsonl instead of inputs.", valueName: "logs"))
        var retryFrom: String?

        @OptionGroup var common: CommonOptions

        /// Permits; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Tagged permit records (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            if reasonerTimeout <= 0 { throw ValidationError("--reasoner-timeout must be more than 0") }
            if retryFrom != nil && (!inputs.isEmpty || retryOnly != nil) {
                throw ValidationError("--retry-from reads the retry queue's records: give no inputs and no --retry-only")
            }
        }

        func run() throws {
            Stage.run("score", command: "permits", options: common) { stage in
                let scorer = try PermitScorer.load(directory: stage.rulesDirectory())
                let now = stage.clock.now
                let wanted = cities.map { Set($0.split(separator: ",").map { String($0).trimmingSpaces.lowercased() }.filter { !$0.isEmpty }) }
                var queue: Set<String>?
                if let retryOnly { queue = try PermitFields.ids(inCSV: [retryOnly], required: true) }
                var inputs = self.inputs
                if let retryFrom {
                    // The queue's records, spooled to a file the readers below take as input.
                    let spool = (stage.environment["TMPDIR"] ?? "/tmp") + "/lead-score-retry-\(getpid()).jsonl"
                    stage.removeOnExit(spool)
                    let sink = try ByteSink(path: spool)
                    var queued = 0
                    try PermitStore(exports: "", logs: retryFrom).forEachRecord { record in
                        guard record.text("status") == "new", record.text("tier") == PermitStore.retryTier else { return }
                        JSONWriter.writeLine(record, into: sink.buffer)
                        queued += 1
                        try sink.flushIfNeeded()
                    }
                    try sink.commit()
                    stage.summary.append("retry_queue", .int(queued))
                    inputs = [spool]
                }
                var found = Set<String>()
                var scored = 0, skipped = 0, retries = 0
                let picks: (Record) -> Bool = { permit in
                    if let wanted, !wanted.contains((permit.text("city") ?? "").lowercased()) { return false }
                    if let queue, !queue.contains(permit.text(PermitFields.id) ?? "") { return false }
                    return true
                }
                if let reasoner {
                    let process = ReasonerProcess(command: reasoner, timeout: reasonerTimeout)
                    defer { process.stop() }
                    try stage.forEachRecord(inputs) { record, location in
                        guard scored < (limit ?? Int.max), picks(record) else { skipped += 1; return }
                        var permit = record
                        scorer.derive(&permit, now: now)
                        let id = permit.text(PermitFields.id) ?? ""
                        let answer = process.ask(ReasonerAnswer.request(permit))
                        if let (problem, restart) = ReasonerAnswer.apply(answer, for: id, to: &permit, scorer: scorer, now: now) {
                            retries += 1
                            // Whatever the reasoner says next could belong to this permit: start it afresh.
                            if restart { process.stop() }
                            stage.warn("permit \(id.isEmpty ? "without permit_id" : id): \(problem); score -1 (RETRY)", at: location)
                        }
                        if let id = permit.text(PermitFields.id) { found.insert(id) }
                        scored += 1
                        try stage.write(permit)
                    }
                    stage.summary.append("reasoner_starts", .int(process.starts))
                } else {
                    // Scored on every core; the picks and the limit are applied in input order.
                    try stage.forEachRecord(inputs, transform: { permit in
                        if picks(permit) { scorer.score(&permit, now: now) }
                    }) { permit, json, _ in
                        guard scored < (limit ?? Int.max), picks(permit) else { skipped += 1; return }
                        if queue != nil, let id = permit.text(PermitFields.id) { found.insert(id) }
                        scored += 1
                        try stage.writeLine(json)
                    }
                }
                if let queue, let retryOnly {
                    let missing = queue.subtracting(found)
                    if !missing.isEmpty {
                        stage.warn("\(missing.count) permits of the retry queue are not in the input (\(missing.sorted().prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", ..." : ""))",
                                   at: SourceLocation(path: retryOnly, line: 1))
                    }
                    stage.summary.append("retry_queue", .int(queue.count))
                    stage.summary.append("retry_queue_missing", .int(missing.count))
                }
                stage.summary.append("scored", .int(scored))
                stage.summary.append("not_picked", .int(skipped))
                stage.summary.append("retry", .int(retries))
            }
        }
    }
}

/// The reasoner protocol: a request is the permit's record as one JSON line with permit_id
/// first; an answer is one JSON line naming the same permit_id.
enum ReasonerAnswer {
    /// The permit as a request line, permit_id first.
    static func request(_ permit: Record) -> String {
        guard let i = permit.index(of: PermitFields.id), i > 0 else { return permit.json }
        var ordered = permit
        let field = ordered.fields.remove(at: i)
        ordered.fields.insert(field, at: 0)
        return ordered.json
    }

    /// Reads a reasoner's answer into the permit of `id`; returns why it is a RETRY and whether
    /// the reasoner must be started afresh (it said something out of protocol), or nil.
    static func apply(_ answer: Result<String, ReasonerProcess.Failure>, for id: String, to permit: inout Record,
                      scorer: PermitScorer, now: Timestamp) -> (problem: String, restart: Bool)? {
        let problem: String
        switch answer {
        case .failure(let failure):
            problem = failure.description
        case .success(let line):
            if let object = JSONValue(parsing: line)?.object {
                let named = object[PermitFields.id]?.text
                if named != id {
                    problem = named.map { "the reasoner answered for permit \($0) instead" } ?? "the answer does not name its permit_id"
                } else {
                    switch read(object) {
                    case .success(let fields):
                        for (key, value) in fields { permit[key] = value }
                        permit["scored_by"] = .string("reasoner")
                        permit["scored_at"] = .string(now.iso8601)
                        return (fields.first { $0.0 == "score" }?.1.int ?? 0) < 0 ? ("the reasoner answered -1", false) : nil
                    case .failure(let malformed):
                        problem = "the answer is not usable: \(malformed.why)"
                    }
                }
            } else {
                problem = "the answer is not a JSON object: \(line.prefix(80))"
            }
        }
        let category = permit.text("category") ?? ""
        permit["score"] = .int(-1)
        permit["reasoning"] = .string("RETRY: " + problem)
        permit["ideal_contractor"] = .string(scorer.categories[category]?.idealContractor ?? scorer.defaultContractor)
        permit["contact_priority"] = .string("skip")
        permit["flags"] = .array([.string("reasoner_failed")])
        permit["score_breakdown"] = .array([])
        permit["scored_by"] = .string("reasoner")
        permit["scored_at"] = .string(now.iso8601)
        return (problem, true)
    }

    struct Malformed: Error { let why: String }

    static func read(_ o: Record) -> Result<[(String, JSONValue)], Malformed> {
        guard let scoreValue = o["score"], let d = scoreValue.double, d.rounded() == d, d == -1 || (0...100).contains(d) else {
            return .failure(Malformed(why: "score must be a whole number 0-100 or -1"))
        }
        guard let reasoning = o["reasoning"]?.string else { return .failure(Malformed(why: "there is no reasoning")) }
        guard let contractor = o["ideal_contractor"]?.string else { return .failure(Malformed(why: "there is no ideal_contractor")) }
        guard let priority = o["contact_priority"]?.string, ["call", "email", "skip"].contains(priority) else {
            return .failure(Malformed(why: "contact_priority must be call, email or skip"))
        }
        var flags: [JSONValue] = []
        switch o["flags"] {
        case nil: break
        case .some(let v) where v.isNull: break
        case .some(let v):
            if let s = v.string { flags = s.split(separator: "|").map { .string(String($0)) } }
            else if let items = v.array, items.allSatisfy({ $0.string != nil }) { flags = items.compactMap(\.string).map { .string($0) } }
            else { return .failure(Malformed(why: "flags must be a string or a list of strings")) }
        }
        return .success([("score", .int(Int(d))), ("reasoning", .string(reasoning)), ("ideal_contractor", .string(contractor)),
                         ("contact_priority", .string(priority)), ("flags", .array(flags)), ("score_breakdown", .array([]))])
    }
}

extension LeadScore {
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "events",
            abstract: "Build one scored lead record per seeker and listing from a run's lead actions.",
            discussion: """
            Groups the run's `action` records (lead-flatten events) by (listing_id, seeker_id), sorts \
            each group's actions by time and scores it: lead_score is the sum of each action's points \
            (stages/score/event-weights.csv: appointment 40, phone 30, direct_message 20, whatsapp 15, \
            email 10). Each lead record: kind "lead", listing_id, seeker_id, lister_id, lister_type, \
            lead_actions (action_type, lead_type, timestamp, message_type, appointment_type, event_id, points), \
            total_actions, lead_score, first_action_date, last_action_date, last_action_type, status \
            "new", status_tracker ["new"], notes [], created_at, updated_at (--now), run_id (the run \
            record's, else --run-id, else --now). The run record and the engagement rows (view, \
            impression, share, save) pass through as they are, in order; the lead records follow, \
            by listing_id then seeker_id. With --shard i/n, only the listings whose listing_id \
            hashes to shard i (FNV-1a 64 mod n, as every keyed stage), the run record with shard 1: \
            n shards over the same input give the single run's records.

            Example:
              lead-flatten events fetched.jsonl | lead-score events -o scored.jsonl
            """
        )

        @Option(help: ArgumentHelp("The run_id when the input has no run record (default: --now).", valueName: "id"))
        var runID: String?

        @OptionGroup var common: CommonOptions

        @Argument(help: ArgumentHelp("Flat events (lead-flatten events); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("score", command: "events", options: common) { stage in
                let weights = try EventWeights.load(stage.rulesFile("event-weights.csv"))
                var groups = LeadGroups(budget: try ExternalSort.budget(stage.environment))
                var run: EventRun?
                var passed = 0, otherShards = 0
                // With --shard i/n: only the listings that hash to shard i (Shard.of on
                // listing_id); the run record goes out with shard 1.
                let shard = stage.shard
                stage.shardsReadWholeInput = true
                let schema = stage.schema
                let runParser = RecordParser()
                // The workers read each text's kind and listing on the tape: an engagement row
                // passes on as read (or filled, with --schema), a lead action comes encoded
                // (LeadAction), another shard's row is only counted; this thread adds the
                // actions to their groups and writes the rows in order.
                enum Tag { static let pass = 0, passFilled = 1, run = 2, action = 3, otherShard = 4 }
                try stage.forEachJSONWritten(inputs, tagged: {
                    let keys = KeyCache()
                    return { tape, _, out in
                        guard tape.isObject else {
                            throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))")
                        }
                        let kind = tape.topLevelMember("kind").flatMap { tape.kind($0) == LJ_STRING.rawValue ? tape.rawStringBody($0) : nil }
                        func named(_ name: StaticString) -> Bool {
                            guard let kind, kind.count == name.utf8CodeUnitCount else { return false }
                            return kind.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
                        }
                        if named("run") { return Tag.run }
                        let engagement = named("view") || named("impression") || named("share") || named("save") || named("lead")
                        guard engagement || named("action") else {
                            // Unusual keys or kinds: the record says which.
                            let record = Record(tape: tape, keys: keys)
                            switch record.text("kind") {
                            case "action": return try action(record, out)
                            case EventRun.kind: return Tag.run
                            case "view", "impression", "share", "save", "lead": return try pass(tape, record.text("listing_id") ?? "", out)
                            case let kind: throw RecordRejected(kind.map { "unknown kind '\($0)'" } ?? "no kind (run lead-flatten events first)")
                            }
                        }
                        // The listing is read (for the shard) only with --shard; action checks its own.
                        if engagement { return try pass(tape, shard.map { _ in Record(tape: tape, keys: keys).text("listing_id") ?? "" }, out) }
                        return try action(Record(tape: tape, keys: keys), out)
                    }
                    func action(_ record: Record, _ out: ByteBuffer) throws -> Int {
                        if let shard, !shard.owns(record.text("listing_id") ?? "") { return Tag.otherShard }
                        try LeadAction(record: record).encode(into: out)
                        return Tag.action
                    }
                    func pass(_ tape: JSONTape, _ listing: String?, _ out: ByteBuffer) throws -> Int {
                        if let listing, let shard, !shard.owns(listing) { return Tag.otherShard }
                        guard let schema else { return Tag.pass }
                        return schema.writeFilled(tape, into: out) ? Tag.passFilled : Tag.pass
                    }
                }) { written, read, tag, location in
                    switch tag {
                    case Tag.action:
                        guard let action = LeadAction(encoded: written) else { fatalError("a lead action that does not decode") }
                        try groups.add(action, weights: weights)
                    case Tag.run:
                        guard let record = runParser.record(read) else { throw RecordRejected("not a JSON object") }
                        let this = try EventRun(record: record)
                        if let run, run.runID != this.runID {
                            throw StageError.data("\(location): a second run (\(this.runID)) in a stream of run \(run.runID): score one run at a time")
                        }
                        run = this
                        if shard.map({ $0.index == 1 }) ?? true { try stage.writeLine(read) }
                    case Tag.otherShard:
                        otherShards += 1
                    default:
                        try stage.writeLine(tag == Tag.passFilled ? written : read, filled: true)
                        passed += 1
                    }
                }
                let runID = run?.runID ?? runID ?? stage.clock.now.iso8601
                try groups.forEachRecord(now: stage.clock.now, runID: runID) { try stage.write($0) }
                stage.summary.append("run_id", .string(runID))
                stage.summary.append("actions", .int(groups.actionCount))
                stage.summary.append("leads", .int(groups.count))
                if let runs = groups.runsOnDisk { stage.summary.append("runs_on_disk", .int(runs)) }
                stage.summary.append("passed_through", .int(passed))
                if shard != nil { stage.summary.append("other_shards", .int(otherShards)) }
            }
        }
    }
}
