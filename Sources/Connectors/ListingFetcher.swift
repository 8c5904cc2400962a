import LeadStores
import StageKit

/// Runs a paged listing search to the end and writes each listing once, as received with
/// its expansions, one per line.
///
/// With a state file the fetch is resumable (as Singer taps keep bookmarks): after each page
/// the output is synced and then the state records the next page and how many bytes of
/// output that page ended at. A fetch killed mid-way and run again with the same state cuts
/// the output back to the last recorded page and goes on from the next one, so the final file
/// equals an uninterrupted run. The state file is removed when the fetch completes.
public struct ListingFetcher {
    public let source: ListingSource
    public let client: APIClient
    /// Names the search in the state file, so a state is never resumed for another search.
    public let label: String
    public let statePath: String?
    /// Which received listings are written (a replication fetch asks the server for more than
    /// the pipeline's listings); nil: all. The others are counted as not_in_pipeline.
    public var keep: ((JSONValue) -> Bool)?
    /// Where the latest `ModificationTimestamp` received is kept (with the output, on
    /// success), for the next run to ask only for listings modified after it.
    public var watermarkPath: String?

    public init(source: ListingSource, client: APIClient, label: String, statePath: String?,
                keep: ((JSONValue) -> Bool)? = nil, watermarkPath: String? = nil) {
        self.source = source
        self.client = client
        self.label = label
        self.statePath = statePath
        self.keep = keep
        self.watermarkPath = watermarkPath
    }

    /// The listing's `ModificationTimestamp` (RESO), if it has a readable one.
    static func modified(_ listing: JSONValue) -> Timestamp? {
        listing.object?["ModificationTimestamp"]?.string.flatMap { Timestamp(iso8601: $0) }
    }

    /// Fetches into the stage's output; counts listings received (in) and written (out).
    public func run(_ stage: Stage) throws {
        let query = source.url(for: source.first)
        var cursor: PageCursor? = source.first
        var pages = 0
        var seen = Set<String>()
        var duplicates = 0, notInPipeline = 0
        var latest: Timestamp?
        func saw(_ listing: JSONValue) {
            if watermarkPath != nil, let at = ListingFetcher.modified(listing), latest.map({ at > $0 }) ?? true { latest = at }
        }
        let sink: ByteSink
        if let statePath {
            let state = try ListingFetchState.load(statePath, query: query)
            sink = try stage.resumableOutput(keep: state?.outputBytes ?? 0)
            if let state {
                guard let next = PageCursor(json: state.next) else {
                    throw StageError.usage("\(statePath): its next page is not one this version understands; delete it to start over")
                }
                cursor = next
                pages = state.pages
                let output = stage.options.output!
                seen = try keysInPartial(ByteSink.partialPath(for: output), upTo: state.outputBytes, saw)
                stage.recordsIn += seen.count
                stage.recordsOut += seen.count
                stage.warn("resuming \(label) at page \(pages + 1) (\(seen.count) listings already written)",
                           at: SourceLocation(path: statePath, line: 1))
            }
        } else {
            sink = try stage.output()
        }
        while let current = cursor {
            let url = source.url(for: current)
            let page = try client.get(url) { response in source.interpret(response, at: current) }
            pages += 1
            // A listing the page cannot key goes to the rejects, named by its page and place.
            for bad in page.rejects {
                stage.recordsIn += 1
                guard let record = bad.listing.object else {
                    try stage.reject(bad.reason, at: SourceLocation(path: page.file ?? url, line: bad.position), record: ["value": bad.listing])
                    continue
                }
                try stage.reject(bad.reason + " (listing \(bad.position) of the page)",
                                 at: SourceLocation(path: page.file ?? url, line: bad.position), record: record)
            }
            for (key, listing) in page.listings {
                stage.recordsIn += 1
                saw(listing)
                if let keep, !keep(listing) {
                    notInPipeline += 1
                    continue
                }
                guard seen.insert(key).inserted else {
                    duplicates += 1
                    continue
                }
                JSONWriter.write(listing, into: sink.buffer)
                sink.buffer.append(10)
                stage.recordsOut += 1
            }
            if page.next == current { throw StageError.io("\(url): the next page is the same page; stopping") }
            cursor = page.next
            if let statePath {
                let bytes = try sink.checkpoint()
                if let next = cursor {
                    try ListingFetchState(label: label, query: query, next: next.json, pages: pages, listings: seen.count,
                                          outputBytes: bytes).save(statePath)
                }
            } else {
                try sink.flushIfNeeded()
            }
        }
        stage.summary.append("pages", .int(pages))
        stage.summary.append("requests", .int(client.requests))
        stage.summary.append("retries", .int(client.retries))
        stage.summary.append("duplicates", .int(duplicates))
        if keep != nil { stage.summary.append("not_in_pipeline", .int(notInPipeline)) }
        if let watermarkPath {
            if let latest {
                let state = try stage.openOutput(watermarkPath)
                state.buffer.append(FetchWatermark.record(source: label, watermark: latest, fetchedAt: stage.clock.now).json + "\n")
            }
            stage.summary.append("watermark", latest.map { .string($0.iso8601) } ?? .null)
        }
        if let statePath { stage.removeOnSuccess(statePath) }
    }

    func keysInPartial(_ path: String, upTo bytes: Int, _ saw: (JSONValue) -> Void) throws(StageError) -> Set<String> {
        guard let content = readWholeFile(path), content.count >= bytes else {
            throw .io("\(path): the partial output of the interrupted fetch is missing or shorter than its state says")
        }
        var keys = Set<String>()
        for line in content[0..<bytes].split(separator: 10) {
            guard let listing = parseJSON(Array(line)), let key = source.key(of: listing) else {
                throw .io("\(path): unreadable line in the partial output; delete it and the state file to start over")
            }
            keys.insert(key)
            saw(listing)
        }
        return keys
    }
}
