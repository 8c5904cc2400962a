import StageKit

/// What is known of each US ZIP code, `stages/tag/zip-counties.csv` (generated for the whole
/// country by scripts/make-zip-counties.py), then `zip-counties-local.csv` when present (its
/// rows win): `zip,county,state[,city,other_cities]`. The county is where most of the ZIP
/// lies; `other_cities` (`|`-separated) are the other names the ZIP is known by.
public struct ZIPCodes: Sendable {
    public struct Entry: Sendable {
        /// The county as a key (`countyKey`), "" when not known (military ZIPs).
        public var county: String
        public var state: String
        /// The place names of the ZIP as keys (`PlaceNames.key`).
        public var places: [String]

        public init(county: String, state: String, places: [String]) {
            self.county = county
            self.state = state
            self.places = places
        }
    }

    public private(set) var entries: [String: Entry]
    /// (state, place key) -> the counties of that place's ZIPs, for a mailing address without a ZIP.
    var placeCounties: [String: Set<String>]
    public let places: PlaceNames

    public init(_ entries: [String: Entry] = [:], places: PlaceNames = PlaceNames()) {
        self.entries = entries
        self.places = places
        var index: [String: Set<String>] = [:]
        for entry in entries.values where !entry.county.isEmpty {
            for place in entry.places { index[entry.state + "|" + place, default: []].insert(entry.county) }
        }
        placeCounties = index
    }

    /// A table from (zip, county, state) triples, for tests.
    public init(counties: [String: (county: String, state: String)], places: PlaceNames = PlaceNames()) {
        self.init(counties.mapValues { Entry(county: Absentee.countyKey($0.county), state: $0.state, places: []) }, places: places)
    }

    /// Reads the table files in order (later rows win); a missing file after the first is skipped.
    public static func load(_ paths: [String], places: PlaceNames = PlaceNames()) throws(StageError) -> ZIPCodes {
        var table: [String: Entry] = [:]
        for (n, path) in paths.enumerated() {
            if n > 0 && !Stage.fileExists(path) { continue }
            var seen = Set<String>()
            for row in try RulesFile(path: path, required: ["zip", "state"]).rows {
                let zip = try row.required("zip")
                guard zip.utf8.count == 5, zip.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { throw row.error("zip must be five digits, not '\(zip)'") }
                if !seen.insert(zip).inserted { throw row.error("ZIP \(zip) is listed twice") }
                var names: [String] = []
                for name in [row["city"]] + row.list("other_cities") where !name.isEmpty {
                    let key = places.key(name)
                    if !key.isEmpty && !names.contains(key) { names.append(key) }
                }
                table[zip] = Entry(county: Absentee.countyKey(row["county"]), state: try row.required("state").uppercased(), places: names)
            }
        }
        return ZIPCodes(table, places: places)
    }

    /// Only the state of each ZIP (for lead-normalize, which checks padded ZIPs against it).
    public static func loadStates(_ paths: [String]) throws(StageError) -> [String: String] {
        var states: [String: String] = [:]
        for (n, path) in paths.enumerated() {
            if n > 0 && !Stage.fileExists(path) { continue }
            for row in try RulesFile(path: path, required: ["zip", "state"]).rows { states[row["zip"]] = row["state"].uppercased() }
        }
        return states
    }

    public func entry(zip: String) -> Entry? {
        let five = zip.utf8.count > 5 ? String(zip.prefix(5)) : zip
        return entries[five]
    }

    /// The county key of a ZIP (ZIP+4 read by its first five digits), or nil.
    public func county(zip: String) -> String? {
        guard let c = entry(zip: zip)?.county, !c.isEmpty else { return nil }
        return c
    }

    /// The state of a ZIP, or nil.
    public func state(zip: String) -> String? { entry(zip: zip)?.state }

    /// The county of a place in a state when all its ZIPs lie in one county, or nil.
    public func county(place: String, state: String) -> String? {
        let key = places.key(place)
        guard !key.isEmpty, let counties = placeCounties[state + "|" + key], counties.count == 1 else { return nil }
        return counties.first
    }

    /// Whether a ZIP is known by a place name (its city or one of its other names).
    public func zip(_ zip: String, isKnownAs place: String) -> Bool {
        let key = places.key(place)
        return !key.isEmpty && entry(zip: zip)?.places.contains(key) == true
    }
}

/// Place names as keys, `stages/tag/place-words.csv`: uppercase letters and digits, leading
/// `CITY OF` and the like dropped, abbreviations spelled out (ST -> SAINT, HTS -> HEIGHTS),
/// spaces dropped, so that `W Lake Hls`, `West Lake Hills` and `WESTLAKE HILLS` are one.
public struct PlaceNames: Sendable {
    var words: [String: String]
    var prefixes: [[String]]

    public init(words: [String: String] = [:], prefixes: [[String]] = []) {
        self.words = words
        self.prefixes = prefixes.sorted { $0.count > $1.count }
    }

    public static func load(_ path: String) throws(StageError) -> PlaceNames {
        var words: [String: String] = [:]
        var prefixes: [[String]] = []
        for row in try RulesFile(path: path, required: ["kind", "word"]).rows {
            let word = try row.required("word").uppercased()
            switch row["kind"] {
            case "word": words[word] = try row.required("standard").uppercased()
            case "prefix": prefixes.append(word.split(separator: " ").map(String.init))
            default: throw row.error("kind must be word or prefix, not '\(row["kind"])'")
            }
        }
        return PlaceNames(words: words, prefixes: prefixes)
    }

    public func key(_ name: String) -> String {
        var parts = PlaceNames.words(name)
        for prefix in prefixes where parts.count > prefix.count && Array(parts.prefix(prefix.count)) == prefix {
            parts.removeFirst(prefix.count)
            break
        }
        return parts.map { words[$0] ?? $0 }.joined()
    }
}

extension PlaceNames {
    /// The words of a name, uppercase: runs of ASCII letters and digits (and any non-ASCII
    /// letter, kept as it is); everything else separates words.
    static func words(_ name: String) -> [String] {
        var out: [String] = []
        var word: [UInt8] = []
        for b in name.utf8 {
            switch b {
            case 97...122: word.append(b - 32)
            case 65...90, 48...57, 128...255: word.append(b)
            default:
                if !word.isEmpty { out.append(String(decoding: word, as: UTF8.self)); word.removeAll(keepingCapacity: true) }
            }
        }
        if !word.isEmpty { out.append(String(decoding: word, as: UTF8.self)) }
        return out
    }
}

/// Whether the owner lives elsewhere, from the standardised property and mailing addresses:
/// `none` (no mailing address, or the owner's address is the property: the same street
/// address with a unit on one side only, ZIP+4 or not, in the same ZIP or a place the ZIP is
/// known by), `in-county`, `out-of-county`, `out-of-state`, `unknown-county` (same state,
/// but a ZIP no table knows), or `unknown` (the mailing address did not read). Each side's
/// county is the lead's own (`county`, `mailing_county`), else its ZIP's, else its city's
/// when all that city's ZIPs lie in one county; its state is the address's, else its ZIP's.
public struct Absentee: Sendable {
    public let zips: ZIPCodes

    public init(zips: ZIPCodes) { self.zips = zips }

    /// The rules of a tag rules directory: zip-counties.csv, zip-counties-local.csv (when
    /// present) and place-words.csv.
    public static func load(directory: String) throws(StageError) -> Absentee {
        let places = try PlaceNames.load(directory + "/place-words.csv")
        return Absentee(zips: try ZIPCodes.load([directory + "/zip-counties.csv", directory + "/zip-counties-local.csv"], places: places))
    }

    /// The filter functions this adds: `absentee()`.
    public static let functions: Set<String> = ["absentee"]

    public func filterFunctions() -> [String: (Record) -> FilterValue] {
        ["absentee": { .string(self.classify($0)) }]
    }

    /// `Travis County`, `TRAVIS`, `St. Louis County` / `Saint Louis` -> `TRAVIS`, `SAINTLOUIS`.
    /// A county's `city` (Richmond city, VA) stays: it is not Richmond County.
    public static func countyKey(_ county: String) -> String {
        var words = PlaceNames.words(county)
        for ending in [["CITY", "AND", "BOROUGH"], ["CENSUS", "AREA"], ["COUNTY"], ["CO"], ["CNTY"], ["PARISH"], ["BOROUGH"], ["MUNICIPALITY"], ["MUNICIPIO"]]
        where words.count > ending.count && Array(words.suffix(ending.count)) == ending {
            words.removeLast(ending.count)
            break
        }
        return words.map { $0 == "ST" ? "SAINT" : $0 == "STE" ? "SAINTE" : $0 == "FT" ? "FORT" : $0 == "MT" ? "MOUNT" : $0 }.joined()
    }

    struct Side {
        var line: String
        var base: String
        var unit: String?
        var city: String
        var state: String
        var zip: String
    }

    static let streetParts = ["number", "predirectional", "street", "suffix", "postdirectional"]

    func side(_ lead: Record, _ fields: AddressFields) -> Side {
        let line = lead.text(fields.line)?.trimmingSpaces ?? ""
        var base = line
        var unit: String?
        if let parts = lead[fields.parts]?.object, parts.text("kind") == "street" {
            base = Absentee.streetParts.compactMap { parts.text($0) }.joined(separator: " ")
            if line.utf8.count > base.utf8.count, line.hasPrefix(base) {
                // The unit by its identifier: APT 4, UNIT 4 and # 4 at one address are one unit.
                unit = parts.text("unit") ?? String(line.dropFirst(base.count)).trimmingSpaces
            } else {
                base = line
            }
        }
        let zip = String((lead.text(fields.zip) ?? "").trimmingSpaces.prefix(5))
        var state = (lead.text(fields.state) ?? "").trimmingSpaces.uppercased()
        if state.isEmpty, zip.utf8.count == 5, let s = zips.state(zip: zip) { state = s }
        return Side(line: line, base: base, unit: unit, city: lead.text(fields.city) ?? "", state: state, zip: zip)
    }

    /// Whether two sides name one place: the same ZIP, or a city one ZIP is known by, or the same city.
    func samePlace(_ a: Side, _ b: Side) -> Bool {
        if !a.zip.isEmpty && a.zip == b.zip { return true }
        if !a.state.isEmpty && !b.state.isEmpty && a.state != b.state { return false }
        if !a.zip.isEmpty && zips.zip(a.zip, isKnownAs: b.city) { return true }
        if !b.zip.isEmpty && zips.zip(b.zip, isKnownAs: a.city) { return true }
        // Two ZIPs given and different: not one place unless the cities say so below and a ZIP is missing.
        if !a.zip.isEmpty && !b.zip.isEmpty { return false }
        // One ZIP missing: a town in the county of the other side's ZIP (a village inside a city's ZIP).
        if a.zip.isEmpty != b.zip.isEmpty {
            let (withZIP, without) = a.zip.isEmpty ? (b, a) : (a, b)
            if let county = zips.county(zip: withZIP.zip), !without.city.isEmpty,
               zips.county(place: without.city, state: without.state.isEmpty ? withZIP.state : without.state) == county {
                return true
            }
        }
        let ka = zips.places.key(a.city), kb = zips.places.key(b.city)
        // No ZIP and no city on either side: the same line in the same state is one address.
        if a.zip.isEmpty && b.zip.isEmpty && ka.isEmpty && kb.isEmpty { return true }
        return !ka.isEmpty && ka == kb
    }

    func county(_ lead: Record, field: String, side: Side) -> String? {
        if let own = lead.text(field).map(Absentee.countyKey), !own.isEmpty { return own }
        if let c = zips.county(zip: side.zip) { return c }
        guard side.zip.isEmpty, !side.city.isEmpty, !side.state.isEmpty else { return nil }
        return zips.county(place: side.city, state: side.state)
    }

    public func classify(_ lead: Record) -> String {
        let mailing = side(lead, AddressFields.mailing)
        guard !mailing.line.isEmpty else { return "none" }
        // A mailing address that did not read (kept raw, lead-normalize said why): not known.
        if let error = lead[AddressFields.mailing.error], !error.isNull { return "unknown" }
        let property = side(lead, AddressFields.property)
        // The same street address, a unit on one side only (or the same unit on both).
        if property.base == mailing.base, property.unit == nil || mailing.unit == nil || property.unit == mailing.unit,
           samePlace(property, mailing) {
            return "none"
        }
        if !property.state.isEmpty && !mailing.state.isEmpty && property.state != mailing.state { return "out-of-state" }
        guard let propertyCounty = county(lead, field: "county", side: property),
              let mailingCounty = county(lead, field: "mailing_county", side: mailing) else { return "unknown-county" }
        return propertyCounty == mailingCounty ? "in-county" : "out-of-county"
    }
}
