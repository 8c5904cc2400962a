import LeadRules
import LeadStores
import StageKit

/// Fetches a city's new building permits since the watermark: from a Socrata (SODA) endpoint,
/// paging with `$limit`/`$offset` ordered by the date field (then `:id`, so pages are stable)
/// and filtered with `$where <date> > '<watermark>'`, or from the CSV files of a directory.
/// Each row is written as received (a Socrata object, or a CSV row as an object of strings).
/// The state file holds the watermark: the latest date seen. It is written with the output,
/// only when the whole fetch succeeded, so a failed run fetches the same window again.
/// A watermark that is a whole day (midnight: a date-only field) is fetched from again
/// (`>=`): a permit published later with that date is not missed, and one seen before comes
/// again and replaces its earlier row downstream (by permit_id).
public struct PermitFetcher {
    public let source: PermitSource
    public let client: APIClient?
    public let pageSize: Int
    public let statePath: String

    public init(source: PermitSource, client: APIClient?, pageSize: Int, statePath: String) {
        self.source = source
        self.client = client
        self.pageSize = pageSize
        self.statePath = statePath
    }

    public func run(_ stage: Stage) throws {
        let now = stage.clock.now
        let start = try FetchWatermark.load(statePath, source: source.name) ?? source.lookbackDays.map { Timestamp(seconds: now.seconds - Int64($0) * 86_400) }
        var latest = start
        let sink = try stage.output()
        var skipped = 0, pages = 0
        switch source.kind {
        case .socrata:
            guard let client else { throw StageError.usage("no HTTP client for \(source.name)") }
            var offset = 0
            while true {
                var query = [("$limit", String(pageSize)), ("$offset", String(offset)), ("$order", source.dateField + ",:id")]
                if let start {
                    let comparison = PermitFetcher.isWholeDay(start) ? ">=" : ">"
                    query.append(("$where", "\(source.dateField) \(comparison) '\(PermitFetcher.floating(start))'"))
                }
                let url = source.location + "?" + encodeQuery(query)
                let rows: [JSONValue] = try client.get(url) { response in
                    guard let value = parseJSON(response.body) else { return .retry("the page is not JSON") }
                    if let rows = value.array { return .done(rows) }
                    if let o = value.object, o["error"] != nil || o["message"] != nil {
                        return .fail("Socrata error: \(o["message"]?.text ?? o["error"]?.json ?? "")")
                    }
                    return .retry("the page is not a JSON array of rows")
                }
                pages += 1
                for row in rows {
                    stage.recordsIn += 1
                    guard let object = row.object else { skipped += 1; continue }
                    if let text = object[source.dateField]?.text, let at = Timestamp(iso8601: text), latest.map({ at > $0 }) ?? true {
                        latest = at
                    }
                    JSONWriter.writeLine(object, into: sink.buffer)
                    stage.recordsOut += 1
                }
                try sink.flushIfNeeded()
                if rows.count < pageSize { break }
                offset += rows.count
            }
            stage.summary.append("pages", .int(pages))
            stage.summary.append("requests", .int(client.requests))
            stage.summary.append("retries", .int(client.retries))
        case .files:
            let files = Directory.files(in: source.location, suffix: ".csv")
            guard !files.isEmpty else { throw StageError.usage("\(source.location): no CSV files for the source \(source.name)") }
            if let encoding = source.encoding { stage.inputEncoding = encoding }
            try stage.forEachCSV(files) { row, header, location in
                guard let column = header.firstIndex(of: source.dateField) else {
                    throw StageError.usage("\(location.path): no column \(source.dateField) (date_field of \(source.name))")
                }
                let text = row.string(column)
                guard let day = source.dateFormat!.parse(text) else {
                    throw RecordRejected("\(source.dateField) '\(text)' does not match \(source.dateFormat!.text)")
                }
                let at = day.timestamp
                if let start, at < start || (at == start && !PermitFetcher.isWholeDay(start)) { skipped += 1; return }
                if latest.map({ at > $0 }) ?? true { latest = at }
                var record = Record()
                for i in header.indices { record.append(header[i], .string(row.string(i))) }
                JSONWriter.writeLine(record, into: sink.buffer)
                stage.recordsOut += 1
                try sink.flushIfNeeded()
            }
            stage.summary.append("files", .int(files.count))
        }
        stage.summary.append("since", start.map { .string($0.iso8601) } ?? .null)
        stage.summary.append("not_after_watermark", .int(skipped))
        if let latest {
            let state = try stage.openOutput(statePath)
            let record = FetchWatermark.record(source: source.name, watermark: latest, fetchedAt: now)
            state.buffer.append(record.json + "\n")
            stage.summary.append("watermark", .string(latest.iso8601))
        }
    }

    /// Whether a watermark is a whole day (a date-only field): then its day is fetched again.
    static func isWholeDay(_ t: Timestamp) -> Bool { t.seconds % 86_400 == 0 && t.nanoseconds == 0 }

    /// A Socrata floating timestamp: `2016-03-11T00:00:00.000`.
    static func floating(_ t: Timestamp) -> String {
        var text = t.iso8601
        if text.hasSuffix("Z") { text.removeLast() }
        if !text.contains(".") { text += ".000" }
        return text
    }
}
