import StageKit

/// A city's permit source, a row of `stages/fetch/permit-sources.csv`.
public struct PermitSource: Sendable {
    public enum Kind: String, Sendable { case socrata, files }
    public let name: String
    public let kind: Kind
    /// The SODA endpoint, or the directory of CSV files.
    public let location: String
    public let dateField: String
    /// How a files source writes dates.
    public let dateFormat: DatePattern?
    public let tokenVariable: String?
    public let lookbackDays: Int?
    public let map: String
    /// The encoding of a files source's CSV files (the `encoding` column; empty: `--encoding`).
    public let encoding: TextEncoding?

    /// The same source at another location (a test server, another directory).
    public func at(_ location: String) -> PermitSource {
        PermitSource(name: name, kind: kind, location: location, dateField: dateField, dateFormat: dateFormat,
                     tokenVariable: tokenVariable, lookbackDays: lookbackDays, map: map, encoding: encoding)
    }

    public static func load(_ path: String, name: String) throws(StageError) -> PermitSource {
        let file = try RulesFile(path: path, required: ["source", "kind", "location", "date_field"])
        guard let row = file.rows.first(where: { $0["source"] == name }) else {
            throw StageError.usage("no permit source '\(name)' in \(path) (sources: \(file.rows.map { $0["source"] }.joined(separator: ", ")))")
        }
        guard let kind = Kind(rawValue: row["kind"]) else { throw row.error("kind must be socrata or files") }
        var pattern: DatePattern?
        if kind == .files {
            let text = row["date_format"]
            guard text.hasPrefix("date:"), let p = DatePattern(String(text.dropFirst(5))) else {
                throw row.error("a files source needs date_format date:PATTERN (date:MM/dd/yyyy)")
            }
            pattern = p
        }
        let lookback = row["lookback_days"].isEmpty ? nil : try row.integer("lookback_days")
        var encoding: TextEncoding?
        if !row["encoding"].isEmpty {
            guard let e = TextEncoding(argument: row["encoding"]) else {
                throw row.error("encoding must be utf8, cp1252 or latin1 (got '\(row["encoding"])')")
            }
            encoding = e
        }
        return PermitSource(name: name, kind: kind, location: try row.required("location"), dateField: try row.required("date_field"),
                            dateFormat: pattern, tokenVariable: row["token_env"].isEmpty ? nil : row["token_env"],
                            lookbackDays: lookback, map: row["map"], encoding: encoding)
    }
}
