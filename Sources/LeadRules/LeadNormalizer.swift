import StageKit

/// Standardises the addresses of a lead record in place. For each address prefix `P`
/// (`property`, `mailing`) it reads `P_address`, `P_city`, `P_state` and `P_zip`, writes
/// them back in USPS standard form, and appends `P_address_parts` and `P_address_raw` (the
/// line as first received; kept from an earlier run, so normalising twice changes nothing).
/// A one-line address in `P_address` with the other three empty is split into all four. A
/// later prefix may be only a city, state and ZIP (no street): those are standardised and kept.
/// Then `address_key`, the dedupe key, is appended: the first prefix's standard delivery line,
/// with every unit written `# id` (APT 4, UNIT 4 and # 4 are one unit), and its ZIP
/// (`123 MAIN ST # 4|78701`), or its city and state when it has no ZIP.
public struct LeadNormalizer: Sendable {
    public let addresses: AddressNormalizer
    /// Address prefixes in order; the first must be present in every record.
    public let prefixes: [String]

    public init(addresses: AddressNormalizer, prefixes: [String] = ["property", "mailing"]) {
        self.addresses = addresses
        self.prefixes = prefixes
    }

    public static let keyField = "address_key"

    public func normalize(_ record: inout Record) throws(RecordRejected) {
        var key: String?
        for (n, prefix) in prefixes.enumerated() {
            let lineField = prefix + "_address"
            let rawField = prefix + "_address_raw"
            let line = record.text(lineField)?.trimmingSpaces ?? ""
            let city = record.text(prefix + "_city") ?? ""
            let state = record.text(prefix + "_state") ?? ""
            let zip = record.text(prefix + "_zip") ?? ""
            let raw = record[rawField].flatMap { $0.isNull ? nil : $0 } ?? .string(line)
            if line.isEmpty {
                if n == 0 { throw RecordRejected("\(lineField) is empty") }
                // Only a city, state or ZIP (an owner known as "AUSTIN TX 78703"): kept, each part
                // in standard form where it reads as one, as it came where it does not.
                if !(city + state + zip).trimmingSpaces.isEmpty {
                    record[prefix + "_city"] = .string(addresses.standardizeCity(city))
                    record[prefix + "_state"] = .string(addresses.standardizeState(state) ?? state.trimmingSpaces)
                    record[prefix + "_zip"] = .string(addresses.standardizeZIP(zip) ?? zip.trimmingSpaces)
                }
                record[prefix + "_address_parts"] = .null
                record[rawField] = raw
                continue
            }
            let address: StandardAddress
            switch addresses.standardize(line: line, city: city, state: state, zip: zip) {
            case .success(let a): address = a
            case .failure(let problem): throw RecordRejected("\(lineField): \(problem)")
            }
            let standardLine = address.line
            record[lineField] = .string(standardLine)
            record[prefix + "_city"] = .string(address.city ?? "")
            record[prefix + "_state"] = .string(address.state ?? "")
            record[prefix + "_zip"] = .string(address.zip ?? "")
            record[prefix + "_address_parts"] = .object(address.parts)
            record[rawField] = raw
            if n == 0 {
                // In the key every unit is `# id`: APT 4, UNIT 4 and # 4 at one address are one unit.
                var keyed = address
                keyed.units = keyed.units.map { $0.1 == nil ? $0 : ("#", $0.1) }
                let keyLine = keyed.line
                if let zip = address.zip {
                    key = keyLine + "|" + zip.prefix(5)
                } else if let city = address.city, let state = address.state {
                    key = keyLine + "|" + city + "|" + state
                } else {
                    throw RecordRejected("\(lineField): '\(line)' has no ZIP and no city and state, so it cannot be told apart from the same street elsewhere")
                }
            }
        }
        record[LeadNormalizer.keyField] = .string(key ?? "")
    }
}
