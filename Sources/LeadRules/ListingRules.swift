import StageKit

/// One MLS listings pipeline from `stages/fetch/listing-pipelines.csv`: which listings it
/// fetches (MLS, property types, statuses, date window) and what happens to them.
public struct ListingPipeline: Sendable, Equatable {
    public let name: String
    /// active, closed or expired: the folder under local-logs/.
    public let kind: String
    /// The MLS short name (gps, crmls).
    public let mls: String
    public let mlsId: String
    public let sparkPropertyTypes: [String]
    public let resoPropertyTypes: [String]
    public let statuses: [String]
    public let dateField: String?
    public let dateIsTimestamp: Bool
    public let windowDays: Int?
    public let expand: String?
    public let photos: Bool
    /// How the pipeline's MLS is reached over RESO (mls.csv).
    public var server = MLSServer()

    /// Midnight UTC `windowDays` before `now`: the earliest date_field fetched.
    public func windowStart(now: Timestamp) -> Timestamp? {
        guard let days = windowDays else { return nil }
        return now.adding(days: -days).startOfDay
    }

    func dateLiteral(now: Timestamp) -> String? {
        guard let start = windowStart(now: now) else { return nil }
        return dateIsTimestamp ? start.iso8601 : start.date.iso8601
    }

    /// The Spark native `_filter` (SparkQL), e.g.
    /// `MlsId Eq '…' And (PropertyType Eq 'A' Or …) And (StandardStatus Eq 'Expired' Or …) And StatusChangeTimestamp Ge 2026-08-25T00:00:00Z`.
    public func sparkFilter(now: Timestamp) -> String {
        var parts = ["MlsId Eq '\(mlsId)'"]
        parts.append(ListingPipeline.anyOf("PropertyType", sparkPropertyTypes, eq: "Eq", or: "Or"))
        parts.append(ListingPipeline.anyOf("StandardStatus", statuses, eq: "Eq", or: "Or"))
        if let field = dateField, let literal = dateLiteral(now: now) { parts.append("\(field) Ge \(literal)") }
        return parts.filter { !$0.isEmpty }.joined(separator: " And ")
    }

    /// The RESO Web API OData `$filter` for the same listings: the MLS by
    /// `OriginatingSystemName` (when mls.csv names one) or `MlsId`, then property types,
    /// statuses and the date window; `ModificationTimestamp gt <watermark>` after a first run.
    /// Under MLS Grid's replication rules only what replication allows is asked
    /// (`OriginatingSystemName eq '…' and MlgCanView eq true and ModificationTimestamp gt …`,
    /// from the window's start on a first run); `matches` then picks the pipeline's listings.
    public func resoFilter(now: Timestamp, modifiedAfter watermark: Timestamp? = nil) -> String {
        var parts: [String] = []
        if let system = server.originatingSystem { parts.append("OriginatingSystemName eq '\(system)'") } else if !mlsId.isEmpty {
            parts.append("MlsId eq '\(mlsId)'")
        }
        if server.replication == .mlsgrid {
            parts.append("MlgCanView eq true")
            if let since = watermark ?? windowStart(now: now) { parts.append("ModificationTimestamp gt \(since.iso8601)") }
            return parts.joined(separator: " and ")
        }
        parts.append(ListingPipeline.anyOf("PropertyType", resoPropertyTypes, eq: "eq", or: "or"))
        parts.append(ListingPipeline.anyOf("StandardStatus", statuses, eq: "eq", or: "or"))
        if let field = dateField, let literal = dateLiteral(now: now) { parts.append("\(field) ge \(literal)") }
        if let watermark { parts.append("ModificationTimestamp gt \(watermark.iso8601)") }
        return parts.filter { !$0.isEmpty }.joined(separator: " and ")
    }

    /// Whether a RESO Property belongs to the pipeline (its property type, status and date
    /// window): what a replication fetch, which cannot ask the server, keeps.
    public func matches(_ property: Record, now: Timestamp) -> Bool {
        if !resoPropertyTypes.isEmpty, !resoPropertyTypes.contains(property["PropertyType"]?.text ?? "") { return false }
        if !statuses.contains(property["StandardStatus"]?.text ?? "") { return false }
        if let field = dateField, let start = windowStart(now: now) {
            guard let text = property[field]?.text else { return false }
            guard let at = Timestamp(iso8601: text), at >= start else { return false }
        }
        return true
    }

    static func anyOf(_ field: String, _ values: [String], eq: String, or: String) -> String {
        let terms = values.map { "\(field) \(eq) '\($0)'" }
        if terms.count <= 1 { return terms.first ?? "" }
        return "(" + terms.joined(separator: " \(or) ") + ")"
    }
}

/// The listings rules of `stages/fetch/`: MLSs, pipelines and fetch settings.
public struct ListingRules: Sendable {
    public let pipelines: [ListingPipeline]
    public let settings: FetchSettings

    public init(pipelines: [ListingPipeline], settings: FetchSettings) {
        self.pipelines = pipelines
        self.settings = settings
    }

    /// Reads `mls.csv`, `listing-pipelines.csv` and `settings.csv` from `directory`.
    public static func load(directory: String) throws(StageError) -> ListingRules {
        let mlsFile = try RulesFile(path: directory + "/mls.csv", required: ["mls", "mls_id"])
        var mlsIds: [String: String] = [:]
        var servers: [String: MLSServer] = [:]
        for row in mlsFile.rows {
            let mls = try row.required("mls")
            if mlsIds[mls] != nil { throw row.error("MLS '\(mls)' is listed twice") }
            servers[mls] = try MLSServer(row: row)
            mlsIds[mls] = row["mls_id"]
            if mlsIds[mls]!.isEmpty && servers[mls]!.originatingSystem == nil {
                throw row.error("an MLS needs its mls_id (Spark) or its originating_system (RESO)")
            }
        }
        let file = try RulesFile(path: directory + "/listing-pipelines.csv",
                                 required: ["pipeline", "kind", "mls", "spark_property_types", "statuses"])
        var pipelines: [ListingPipeline] = []
        for row in file.rows {
            let name = try row.required("pipeline")
            if pipelines.contains(where: { $0.name == name }) { throw row.error("pipeline '\(name)' is listed twice") }
            let mls = try row.required("mls")
            guard let mlsId = mlsIds[mls] else { throw row.error("unknown MLS '\(mls)' (see mls.csv)") }
            let kind = try row.required("kind")
            guard kind.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
                throw row.error("kind '\(kind)' must be a plain folder name")
            }
            let values = row.list("spark_property_types") + row.list("reso_property_types") + row.list("statuses") + [mlsId]
            if let bad = values.first(where: { $0.contains("'") }) { throw row.error("value '\(bad)' may not contain a quote") }
            let dateField = row["date_field"].isEmpty ? nil : row["date_field"]
            let dateType = row["date_type"].isEmpty ? "timestamp" : row["date_type"]
            guard dateType == "timestamp" || dateType == "date" else {
                throw row.error("date_type must be timestamp or date, not '\(dateType)'")
            }
            let window = row["window_days"].isEmpty ? nil : try row.integer("window_days")
            if (dateField == nil) != (window == nil) { throw row.error("date_field and window_days go together") }
            let photos = row["photos"].lowercased()
            guard ["", "yes", "no"].contains(photos) else { throw row.error("photos must be yes or no") }
            pipelines.append(ListingPipeline(
                name: name, kind: kind, mls: mls, mlsId: mlsId,
                sparkPropertyTypes: row.list("spark_property_types"), resoPropertyTypes: row.list("reso_property_types"),
                statuses: try nonEmpty(row.list("statuses"), row, "statuses"),
                dateField: dateField, dateIsTimestamp: dateType == "timestamp", windowDays: window,
                expand: row["expand"].isEmpty ? nil : row["expand"], photos: photos == "yes", server: servers[mls]!))
        }
        let settings = try FetchSettings(file: RulesFile(path: directory + "/settings.csv", required: ["setting", "value"]))
        return ListingRules(pipelines: pipelines, settings: settings)
    }

    /// The pipeline called `name`, or a usage error listing the known ones.
    public func pipeline(_ name: String) throws(StageError) -> ListingPipeline {
        guard let p = pipelines.first(where: { $0.name == name }) else {
            throw .usage("unknown pipeline '\(name)' (known: \(pipelines.map(\.name).joined(separator: ", ")))")
        }
        return p
    }
}

private func nonEmpty(_ list: [String], _ row: RulesFile.Row, _ column: String) throws(StageError) -> [String] {
    if list.isEmpty { throw row.error("'\(column)' is empty") }
    return list
}

/// How an MLS is reached over the RESO Web API: the optional columns of its mls.csv row.
/// `reso_root` is the OData service root (requests go to `<root>/Property`; empty: the
/// settings' `reso_root`, Spark's). `auth` is `bearer` (the token in the variable
/// `token_env`, SPARK_API_TOKEN by default) or `oauth2` (client credentials: a token from
/// `token_url` for the id and secret in the variables `client_id_env` and
/// `client_secret_env`, with `scope`). `replication` `mlsgrid` fetches under MLS Grid's
/// replication rules for `originating_system`.
public struct MLSServer: Sendable, Equatable {
    public enum Auth: String, Sendable { case bearer, oauth2 }
    public enum Replication: String, Sendable { case mlsgrid }
    public var resoRoot: String?
    public var auth = Auth.bearer
    public var tokenVariable = "SPARK_API_TOKEN"
    public var tokenURL: String?
    public var clientIDVariable: String?
    public var clientSecretVariable: String?
    public var scope: String?
    public var replication: Replication?
    public var originatingSystem: String?

    public init() {}

    init(row: RulesFile.Row) throws(StageError) {
        func cell(_ name: String) -> String? { row[name].isEmpty ? nil : row[name] }
        resoRoot = cell("reso_root").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        if let text = cell("auth") {
            guard let a = Auth(rawValue: text) else { throw row.error("auth must be bearer or oauth2, not '\(text)'") }
            auth = a
        }
        tokenVariable = cell("token_env") ?? tokenVariable
        tokenURL = cell("token_url")
        clientIDVariable = cell("client_id_env")
        clientSecretVariable = cell("client_secret_env")
        scope = cell("scope")
        if let text = cell("replication") {
            guard let r = Replication(rawValue: text) else { throw row.error("replication must be mlsgrid or empty, not '\(text)'") }
            replication = r
        }
        originatingSystem = cell("originating_system")
        if let system = originatingSystem, system.contains("'") { throw row.error("originating_system may not contain a quote") }
        if auth == .oauth2 && (tokenURL == nil || clientIDVariable == nil || clientSecretVariable == nil) {
            throw row.error("auth oauth2 needs token_url, client_id_env and client_secret_env")
        }
        if replication == .mlsgrid && originatingSystem == nil {
            throw row.error("MLS Grid replication needs originating_system (the OriginatingSystemName, e.g. actris)")
        }
    }
}

/// How lead-fetch talks to APIs: `stages/fetch/settings.csv`.
public struct FetchSettings: Sendable, Equatable {
    public var sparkBaseURL = "https://sparkapi.com"
    /// The RESO Web API's OData service root when mls.csv gives none.
    public var resoRoot = "https://sparkapi.com/Reso/OData"
    public var ratePerSecond = 10.0
    public var pageSize = 25
    public var maxAttempts = 6
    public var backoffBaseSeconds = 0.5
    public var backoffMaxSeconds = 30.0
    public var retryAfterMaxSeconds = 300.0
    public var timeoutSeconds = 30.0
    public var photoWorkers = 2
    public var photoDelaySeconds = 0.5
    public var photoSizes = ["UriLarge", "Uri1280", "Uri1024", "Uri800", "Uri640", "Uri300"]
    /// A response larger than this is refused (exit 3), so a runaway server cannot fill memory.
    public var maxResponseMB = 64.0

    public static let names: Set<String> = [
        "spark_base_url", "reso_root", "rate_per_second", "page_size", "max_attempts", "backoff_base_seconds",
        "backoff_max_seconds", "retry_after_max_seconds", "timeout_seconds", "photo_workers", "photo_delay_seconds", "photo_sizes",
        "max_response_mb",
    ]

    public init() {}

    public init(file: RulesFile) throws(StageError) {
        let s = try file.settings(known: FetchSettings.names)
        func positive(_ name: String, _ current: Double) throws(StageError) -> Double {
            guard let row = s[name] else { return current }
            let v = try row.number("value")
            if v <= 0 { throw row.error("\(name) must be more than 0") }
            return v
        }
        if let row = s["spark_base_url"] { sparkBaseURL = try row.required("value") }
        if let row = s["reso_root"] { resoRoot = try row.required("value") }
        ratePerSecond = try positive("rate_per_second", ratePerSecond)
        pageSize = Int(try positive("page_size", Double(pageSize)))
        maxAttempts = Int(try positive("max_attempts", Double(maxAttempts)))
        backoffBaseSeconds = try positive("backoff_base_seconds", backoffBaseSeconds)
        backoffMaxSeconds = try positive("backoff_max_seconds", backoffMaxSeconds)
        retryAfterMaxSeconds = try positive("retry_after_max_seconds", retryAfterMaxSeconds)
        timeoutSeconds = try positive("timeout_seconds", timeoutSeconds)
        maxResponseMB = try positive("max_response_mb", maxResponseMB)
        photoWorkers = Int(try positive("photo_workers", Double(photoWorkers)))
        if let row = s["photo_delay_seconds"] { photoDelaySeconds = max(0, try row.number("value")) }
        if let row = s["photo_sizes"] { photoSizes = row.list("value") }
    }
}

/// Where a listings pipeline's files live under the logs root (the seed's layout):
/// `<logs>/<kind>/<mls>/all_<mls>_<kind>_listings_with_expansions.jsonl`, ...
public struct ListingLayout: Sendable {
    public let logs: String
    public let pipeline: ListingPipeline

    public init(logs: String, pipeline: ListingPipeline) {
        self.logs = logs
        self.pipeline = pipeline
    }

    /// The pipeline's folder: its raw and flattened listings and the fetch state.
    public var folder: String { "\(logs)/\(pipeline.kind)/\(pipeline.mls)" }
    public var raw: String { "\(folder)/all_\(pipeline.mls)_\(pipeline.kind)_listings_with_expansions.jsonl" }
    public var flattened: String { "\(folder)/flattened_\(pipeline.mls)_\(pipeline.kind)_listings.jsonl" }
    public var fetchState: String { "\(folder)/fetch_state.json" }
    public var photosDirectory: String { "\(logs)/\(pipeline.kind)/photos/\(pipeline.mls)" }
    public var photoLogsDirectory: String { "\(logs)/\(pipeline.kind)/photo-logs/\(pipeline.mls)" }
    public var skipIndex: String { "\(photoLogsDirectory)/skip_index.json" }

    /// `run_YYYYMMDD-HHMMSS.jsonl` for a run that started at `started` (the real time, not the
    /// run's clock), `run_YYYYMMDD-HHMMSS-N.jsonl` for the Nth run of the same second.
    public func photoRunLog(started: Timestamp, sequence: Int = 1) -> String {
        let iso = started.iso8601
        let time = String(iso.dropFirst(11).prefix(8).filter { $0 != ":" })
        return "\(photoLogsDirectory)/run_\(started.date.compact)-\(time)\(sequence > 1 ? "-\(sequence)" : "").jsonl"
    }
}
