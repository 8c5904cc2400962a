import ArgumentParser
import Connectors
import LeadRules
import LeadStores
import StageKit

@main
struct LeadFetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lead-fetch",
        abstract: "Fetch raw records: MLS listings (Spark, RESO), photos, building permits (Socrata), engagement events (PostHog).",
        version: LeadETL.version,
        subcommands: [Listings.self, Photos.self, Permits.self, Events.self]
    )

    static func main() { stageMain() }
}

/// How to reach an API: live (token from the environment) or a recorded replay.
struct SourceOptions: ParsableArguments {
    /// Read recorded response pages from this directory instead of the network.
    @Option(help: ArgumentHelp("Read recorded responses (page-0001.json, ...) from this directory instead of the network.",
                               valueName: "dir"))
    var replay: String?

    /// The API base URL.
    @Option(help: ArgumentHelp("API base URL: Spark's (default https://sparkapi.com), or for --api reso the OData service root (default the MLS's reso_root in mls.csv, else https://sparkapi.com/Reso/OData).", valueName: "url"))
    var baseURL: String?

    /// Requests per second.
    @Option(help: ArgumentHelp("At most N requests per second (default from the rules: 10).", valueName: "N"))
    var rate: Double?
}

extension LeadFetch {
    struct Listings: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "listings",
            abstract: "Fetch one listings pipeline's listings, each once, as received with expansions.",
            discussion: """
            The pipeline (stages/fetch/listing-pipelines.csv) gives the MLS, property types, \
            statuses and date window; the filter is built from them and --now. Spark native \
            (--api spark) pages with _page; RESO (--api reso) asks <root>/Property of the MLS's \
            OData root (mls.csv reso_root, or --base-url) and follows @odata.nextLink. The bearer \
            token comes from the MLS's token_env (SPARK_API_TOKEN), or with auth oauth2 from \
            token_url for the client id and secret in client_id_env and client_secret_env (renewed \
            before it expires); never from the command line, never printed. An MLS with \
            replication mlsgrid is fetched under MLS Grid's rules: OriginatingSystemName, \
            MlgCanView eq true and ModificationTimestamp gt the --watermark (the window's start \
            on a first run), the pipeline's types, statuses and window applied to what comes \
            back. With --watermark any RESO fetch asks only for listings modified since the last \
            run. Requests are rate limited \
            and retried with backoff on timeouts, 5xx, 429 (Retry-After) and Spark code 1550; \
            after max_attempts tries the stage exits 3 naming the URL. With --state the fetch \
            resumes where a killed run stopped.

            Example:
              lead-fetch listings --pipeline expired-gps --replay fixtures/listings/expired-gps \\
                --now 2026-11-23 -o local-logs/expired/gps/all_gps_expired_listings_with_expansions.jsonl
            """
        )

        /// The pipeline to fetch.
        @Option(help: ArgumentHelp("The listings pipeline (active-gps, expired-crmls, ...).", valueName: "name"))
        var pipeline: String

        /// Which API dialect.
        @Option(help: ArgumentHelp("spark (native /v1/listings) or reso (RESO Web API OData).", valueName: "api"))
        var api: String = "spark"

        @OptionGroup var source: SourceOptions

        /// Listings per page.
        @Option(help: ArgumentHelp("Listings per page (default from the rules: 25).", valueName: "N"))
        var pageSize: Int?

        /// Resumable progress.
        @Option(help: ArgumentHelp("Record progress here after each page; a killed fetch run again resumes.", valueName: "file"))
        var state: String?

        /// The ModificationTimestamp watermark (RESO).
        @Option(help: ArgumentHelp("RESO: keep the latest ModificationTimestamp here; the next run asks only for listings modified after it.", valueName: "file"))
        var watermark: String?

        @OptionGroup var common: CommonOptions

        func validate() throws {
            guard api == "spark" || api == "reso" else { throw ValidationError("--api must be spark or reso") }
            if watermark != nil && api != "reso" { throw ValidationError("--watermark is for --api reso (ModificationTimestamp)") }
            if let pageSize, pageSize < 1 { throw ValidationError("--page-size must be at least 1") }
            if let rate = source.rate, rate <= 0 { throw ValidationError("--rate must be more than 0") }
        }

        func run() throws {
            Stage.run("fetch", command: "listings", options: common) { stage in
                let rules = try ListingRules.load(directory: stage.rulesDirectory())
                let pipeline = try rules.pipeline(self.pipeline)
                let settings = rules.settings
                let server = pipeline.server
                let base = source.baseURL ?? (api == "reso" ? server.resoRoot ?? settings.resoRoot : settings.sparkBaseURL)
                let size = pageSize ?? settings.pageSize
                let now = stage.clock.now
                // The state, the watermark and the partial output are the listing folder's: one fetch at a time.
                let folders = Set([state, watermark].compactMap { $0 }.map { AtomicFiles.directory(of: $0) })
                if !folders.isEmpty { try Store.open(folders.sorted(), for: stage) }
                var since: Timestamp?
                if let watermark { since = try FetchWatermark.load(watermark, source: pipeline.name) }
                let listingSource: ListingSource = api == "reso"
                    ? ResoListingSource(root: base, filter: pipeline.resoFilter(now: now, modifiedAfter: since),
                                        expandMedia: pipeline.expand != nil, top: size)
                    : SparkListingSource(base: base, filter: pipeline.sparkFilter(now: now), expand: pipeline.expand, limit: size)
                let client = try makeClient(source, base: base, server: server, settings: settings, stage: stage)
                var keep: ((JSONValue) -> Bool)?
                if api == "reso" && server.replication == .mlsgrid {
                    keep = { listing in listing.object.map { pipeline.matches($0, now: now) } ?? false }
                }
                try ListingFetcher(source: listingSource, client: client, label: pipeline.name, statePath: state,
                                   keep: keep, watermarkPath: watermark).run(stage)
            }
        }
    }

    struct Photos: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "photos",
            abstract: "Cache each listing's primary photo under local-logs/<kind>/photos/<mls>/.",
            discussion: """
            Reads a flattened listings file (ListingKey, PrimaryPhotoUrl) and saves photos as \
            <logs>/<kind>/photos/<mls>/<ListingKey>.<ext>. The skip index \
            (<logs>/<kind>/photo-logs/<mls>/skip_index.json) means an unchanged photo is not \
            fetched again; run_YYYYMMDD-HHMMSS.jsonl (the run's real start) logs every attempt. 404s, timeouts and \
            content that is not an image are logged and skipped, never fatal.

            Example:
              lead-fetch photos --pipeline expired-gps --replay fixtures/listings/photos \\
                local-logs/expired/gps/flattened_gps_expired_listings.jsonl
            """
        )

        /// The pipeline the listings belong to.
        @Option(help: ArgumentHelp("The listings pipeline (decides the photo folders).", valueName: "name"))
        var pipeline: String

        /// The logs root.
        @Option(help: ArgumentHelp("The logs root holding <kind>/photos and <kind>/photo-logs.", valueName: "dir"))
        var logs: String = "local-logs"

        /// Parallel downloads.
        @Option(help: ArgumentHelp("Photos downloaded in parallel (default from the rules: 2).", valueName: "N"))
        var workers: Int?

        /// Pause between downloads.
        @Option(help: ArgumentHelp("Seconds each worker waits between downloads (default from the rules: 0.5).", valueName: "s"))
        var delay: Double?

        @OptionGroup var source: SourceOptions

        @OptionGroup var common: CommonOptions

        /// The flattened listings.
        @Argument(help: ArgumentHelp("Flattened listings (JSONL); none or - for stdin.", valueName: "file"))
        var inputs: [String] = []

        func run() throws {
            Stage.run("fetch", command: "photos", options: common) { stage in
                let rules = try ListingRules.load(directory: stage.rulesDirectory())
                let pipeline = try rules.pipeline(self.pipeline)
                let layout = ListingLayout(logs: logs, pipeline: pipeline)
                try Store.open([layout.photoLogsDirectory, layout.photosDirectory], for: stage)  // the index and the photos it names
                var jobs: [PhotoJob] = []
                try stage.forEachRecord(inputs) { record, _ in
                    guard let key = record.text("ListingKey") else { throw RecordRejected("listing without ListingKey") }
                    if let url = record.text("PrimaryPhotoUrl"), !url.isEmpty { jobs.append(PhotoJob(key: key, url: url)) }
                }
                guard pipeline.photos else {
                    stage.warn("photos are off for \(pipeline.name) (photos column of listing-pipelines.csv)",
                               at: SourceLocation(path: stage.rulesFile("listing-pipelines.csv"), line: 1))
                    let index = try stage.openOutput(layout.skipIndex)
                    index.buffer.append("{}\n")
                    return
                }
                let transport: HTTPTransport = source.replay.map { ReplayTransport(directory: $0) }
                    ?? URLSessionTransport(maxResponseBytes: Int(rules.settings.maxResponseMB * 1_048_576))
                let fetcher = PhotoFetcher(transport: transport, photosDirectory: layout.photosDirectory,
                                           workers: workers ?? rules.settings.photoWorkers,
                                           delay: delay ?? (source.replay == nil ? rules.settings.photoDelaySeconds : 0),
                                           timeout: rules.settings.timeoutSeconds, userAgent: LeadETL.userAgent)
                // The run log is named by the run's real start and never replaces another's.
                let started = Clock.systemNow()
                var runLog = layout.photoRunLog(started: started)
                var sequence = 2
                while Stage.fileExists(runLog) {
                    runLog = layout.photoRunLog(started: started, sequence: sequence)
                    sequence += 1
                }
                try fetcher.run(jobs, stage: stage, indexPath: layout.skipIndex, runLogPath: runLog)
            }
        }
    }
}

/// The API client for a listings fetch: replay files, or the network with the MLS's
/// credentials from the environment (checked before any request: a bearer token, or an
/// OAuth2 client id and secret), rate limit and retries from the rules; the credentials go
/// only to `base`'s origin (and the client secret only to the token URL).
func makeClient(_ source: SourceOptions, base: String, server: MLSServer, settings: FetchSettings, stage: Stage) throws -> APIClient {
    if source.replay != nil {
        return try makeClient(replay: source.replay, rate: source.rate, settings: settings, stage: stage, headers: [], origin: base)
    }
    func variable(_ name: String, _ what: String) throws -> String {
        guard let value = stage.environment[name], !value.isEmpty else {
            throw StageError.usage("\(name) is not set: export \(what), or use --replay DIR to read recorded pages")
        }
        return value
    }
    switch server.auth {
    case .bearer:
        let token = try variable(server.tokenVariable, server.tokenVariable == "SPARK_API_TOKEN" ? "the Spark API bearer token" : "the API's bearer token")
        return try makeClient(replay: nil, rate: source.rate, settings: settings, stage: stage,
                              headers: [("Authorization", "Bearer \(token)"), ("X-SparkApi-User-Agent", LeadETL.userAgent)], origin: base)
    case .oauth2:
        let id = try variable(server.clientIDVariable!, "the OAuth2 client id")
        let secret = try variable(server.clientSecretVariable!, "the OAuth2 client secret")
        let client = try makeClient(replay: nil, rate: source.rate, settings: settings, stage: stage, headers: [], origin: base)
        guard URLOrigin(server.tokenURL!) != nil else { throw StageError.usage("token_url is not an http(s) URL: \(server.tokenURL!)") }
        client.authorizer = OAuthClientCredentials(
            tokenURL: server.tokenURL!, clientID: id, clientSecret: secret, scope: server.scope, transport: client.transport,
            timeout: settings.timeoutSeconds, policy: client.policy)
        return client
    }
}

/// The same with the given auth headers (User-Agent and Accept are added), sent only to the
/// origin of `origin` (a base URL).
func makeClient(replay: String?, rate: Double?, settings: FetchSettings, stage: Stage, headers: [(String, String)],
                origin: String) throws -> APIClient {
    guard let allowed = URLOrigin(origin) else { throw StageError.usage("not an http(s) URL: \(origin)") }
    let policy = RetryPolicy(maxAttempts: settings.maxAttempts, baseDelay: settings.backoffBaseSeconds,
                             maxDelay: settings.backoffMaxSeconds, maxRetryAfter: settings.retryAfterMaxSeconds)
    if let dir = replay {
        return APIClient(transport: ReplayTransport(directory: dir), limiter: nil, policy: policy,
                         headers: [], timeout: settings.timeoutSeconds)
    }
    let client = APIClient(
        transport: URLSessionTransport(maxResponseBytes: Int(settings.maxResponseMB * 1_048_576)),
        limiter: RateLimiter(perSecond: rate ?? settings.ratePerSecond),
        policy: policy, headers: headers + [("User-Agent", LeadETL.userAgent), ("Accept", "application/json")],
        timeout: settings.timeoutSeconds, origin: allowed)
    client.onRetry = { line in if !stage.options.quiet { standardError("lead-fetch: \(line)\n") } }
    return client
}

extension LeadFetch {
    struct Permits: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "permits",
            abstract: "Fetch a city's new building permits (Socrata or CSV files) since the last run.",
            discussion: """
            The source (stages/fetch/permit-sources.csv) names a Socrata endpoint or a directory \
            of CSV files, the date field, the app-token variable and how far back a first run \
            reaches. Socrata is paged with $limit/$offset, ordered by the date field, filtered with \
            $where <date> > '<watermark>', rate limited and retried like the listings fetch (the \
            app token, when its variable is set, goes in X-App-Token). Rows are written as \
            received, one JSON object per line, for lead-flatten permits. The state file keeps \
            the watermark (the latest date seen); it moves only when the whole fetch succeeds.

            Examples:
              lead-fetch permits --source austin --state local-logs/permits/fetch-austin.json -o raw-austin.jsonl
              lead-fetch permits --source austin-fixtures --state /tmp/state.json | lead-flatten permits --map stages/flatten/permits-austin.csv
            """
        )

        @Option(help: ArgumentHelp("The permit source (a row of stages/fetch/permit-sources.csv).", valueName: "name"))
        var source: String

        @Option(help: ArgumentHelp("The watermark state file.", valueName: "file"))
        var state: String

        @Option(help: ArgumentHelp("The endpoint to ask instead of the source's (a test server).", valueName: "url"))
        var url: String?

        @Option(help: ArgumentHelp("Rows per page ($limit; default 1000).", valueName: "N"))
        var pageSize: Int = 1000

        @Option(help: ArgumentHelp("At most N requests per second (default from the rules: 10).", valueName: "N"))
        var rate: Double?

        @OptionGroup var common: CommonOptions

        func validate() throws {
            if pageSize < 1 { throw ValidationError("--page-size must be at least 1") }
            if let rate, rate <= 0 { throw ValidationError("--rate must be more than 0") }
        }

        func run() throws {
            Stage.run("fetch", command: "permits", options: common) { stage in
                let rules = try ListingRules.load(directory: stage.rulesDirectory())
                var permitSource = try PermitSource.load(stage.rulesFile("permit-sources.csv"), name: source)
                if let url { permitSource = permitSource.at(url) }
                try Store.open([AtomicFiles.directory(of: state)], for: stage)
                var client: APIClient?
                if permitSource.kind == .socrata {
                    var headers: [(String, String)] = []
                    if let variable = permitSource.tokenVariable, let token = stage.environment[variable], !token.isEmpty {
                        headers.append(("X-App-Token", token))
                    }
                    client = try makeClient(replay: nil, rate: rate, settings: rules.settings, stage: stage, headers: headers,
                                            origin: permitSource.location)
                }
                try PermitFetcher(source: permitSource, client: client, pageSize: pageSize, statePath: state).run(stage)
            }
        }
    }
}

extension LeadFetch {
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "events",
            abstract: "Fetch the engagement events of one run's window (watermark to --now) from PostHog or exported files.",
            discussion: """
            The window is (watermark, --now]: the watermark is the end of the last run applied \
            (<state>, written by lead-export events once every output is written); a first run \
            reaches back lookback_days (stages/fetch/events.csv: 365). A --now that ends a run \
            already applied fetches that run's window again. The output starts with the run record \
            ({"kind":"run","run_id","source","from","to"}), then each event as received, once \
            (by event id). PostHog: its query API (POST <base>/api/projects/<id>/query/, a HogQL \
            SELECT over the events of stages/flatten/events.csv in (from, to], in slices of \
            slice_days, page_limit rows per page paged by the last timestamp and uuid), or with \
            --endpoint events the deprecated GET <base>/api/projects/<id>/events/ for each event \
            name, following next; the personal API key (query:read) comes from POSTHOG_API_KEY; rate limit and retries as the listings fetch (exit 3 \
            after max_attempts). --from reads exported events (JSONL or a JSON array); an event \
            outside the window goes to the rejects with the reason.

            Examples:
              lead-fetch events --from export.jsonl --now 2026-11-23T06:00:00Z | lead-flatten events | lead-score events | lead-export events
              POSTHOG_API_KEY=phx_... lead-fetch events --source posthog --project 12345 -o fetched.jsonl
            """
        )

        @Option(help: ArgumentHelp("posthog (the events API) or files (--from); default: files when --from is given.", valueName: "source"))
        var source: String?

        @Option(help: ArgumentHelp("The PostHog project id.", valueName: "id"))
        var project: String?

        @Option(help: ArgumentHelp("PostHog API: query (POST /query/ with HogQL, the default) or events (the deprecated GET /events/).", valueName: "api"))
        var endpoint = "query"

        @Option(help: ArgumentHelp("PostHog base URL (default from stages/fetch/events.csv: https://us.posthog.com).", valueName: "url"))
        var baseURL: String?

        @Option(name: .customLong("from"), parsing: .upToNextOption,
                help: ArgumentHelp("Exported event files (JSONL or a JSON array; .gz too) instead of the API.", valueName: "file"))
        var files: [String] = []

        @Option(help: ArgumentHelp("The events state (the watermark and the runs applied).", valueName: "file"))
        var state = "local-logs/events/state.json"

        @Option(help: ArgumentHelp("At most N requests per second (default from the rules: 10).", valueName: "N"))
        var rate: Double?

        @OptionGroup var common: CommonOptions

        var kind: String { source ?? (files.isEmpty ? "posthog" : "files") }

        func validate() throws {
            guard kind == "posthog" || kind == "files" else { throw ValidationError("--source must be posthog or files") }
            if kind == "posthog" && project == nil { throw ValidationError("--source posthog needs --project ID") }
            if kind == "posthog" && !files.isEmpty { throw ValidationError("--from reads files: leave out --source posthog") }
            if kind == "files" && files.isEmpty { throw ValidationError("--source files needs --from FILE...") }
            if let rate, rate <= 0 { throw ValidationError("--rate must be more than 0") }
            guard endpoint == "query" || endpoint == "events" else { throw ValidationError("--endpoint must be query or events") }
        }

        func run() throws {
            Stage.run("fetch", command: "events", options: common) { stage in
                let rules = try ListingRules.load(directory: stage.rulesDirectory())
                let settings = try EventFetchSettings(file: RulesFile(path: stage.rulesFile("events.csv"), required: ["setting", "value"]))
                let catalog = try EventCatalog.load(events: stage.rulesFile("events.csv", stage: "flatten"),
                                                    fields: stage.rulesFile("event-fields.csv", stage: "flatten"))
                let eventSource: EventFetcher.Source
                if kind == "posthog", let project {
                    guard let key = stage.environment["POSTHOG_API_KEY"], !key.isEmpty else {
                        throw StageError.usage("POSTHOG_API_KEY is not set: export a PostHog personal API key, or use --from FILE to read exported events")
                    }
                    let base = baseURL ?? settings.baseURL
                    let client = try makeClient(replay: nil, rate: rate, settings: rules.settings, stage: stage,
                                                headers: [("Authorization", "Bearer \(key)")], origin: base)
                    eventSource = endpoint == "events" ? .posthog(client: client, baseURL: base, project: project)
                        : .posthogQuery(client: client, baseURL: base, project: project)
                } else {
                    eventSource = .files(files)
                }
                try EventFetcher(source: eventSource, catalog: catalog, settings: settings, statePath: state).run(stage)
            }
        }
    }
}
