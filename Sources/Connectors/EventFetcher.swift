import LeadRules
import LeadStores
import StageKit

/// Fetches the engagement events of one run's window (from the watermark to the clock) from
/// the PostHog events API or from exported files, and writes the run record, then each
/// event as received, once (an event whose id was already written is a duplicate).
///
/// PostHog's query API (the default): `POST <base>/api/projects/<id>/query/` with a HogQL
/// `SELECT uuid, event, distinct_id, timestamp, properties FROM events WHERE event IN (…)
/// AND timestamp > '<from>' AND timestamp <= '<to>' ORDER BY timestamp, uuid LIMIT N` for each
/// slice of the window, paged by the last (timestamp, uuid) seen (PostHog advises keyset
/// paging over OFFSET), answered by `{"columns":[…],"results":[[…],…],"hasMore":…}`; each row
/// is written as an event object `{uuid, event, distinct_id, timestamp, properties}`.
///
/// PostHog's events API (deprecated by PostHog, `--endpoint events`):
/// `GET <base>/api/projects/<id>/events/?event=<name>&after=..&before=..&limit=N` for
/// each event name of the catalogue and each slice of the window, following `next` until it
/// is null. `after` is exclusive as the window's start is; `before` is asked a second past the
/// window's end and events after the end are left for the next run, so an event exactly on
/// a boundary is in exactly one window.
///
/// Files: JSONL, or a JSON array, of `{event, distinct_id, timestamp, properties}`. An event
/// outside the window (at or before the watermark: a late event whose window was applied;
/// or after `--now`: a later run's) goes to the rejects with the reason, as does one without
/// a readable timestamp.
public struct EventFetcher {
    public enum Source {
        case posthog(client: APIClient, baseURL: String, project: String)
        case posthogQuery(client: APIClient, baseURL: String, project: String)
        case files([String])
    }

    public let source: Source
    public let catalog: EventCatalog
    public let settings: EventFetchSettings
    public let statePath: String

    public init(source: Source, catalog: EventCatalog, settings: EventFetchSettings, statePath: String) {
        self.source = source
        self.catalog = catalog
        self.settings = settings
        self.statePath = statePath
    }

    public func run(_ stage: Stage) throws {
        let state = try EventState.load(statePath)
        let sourceName: String
        switch source {
        case .posthog(_, _, let project), .posthogQuery(_, _, let project): sourceName = "posthog:" + project
        case .files: sourceName = "files"
        }
        let run = try state.window(now: stage.clock.now, lookbackDays: settings.lookbackDays, source: sourceName)
        try stage.write(run.record)
        stage.recordsOut -= 1
        // Each event id once (the first copy), within the memory budget however many there are.
        let once = FirstOfEachKey(budget: try ExternalSort.budget(stage.environment))
        var late = 0, early = 0
        func writeOnce(_ event: Record, _ line: UnsafeBufferPointer<UInt8>) throws {
            if try once.offer(key: catalog.field("event_id", of: event), line: line) == .write { try stage.writeLine(line) }
        }
        let encoded = ByteBuffer(capacity: 1 << 12)
        /// An event from the API: written once, when its timestamp is in the window.
        func take(_ event: Record, into sink: ByteSink) throws {
            if let text = event["timestamp"]?.string, let at = Timestamp(iso8601: text), !run.contains(at) {
                if run.to < at { early += 1 } else { late += 1 }
                return
            }
            encoded.removeAll()
            JSONWriter.write(event, into: encoded)
            try writeOnce(event, encoded.bytes)
        }
        switch source {
        case .posthog(let client, let baseURL, let project):
            var base = baseURL
            while base.hasSuffix("/") { base.removeLast() }
            let endpoint = base + "/api/projects/" + percentEncode(project) + "/events/"
            let sink = try stage.output()
            var pages = 0
            var sliceStart = run.from
            while sliceStart < run.to {
                let sliceEnd = min(sliceStart.adding(days: settings.sliceDays), run.to)
                let before = sliceEnd == run.to ? sliceEnd.adding(seconds: 1) : sliceEnd
                for name in catalog.names {
                    var next: String? = endpoint + "?" + encodeQuery([
                        ("event", name), ("after", sliceStart.iso8601), ("before", before.iso8601),
                        ("limit", String(settings.pageLimit)),
                    ])
                    while let url = next {
                        let page: (events: [JSONValue], next: String?) = try client.get(url) { response in
                            guard let o = parseJSON(response.body)?.object else { return .retry("the page is not a JSON object") }
                            guard let results = o["results"]?.array else {
                                if let detail = o["detail"]?.text { return .fail("PostHog: \(detail)") }
                                return .retry("the page has no results")
                            }
                            return .done((results, o["next"]?.string))
                        }
                        pages += 1
                        for value in page.events {
                            stage.recordsIn += 1
                            guard let event = value.object else { continue }
                            try take(event, into: sink)
                        }
                        next = page.next.flatMap { $0.isEmpty ? nil : $0 }
                    }
                }
                sliceStart = sliceEnd
            }
            stage.summary.append("pages", .int(pages))
            stage.summary.append("requests", .int(client.requests))
            stage.summary.append("retries", .int(client.retries))
        case .posthogQuery(let client, let baseURL, let project):
            var base = baseURL
            while base.hasSuffix("/") { base.removeLast() }
            let endpoint = base + "/api/projects/" + percentEncode(project) + "/query/"
            let sink = try stage.output()
            var pages = 0
            var sliceStart = run.from
            while sliceStart < run.to {
                let sliceEnd = min(sliceStart.adding(days: settings.sliceDays), run.to)
                var after: (timestamp: String, uuid: String)?
                while true {
                    let sql = EventFetcher.hogQL(names: catalog.names, from: sliceStart, to: sliceEnd, after: after, limit: settings.pageLimit)
                    let body: Record = ["query": ["kind": "HogQLQuery", "query": .string(sql)], "name": "leadetl-events"]
                    let page: (rows: [Record], more: Bool) = try client.post(endpoint, json: Array(body.json.utf8)) { response in
                        EventFetcher.queryPage(response)
                    }
                    pages += 1
                    for event in page.rows {
                        stage.recordsIn += 1
                        try take(event, into: sink)
                    }
                    guard page.more || page.rows.count >= settings.pageLimit, let last = page.rows.last,
                          let ts = last["timestamp"]?.string, let uuid = last["uuid"]?.text else { break }
                    if let previous = after, previous == (ts, uuid) { throw StageError.io("\(endpoint): the next page starts where this one did; stopping") }
                    after = (ts, uuid)
                }
                sliceStart = sliceEnd
            }
            stage.summary.append("pages", .int(pages))
            stage.summary.append("requests", .int(client.requests))
            stage.summary.append("retries", .int(client.retries))
        case .files(let paths):
            // The workers read each event's timestamp and id and write it compactly (filled
            // with --schema), after a header of what they read (BinaryFields); this thread
            // keeps the window and the first copy of each id.
            let schema = stage.schema
            let catalog = self.catalog
            try stage.forEachJSONWritten(paths, tagged: {
                let keys = KeyCache()
                return { tape, _, out in
                    guard tape.isObject else { throw RecordRejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))") }
                    var event = Record(tape: tape, keys: keys)
                    schema?.fill(&event)
                    let text = event["timestamp"]?.text
                    out.appendBinary(text)
                    out.appendBinary(text.flatMap { Timestamp(iso8601: $0) })
                    out.appendBinary(catalog.field("event_id", of: event))
                    JSONWriter.write(event, into: out)
                    return 0
                }
            }) { written, _, _, _ in
                var fields = BinaryFields(written)
                guard case .some(let stamp) = fields.text(), case .some(let time) = fields.time(), case .some(let id) = fields.text() else {
                    fatalError("an event header that does not decode")
                }
                guard let text = stamp else { throw RecordRejected("no timestamp") }
                guard let at = time else { throw RecordRejected("timestamp '\(text)' is not ISO 8601") }
                if !(run.from < at) {
                    late += 1
                    throw RecordRejected("late: \(text) is at or before the window start \(run.from.iso8601), a window already applied")
                }
                if run.to < at {
                    early += 1
                    throw RecordRejected("\(text) is after the window end \(run.to.iso8601): a later run takes it")
                }
                let line = fields.rest
                if try once.offer(key: id, line: line) == .write { try stage.writeLine(line, filled: true) }
            }
        }
        try once.finish { line in try stage.writeLine(line) }
        stage.summary.append("run_id", .string(run.runID))
        stage.summary.append("from", .string(run.from.iso8601))
        stage.summary.append("to", .string(run.to.iso8601))
        stage.summary.append("duplicates", .int(once.duplicates))
        if let runs = once.runsOnDisk { stage.summary.append("runs_on_disk", .int(runs)) }
        stage.summary.append("before_window", .int(late))
        stage.summary.append("after_window", .int(early))
    }

    /// The HogQL of one page: the catalogue's events in (from, to], ordered by (timestamp,
    /// uuid), after the last row of the page before.
    public static func hogQL(names: [String], from: Timestamp, to: Timestamp, after: (timestamp: String, uuid: String)?,
                             limit: Int) -> String {
        func literal(_ text: String) -> String {
            "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var sql = "SELECT uuid, event, distinct_id, timestamp, properties FROM events WHERE event IN ("
            + names.map(literal).joined(separator: ", ") + ")"
            + " AND timestamp > toDateTime(\(literal(from.iso8601))) AND timestamp <= toDateTime(\(literal(to.iso8601)))"
        if let after {
            let t = "toDateTime(\(literal(after.timestamp)))"
            sql += " AND (timestamp > \(t) OR (timestamp = \(t) AND uuid > toUUID(\(literal(after.uuid)))))"
        }
        return sql + " ORDER BY timestamp ASC, uuid ASC LIMIT \(limit)"
    }

    /// The rows of a query response as event objects, and whether PostHog says more follow.
    static func queryPage(_ response: HTTPResponse) -> ResponseVerdict<(rows: [Record], more: Bool)> {
        guard let o = parseJSON(response.body)?.object else { return .retry("the query response is not a JSON object") }
        if let status = o["query_status"]?.object, status["error"]?.bool == true {
            return .fail("PostHog query failed: \(status["error_message"]?.text ?? "no message")")
        }
        guard let results = o["results"]?.array, let columns = o["columns"]?.array?.compactMap({ $0.string }) else {
            if let detail = o["detail"]?.text { return .fail("PostHog: \(detail)") }
            return .retry("the query response has no columns and results")
        }
        var rows: [Record] = []
        for result in results {
            guard let cells = result.array, cells.count == columns.count else { return .retry("a query row does not have one value per column") }
            var event = Record()
            for (name, cell) in zip(columns, cells) {
                // HogQL returns properties as JSON text.
                if name == "properties", let text = cell.string, let parsed = JSONValue(parsing: text), parsed.object != nil {
                    event.append(name, parsed)
                } else {
                    event.append(name, cell)
                }
            }
            rows.append(event)
        }
        return .done((rows, o["hasMore"]?.bool ?? false))
    }
}
