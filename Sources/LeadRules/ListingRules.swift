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

    /// The RESO Web API OData `$filter` for the same listings.
    public func resoFilter(now: Timestamp) -> String {
        var parts = ["MlsId eq '\(mlsId)'"]
        parts.append(ListingPipeline.anyOf("PropertyType", resoPropertyTypes, eq: "eq", or: "or"))
        parts.append(ListingPipeline.anyOf("StandardStatus", statuses, eq: "eq", or: "or"))
        if let field = dateField, let literal = dateLiteral(now: now) { parts.append("\(field) ge \(literal)") }
        return parts.filter { !$0.isEmpty }.joined(separator: " and ")
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
        for row in mlsFile.rows {
            let mls = try row.required("mls")
            if mlsIds[mls] != nil { throw row.error("MLS '\(mls)' is listed twice") }
            mlsIds[mls] = try row.required("mls_id")
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
                expand: row["expand"].isEmpty ? nil : row["expand"], photos: photos == "yes"))
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

/// How lead-fetch talks to APIs: `stages/fetch/settings.csv`.
public struct FetchSettings: Sendable, Equatable {
    public var sparkBaseURL = "https://sparkapi.com"
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
        "spark_base_url", "rate_per_second", "page_size", "max_attempts", "backoff_base_seconds",
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
