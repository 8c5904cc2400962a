import StageKit

/// A delivery profile: a file shaped for one service (a skip-trace upload, a voicemail drop,
/// an email batch, a mail house, a contractor buyer). `stages/export/profiles.csv` names each
/// profile (`profile,input,output,where,suppress,spreadsheet_safe`) and
/// `stages/export/profiles/<name>.csv` gives its columns (`column,value,format`): `value` is
/// a field or any filter expression over the record (the owner's split name is there as
/// `owner_first_name`, `owner_last_name`, `owner_is_entity`), `format` one of text (the
/// default), e164 (a phone, written +15125550100; a row without a valid one is rejected),
/// email (lower case; likewise), zip5, upper. A jsonl profile nests dotted column names
/// (`variables.address`).
public struct DeliveryProfile: Sendable {
    public enum Output: String, Sendable { case csv, jsonl }
    public enum Format: String, Sendable { case text, e164, email, zip5, upper }
    public enum Input: String, Sendable { case leads, permits }
    public struct Column: Sendable {
        public let name: String
        public let value: LeadFilter
        public let format: Format
    }

    public let name: String
    public let input: Input
    public let output: Output
    public let filter: LeadFilter?
    /// Which suppression lists apply: phones, emails, addresses.
    public let suppress: Set<String>
    public let spreadsheetSafe: Bool
    public let columns: [Column]

    public static let suppressionKinds: Set<String> = ["phones", "emails", "addresses"]

    /// The profiles `profiles.csv` in `directory` (stages/export) names.
    public static func names(directory: String) throws(StageError) -> [String] {
        try RulesFile(path: directory + "/profiles.csv", required: ["profile"]).rows.map { $0["profile"] }
    }

    public static func load(directory: String, name: String, functions: Set<String>) throws(StageError) -> DeliveryProfile {
        let list = try RulesFile(path: directory + "/profiles.csv", required: ["profile", "input", "output"])
        guard let row = list.rows.first(where: { $0["profile"] == name }) else {
            throw .usage("no delivery profile '\(name)' in \(list.path) (profiles: \(list.rows.map { $0["profile"] }.joined(separator: ", ")))")
        }
        guard let input = Input(rawValue: row["input"]) else { throw row.error("input must be leads or permits") }
        guard let output = Output(rawValue: row["output"]) else { throw row.error("output must be csv or jsonl") }
        var filter: LeadFilter?
        if !row["where"].isEmpty {
            do { filter = try LeadFilter(row["where"], functions: functions) } catch { throw row.error("where: \(error.message)") }
        }
        let suppress = Set(row.list("suppress"))
        if let bad = suppress.first(where: { !DeliveryProfile.suppressionKinds.contains($0) }) {
            throw row.error("suppress lists phones, emails or addresses (separated by |), not '\(bad)'")
        }
        let safe = row["spreadsheet_safe"].lowercased()
        guard ["", "yes", "no"].contains(safe) else { throw row.error("spreadsheet_safe must be yes or no") }
        let file = try RulesFile(path: directory + "/profiles/" + name + ".csv", required: ["column", "value"])
        var columns: [Column] = []
        for c in file.rows {
            let format = c["format"].isEmpty ? Format.text : Format(rawValue: c["format"])
            guard let format else { throw c.error("format must be text, e164, email, zip5 or upper") }
            let value: LeadFilter
            do { value = try LeadFilter(try c.required("value"), functions: functions) } catch let e as FilterSyntaxError {
                throw c.error("value: \(e.message)")
            } catch { throw c.error("\(error)") }
            columns.append(Column(name: try c.required("column"), value: value, format: format))
        }
        guard !columns.isEmpty else { throw .rules(file: file.path, line: nil, message: "a profile needs at least one column") }
        return DeliveryProfile(name: name, input: input, output: output, filter: filter, suppress: suppress,
                               spreadsheetSafe: safe == "yes", columns: columns)
    }

    /// One record made into the profile's cells, or why it cannot be delivered.
    public enum Row {
        case cells([(name: String, value: FilterValue, text: String)])
        case rejected(String)
        case suppressed(String)
    }

    /// The cells of `record`, checked against `lists`; `addressKey` is the record's mailing
    /// line as the do-not-mail lists key it.
    public func row(_ record: Record, context: FilterContext, lists: SuppressionLists) -> Row {
        var cells: [(name: String, value: FilterValue, text: String)] = []
        for column in columns {
            var value = column.value.evaluate(record, context: context)
            var text = SmartList.cell(value)
            switch column.format {
            case .text: break
            case .upper: text = text.uppercased(); value = .string(text)
            case .zip5: text = String(text.prefix(5)); value = .string(text)
            case .e164:
                guard !text.isEmpty else { return .rejected("\(column.name): no phone number") }
                guard let phone = PhoneNumbers.e164(text) else { return .rejected("\(column.name): '\(text)' is not a phone number a dialer can call") }
                if suppress.contains("phones") && lists.phones.contains(phone) { return .suppressed("phones") }
                text = phone; value = .string(phone)
            case .email:
                guard !text.isEmpty else { return .rejected("\(column.name): no email address") }
                guard let email = EmailAddresses.normalized(text) else { return .rejected("\(column.name): '\(text)' is not an email address") }
                if suppress.contains("emails") && lists.emails.contains(email) { return .suppressed("emails") }
                text = email; value = .string(email)
            }
            cells.append((column.name, value, text))
        }
        if suppress.contains("addresses"), let key = SuppressionLists.mailingKey(record), lists.addresses.contains(key) {
            return .suppressed("addresses")
        }
        return .cells(cells)
    }

    /// The record with the owner's split name (`owner_first_name`, `owner_last_name`,
    /// `owner_is_entity`) from `owner_name`, else the listing's `ownerName`.
    public static func withOwnerName(_ record: Record, names: OwnerNames) -> Record {
        var r = record
        let owner = record.text("owner_name").flatMap { $0.isEmpty ? nil : $0 } ?? record.text("ownerName") ?? ""
        let split = names.split(owner)
        r["owner_first_name"] = .string(split.first)
        r["owner_last_name"] = .string(split.last)
        r["owner_is_entity"] = .bool(split.isEntity)
        return r
    }
}

/// The suppression lists of `stages/export/suppress/*.csv`: each file's header says what it
/// holds, `phone` (do not call; compared in E.164), `email` (opted out; lower case) or
/// `address` with `zip` (do not mail; compared upper case, ZIP5).
public struct SuppressionLists: Sendable {
    public var phones = Set<String>()
    public var emails = Set<String>()
    public var addresses = Set<String>()

    public init() {}

    public static func load(directory: String) throws(StageError) -> SuppressionLists {
        var lists = SuppressionLists()
        for path in Directory.files(in: directory, suffix: ".csv") {
            let file = try RulesFile(path: path, required: [])
            let header = Set(file.columns)
            for row in file.rows {
                if header.contains("phone"), let p = PhoneNumbers.e164(row["phone"]) { lists.phones.insert(p) }
                if header.contains("email"), let e = EmailAddresses.normalized(row["email"]) { lists.emails.insert(e) }
                if header.contains("address"), !row["address"].isEmpty {
                    lists.addresses.insert(SuppressionLists.key(row["address"], header.contains("zip") ? row["zip"] : ""))
                }
            }
            if !header.contains("phone") && !header.contains("email") && !header.contains("address") {
                throw .rules(file: path, line: 1, message: "a suppression list has a phone, email or address column")
            }
        }
        return lists
    }

    static func key(_ address: String, _ zip: String) -> String {
        address.uppercased().split(whereSeparator: { $0 == " " || $0 == "," || $0 == "." }).joined(separator: " ") + "|" + String(zip.prefix(5))
    }

    /// The mailing line of a lead (the property's when it has none), as the lists key it.
    static func mailingKey(_ record: Record) -> String? {
        if let line = record.text("mailing_address"), !line.isEmpty { return key(line, record.text("mailing_zip") ?? "") }
        if let line = record.text("property_address"), !line.isEmpty { return key(line, record.text("property_zip") ?? "") }
        return nil
    }
}
