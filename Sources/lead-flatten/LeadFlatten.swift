import ArgumentParser
import LeadRules
import LeadStores
import StageKit

@main
struct LeadFlatten: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-flatten",
        abstract: "Turn raw input (nested JSON, CSV) into flat JSONL records.",
        version: LeadETL.version,
        subcommands: [JSON.self, CSV.self, Listings.self, Leads.self, Permits.self, Events.self]
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
                stage.stampsOrigin = true
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
                stage.stampsOrigin = true
                try FormatStages.flattenCSV(stage, inputs: inputs, delimiter: byte)
            }
        }
    }

    struct Listings: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "listings",
            abstract: "Flatten raw MLS listings into flat records with RESO names and lead tracking.",
            discussion: """
            Reads what lead-fetch listings wrote (Spark native results with Photos, or RESO \
            Properties with Media) and writes one flat record per listing: the fields of \
            stages/flatten/listing-fields.csv (numbers Spark sends as strings become numbers; a \
            value that cannot be coerced is null and noted in coercionErrors), PrimaryPhotoUrl, \
            PhotoCount, source and pipeline. Pipelines whose kind has lead tracking \
            (listing-tracking.csv) add the tracking fields and expiresAt (the retention of \
            stages/cleanup/retention.csv). With --previous, tracking fields a person set are \
            carried over, and listings no longer fetched are kept until cleanup removes them.

            Example:
              lead-flatten listings --pipeline expired-gps --previous flattened.jsonl all_listings.jsonl -o flattened.jsonl
            """
        )

        /// The pipeline the listings belong to.
        @Option(help: ArgumentHelp("The listings pipeline (expired-gps, ...).", valueName: "name"))
        var pipeline: String

        /// The last flattened file, for carry-over.
        @Option(help: ArgumentHelp("The last flattened file: its lead tracking fields are kept.", valueName: "file"))
        var previous: String?

        @OptionGroup var common: CommonOptions

        /// Raw listings; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Raw listings (JSONL from lead-fetch listings); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("flatten", command: "listings", options: common) { stage in
                stage.stampsOrigin = true
                let rules = try ListingRules.load(directory: stage.rulesDirectory(stage: "fetch"))
                let flattener = ListingFlattener(
                    pipeline: try rules.pipeline(pipeline),
                    fields: try ListingFlattener.loadFields(stage.rulesFile("listing-fields.csv")),
                    tracking: try ListingFlattener.loadTracking(stage.rulesFile("listing-tracking.csv")),
                    retention: try RetentionRule.load(stage.rulesFile("retention.csv", stage: "cleanup")),
                    photoSizes: rules.settings.photoSizes)
                let trackingRules = try TrackingRules.load(stage.rulesFile("listing-tracking.csv"))
                let now = stage.clock.now
                // The listing folder is a store: the previous file is read and written again.
                if let out = common.output, out != "-", previous != nil { try Store.open([AtomicFiles.directory(of: out)], for: stage) }
                // The previous file is read whole first: it may be the file this run replaces.
                var earlier: [(key: String, record: Record)] = []
                if let previous, previous != "-", Stage.fileExists(previous) {
                    try stage.readRecords(previous) { record, _ in
                        if let key = record.text("ListingKey") { earlier.append((key, record)) }
                    }
                }
                let earlierByKey = Dictionary(earlier.map { ($0.key, $0.record) }, uniquingKeysWith: { first, _ in first })
                var written: [String: SourceLocation] = [:]
                try stage.forEachRecord(inputs) { raw, location in
                    var flat = try flattener.flatten(raw)
                    let key = flat.text("ListingKey")!
                    if let first = written[key] { throw RecordRejected("duplicate ListingKey \(key) (first at \(first))") }
                    written[key] = location
                    if let before = earlierByKey[key] {
                        flattener.carryOver(from: before, into: &flat)
                        // What a person changed in the file by hand joins the history now.
                        for problem in trackingRules.stampEdits(&flat, at: now, by: "hand edit") {
                            stage.warn("listing \(key) of \(previous ?? "the previous file"): \(problem); kept in tracking_errors", at: location)
                        }
                    }
                    stage.stampOrigin(&flat, at: location)
                    try stage.write(flat)
                }
                if flattener.tracksLeads {
                    var kept = 0
                    for (key, record) in earlier where written[key] == nil {
                        written[key] = SourceLocation(path: previous!, line: 0)
                        var record = record
                        trackingRules.stampEdits(&record, at: now, by: "hand edit")
                        try stage.write(record)
                        kept += 1
                    }
                    stage.summary.append("kept_from_previous", .int(kept))
                }
            }
        }
    }
}

extension LeadFlatten {
    struct Leads: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "leads",
            abstract: "Import a lead list: map its columns to the canonical lead fields.",
            discussion: """
            A column map (stages/flatten/leads-<provider>.csv, `field,column[,format]`) says which \
            columns hold property_address, property_city, property_state, property_zip, \
            mailing_address, mailing_city, mailing_state, mailing_zip, owner_name, county, tags \
            (a |-separated list), source and any other field; several columns joined with + are \
            concatenated; formats read dates (date:MM/dd/yyyy), money, int, number, bool and lists. \
            Every lead gets the canonical fields in that order, then the map's other fields, then \
            the columns the map does not use, then import_file and import_line. The tags become \
            assignments {tag, assigned_at, via}: assigned at the row's tag_date when the map has \
            one, else at --now. Input is CSV, or JSONL when the file name says so (.jsonl, .json). \
            Each input file is kept as received in <logs>/leads/imports/<source>/, and import_file \
            names that copy (relative to <logs>), so every lead can be traced to its row.

            Example:
              lead-flatten leads --map stages/flatten/leads-propstream.csv propstream.csv -o imported.jsonl
            """
        )

        /// The column map.
        @Option(help: ArgumentHelp("The provider's column map (field,column[,format]).", valueName: "file"))
        var map: String

        /// The provider's name, when the map does not fill source.
        @Option(help: ArgumentHelp("The source name for leads whose map fills no source (default: the map's name without leads- and .csv).", valueName: "name"))
        var source: String?

        /// Input format.
        @Option(help: ArgumentHelp("Input format: csv or jsonl (default: from the file name; csv for stdin).", valueName: "format"))
        var format: String?

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: input files are kept in <logs>/leads/imports/.", valueName: "dir"))
        var logs = "local-logs"

        /// Do not keep copies of the inputs.
        @Flag(help: "Do not keep a copy of each input in <logs>/leads/imports/ (import_file is then the input path).")
        var noKeep = false

        @OptionGroup var common: CommonOptions

        /// Lead lists; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Lead lists (CSV, or JSONL such as flattened listings); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if let format, format != "csv" && format != "jsonl" { throw ValidationError("--format must be csv or jsonl") }
        }

        func run() throws {
            Stage.run("flatten", command: "leads", options: common) { stage in
                stage.stampsOrigin = true
                let columnMap = try ColumnMap.load(map)
                var name = String(map.split(separator: "/").last ?? "leads")
                if name.hasSuffix(".csv") { name.removeLast(4) }
                if name.hasPrefix("leads-") { name.removeFirst(6) }
                let defaultSource = source ?? name
                let now = stage.clock.now
                let keptDirectory = logs + "/leads/imports/" + defaultSource
                for input in try stage.inputs(inputs) {
                    let path = input == "-" ? try stage.spoolStdin() : input
                    var importFile = input == "-" ? "stdin" : input
                    if !noKeep {
                        let kept = try ImportArchive.keep(path, in: keptDirectory, day: now.date)
                        importFile = kept.hasPrefix(logs + "/") ? String(kept.dropFirst(logs.count + 1)) : kept
                    }
                    let isJSON = format.map { $0 == "jsonl" } ?? [".jsonl", ".json", ".jsonl.gz", ".json.gz"].contains { input.hasSuffix($0) }
                    // Each lead is mapped and written on a worker; this thread writes the lines in order.
                    let schema = stage.schema, stampsOrigin = stage.stampsOrigin
                    let imported = JSONValue.string(importFile)
                    try forEachMapped(stage, map: columnMap, path: path, input: input, isJSON: isJSON, writer: {
                        { column, passThrough, raw, location, out in
                            var lead = try columnMap.lead(column: column, passThrough: passThrough, source: defaultSource, now: now)
                            if let raw {
                                JSONWriter.write(lead, into: out)
                                raw.write(toObjectIn: out)
                                JSONWriter.append(LeadFields.importFile, imported, toObjectIn: out)
                                JSONWriter.append(LeadFields.importLine, .int(location.line), toObjectIn: out)
                                if stampsOrigin && !raw.hasOrigin && !lead.hasValue(Stage.originField) {
                                    JSONWriter.append(Stage.originField, .string(location.description), toObjectIn: out)
                                }
                                return 0
                            }
                            lead.append(LeadFields.importFile, imported)
                            lead.append(LeadFields.importLine, .int(location.line))
                            if stampsOrigin && !lead.hasValue(Stage.originField) { lead[Stage.originField] = .string(location.description) }
                            _ = schema?.fill(&lead)
                            JSONWriter.write(lead, into: out)
                            return 0
                        }
                    }) { line, _, _ in
                        try stage.writeLine(line, filled: true)
                    }
                }
            }
        }
    }
}

/// Reads one input through a column map, CSV (the header checked against the map on the first
/// row) or JSONL. Each worker makes a writer with `writer`, which gets a row's column accessor
/// (entry, k) -> value, the columns the map does not use (in source order) and the row's
/// location, writes the row's output bytes and returns a tag, or throws `RecordRejected`;
/// `body` then gets the bytes and tag of each row in input order, on this thread. CSV rows
/// are written on every processor, JSONL records on this thread.
func forEachMapped(_ stage: Stage, map columnMap: ColumnMap, path: String, input: String, isJSON: Bool,
                   writer: @escaping () -> (_ column: (Int, Int) -> JSONValue?, _ passThrough: [(String, JSONValue)], _ raw: PassThroughColumns?,
                                            SourceLocation, ByteBuffer) throws -> Int,
                   _ body: (_ written: UnsafeBufferPointer<UInt8>, _ tag: Int, SourceLocation) throws -> Void) throws {
    // Standard input is read from a spool file, whose locations the stage names `-`.
    if isJSON {
        let used = columnMap.usedColumns
        let write = writer()
        let out = ByteBuffer(capacity: 1 << 16)
        try stage.forEachRecord([path]) { record, location in
            var passThrough: [(String, JSONValue)] = []
            for field in record.fields where !used.contains(field.key) {
                if let problem = columnMap.collision(field.key) { throw StageError.usage("\(location): \(problem)") }
                passThrough.append((field.key, field.value))
            }
            out.removeAll()
            let tag = try write({ e, k in record[columnMap.entries[e].columns[k]] }, passThrough, nil, location, out)
            try body(out.bytes, tag, location)
        }
    } else {
        // One file, one header: checked and resolved when it is read.
        try stage.forEachCSVWritten([path], header: { header, _ in
            if let problem = columnMap.check(header: header) { throw StageError.usage("\(input): \(problem)") }
            let positions = columnMap.positions(in: header)
            let used = columnMap.usedColumns
            let unused = header.indices.filter { !used.contains(header[$0]) }
            // Without --schema (which fills whole records) the unused columns are written from
            // the row's bytes.
            let raw = stage.schema == nil ? RawColumns(unused, header: header) : nil
            let hasOrigin = unused.contains { header[$0] == Stage.originField }
            return {
                let write = writer()
                return { row, location, out in
                    if let raw {
                        return try write({ e, k in positions[e][k].map { .string(row.string($0)) } }, [],
                                         PassThroughColumns(row: row, columns: raw, hasOrigin: hasOrigin), location, out)
                    }
                    return try write({ e, k in positions[e][k].map { .string(row.string($0)) } },
                                     unused.map { (header[$0], .string(row.string($0))) }, nil, location, out)
                }
            }
        }, body)
    }
}

/// The columns of a CSV row that its map does not use, written into the row's JSON object as
/// they were read (a writer splices them in where the pass-through fields go).
struct PassThroughColumns {
    let row: CSVFields
    let columns: RawColumns
    /// Whether one of them is `_origin`: the row then carries its own provenance.
    let hasOrigin: Bool

    func write(toObjectIn out: ByteBuffer) { columns.write(row, toObjectIn: out) }
}

/// Whether an input is JSON by its name (or the --format given).
func isJSONInput(_ input: String, format: String?) -> Bool {
    format.map { $0 == "jsonl" } ?? [".jsonl", ".json", ".jsonl.gz", ".json.gz"].contains { input.hasSuffix($0) }
}

extension LeadFlatten {
    struct Permits: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "permits",
            abstract: "Turn a city's building permits into canonical permit records through a column map.",
            discussion: """
            A column map (stages/flatten/permits-<city>.csv, `field,column[,format]`, the format of \
            lead imports) fills permit_id, city, property_address, property_city, property_state, \
            property_zip, owner_name, the owner's mailing address (mailing_address, mailing_city, \
            mailing_state, mailing_zip), project_description, permit_type, work_type, market_value \
            (the appraisal value) and job_value (money: $1,250.00 -> 1250; null when a city has \
            none) and issued_at, in that order; the map's other fields and the \
            columns it does not use follow. Input is CSV, or JSONL as lead-fetch permits writes it. \
            A row without permit_id or property_address goes to the rejects file. A permit_id seen \
            again replaces the earlier row (the replaced and replacing lines are logged in \
            <logs>/permits/replaced-<city>.jsonl, the city from the map's name), so one record per permit flows on, in the order of each \
            permit's last row.

            Example:
              lead-flatten permits --map stages/flatten/permits-austin.csv 2016-03-07.csv | lead-normalize
            """
        )

        /// The column map.
        @Option(help: ArgumentHelp("The city's column map (field,column[,format]).", valueName: "file"))
        var map: String

        /// Input format.
        @Option(help: ArgumentHelp("Input format: csv or jsonl (default: from the file name; csv for stdin).", valueName: "format"))
        var format: String?

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root: replaced rows are logged in <logs>/permits/replaced.jsonl.", valueName: "dir"))
        var logs = "local-logs"

        @OptionGroup var common: CommonOptions

        /// Permit files; none or `-` means stdin.
        @Argument(help: ArgumentHelp("Permit files (CSV, or JSONL from lead-fetch permits); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func validate() throws {
            if let format, format != "csv" && format != "jsonl" { throw ValidationError("--format must be csv or jsonl") }
        }

        func run() throws {
            Stage.run("flatten", command: "permits", options: common) { stage in
                stage.stampsOrigin = true
                let columnMap = try ColumnMap.load(map, canonical: PermitFields.canonical)
                for required in [PermitFields.id, "property_address"] where !columnMap.entries.contains(where: { $0.field == required }) {
                    throw StageError.rules(file: map, line: nil, message: "the map does not fill \(required)")
                }
                // Rows wait in a spool until every input is read: a later row of a permit replaces it.
                let spool = try SpoolFile()
                var rows: [(span: SpoolFile.Span, location: SourceLocation, id: String)] = []
                var last: [String: Int] = [:]
                var replaced: [Record] = []
                let line = ByteBuffer(capacity: 4096)
                for input in try stage.inputs(inputs) {
                    let path = input == "-" ? try stage.spoolStdin() : input
                    // Each permit is mapped and written on a worker, its id's bytes first (the tag
                    // says how many); this thread keeps the lines in order in the spool.
                    let schema = stage.schema, stampsOrigin = stage.stampsOrigin
                    try forEachMapped(stage, map: columnMap, path: path, input: input,
                                      isJSON: isJSONInput(input, format: format), writer: {
                        { column, passThrough, raw, location, out in
                            var permit = try columnMap.record(column: column, passThrough: passThrough, numeric: PermitFields.numeric)
                            _ = schema?.fill(&permit)
                            let stamp = stampsOrigin && raw?.hasOrigin != true && !permit.hasValue(Stage.originField)
                            if stamp && raw == nil { permit[Stage.originField] = .string(location.description) }
                            guard let id = permit.text(PermitFields.id)?.trimmingSpaces, !id.isEmpty else {
                                throw RecordRejected("no permit_id")
                            }
                            guard let address = permit.text("property_address"), !address.trimmingSpaces.isEmpty else {
                                throw RecordRejected("permit \(id) has no property_address")
                            }
                            let start = out.count
                            out.append(id)
                            let idLength = out.count - start
                            JSONWriter.write(permit, into: out)
                            if let raw {
                                raw.write(toObjectIn: out)
                                if stamp { JSONWriter.append(Stage.originField, .string(location.description), toObjectIn: out) }
                            }
                            return idLength
                        }
                    }) { written, idLength, location in
                        let id = String(decoding: UnsafeBufferPointer(rebasing: written[..<idLength]), as: UTF8.self)
                        let json = UnsafeBufferPointer(rebasing: written[idLength...])
                        let here = SourceLocation(path: input == "-" ? "-" : input, line: location.line)
                        if let earlier = last[id] {
                            replaced.append(["permit_id": .string(id), "replaced": .string(rows[earlier].location.description),
                                             "by": .string(here.description)])
                        }
                        last[id] = rows.count
                        rows.append((try spool.append(json), here, id))
                    }
                }
                let sink = try stage.output()
                for (n, row) in rows.enumerated() {
                    guard last[row.id] == n else { continue }
                    try spool.read(row.span, into: line)
                    sink.buffer.append(line)
                    sink.buffer.append(10)
                    stage.recordsOut += 1
                    try sink.flushIfNeeded()
                }
                var city = String(map.split(separator: "/").last ?? "permits")
                if city.hasSuffix(".csv") { city.removeLast(4) }
                if city.hasPrefix("permits-") { city.removeFirst(8) }
                let log = try stage.openOutput(stage.sidePath(logs + "/permits/replaced-" + city + ".jsonl"))
                for entry in replaced { JSONWriter.writeLine(entry, into: log.buffer) }
                stage.summary.append("replaced_rows", .int(replaced.count))
            }
        }
    }
}

extension LeadFlatten {
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "events",
            abstract: "Turn PostHog events into flat lead actions and engagement rows.",
            discussion: """
            Keeps the events of stages/flatten/events.csv: lead events (lead, lead_phone, \
            lead_message, lead_appointment) become `action` records, listing_view, \
            listing_impression, listing_share and listing_save become view, impression, share and \
            save records. Fields (stages/flatten/event-fields.csv) are read from the event's \
            properties, seeker_id falling back to distinct_id: kind, event, event_id, listing_id, \
            seeker_id, lister_id, lister_type, then message_type (message leads), appointment_type \
            (appointments), share_channel (shares), lead_type (lead events) and the timestamp in UTC. \
            An event without listing_id, a lead event without seeker_id, or one without a readable \
            timestamp goes to the rejects; other event names are counted (summary `skipped`) and \
            left out. The run record of lead-fetch events passes through.

            Example:
              lead-fetch events --from export.jsonl | lead-flatten events -o flattened.jsonl
            """
        )

        @OptionGroup var common: CommonOptions

        @Argument(help: ArgumentHelp("Events (JSONL or a JSON array, as lead-fetch events writes or PostHog exports); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("flatten", command: "events", options: common) { stage in
                stage.stampsOrigin = true
                let catalog = try EventCatalog.load(events: stage.rulesFile("events.csv"), fields: stage.rulesFile("event-fields.csv"))
                var skipped: [String: Int] = [:]
                var counts = [Int](repeating: 0, count: EventCatalog.Kind.allCases.count + 2)
                let schema = stage.schema
                // Each worker flattens on the parsed text (EventTapeFlattener); what it does not
                // take plainly goes the record path, which words the rejects.
                try stage.forEachJSONWritten(inputs, tagged: {
                    let fast = EventTapeFlattener(catalog: catalog, schema: schema, stampsOrigin: stage.stampsOrigin)
                    let keys = KeyCache()
                    return { tape, location, out in
                        if let tag = fast.write(tape, origin: location, into: out) { return tag }
                        guard tape.isObject else {
                            throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))")
                        }
                        var record = Record(tape: tape, keys: keys)
                        var tag = EventTapeFlattener.runTag
                        if let kind = record.text("kind") {
                            guard kind == EventRun.kind else { throw RecordRejected("already flat (kind \(kind)): not a PostHog event") }
                            // Only its own fields: the fetch's schema gave it the raw events' too.
                            record = try EventRun(record: record).record
                        } else {
                            switch try catalog.flatten(record) {
                            case .record(let flat):
                                record = flat
                                tag = EventTapeFlattener.tag(catalog.events[flat.text("event") ?? ""]!.kind)
                            case .skipped(let name):
                                out.append(name)
                                return EventTapeFlattener.skippedTag
                            }
                        }
                        schema?.fill(&record)
                        stage.stampOrigin(&record, at: location)
                        JSONWriter.write(record, into: out)
                        return tag
                    }
                }) { bytes, _, tag, _ in
                    if tag == EventTapeFlattener.skippedTag {
                        skipped[String(decoding: bytes, as: UTF8.self), default: 0] += 1
                        return
                    }
                    counts[tag] += 1
                    try stage.writeLine(bytes, filled: true)
                }
                var kinds: [String: Int] = [:]
                for kind in EventCatalog.Kind.allCases where counts[EventTapeFlattener.tag(kind)] > 0 {
                    kinds[kind.recordKind] = counts[EventTapeFlattener.tag(kind)]
                }
                stage.summary.append("kinds", JSONValue(counts: kinds))
                stage.summary.append("skipped", JSONValue(counts: skipped))
            }
        }
    }
}
