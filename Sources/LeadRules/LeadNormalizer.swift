import StageKit

/// Standardises the addresses of a lead record in place. For each address prefix `P`
/// (`property`, `mailing`) it reads `P_address`, `P_city`, `P_state` and `P_zip`, writes
/// them back in USPS standard form, and appends `P_address_parts` and `P_address_raw` (the
/// line as first received; kept from an earlier run, so normalising twice changes nothing).
/// A one-line address in `P_address` with the other three empty is split into all four. A
/// later prefix may be only a city, state and ZIP (no street): those are standardised and kept.
/// Then `address_key`, the dedupe key, is appended: the first prefix's standard delivery line,
/// with every unit written `# id` (APT 4, UNIT 4 and # 4 are one unit), and its ZIP
/// (`123 MAIN ST # 4|78701`), or its city and state when it has no ZIP, or the line alone
/// when it has neither (`address_key_scope` says which: `zip`, `city` or `line`).
/// Only the first prefix can reject a record: a later address that does not read (a
/// mailing address without a house number) is kept as it came, with `P_address_error`
/// saying why, and the lead goes on.
/// The field names of one address of a lead, prefix `P` (`P_address`, `P_city`, ...), made
/// once, not per record.
public struct AddressFields: Sendable {
    public let prefix: String
    public let line, raw, city, state, zip, parts, error, zipError: String

    public init(_ prefix: String) {
        self.prefix = prefix
        line = prefix + "_address"
        raw = prefix + "_address_raw"
        city = prefix + "_city"
        state = prefix + "_state"
        zip = prefix + "_zip"
        parts = prefix + "_address_parts"
        error = prefix + "_address_error"
        zipError = prefix + "_zip_error"
    }

    public static let property = AddressFields("property"), mailing = AddressFields("mailing")
}

public struct LeadNormalizer: Sendable {
    public let addresses: AddressNormalizer
    /// Address prefixes in order; the first must be present in every record.
    public let prefixes: [String]

    /// The field names of each prefix, in order.
    public let fields: [AddressFields]

    /// The state of each ZIP code (zip-counties.csv): a ZIP that lost its leading zeros is
    /// padded only when the padded ZIP is in the address's state. Empty: padded unchecked.
    public let zipStates: [String: String]

    public init(addresses: AddressNormalizer, prefixes: [String] = ["property", "mailing"], zipStates: [String: String] = [:]) {
        self.addresses = addresses
        self.prefixes = prefixes
        fields = prefixes.map(AddressFields.init)
        self.zipStates = zipStates
    }

    /// A padded ZIP that is not the address's state's is kept as given, and the reason returned.
    func checkPadding(_ address: inout StandardAddress, given: String) -> String? {
        guard address.zipPadded, !zipStates.isEmpty, let zip = address.zip else { return nil }
        let five = String(zip.prefix(5))
        let state = zipStates[five]
        if let state, state == address.state { return nil }
        let digits = given.isEmpty ? String(five.drop { $0 == "0" }) : given.trimmingSpaces
        address.zip = digits
        let why: String
        if let state, let own = address.state {
            why = "\(five) is a ZIP of \(state), not \(own)"
        } else if state != nil {
            why = "the address has no state to check \(five) against"
        } else {
            why = "\(five) is not a ZIP code"
        }
        return "ZIP '\(digits)' has lost leading zeros, but \(why): kept as given"
    }

    public static let keyField = "address_key"
    public static let keyScopeField = "address_key_scope"

    public func normalize(_ record: inout Record) throws(RecordRejected) {
        var key: String?
        var scope = "zip"
        // A mailing address is most often the property's own: read once.
        var last: (line: String, city: String, state: String, zip: String, result: Result<StandardAddress, AddressProblem>)?
        for n in fields.indices {
            let names = fields[n]
            let lineField = names.line
            let line = record.text(lineField)?.trimmingSpaces ?? ""
            let city = record.text(names.city) ?? ""
            let state = record.text(names.state) ?? ""
            let zip = record.text(names.zip) ?? ""
            let raw = record[names.raw].flatMap { $0.isNull ? nil : $0 } ?? .string(line)
            if line.isEmpty {
                if n == 0 { throw RecordRejected("\(lineField) is empty") }
                // Only a city, state or ZIP (an owner known as "AUSTIN TX 78703"): kept, each part
                // in standard form where it reads as one, as it came where it does not.
                standardizeLocality(&record, names, city: city, state: state, zip: zip)
                record[names.parts] = .null
                record[names.raw] = raw
                continue
            }
            var address: StandardAddress
            let result: Result<StandardAddress, AddressProblem>
            if let last, last.line == line, last.city == city, last.state == state, last.zip == zip {
                result = last.result
            } else {
                result = addresses.standardize(line: line, city: city, state: state, zip: zip)
                last = (line, city, state, zip, result)
            }
            switch result {
            case .success(let a): address = a
            case .failure(let problem):
                if n == 0 { throw RecordRejected("\(lineField): \(problem)") }
                // A secondary address that does not read never loses the lead: it stays as it
                // came, and the error says why (absentee() is then `unknown`).
                record[lineField] = .string(line)
                standardizeLocality(&record, names, city: city, state: state, zip: zip)
                record[names.parts] = .null
                record[names.error] = .string(problem.description)
                record[names.raw] = raw
                continue
            }
            record[names.error] = nil
            let zipProblem = checkPadding(&address, given: zip)
            let standardLine = address.line
            record[lineField] = .string(standardLine)
            record[names.city] = .string(address.city ?? "")
            record[names.state] = .string(address.state ?? "")
            record[names.zip] = .string(address.zip ?? "")
            record[names.parts] = .object(address.parts)
            record[names.raw] = raw
            record[names.zipError] = zipProblem.map { .string($0) }
            if n == 0 {
                // In the key every unit is `# id`: APT 4, UNIT 4 and # 4 at one address are one unit.
                var keyed = address
                keyed.units = keyed.units.map { $0.1 == nil ? $0 : ("#", $0.1) }
                let keyLine = keyed.line
                if let zip = address.zip {
                    key = keyLine + "|" + zip.prefix(5)
                    scope = "zip"
                } else if let city = address.city, let state = address.state {
                    key = keyLine + "|" + city + "|" + state
                    scope = "city"
                } else {
                    // No ZIP and no city: the line alone keys it (dedupe counts these).
                    key = keyLine
                    scope = "line"
                }
            }
        }
        record[LeadNormalizer.keyField] = .string(key ?? "")
        record[LeadNormalizer.keyScopeField] = .string(scope)
    }

    /// City, state and ZIP without a street: each part in standard form where it reads as
    /// one, as it came where it does not.
    private func standardizeLocality(_ record: inout Record, _ names: AddressFields, city: String, state: String, zip: String) {
        guard !(city + state + zip).trimmingSpaces.isEmpty else { return }
        record[names.city] = .string(addresses.standardizeCity(city))
        record[names.state] = .string(addresses.standardizeState(state) ?? state.trimmingSpaces)
        record[names.zip] = .string(addresses.standardizeZIP(zip) ?? zip.trimmingSpaces)
    }
}
