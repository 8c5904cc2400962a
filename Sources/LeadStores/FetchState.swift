import StageKit

/// The progress of a resumable listing fetch (`<logs>/<kind>/<mls>/fetch_state.json`, only
/// while a fetch is unfinished), as Singer taps keep bookmarks: the search it belongs to, the
/// next page to ask for, and how many bytes of the partial output that page ended at. Written
/// after each page once the output is synced; removed with the commit of the finished fetch.
public struct ListingFetchState {
    public var label: String
    public var query: String
    /// The next page, as the connector writes its cursor.
    public var next: JSONValue
    public var pages: Int
    public var listings: Int
    public var outputBytes: Int

    public init(label: String, query: String, next: JSONValue, pages: Int, listings: Int, outputBytes: Int) {
        self.label = label
        self.query = query
        self.next = next
        self.pages = pages
        self.listings = listings
        self.outputBytes = outputBytes
    }

    /// The state at `path`, nil when there is none; one for another search is refused.
    public static func load(_ path: String, query: String) throws(StageError) -> ListingFetchState? {
        guard let bytes = try? ByteSource.readAll(path) else { return nil }
        guard let o = JSONValue(parsing: String(decoding: bytes, as: UTF8.self))?.object, let q = o["query"]?.string,
              let next = o["next"], let pages = o["pages"]?.int, let listings = o["listings"]?.int,
              let outputBytes = o["output_bytes"]?.int else {
            throw .usage("\(path): not a fetch state file this version understands; delete it to start over")
        }
        guard q == query else { throw .usage("\(path): this state is for another search (\(q)); delete it to start over") }
        return ListingFetchState(label: o.text("label") ?? "", query: q, next: next, pages: pages, listings: listings, outputBytes: outputBytes)
    }

    /// Writes the state in place (atomically; it must survive a kill the moment it is written).
    public func save(_ path: String) throws(StageError) {
        let record: Record = [
            "label": .string(label), "query": .string(query), "next": next,
            "pages": .int(pages), "listings": .int(listings), "output_bytes": .int(outputBytes),
        ]
        try AtomicFiles.write(Array((record.json + "\n").utf8), to: path)
    }
}

/// A fetch's watermark: for a permit source (`<logs>/permits/fetch-<source>.json`) the latest
/// issue date fetched, for a RESO listings pipeline (`<logs>/<kind>/<mls>/watermark.json`)
/// the latest ModificationTimestamp. Written with the fetched rows in one commit, only when
/// the whole fetch succeeded.
public enum FetchWatermark {
    /// The watermark of `source` at `path`, nil when there is none yet.
    public static func load(_ path: String, source: String) throws(StageError) -> Timestamp? {
        guard let bytes = try? ByteSource.readAll(path) else { return nil }
        guard let o = JSONValue(parsing: String(decoding: bytes, as: UTF8.self))?.object, let name = o["source"]?.string,
              let text = o["watermark"]?.string, let mark = Timestamp(iso8601: text) else {
            throw .usage("\(path): not a fetch watermark file; delete it to fetch from the start")
        }
        guard name == source else { throw .usage("\(path): this state is for the source \(name), not \(source)") }
        return mark
    }

    /// The state file's line.
    public static func record(source: String, watermark: Timestamp, fetchedAt: Timestamp) -> Record {
        ["source": .string(source), "watermark": .string(watermark.iso8601), "fetched_at": .string(fetchedAt.iso8601)]
    }
}
