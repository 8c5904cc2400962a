import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import LeadRules
import StageKit
import Testing

/// One labelled address: the raw string and its labelled tokens in order.
struct LabelledAddress {
    var raw = ""
    var labels: [(label: String, text: String)] = []
}

/// Reads usaddress's labelled XML: `<AddressString><AddressNumber>123</AddressNumber> ...`.
final class LabelledAddressReader: NSObject, XMLParserDelegate {
    var addresses: [LabelledAddress] = []
    private var current: LabelledAddress?
    private var label: String?
    private var text = ""

    static func read(_ path: String) throws -> [LabelledAddress] {
        let reader = LabelledAddressReader()
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: path)))
        parser.delegate = reader
        guard parser.parse() else { throw CocoaError(.fileReadCorruptFile) }
        return reader.addresses
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if name == "AddressString" { current = LabelledAddress() } else if current != nil { label = name; text = "" }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard current != nil else { return }
        current!.raw += string
        if label != nil { text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "AddressString", let c = current {
            addresses.append(c)
            current = nil
        } else if let l = label, l == name {
            current?.labels.append((l, text))
            label = nil
        }
    }
}

/// The standardised delivery line the labels imply, or nil when they describe no delivery
/// line (a landmark, a building or an intersection alone). The labels decide which words
/// are the house number, the street, the units and the box; the street words are then
/// standardised with the same positional rules as any street (the labellers often tagged
/// suffixes and directionals as part of StreetName).
func impliedLine(_ a: LabelledAddress, _ normalizer: AddressNormalizer) -> String? {
    let labels = Set(a.labels.map(\.label))
    if labels.contains("IntersectionSeparator") || labels.contains("CornerOf") { return nil }
    var c = AddressNormalizer.Components()
    var pendingType: String?
    for (label, text) in a.labels {
        switch label {
        case "AddressNumberPrefix", "AddressNumber", "AddressNumberSuffix": c.number.append(text)
        case "StreetNamePreModifier", "StreetNamePreDirectional", "StreetNamePreType", "StreetName",
             "StreetNamePostType", "StreetNamePostDirectional", "StreetNamePostModifier":
            c.street.append(text)
        case "OccupancyType", "SubaddressType":
            if let last = c.units.last, last.0 == nil, last.1 != nil, pendingType == nil {
                // Identifier came first (40th Floor): pair it with this designator.
                c.units[c.units.count - 1] = (text, last.1)
            } else {
                // Designators of several words (MAIL CODE) come as several labels.
                pendingType = (pendingType.map { $0 + " " } ?? "") + text
            }
        case "OccupancyIdentifier", "SubaddressIdentifier":
            let clean = text.trimmingCharacters(in: CharacterSet(charactersIn: " ,#"))
            if clean.isEmpty { continue }
            // A box number labelled as an identifier (P O BOX 88).
            if !c.box.isEmpty && c.number.isEmpty && c.units.isEmpty && pendingType == nil {
                c.box.append(clean)
                continue
            }
            if let t = pendingType {
                c.units.append((t, clean))
                pendingType = nil
            } else if let last = c.units.last, let id = last.1, last.0 == nil || (clean.count == 1 && clean.first!.isLetter) {
                // Identifiers one after another belong together (Apt 13 C -> APT 13C).
                c.units[c.units.count - 1].1 = clean.count == 1 && clean.first!.isLetter ? id + clean : id + " " + clean
            } else {
                c.units.append((nil, clean))
            }
        case "USPSBoxType", "USPSBoxID", "USPSBoxGroupType", "USPSBoxGroupID": c.box.append(text)
        default: break
        }
    }
    if let t = pendingType { c.units.append((t, nil)) }
    if c.box.isEmpty && c.number.isEmpty { return nil }
    if c.box.isEmpty && c.street.isEmpty { return nil }
    switch normalizer.standardize(components: c) {
    case .success(let address): return address.line
    case .failure: return nil
    }
}

@Suite struct AddressAccuracyTests {
    static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    @Test func usaddressLabelledSetAtLeast95Percent() throws {
        let normalizer = AddressNormalizer(rules: try AddressRules.load(directory: AddressAccuracyTests.repo + "/stages/normalize"))
        let addresses = try LabelledAddressReader.read(AddressAccuracyTests.repo + "/fixtures/addresses/usaddress-labeled.xml")
        #expect(addresses.count == 1513)
        var matched = 0
        var misses: [String] = []
        for a in addresses {
            let expected = impliedLine(a, normalizer)
            let actual: String?
            switch normalizer.standardize(line: a.raw) {
            case .success(let address): actual = address.line
            case .failure: actual = nil
            }
            if expected == actual { matched += 1 } else {
                let miss: [String: String] = ["raw": a.raw, "expected": expected ?? "(rejected)", "actual": actual ?? "(rejected)"]
                let data = try JSONSerialization.data(withJSONObject: miss, options: [.sortedKeys])
                misses.append(String(decoding: data, as: UTF8.self))
            }
        }
        let share = Double(matched) / Double(addresses.count)
        let report = "address accuracy: \(matched) of \(addresses.count) = \(String(format: "%.2f", share * 100))%"
        print(report)
        if let path = ProcessInfo.processInfo.environment["LEAD_ADDRESS_MISSES"] {
            try (misses.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        #expect(share >= 0.95, "\(report); first misses:\n\(misses.prefix(20).joined(separator: "\n"))")
    }
}
