import StageKit

/// A US address in USPS Publication 28 standard form.
public struct StandardAddress: Equatable, Sendable {
    public enum Kind: String, Sendable {
        case street, poBox = "po_box", ruralRoute = "rural_route", highwayContract = "highway_contract", military
    }

    public var kind = Kind.street
    public var number: String?
    public var predirectional: String?
    public var street: String?
    public var suffix: String?
    public var postdirectional: String?
    /// Secondary units in order: (designator, identifier) such as (APT, 4), (BSMT, nil), (#, 12).
    public var units: [(String, String?)] = []
    /// RR or HC route number, for rural routes and highway contracts.
    public var route: String?
    /// The box number of PO boxes, rural routes and highway contracts.
    public var box: String?
    /// PO BOX, or LOCKBOX, DRAWER, CALLER BOX for boxes of those kinds.
    public var boxType = "PO BOX"
    public var city: String?
    public var state: String?
    public var zip: String?
    /// The ZIP had lost leading zeros and was padded (`7073` -> `07073`); the caller checks the
    /// padded ZIP belongs to the state (LeadNormalizer).
    public var zipPadded = false

    public init() {}

    public static func == (a: StandardAddress, b: StandardAddress) -> Bool { a.line == b.line && a.lastLine == b.lastLine }

    /// The standard delivery line: `431 MARIETTA ST NW FL 3`, `PO BOX 123`, `RR 2 BOX 15`.
    /// The words in order, empty ones left out, one space between (built in place: it is
    /// read several times for every lead).
    public var line: String {
        var out = ""
        out.reserveCapacity(48)
        func add(_ word: String?) {
            guard let word, !word.isEmpty else { return }
            if !out.isEmpty { out += " " }
            out += word
        }
        switch kind {
        case .poBox:
            add(boxType)
            add(box)
        case .ruralRoute, .highwayContract:
            add(kind == .ruralRoute ? "RR" : "HC")
            add(route)
            if let box { add("BOX"); add(box) }
        case .military:
            add(route)
            if let box { add("BOX"); add(box) }
        case .street:
            add(number)
            add(predirectional)
            add(street)
            add(suffix)
            add(postdirectional)
        }
        for (designator, id) in units {
            add(designator)
            add(id)
        }
        return out
    }

    /// `ATLANTA GA 30303`.
    public var lastLine: String { [city, state, zip].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ") }

    /// {number, predirectional, street, suffix, postdirectional, unit_type, unit} (and the box
    /// or route of box addresses), for `property_address_parts`.
    public var parts: Record {
        var r = Record()
        r.append("kind", .string(kind.rawValue))
        func put(_ key: String, _ value: String?) { r.append(key, value.map { .string($0) } ?? .null) }
        put("number", number)
        put("predirectional", predirectional)
        put("street", street)
        put("suffix", suffix)
        put("postdirectional", postdirectional)
        put("unit_type", units.first?.0)
        let rest = units.dropFirst().flatMap { [$0.0] + ($0.1.map { [$0] } ?? []) }
        let unit = ([units.first?.1].compactMap { $0 } + rest).joined(separator: " ")
        put("unit", unit.isEmpty ? nil : unit)
        if kind != .street {
            put("route", route)
            put("box", box)
        }
        return r
    }
}

/// Why an address could not be standardised.
public struct AddressProblem: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Standardises US addresses the way USPS Publication 28 describes: uppercase, punctuation
/// removed, directionals, street suffixes (C1) and unit designators (C2) abbreviated, states
/// as two-letter codes, ZIP and ZIP+4 formatted; PO boxes, rural routes and highway
/// contracts; numbered streets (5TH), fractional and hyphenated house numbers; names that
/// look like directionals or suffixes kept as names (200 NORTH ST, 10 AVENUE OF THE AMERICAS).
/// A one-line address (`431 Marietta St NW Fl. 3, Atlanta, GA 30303`) is split into its
/// delivery line, city, state and ZIP.
public struct AddressNormalizer: Sendable {
    public let rules: AddressRules
    /// Read the common shapes directly instead of searching (the results are the same; tests
    /// turn this off to check that they are).
    public let fastPaths: Bool
    /// Words that are never a plain street name word (see `simpleStreet`).
    let notNameWords: Set<String>

    public init(rules: AddressRules, fastPaths: Bool = true) {
        self.rules = rules
        self.fastPaths = fastPaths
        var words = Set(rules.suffixes.keys).union(rules.directionals.keys).union(rules.units.keys)
            .union(rules.routeWords).union(rules.joinerWords).union(rules.buildingWords).union(rules.referenceWords)
            .union(rules.routeQualifiers).union(Self.boxStartWords).union(Self.highwayWordSet)
        words.formUnion(["AND", "AT", "OF", "THE", "NO", "NUMBER", "C/O", "CLO", "ATTN", "ATTENTION", "JCT", "JUNCTION"])
        notNameWords = words
    }

    // MARK: Public entry points

    /// Standardises an address given as fields. When city, state and zip are all empty and
    /// the line holds them (a one-line address), they are split out of it.
    public func standardize(line: String, city: String? = nil, state: String? = nil,
                            zip: String? = nil) -> Result<StandardAddress, AddressProblem> {
        let tokens = tokenize(line)
        if tokens.isEmpty { return .failure(AddressProblem("empty address")) }
        let hasLastLine = [city, state, zip].contains { !($0 ?? "").trimmingSpaces.isEmpty }
        var address: StandardAddress
        if hasLastLine {
            if fastPaths, let simple = simpleStreet(tokens[...]) {
                address = simple
            } else {
                let parsed = parseDelivery(tokens[...], allowRecipient: false)
                if let parsed, parsed.rest.isEmpty {
                    address = parsed.address
                } else if case .success(let whole) = parseOneLine(tokens) {
                    // The line holds its own last line as well as the fields do (a provider's
                    // "618 W ELMIRA ST, City of San Antonio, TX 78212" beside a city column):
                    // the fields win, the line fills what they leave empty, and a state or ZIP
                    // that contradicts them is an error.
                    if let state, let code = standardizeState(state), let said = whole.state, said != code {
                        return .failure(AddressProblem("the address says state \(said), the state field \(code)"))
                    }
                    if let zip, let z = standardizeZIP(zip), let said = whole.zip, said.prefix(5) != z.prefix(5) {
                        return .failure(AddressProblem("the address says ZIP \(said), the ZIP field \(z)"))
                    }
                    address = whole
                } else if let parsed {
                    return .failure(AddressProblem("cannot place '\(parsed.rest.map(\.text).joined(separator: " "))' in the address"))
                } else {
                    return .failure(AddressProblem(explain(tokens)))
                }
            }
            if let given = city.map(standardizeCity), !given.isEmpty { address.city = given }
            if let state, !state.trimmingSpaces.isEmpty {
                guard let code = standardizeState(state) else { return .failure(AddressProblem("unknown state '\(state)'")) }
                address.state = code
            }
            if let zip, !zip.trimmingSpaces.isEmpty {
                guard let z = standardizeZIP(zip) else { return .failure(AddressProblem("malformed ZIP code '\(zip)'")) }
                address.zip = z
                address.zipPadded = zip.utf8.filter { $0 >= 48 && $0 <= 57 }.count < (z.utf8.count > 5 ? 9 : 5)
            }
            return .success(address)
        }
        if fastPaths, let simple = simpleOneLine(tokens) { return .success(simple) }
        return parseOneLine(tokens)
    }

    // MARK: Fast paths

    /// True when `line` is read by a fast path (a one-line address when `oneLine`).
    public func readsDirectly(_ line: String, oneLine: Bool) -> Bool {
        let tokens = tokenize(line)
        return oneLine ? simpleOneLine(tokens) != nil : simpleStreet(tokens[...]) != nil
    }

    /// The commonest delivery line, read without the search: `NUMBER [DIR] NAME... SUFFIX [DIR]
    /// [UNIT [ID]]`, no commas, name words plain (letters, or ordinals; none that could be a
    /// suffix, directional, unit, box, route, joiner or building word). Anything else is nil,
    /// and the full parser reads it; where this answers, the full parser answers the same.
    func simpleStreet(_ tokens: ArraySlice<Token>) -> StandardAddress? {
        let end = tokens.endIndex
        var i = tokens.startIndex
        guard end - i >= 3, end - i <= 9, !tokens.dropFirst().contains(where: \.commaBefore) else { return nil }
        let number = tokens[i].text
        guard number.utf8.count <= 6, number.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        i += 1
        var address = StandardAddress()
        address.number = number
        if let d = rules.directionals[tokens[i].text] {
            address.predirectional = d
            i += 1
        }
        // Name words, then the suffix: the last of a run of words that may also be suffixes (PARK HILL DR).
        var names: [String] = []
        while i < end {
            let w = tokens[i].text
            let letters = w.utf8.count >= 2 && w.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) }
            let plain = letters && !notNameWords.contains(w)
            let suffixWord = letters && rules.suffixes[w] != nil && rules.units[w] == nil && rules.directionals[w] == nil
                && !rules.joinerWords.contains(w) && !rules.buildingWords.contains(w) && !Self.boxStartWords.contains(w)
            guard plain || suffixWord || isOrdinal(w) || rules.ordinals[w] != nil else { break }
            names.append(w)
            i += 1
        }
        guard names.count >= 2, let suffix = rules.suffixes[names.last!] else { return nil }
        names.removeLast()
        // A street type inside the name (ASHBOURNE RD LYNNEWOOD GARDENS) needs the search.
        guard !names.contains(where: { Self.majorSuffixSet.contains(rules.suffixes[$0] ?? "") }) else { return nil }
        address.suffix = suffix
        if i < end, let d = rules.directionals[tokens[i].text] {
            address.postdirectional = d
            i += 1
        }
        if i < end {
            let designator = tokens[i].text
            if designator == "#" {
                guard i + 2 == end, isUnitIdentifier(tokens[i + 1].text), rules.directionals[tokens[i + 1].text] == nil else { return nil }
                address.units = [("#", tokens[i + 1].text)]
            } else if let unit = rules.units[designator], unit.standard != "#" {
                if unit.needsIdentifier {
                    guard i + 2 == end else { return nil }
                    let id = tokens[i + 1].text
                    guard isUnitIdentifier(id), rules.directionals[id] == nil, id != "#" else { return nil }
                    address.units = [(unit.standard, unitIdentifier(id, for: unit.standard))]
                } else {
                    guard i + 1 == end else { return nil }
                    address.units = [(unit.standard, nil)]
                }
            } else {
                return nil
            }
        }
        address.street = streetName(names)
        return address
    }

    /// `LINE, CITY, STATE ZIP` (or `LINE, CITY, STATE, ZIP`, or without the ZIP) with a simple
    /// line (see `simpleStreet`) and a city of plain words, read without the search.
    func simpleOneLine(_ tokens: [Token]) -> StandardAddress? {
        var segments: [ArraySlice<Token>] = []
        var start = 0
        for k in 1..<max(1, tokens.count) where tokens[k].commaBefore {
            segments.append(tokens[start..<k])
            start = k
        }
        segments.append(tokens[start...])
        guard segments.count == 3 || segments.count == 4, var address = simpleStreet(segments[0]) else { return nil }
        let city = segments[1]
        guard (1...3).contains(city.count), city.allSatisfy({ $0.text.utf8.count >= 2 && $0.text.utf8.allSatisfy { $0 >= 65 && $0 <= 90 } }),
              rules.states[city.map(\.text).joined(separator: " ")] == nil, rules.units[city.first!.text] == nil,
              rules.directionals[city.first!.text] == nil else { return nil }
        var last = Array(segments[2])
        if segments.count == 4 {
            guard segments[3].count == 1 else { return nil }
            last.append(segments[3].first!)
        }
        var zip: String?
        if let z = last.last.flatMap({ zipToken($0.text) }) {
            zip = z
            last.removeLast()
        }
        guard (1...rules.longestStateName).contains(last.count), let state = rules.states[last.map(\.text).joined(separator: " ")] else {
            return nil
        }
        address.city = city.map(\.text).joined(separator: " ")
        address.state = state
        address.zip = zip
        return address
    }

    /// Uppercase, punctuation removed, spaces collapsed.
    public func standardizeCity(_ city: String) -> String {
        // Letters and single spaces (the common case): uppercase them, nothing else to do.
        var plain = true
        var previousSpace = true
        var upper: [UInt8] = []
        upper.reserveCapacity(city.utf8.count)
        for b in city.utf8 {
            switch b {
            case 65...90: upper.append(b); previousSpace = false
            case 97...122: upper.append(b - 32); previousSpace = false
            case 32 where !previousSpace: upper.append(b); previousSpace = true
            default: plain = false
            }
            if !plain { break }
        }
        if plain && !previousSpace { return String(decoding: upper, as: UTF8.self) }
        return tokenize(city).map(\.text).filter { $0 != "#" && $0 != "&" }.joined(separator: " ")
    }

    /// A state name or abbreviation as its USPS code, or nil.
    public func standardizeState(_ state: String) -> String? {
        if let code = rules.states[state] { return code }
        return rules.states[tokenize(state).map(\.text).joined(separator: " ")]
    }

    /// `12345` or `12345-6789` from `12345`, `12345-6789`, `123456789`, `12345 6789`; a ZIP that
    /// lost its leading zero in a spreadsheet (`2653`) is padded back.
    public func standardizeZIP(_ zip: String) -> String? {
        // Read as bytes: spaces and hyphens go, anything but an ASCII digit makes it no ZIP.
        var digits: [UInt8] = []
        digits.reserveCapacity(10)
        var hyphen = false
        for byte in zip.utf8 {
            switch byte {
            case 32: continue
            case 45: hyphen = true
            case 48...57:
                guard digits.count < 9 else { return nil }
                digits.append(byte)
            default: return nil
            }
        }
        let text = String(decoding: digits, as: UTF8.self)
        switch digits.count {
        case 5: return text
        case 9: return String(text.prefix(5)) + "-" + String(text.suffix(4))
        case 3...4 where !hyphen: return String(repeating: "0", count: 5 - digits.count) + text
        case 8 where hyphen: return "0" + String(text.prefix(4)) + "-" + String(text.suffix(4))
        default: return nil
        }
    }

    // MARK: Tokens

    struct Token: Equatable {
        var text: String
        /// A comma (or semicolon) came right before this token.
        var commaBefore: Bool
    }

    /// Uppercases and splits into words: commas become boundaries, `#` and `&` stand alone,
    /// periods and other punctuation go (P.O. -> PO), hyphens and slashes stay inside words.
    func tokenize(_ text: String) -> [Token] {
        var tokens: [Token] = []
        var current: [UInt8] = []
        current.reserveCapacity(32)
        var comma = false
        var nonASCII = false
        func flush() {
            var start = 0, end = current.count
            while start < end, current[start] == 45 || current[start] == 47 { start += 1 }
            while end > start, current[end - 1] == 45 || current[end - 1] == 47 { end -= 1 }
            if start < end {
                var word = String(decoding: current[start..<end], as: UTF8.self)
                if nonASCII { word = word.uppercased() }
                let token = Token(text: word, commaBefore: comma)
                if let split = splitGluedUnit(token) { tokens += split } else { tokens.append(token) }
                comma = false
            }
            current.removeAll(keepingCapacity: true)
            nonASCII = false
        }
        var utf8 = Array(text.utf8)
        utf8.append(0)
        var k = 0
        while k < utf8.count - 1 {
            let b = utf8[k]
            k += 1
            switch b {
            case 32, 9:
                flush()
            case 44, 59, 10, 13:  // , ; line breaks
                flush()
                comma = true
            case 35, 38:  // # &
                flush()
                tokens.append(Token(text: b == 35 ? "#" : "&", commaBefore: comma))
                comma = false
            case 97...122:
                current.append(b - 32)
            case 48...57, 65...90, 45, 47:
                current.append(b)
            case 0..<128:
                continue  // . ' " ( ) and other punctuation go
            default:
                // Dashes become hyphens, the right single quote goes like an apostrophe.
                if b == 0xE2, utf8[k] == 0x80, [0x92, 0x93, 0x94].contains(utf8[k + 1]) {
                    current.append(45)
                    k += 2
                } else if b == 0xE2, utf8[k] == 0x88, utf8[k + 1] == 0x92 {
                    current.append(45)
                    k += 2
                } else if b == 0xE2, utf8[k] == 0x80, utf8[k + 1] == 0x99 {
                    k += 2
                } else {
                    current.append(b)
                    nonASCII = true
                }
            }
        }
        flush()
        return tokens
    }

    static let gluedBoxWords: Set<String> = ["RR", "HC", "HCR", "POB", "BOX", "CMR", "PSC"]
    static let wordUnitBoxWords: Set<String> = ["RR", "HC", "HCR", "PO", "POB", "BOX", "RURAL", "ROUTE", "STAR", "CMR", "PSC",
                                                "LOCKBOX", "LBX", "LB", "DRAWER", "CALLER"]

    /// UNIT508 -> UNIT 508, SUITE100 -> SUITE 100, RR2 -> RR 2 (a designator written against its number).
    func splitGluedUnit(_ token: Token) -> [Token]? {
        let text = token.text
        // Quick refusal: it must start with two letters and hold a digit.
        var utf8 = text.utf8.makeIterator()
        guard let a = utf8.next(), let b = utf8.next(), a >= 65 && a <= 90, b >= 65 && b <= 90,
              text.utf8.contains(where: { $0 >= 48 && $0 <= 57 }) else { return nil }
        guard let digit = text.firstIndex(where: \.isDigit), digit != text.startIndex else { return nil }
        let prefix = String(text[..<digit])
        let boxWords = Self.gluedBoxWords
        guard prefix.count >= 2, prefix.allSatisfy(\.isAlpha),
              boxWords.contains(prefix) || rules.units[prefix]?.needsIdentifier == true else { return nil }
        return [Token(text: prefix, commaBefore: token.commaBefore), Token(text: String(text[digit...]), commaBefore: false)]
    }

    // MARK: One-line addresses

    struct Delivery {
        /// True when a state or ZIP follows, so the words after the street are surely a city.
        var cityIsPlaced = false
        var address: StandardAddress
        /// Tokens after the delivery line (the city, in a one-line address).
        var rest: ArraySlice<Token>
        var score: Int
    }

    /// Splits `[recipient] delivery-line [city] [state] [zip]`, choosing among the possible
    /// places where the delivery line ends the one that reads most like an address.
    func parseOneLine(_ input: [Token]) -> Result<StandardAddress, AddressProblem> {
        var all = input
        // ATTN: or C/O and what follows name a person, not the address.
        if let cut = all.firstIndex(where: { $0.text == "ATTN" || $0.text == "ATTENTION" }) {
            if cut > 0 {
                all = Array(all[..<cut])
            } else if let comma = all.dropFirst().firstIndex(where: \.commaBefore) {
                all = Array(all[comma...])
            }
        }
        if let co = all.firstIndex(where: { $0.text == "C/O" || $0.text == "CLO" }), co > 0 {
            var k = co + 1
            while k < all.count, parseBox(all[k...]) == nil, unitAt(all[k...]) == nil, !isHouseNumber(all[k].text) { k += 1 }
            all.removeSubrange(co..<k)
        }
        // A country at the end: UNITED STATES, USA, US.
        for country in [["UNITED", "STATES", "OF", "AMERICA"], ["UNITED", "STATES"], ["USA"], ["US"], ["U", "S", "A"]]
        where all.count > country.count + 2 && all.suffix(country.count).map(\.text) == country {
            all.removeLast(country.count)
            break
        }
        var best: (address: StandardAddress, score: Int)?
        let memo = DeliveryMemo()
        // The last word may be a ZIP code, or the number of the box or house (PO BOX 11418).
        var zipOptions: [(zip: String?, tokens: ArraySlice<Token>, padded: Bool)] = [(nil, all[...], false)]
        if let last = all.last, let z = zipToken(last.text), all.count > 1 {
            zipOptions.insert((z, all.dropLast(), false), at: 0)
            // 12345 6789: ZIP+4 written with a space.
        }
        if all.count > 2, let last = all.last, last.text.count == 4, last.text.allSatisfy(\.isDigit),
           let z = zipToken(all[all.count - 2].text), z.count == 5 {
            zipOptions.insert((z + "-" + last.text, all.dropLast(2), false), at: 0)
        }
        if all.count > 2, let last = all.last, (3...4).contains(last.text.count), last.text.allSatisfy(\.isDigit),
           rules.states[all[all.count - 2].text] != nil {
            // A ZIP that lost its leading zeros (NJ 7073).
            zipOptions.insert((String(repeating: "0", count: 5 - last.text.count) + last.text, all.dropLast(), true), at: 0)
        }
        for (zip, tokens, padded) in zipOptions {
        // Candidate states: none, or the last one to three words when they name a state.
        var stateOptions: [(code: String?, start: Int)] = [(nil, tokens.endIndex)]
        for n in 1...rules.longestStateName where tokens.count > n {
            let words = tokens.suffix(n)
            if let code = rules.states[words.map(\.text).joined(separator: " ")] {
                stateOptions.append((code, words.startIndex))
            }
        }
        for option in stateOptions {
            let body = tokens[tokens.startIndex..<option.start]
            var starts: [(Delivery, ArraySlice<Token>)] = []
            if let delivery = memo.delivery(body, allowRecipient: true, self) { starts.append((delivery, body)) }
            // 1 LINCOLN CTR 5400 LBJ FWY: a building's name and number can come before the address.
            var k = body.startIndex + 2
            while k < body.endIndex {
                if isHouseNumber(body[k].text), isBuildingEnd(body[k - 1].text), isHouseNumber(body[body.startIndex].text),
                   var later = memo.delivery(body[k...], allowRecipient: false, self), later.address.suffix != nil {
                    later.score -= 2
                    starts.append((later, body[k...]))
                }
                k += 1
            }
            for (delivery, region) in starts {
            var placed = delivery
            placed.cityIsPlaced = option.code != nil || zip != nil
            for candidate in splits(placed, body: region, memo: memo) {
                var score = candidate.score
                let city = candidate.rest
                if let code = option.code {
                    let stateToken = tokens[option.start]
                    let words = tokens[option.start...].count
                    if zip != nil { score += 3 }
                    if !city.isEmpty { score += 2 }
                    // With a city to place, a street without a suffix is likelier short (27 WASHINGTON | OAK PARK).
                    let a = candidate.address
                    if a.kind == .street, a.suffix == nil, a.units.isEmpty, let name = a.street {
                        score -= max(0, name.split(separator: " ").count - 2)
                    }
                    if stateToken.commaBefore { score += 3 }
                    if city.isEmpty && !stateToken.commaBefore { score -= 4 }
                    if words == 1, zip == nil, option.start > tokens.startIndex,
                       isOrdinal(tokens[option.start - 1].text) || rules.ordinals[tokens[option.start - 1].text] != nil {
                        score -= 6  // FOURTH FL: a floor, not Florida
                    }
                    if words == 1 && code.count == 2 && zip == nil && !stateToken.commaBefore {
                        // CT is a suffix too (only a street then if no city is left), NE a directional.
                        if rules.suffixes[stateToken.text] != nil && city.isEmpty { score -= 3 }
                        if rules.directionals[stateToken.text] != nil { score -= 3 }
                    }
                    if stateToken.text.count > 2 && zip == nil && !stateToken.commaBefore && city.isEmpty { score -= 3 }
                    // ", NE" right after the street is its directional, not Nebraska.
                    if city.isEmpty && words == 1 && rules.directionals[stateToken.text] != nil && zip == nil { score -= 6 }
                } else if !city.isEmpty {
                    if zip == nil { score -= 1 }
                    // NEW YORK after a comma is the state, not a city without one.
                    if rules.states[city.map(\.text).joined(separator: " ")] != nil { score -= 4 }
                }
                if zip == nil && all.last.map({ zipToken($0.text) != nil }) == true { score -= 3 }
                var cityWords = city
                // STEEPLE TOWNHOMES, PORTLAND: words between the street and the city's comma name a building.
                if option.code != nil, let suffix = candidate.address.suffix, majorSuffixes.contains(suffix) || candidate.address.postdirectional != nil,
                   let lastComma = city.lastIndex(where: \.commaBefore), lastComma > city.startIndex + 1,
                   !city[..<lastComma].contains(where: \.commaBefore), city[lastComma...].count <= 3,
                   // A building's name has a word of three letters or more (COUNTY RD AA NE, MOSINEE names none).
                   city[..<lastComma].contains(where: { $0.text.count >= 3 && rules.directionals[$0.text] == nil }) {
                    cityWords = city[lastComma...]
                    score += 5
                    if rules.cityNames.contains(cityWords.map(\.text).joined(separator: " ")) { score += 3 + 2 * cityWords.count }
                }
                var address = candidate.address
                let cityName = cityWords.map(\.text).filter { $0 != "#" && $0 != "&" }.joined(separator: " ")
                address.city = cityName.isEmpty ? nil : cityName
                address.state = option.code
                address.zip = zip
                address.zipPadded = padded
                if best == nil || score > best!.score { best = (address, score) }
            }
            }
        }
        }
        guard let best else { return .failure(AddressProblem(explain(all))) }
        return .success(best.address)
    }

    /// Delivery lines already parsed in one one-line address, by token range: the candidate
    /// readings share most of their ranges.
    final class DeliveryMemo {
        var parsed: [Int: Delivery?] = [:]

        func delivery(_ tokens: ArraySlice<Token>, allowRecipient: Bool, _ normalizer: AddressNormalizer) -> Delivery? {
            let key = tokens.startIndex << 20 | tokens.endIndex << 1 | (allowRecipient ? 1 : 0)
            if let known = parsed[key] { return known }
            let result = normalizer.parseDelivery(tokens, allowRecipient: allowRecipient)
            parsed[key] = result
            return result
        }
    }

    /// The ways a parsed delivery line can end within `body`: the greedy parse, and shorter
    /// ones ending at an earlier suffix, so that the remaining words can be the city.
    func splits(_ greedy: Delivery, body: ArraySlice<Token>, memo: DeliveryMemo) -> [Delivery] {
        var out = [greedy]
        let placed = greedy.cityIsPlaced
        let start = body.endIndex - greedy.rest.count
        var end = start - 1
        while end > body.startIndex {
            // HIGHWAY 71 BUSINESS: the qualifier belongs to the route number before it.
            if rules.routeQualifiers.contains(body[end].text), body[end - 1].text.first?.isDigit == true {
                end -= 1
                continue
            }
            // A suffix word followed by DE, LA, DEL... is inside a name (VIA DE VENTURA).
            if rules.joinerWords.contains(body[end].text), let before = rules.suffixes[body[end - 1].text], !majorSuffixes.contains(before) {
                end -= 1
                continue
            }
            if let shorter = memo.delivery(body[body.startIndex..<end], allowRecipient: true, self), shorter.rest.isEmpty {
                var d = shorter
                d.cityIsPlaced = placed
                d.rest = body[end...]
                out.append(d)
            }
            end -= 1
        }
        return (out + out.flatMap(droppingBuilding)).map(scored)
    }

    /// A building's or a complex's name after a finished street is not part of the delivery line
    /// (3565 PIEDMONT RD, 1 PIEDMONT CTR, STE 700; 3340 PEACHTREE RD, TOWER PLACE STE 1685;
    /// 1840 ASHBOURNE RD LYNNEWOOD GARDENS, ELKINS PARK): the ways to read `d` without it,
    /// keeping the units that follow it.
    func droppingBuilding(_ d: Delivery) -> [Delivery] {
        let a = d.address
        guard a.kind == .street, a.postdirectional != nil || majorSuffixes.contains(a.suffix ?? "") || !a.units.isEmpty,
              !d.rest.isEmpty else { return [] }
        let rest = d.rest
        var out: [Delivery] = []
        for n in 1...min(4, rest.count) {
            let segment = rest.prefix(n)
            // 440 LASALLE ST 1 FINANCIAL PLACE: a number read as a unit was the building's.
            if !a.units.isEmpty && !segment.first!.commaBefore { break }
            let last = segment.last!
            if n > 1 && last.commaBefore { break }
            if unitAt(rest.dropFirst(n - 1)) != nil || parseBox(rest.dropFirst(n - 1)) != nil { break }
            let numbered = segment.first!.text.allSatisfy(\.isDigit)  // 1 PIEDMONT CTR
            if n == 1 && numbered { continue }
            guard segment.dropFirst().allSatisfy({ $0.text.allSatisfy(\.isAlpha) && rules.states[$0.text] == nil }),
                  segment.first!.text.allSatisfy(\.isAlpha) || numbered else { break }
            var after = rest.dropFirst(n)
            var units: [(String, String?)] = []
            while let (unit, used) = unitAt(after) {
                units.append(unit)
                after = after.dropFirst(used)
            }
            var dropped = d
            dropped.score -= 1
            if units.contains(where: { $0.1 != nil }), segment.first!.commaBefore || isComplexEnd(last.text) {
                dropped.address.units += units
                dropped.rest = after
                out.append(dropped)
            } else if units.isEmpty, after.first?.commaBefore ?? true, isComplexEnd(last.text) {
                dropped.rest = after
                out.append(dropped)
            }
        }
        return out
    }

    /// The last word of a building's or complex's name (KINGSTON BUILDING, COLONY SQUARE, LYNNEWOOD GARDENS).
    func isComplexEnd(_ word: String) -> Bool {
        isBuildingEnd(word) || ["CT", "CTR", "GDNS", "PLZ"].contains(rules.suffixes[word] ?? "")
    }

    /// A word that ends a building's name (FINANCIAL CENTER, CATHEDRAL PL, LINCOLN CTR).
    func isBuildingEnd(_ word: String) -> Bool {
        rules.buildingWords.contains(word) || ["PL", "PLZ", "SQ"].contains(rules.suffixes[word] ?? "")
    }

    /// Route words after which NO or # comes before the route's number or letter (US HIGHWAY NO 130, ROUTE # A).
    var highwayWords: Set<String> { Self.highwayWordSet }
    static let highwayWordSet: Set<String> = ["HIGHWAY", "HWY", "ROUTE", "RTE", "RT", "US", "STATE", "COUNTY", "SR", "CR", "FM", "INTERSTATE"]

    /// Street types that end streets, and rarely end city names.
    var majorSuffixes: Set<String> { Self.majorSuffixSet }
    static let majorSuffixSet: Set<String> = ["ST", "RD", "AVE", "DR", "BLVD", "LN", "CT", "WAY", "PL", "TER", "CIR", "HWY", "PKWY", "TRL", "PLZ"]

    func scored(_ d: Delivery) -> Delivery {
        var d = d
        var score = d.score
        let city = d.rest
        if let name = d.address.street, rules.directionals[name] != nil {
            score -= d.address.predirectional != nil || d.address.suffix != nil ? 2 : 3  // 5500 N | ST LOUIS: unlikely
        }

        var knownCity = false
        if !city.isEmpty {
            // A known city name: the longer the match (W PALM BEACH over PALM BEACH), the likelier.
            // NEW BUFFALO: a city word before a known name makes a longer name.
            let name = city.map(\.text).joined(separator: " ")
            let withoutFirst = city.dropFirst().map(\.text).joined(separator: " ")
            knownCity = true
            if rules.cityNames.contains(name) && rules.states[name] == nil {
                score += d.cityIsPlaced ? 3 + 2 * city.count : 3
            } else if rules.cityWords.contains(city.first!.text) && rules.suffixes[city.first!.text] == nil
                        && rules.cityNames.contains(withoutFirst) {
                score += d.cityIsPlaced ? 3 + 2 * city.count : 3
            } else if rules.directionals[city.first!.text] != nil && rules.cityNames.contains(withoutFirst) {
                score += d.cityIsPlaced ? 3 + 2 * (city.count - 1) : 2
            } else {
                knownCity = false
            }
        }
        if let first = city.first {
            // A comma before a directional that follows the street: the directional is the street's (RD, NW ATLANTA).
            // So after a route's number (HWY 31, W WHITE HOUSE).
            let streetWords = d.address.street?.split(separator: " ") ?? []
            let endsRoute = streetWords.count >= 2 && streetWords.last!.first?.isDigit == true
                && rules.routeWords.contains(String(streetWords[streetWords.count - 2]))
            let directionalAfterComma = first.commaBefore && rules.directionals[first.text] != nil
                && (first.text.count == 2 || endsRoute) && d.address.postdirectional == nil && (d.address.suffix != nil || endsRoute)
            if first.commaBefore && !directionalAfterComma { score += 4 }
            if directionalAfterComma { score -= 3 }
            if city.contains(where: { $0.text.contains(where: \.isDigit) }) { score -= 6 }
            if city.contains(where: { rules.units[$0.text] != nil && $0.text != "PH" }) { score -= 4 }
            // Cities we do not know: SAN, FORT, NEW... start city names; WEST PALM BEACH, NORTH LITTLE ROCK:
            // a directional word after the street often starts the city (a single letter after the
            // street is more often its postdirectional: DR S, CHERRY HILL).
            if !knownCity && city.count >= 2 && rules.cityWords.contains(first.text) { score += 3 }
            if !knownCity, city.count >= 2, !first.commaBefore, rules.directionals[first.text] != nil, first.text.count > 2, d.cityIsPlaced { score += 2 }
            if city.contains(where: { majorSuffixes.contains(rules.suffixes[$0.text] ?? "") }) { score -= 2 }
            if rules.buildingWords.contains(first.text) { score -= 4 }
            // A unit with its identifier belongs to the street, never to the city.
            for k in city.indices where rules.units[city[k].text]?.needsIdentifier == true && k + 1 < city.endIndex
                && isUnitIdentifier(city[k + 1].text) && rules.units[city[k].text]?.standard != "#" { score -= 4 }
            for token in city.dropFirst() where token.commaBefore { score -= 2 }
            if city.count >= 4 { score -= 1 }
            if city.allSatisfy({ rules.suffixes[$0.text] != nil }) { score -= 3 }

        }
        d.score = score
        return d
    }

    // MARK: Delivery lines

    /// Parses a delivery line from the start of `tokens`; `rest` holds what follows it.
    func parseDelivery(_ input: ArraySlice<Token>, allowRecipient: Bool) -> Delivery? {
        var tokens = input
        var leadingUnits: [(String, String?)] = []
        // A recipient or a unit can come before the address proper.
        var skipped = 0
        while let first = tokens.first {
            if let (unit, used) = unitAt(tokens), unit.0 == "FL", first.text.first?.isDigit == true,
               tokens.count > used, isHouseNumber(tokens[tokens.startIndex + used].text) {
                leadingUnits.append(unit)
                tokens = tokens.dropFirst(used)
                continue
            }
            if startsAddress(tokens) { break }
            if let (unit, used) = unitAt(tokens) ?? wordUnitAt(tokens, beforeBox: true),
               unit.1 != nil || startsAddress(tokens.dropFirst(used)) {
                leadingUnits.append(unit)
                tokens = tokens.dropFirst(used)
                continue
            }
            guard allowRecipient else { return nil }
            // HIGHWAY 34 or ROUTE 7 are roads without a house number, not a recipient's name.
            let next = tokens.dropFirst().first?.text ?? ""
            if (rules.routeWords.contains(first.text) || ["NO", "JCT", "JUNCTION"].contains(first.text)) && next.first?.isDigit == true {
                // FM 170 BOX 77: the road the box is on.
                if parseBox(tokens.dropFirst(2)) != nil {
                    tokens = tokens.dropFirst(2)
                    skipped += 2
                    continue
                }
                return nil
            }
            // ROUTE BOX 100 (a rural box without its route) and POST OFFICE 20387 name no deliverable box.
            if ["ROUTE", "RTE", "RT"].contains(first.text) && next == "BOX" { return nil }
            if first.text == "POST" && next == "OFFICE" { return nil }
            // CUSTOMER # 55-0037082, REF NO 24385309: an account reference, not part of the address.
            if rules.referenceWords.contains(first.text) {
                var k = 1
                let t = Array(tokens.prefix(4))
                if k < t.count, t[k].text == "#" || t[k].text == "NO" { k += 1 }
                if k < t.count, t[k].text.contains(where: \.isDigit) { k += 1 }
                tokens = tokens.dropFirst(k)
                skipped += k
                continue
            }
            tokens = tokens.dropFirst()
            skipped += 1
        }
        guard !tokens.isEmpty else { return nil }
        if var box = parseBox(tokens) {
            if box.address.kind == .poBox, box.address.boxType != "PO BOX", let first = box.rest.first, isHouseNumber(first.text),
               let street = parseStreet(box.rest, leadingUnits: leadingUnits, skipped: skipped) {
                var s = street
                s.address.units += [(box.address.boxType, box.address.box)] + box.address.units
                return s
            }
            box.address.units = leadingUnits + box.address.units
            box.score -= skipped > 0 ? 1 : 0
            return box
        }
        return parseStreet(tokens, leadingUnits: leadingUnits, skipped: skipped)
    }

    func startsAddress(_ tokens: ArraySlice<Token>) -> Bool {
        guard let first = tokens.first else { return false }
        return isHouseNumber(first.text) || mileMarker(tokens) != nil || parseBox(tokens) != nil
    }

    /// A mile marker in place of a house number (MILE K, MI 12, MP 101), followed by a street
    /// of at least two words: the number of tokens it takes, or nil.
    func mileMarker(_ tokens: ArraySlice<Token>) -> Int? {
        guard tokens.count >= 4, Self.mileWords.contains(tokens[tokens.startIndex].text) else { return nil }
        let marker = tokens[tokens.startIndex + 1]
        guard !marker.commaBefore, !tokens[tokens.startIndex + 2].commaBefore,
              marker.text.allSatisfy(\.isDigit) || (marker.text.count == 1 && marker.text.first!.isAlpha) else { return nil }
        return 2
    }

    static let mileWords: Set<String> = ["MILE", "MI", "MP", "MILEPOST"]

    /// A house number: 123, 123A, 123-125, 12-A, N123W456, W1234, 6257A.
    func isHouseNumber(_ text: String) -> Bool {
        guard let first = text.first else { return false }
        if first.isDigit {
            return text.allSatisfy { $0.isDigit || $0.isAlpha || $0 == "-" || $0 == "/" } && text.filter(\.isAlpha).count <= 2
                && !isOrdinal(text)
        }
        // Grid addresses: N123W456, W1234
        if "NSEW".contains(first), text.count >= 3 {
            let rest = text.dropFirst()
            return rest.first!.isDigit && rest.allSatisfy { $0.isDigit || "NSEW".contains($0) }
        }
        return false
    }

    func isOrdinal(_ text: String) -> Bool {
        guard text.count >= 3 else { return false }
        let end = String(text.suffix(2))
        guard ["ST", "ND", "RD", "TH"].contains(end) else { return false }
        return text.dropLast(2).allSatisfy(\.isDigit)
    }

    func zipToken(_ text: String) -> String? {
        let digits = text.filter { $0 != "-" }
        guard digits.allSatisfy({ $0.isASCII && $0.isDigit }) else { return nil }
        if digits.count == 5 && !text.contains("-") { return digits }
        if digits.count == 9 { return String(digits.prefix(5)) + "-" + String(digits.suffix(4)) }
        return nil
    }

    /// PO BOX n, RR n [BOX m], HC n [BOX m], CMR n BOX m, LOCKBOX n, DRAWER n and their spellings.
    static let boxStartWords: Set<String> = ["PO", "POB", "POBOX", "P", "POST", "BOX", "BX", "LOCK", "LOCKBOX", "LBX", "LB",
                                             "DRAWER", "CALLER", "RR", "RFD", "RURAL", "HC", "HCR", "HIGHWAY", "HWY", "STAR",
                                             "CMR", "PSC", "RT", "RTE", "ROUTE"]

    func parseBox(_ input: ArraySlice<Token>) -> Delivery? {
        guard let first = input.first, Self.boxStartWords.contains(first.text) else { return nil }
        let t = input.prefix(12).map(\.text)
        var i = 0
        func at(_ k: Int) -> String? { k < t.count ? t[k] : nil }
        func idAt(_ k: Int) -> (String, Int)? {
            var k = k
            if at(k) == "#" || at(k) == "NO" || at(k) == "NUMBER" { k += 1 }
            guard let id = at(k), id.contains(where: \.isDigit) || (id.count <= 3 && id.allSatisfy(\.isAlpha) && id != "BOX" && id != "BX") else {
                return nil
            }
            // DRAWER CS 198422: a short letter prefix and the number.
            if !id.contains(where: \.isDigit), let next = at(k + 1), next.allSatisfy(\.isDigit) { return (id + " " + next, k + 2) }
            return (id, k + 1)
        }
        var address = StandardAddress()
        if let (type, used) = boxTypeAt(t, 0), let (id, next) = idAt(used) {
            address.kind = .poBox
            address.boxType = type
            address.box = id
            i = next
        } else {
            // Rural routes, highway contracts and military boxes: RR 2 BOX 15, HC RTE 24 BOX 2A, CMR 411 BOX 3568.
            var kind: StandardAddress.Kind?
            var routeStart = 0
            switch (at(0), at(1)) {
            case ("RR", _), ("RFD", _): kind = .ruralRoute; routeStart = 1
            case ("RURAL", "ROUTE"), ("RURAL", "RTE"), ("RURAL", "RT"): kind = .ruralRoute; routeStart = 2
            case ("HC", _), ("HCR", _): kind = .highwayContract; routeStart = 1
            case ("HIGHWAY", "CONTRACT"), ("HWY", "CONTRACT"), ("STAR", "ROUTE"), ("STAR", "RTE"): kind = .highwayContract; routeStart = 2
            case ("CMR", _), ("PSC", _): kind = .military; routeStart = 1
            case ("RT", _), ("RTE", _), ("ROUTE", _):
                // RT 2 BOX 5 is a rural route; RT 60 alone is a road.
                if let (_, next) = idAt(1), at(next) == "BOX" { kind = .ruralRoute; routeStart = 1 }
            default: break
            }
            guard let kind else { return nil }
            if kind != .military, let word = at(routeStart), ["ROUTE", "RTE", "RT"].contains(word) { routeStart += 1 }
            guard let (route, next) = idAt(routeStart) else { return nil }
            address.kind = kind
            address.route = kind == .military ? t[0] + " " + route : route
            i = next
            if at(i) == "PO" && (at(i + 1) == "BOX" || at(i + 1) == "BX") { i += 1 }  // RR 1 PO BOX 406
            if at(i) == "BOX" || at(i) == "BX" {
                if let (box, afterBox) = idAt(i + 1) {
                    address.box = box
                    i = afterBox
                } else {
                    i += 1  // RR 422 BOX: a box word without its number
                }
            }
        }
        // BOX 164 A: a letter after the box number is part of it.
        if let box = address.box, box.last!.isDigit, let letter = at(i), letter.count == 1, letter.first!.isAlpha,
           rules.directionals[letter] == nil {
            address.box = box + letter
            i += 1
        }
        var rest = input.dropFirst(i)
        // PO BOX 850001 BOX # 0123: a second box number is a unit.
        if address.box != nil, rest.first?.text == "BOX", let (id, next) = idAt(i + 1), id.contains(where: \.isDigit) {
            address.units.append(("BOX", id))
            rest = input.dropFirst(next)
        }
        while true {
            if let (unit, used) = unitAt(rest) ?? wordUnitAt(rest, beforeBox: false) ?? (address.units.isEmpty ? nil : bareNumberUnit(rest)) {
                address.units.append(unit)
                rest = rest.dropFirst(used)
            } else if let inner = parseBox(rest), inner.address.kind == .poBox, inner.address.boxType != "PO BOX" {
                // PO BOX 8500 LOCKBOX 9351: the lockbox is a unit of the PO box.
                address.units += [(inner.address.boxType, inner.address.box)] + inner.address.units
                rest = inner.rest
            } else {
                break
            }
        }
        // LOCKBOX 1007 PO BOX 4829: the PO box is the delivery line, the lockbox a unit of it.
        if address.kind == .poBox, address.boxType != "PO BOX" || t.first == "BOX", var po = parseBox(rest),
           po.address.kind == .poBox, po.address.boxType == "PO BOX" {
            po.address.units = [(t.first == "BOX" ? "BOX" : address.boxType, address.box)] + address.units + po.address.units
            return po
        }
        return Delivery(address: address, rest: rest, score: 4)
    }

    /// The box type written at `k`, standardised, and where its number starts.
    func boxTypeAt(_ t: [String], _ k: Int) -> (String, Int)? {
        func at(_ j: Int) -> String? { j < t.count ? t[j] : nil }
        switch (at(k), at(k + 1), at(k + 2)) {
        case ("PO", "BOX", _), ("POB", "BOX", _), ("PO", "BX", _), ("POST", "BOX", _): return ("PO BOX", k + 2)
        case ("P", "O", "BOX"), ("POST", "OFFICE", "BOX"), ("P", "O", "B"): return ("PO BOX", k + 3)
        case ("LOCK", "BOX", _): return ("LOCKBOX", k + 2)
        case ("CALLER", "BOX", _): return ("CALLER BOX", k + 2)
        case ("POB", _, _), ("POBOX", _, _), ("PO", _, _), ("BOX", _, _), ("BX", _, _): return ("PO BOX", k + 1)
        case ("LOCKBOX", _, _), ("LBX", _, _), ("LB", _, _): return ("LOCKBOX", k + 1)
        case ("DRAWER", _, _): return ("DRAWER", k + 1)
        default: return nil
        }
    }

    /// ST 1400 right after a finished street or another unit (BLDG 10, ST 310): a suite written as ST.
    func stSuiteAt(_ tokens: ArraySlice<Token>, after previous: String?, afterUnit: Bool = false) -> ((String, String?), Int)? {
        guard let previous, afterUnit || majorSuffixes.contains(rules.suffixes[previous] ?? "") || rules.directionals[previous] != nil,
              tokens.count >= 2, tokens.first!.text == "ST", tokens.dropFirst().first!.text.first?.isDigit == true else { return nil }
        return (("ST", tokens.dropFirst().first!.text), 2)
    }

    /// A unit at the start of `tokens`: APT 4, # 12, BSMT, 2ND FLOOR, # APT 4. Returns the
    /// standardised unit and how many tokens it used.
    func unitAt(_ tokens: ArraySlice<Token>) -> ((String, String?), Int)? {
        guard let head = tokens.first?.text else { return nil }
        if head != "#" && head != "NO" && head != "NUMBER" && rules.units[head] == nil {
            guard tokens.count >= 2, rules.units[tokens[tokens.startIndex + 1].text]?.standard == "FL" else { return nil }
        }
        let t = Array(tokens.prefix(4).map(\.text))
        let first = head
        if (first == "NO" || first == "NUMBER"), t.count >= 2, t[1].contains(where: \.isDigit), isUnitIdentifier(t[1]) {
            return (("#", t[1]), 2)
        }
        if first == "#" {
            if t.count >= 3, let d = rules.units[t[1]], d.standard != "#", d.needsIdentifier, isUnitIdentifier(t[2]) {
                return ((d.standard, unitIdentifier(t[2], for: d.standard)), 3)
            }
            if t.count >= 2, isUnitIdentifier(t[1]) { return (("#", t[1]), 2) }
            return nil
        }
        if let d = rules.units[first], d.standard != "#" {
            if d.needsIdentifier {
                var k = 1
                if k < t.count, t[k] == "#" { k += 1 }
                if k < t.count, isUnitIdentifier(t[k]) { return ((d.standard, unitIdentifier(t[k], for: d.standard)), k + 1) }
                return nil
            }
            return ((d.standard, nil), 1)
        }
        // Identifier first: 40TH FLOOR, SECOND FLOOR, GROUND FLOOR, 2 FLOOR.
        if t.count >= 2, let d = rules.units[t[1]], d.standard == "FL",
           isOrdinal(first) || rules.ordinals[first] != nil || first == "GROUND" || first.allSatisfy(\.isDigit) {
            return ((d.standard, unitIdentifier(first, for: d.standard)), 2)
        }
        return nil
    }

    /// One or two words and a number around a PO box: LOCKBOX 9351, MAIL CODE 5021, FILE 74115.
    /// Before a box it must be followed by the box; after one, by nothing but the last line.
    func wordUnitAt(_ tokens: ArraySlice<Token>, beforeBox: Bool) -> ((String, String?), Int)? {
        guard tokens.count >= 2, let head = tokens.first?.text, head.utf8.count >= 2, head.allSatisfy(\.isAlpha) else { return nil }
        var t = Array(tokens.prefix(5))
        var hash = 0
        if t.count >= 3, t[1].text == "#" {
            t.remove(at: 1)
            hash = 1
        }
        for words in 1...2 where t.count > words && (hash == 0 || words == 1) {
            let name = t[0..<words]
            let id = t[words].text
            let boxWords = Self.wordUnitBoxWords
            // After the address, a state's code with a number that is no ZIP names a unit (MS 5-230: a mail stop),
            // and ACCT # 4398032 is kept as written.
            let lateLabel = !beforeBox && (id.contains("-") || id.contains(where: \.isAlpha)) && words == 1
            guard name.allSatisfy({ $0.text.allSatisfy(\.isAlpha) && (rules.states[$0.text] == nil || lateLabel) && $0.text.count >= 2
                && !boxWords.contains($0.text) && rules.suffixes[$0.text] == nil && (!rules.referenceWords.contains($0.text) || !beforeBox)
                && !rules.routeWords.contains($0.text) && rules.directionals[$0.text] == nil && rules.units[$0.text] == nil }),
                  id.contains(where: \.isDigit), !isHouseNumber(name.first!.text) else { continue }
            if beforeBox {
                // Before a box, or before a house number: KBA # 90688 815 W MARKET ST.
                let after = tokens.dropFirst(words + 1 + hash)
                guard parseBox(after) != nil || (after.count >= 2 && isHouseNumber(after.first!.text)) else { continue }
            } else if words == 2 && rules.units[t[0].text] != nil {
                continue
            }
            return ((name.map(\.text).joined(separator: " "), id), words + 1 + hash)
        }
        return nil
    }

    /// A number alone after a unit and before the city: STE 2 3665 VALLEY COTTAGE, DEPT 472 806009965 KANSAS CITY.
    func bareNumberUnit(_ tokens: ArraySlice<Token>) -> ((String, String?), Int)? {
        guard tokens.count >= 2, let first = tokens.first, !first.commaBefore, first.text.allSatisfy(\.isDigit),
              (1...10).contains(first.text.count), first.text.count != 5,
              tokens.dropFirst().first!.text.allSatisfy(\.isAlpha) else { return nil }
        return (("#", first.text), 1)
    }

    func isUnitIdentifier(_ text: String) -> Bool {
        if text.contains(where: \.isDigit) { return text.count <= 10 }
        if text.count == 3, text.dropFirst().first == "-" { return true }  // C-D
        return text.count <= 2 && text.allSatisfy(\.isAlpha)
    }

    /// Floor numbers lose their ordinal (2ND FLOOR -> FL 2); others are kept.
    func unitIdentifier(_ id: String, for designator: String) -> String {
        guard designator == "FL" else { return id }
        if isOrdinal(id) { return String(id.dropLast(2)) }
        if let ordinal = rules.ordinals[id] { return String(ordinal.dropLast(2)) }
        return id
    }

    /// number [fraction] [predirectional] name... [suffix] [postdirectional] [units]
    func parseStreet(_ input: ArraySlice<Token>, leadingUnits: [(String, String?)], skipped: Int) -> Delivery? {
        var tokens = input
        var address = StandardAddress()
        if let n = mileMarker(tokens) {
            // MILE K BEACH RD: where Alaska has no house numbers, the mile marker stands for one.
            address.number = tokens.prefix(n).map(\.text).joined(separator: " ")
            tokens = tokens.dropFirst(n)
        } else {
            guard let numberToken = tokens.first, isHouseNumber(numberToken.text) else { return nil }
            address.number = numberToken.text
            tokens = tokens.dropFirst()
        }
        if let fraction = tokens.first, isFraction(fraction.text) {
            address.number! += " " + fraction.text
            tokens = tokens.dropFirst()
        }
        // 6910 # G MARY CAROLINE CIR: a unit between the number and the street goes to the end.
        var earlyUnits: [(String, String?)] = []
        if let (unit, used) = unitAt(tokens), unit.1 != nil, tokens.count > used, !startsAddress(tokens.dropFirst(used)) {
            earlyUnits.append(unit)
            tokens = tokens.dropFirst(used)
        }
        guard let street = parseStreetParts(tokens) else { return nil }
        if let letter = street.numberSuffix { address.number! += " " + letter }
        // A box after a street address is where the mail goes (110 W EDWARDS PO BOX 5000).
        var rest = street.rest
        var extraUnits: [(String, String?)] = []
        if var box = parseBox(street.rest), startsAddress(street.rest) {
            if box.address.kind == .poBox && box.address.boxType != "PO BOX" {
                // A lockbox or drawer at a street address is a unit of that address.
                extraUnits = [(box.address.boxType, box.address.box)] + box.address.units
                rest = box.rest
            } else {
                box.address.units = street.units + box.address.units
                return Delivery(address: box.address, rest: box.rest, score: box.score)
            }
        }
        address.predirectional = street.predirectional
        address.street = street.name
        address.suffix = street.suffix
        address.postdirectional = street.postdirectional
        address.units = leadingUnits + street.units + earlyUnits + extraUnits
        var score = 2
        if let suffix = street.suffix { score += majorSuffixes.contains(suffix) ? 3 : 1 }
        if street.postdirectional != nil { score += 1 }
        if !street.units.isEmpty { score += 1 }
        if skipped > 0 { score -= 1 }
        // A number inside a name other than a route's (PEACHTREE ST NE 400 COLONY), or a directional
        // after a street type inside it (PEACHTREE ROAD NE CANTERBURY), reads worse.
        let nameWords = street.name.split(separator: " ").map(String.init)
        for k in nameWords.indices.dropFirst() {
            let word = nameWords[k], previous = nameWords[k - 1]
            if word.allSatisfy(\.isDigit), !isRouteWord(nameWords, k - 1), !highwayWords.contains(previous) {
                score -= 3
                break
            }
            if k + 1 < nameWords.count, majorSuffixes.contains(rules.suffixes[previous] ?? ""), rules.directionals[word] != nil {
                score -= 2
                break
            }
            // ENGLEWOOD ROAD ROUTE 776: the route's number given as a second name.
            if k >= 2, k + 1 < nameWords.count, highwayWords.contains(word), nameWords[k + 1].first?.isDigit == true,
               majorSuffixes.contains(rules.suffixes[previous] ?? "") {
                score -= 3
                break
            }
        }
        return Delivery(address: address, rest: rest, score: score)
    }

    func isFraction(_ text: String) -> Bool {
        let parts = text.split(separator: "/")
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isDigit) }
    }

    struct StreetParts {
        var numberSuffix: String?
        var predirectional: String?
        var name: String
        var suffix: String?
        var postdirectional: String?
        var units: [(String, String?)]
        var rest: ArraySlice<Token>
    }

    /// The street after the house number. The street ends at the first comma that is not
    /// followed by a directional or a unit, or at the end; units follow it.
    func parseStreetParts(_ input: ArraySlice<Token>) -> StreetParts? {
        // Where the street words end: before trailing units, or at a comma boundary.
        var end = input.startIndex
        var units: [(String, String?)] = []
        var i = input.startIndex
        while i < input.endIndex {
            let token = input[i]
            // A box after the street (110 W EDWARDS PO BOX 5000) starts a delivery line of its own.
            if i > input.startIndex, parseBox(input[i...]) != nil, !highwayWords.contains(input[i - 1].text) { break }
            // US HIGHWAY NO 130, STATE HIGHWAY #50: the number sign after a route word is not a unit.
            // (After a highway word that ends a name, DIXIE HWY # 312, it is a unit.)
            if i > input.startIndex, ["NO", "NUMBER", "#"].contains(token.text), highwayWords.contains(input[i - 1].text),
               i - 1 == input.startIndex || rules.routeWords.contains(input[i - 2].text)
                   || (i - 2 == input.startIndex && rules.directionals[input[i - 2].text] != nil),
               !token.commaBefore, i + 1 < input.endIndex, input[i + 1].text.first?.isDigit == true {
                i += 1
                continue
            }
            // OLD NUMBER 6 HIGHWAY: NUMBER and its number inside a name that goes on with a street type.
            if i > input.startIndex, ["NO", "NUMBER"].contains(token.text), !token.commaBefore, i + 2 < input.endIndex,
               input[i + 1].text.allSatisfy(\.isDigit), !input[i + 2].commaBefore,
               rules.suffixes[input[i + 2].text] != nil || rules.routeWords.contains(input[i + 2].text) {
                i += 2
                end = i
                continue
            }
            // ROUTE # A: the number sign between a route word and a letter is part of the name.
            if i > input.startIndex, token.text == "#", ["ROUTE", "RTE", "RT", "HIGHWAY", "HWY"].contains(input[i - 1].text),
               i + 1 < input.endIndex, input[i + 1].text.allSatisfy(\.isAlpha) {
                i += 1
                continue
            }
            // SIDE, REAR, LOWER before more street words are part of the name (550 WEST SIDE PL).
            if i > input.startIndex, let d = rules.units[token.text], !d.needsIdentifier, i + 1 < input.endIndex,
               !input[i + 1].commaBefore, rules.suffixes[input[i + 1].text] != nil || rules.directionals[input[i + 1].text] != nil {
                i += 1
                end = i
                continue
            }
            if i > input.startIndex && token.commaBefore && !isDirectional(input, at: i) && unitAt(input[i...]) == nil
                && stSuiteAt(input[i...], after: input[i - 1].text) == nil && wordUnitAt(input[i...], beforeBox: false) == nil {
                // ", 12C," is a unit written without its designator.
                if bareUnit(input, at: i) {
                    units.append(("#", token.text))
                    i += 1
                } else if i + 1 < input.endIndex, token.text.allSatisfy(\.isDigit), token.text.count <= 6,
                          input[i + 1].text.count == 1, input[i + 1].text.first!.isAlpha,
                          i + 2 == input.endIndex || input[i + 2].commaBefore {
                    units.append(("#", token.text + input[i + 1].text))  // , 106 D,
                    i += 2
                }
                break
            }
            if i > input.startIndex, let (unit, used) = unitAt(input[i...]) ?? stSuiteAt(input[i...], after: input[i - 1].text)
                ?? (token.commaBefore ? wordUnitAt(input[i...], beforeBox: false) : nil) {
                units.append(unit)
                i += used
                // More units may follow directly; a letter after an identifier belongs to it (APT 13 C).
                while i < input.endIndex {
                    if parseBox(input[i...]) != nil { break }
                    if let (more, n) = unitAt(input[i...]) ?? stSuiteAt(input[i...], after: input[i - 1].text, afterUnit: true)
                        ?? wordUnitAt(input[i...], beforeBox: false) ?? bareNumberUnit(input[i...]) {
                        units.append(more)
                        i += n
                    } else if input[i].text.count >= 2, rules.directionals[input[i].text] != nil, !input[i].commaBefore, let id = units.last?.1,
                              i + 1 == input.endIndex || input[i + 1].commaBefore {
                        units[units.count - 1].1 = id + " " + input[i].text  // # 3 SOUTH: the side of the building
                        i += 1
                    } else if input[i].text.count == 1, input[i].text.first!.isAlpha, !input[i].commaBefore,
                              let last = units.last, let id = last.1, id.last!.isDigit,
                              i + 1 == input.endIndex || input[i + 1].commaBefore {
                        units[units.count - 1].1 = id + input[i].text
                        i += 1
                    } else {
                        break
                    }
                }
                break
            }
            i += 1
            end = i
        }
        let scanned = Array(input[input.startIndex..<end].map(\.text))
        for (k, w) in scanned.enumerated() where (w == "AND" || w == "AT" || w == "&") && k > 0 && k + 1 < scanned.count {
            if scanned[k - 1].first!.isDigit && scanned[k + 1].first!.isDigit { return nil }
        }
        // 1015 FINANCIAL CENTER 505 20TH ST: a suffix word, then a house number: a building, then an address.
        for k in 1..<max(1, scanned.count - 1) where isBuildingEnd(scanned[k - 1]) && isHouseNumber(scanned[k])
            && scanned[k].allSatisfy(\.isDigit) && k + 1 < scanned.count && !scanned[k + 1].allSatisfy(\.isDigit)
            && scanned[(k + 1)...].contains(where: { rules.suffixes[$0] != nil }) {
            return nil
        }
        var words = Array(input[input.startIndex..<end].enumerated().filter { k, token in
            // Drop the # that sat between a route word and its number (ROUTE #5 -> ROUTE 5); NO stays
            // (US HIGHWAY NO 130 is the road's name).
            let j = input.startIndex + k
            return !(token.text == "#" && j > input.startIndex && j + 1 < input.endIndex && highwayWords.contains(input[j - 1].text)
                     && (j - 1 == input.startIndex || rules.routeWords.contains(input[j - 2].text)
                         || (j - 2 == input.startIndex && rules.directionals[input[j - 2].text] != nil)))
        }.map(\.element.text))
        var rest = input[i...]
        // A number after a finished street is an unlabelled unit (223 W JACKSON 512, 801 S CANAL
        // ST C1S), unless a route word precedes it (US HIGHWAY 278, COUNTY ROAD 183); so is a
        // letter after a suffix (280 SUMMIT CT B).
        // 1056 W NORTHSHORE 1 W, 1160 PARK AVE W 4 N: a unit number and its side.
        // 750 PARK AVE NE 41 SW, 1024 RANDOLPH 1 N: the same with a two-letter side, or after a one-word name.
        if units.isEmpty, let last = words.last, last.count <= 2, rules.directionals[last] != nil,
           words.count >= 4 || (words.count == 3 && rules.directionals[words[0]] == nil && last.count == 1),
           words[words.count - 2].allSatisfy(\.isDigit), words[words.count - 2].count <= 4,
           !isRouteWord(words, words.count - 3), !highwayWords.contains(words[words.count - 3]) {
            let before = words[words.count - 3]
            if last.count == 1 {
                units.append(("#", words[words.count - 2] + last))
                words.removeLast(2)
            } else if rules.directionals[before] != nil || rules.suffixes[before] != nil {
                units.append(("#", words[words.count - 2] + " " + last))
                words.removeLast(2)
            }
        }
        // One or two words and a number after a finished street: MAILBOX 2825, CLIENT CODE 28502.
        for labelWords in [2, 1] where words.count >= 3 + labelWords {
            guard let last = words.last, last.contains(where: \.isDigit), !isOrdinal(last) else { break }
            let label = words[(words.count - 1 - labelWords)..<(words.count - 1)]
            let before = words[words.count - 2 - labelWords]
            if label.allSatisfy({ $0.allSatisfy(\.isAlpha) && rules.suffixes[$0] == nil && rules.directionals[$0] == nil
                && !rules.routeWords.contains($0) }), rules.suffixes[before] != nil || rules.directionals[before] != nil,
               !(highwayWords.contains(before) && ["NO", "NUMBER"].contains(label.first!)) {
                units.insert((label.joined(separator: " "), last), at: 0)
                words.removeLast(labelWords + 1)
                break
            }
        }
        if units.isEmpty, words.count >= 3, let last = words.last, !isOrdinal(last), !isRouteWord(words, words.count - 2) {
            let previous = words[words.count - 2]
            let afterStreet = rules.suffixes[previous] != nil || rules.directionals[previous] != nil
            let mixed = last.first!.isDigit && last.contains(where: \.isAlpha) && last.count <= 4
            if last.contains(where: \.isDigit) && (last.allSatisfy(\.isDigit) || afterStreet || mixed) && last.count <= 8 {
                units.append(("#", last))
                words.removeLast()
            } else if last.count == 2, last.allSatisfy(\.isAlpha), rules.directionals[last] == nil, rules.states[last] == nil,
                      !Self.boxStartWords.contains(last),
                      rules.suffixes[last] == nil, majorSuffixes.contains(rules.suffixes[previous] ?? ""), rest.isEmpty {
                units.append(("#", last))
                words.removeLast()
            } else if last.count == 1, last.first!.isAlpha, rules.directionals[last] == nil,
                      rules.suffixes[previous] != nil || (rules.directionals[previous] != nil && words.count >= 4),
                      !(words.count == 2 || (words.count == 3 && rules.directionals[words[0]] != nil)) {
                units.append(("#", last))
                words.removeLast()
            }
        }
        guard !words.isEmpty, !words.contains("&"), words.first != "AND" else { return nil }
        if let last = words.last, rules.joinerWords.contains(last), words.count > 1 { return nil }
        // WELLS FARGO TOWER, CRESTAR BANK BLDG: a building's name, not a street.
        if let last = words.last, rules.buildingWords.contains(last),
           !words.dropLast().contains(where: { (rules.suffixes[$0] != nil && !rules.buildingWords.contains($0)) || rules.directionals[$0] != nil }) {
            return nil
        }
        // 6189 US HIGHWAY 18 AND 15, JUMER DR AT VETERANS PKWY: two roads, an intersection.
        for (k, w) in words.enumerated() where (w == "AND" || w == "AT") && k > 0 && k + 1 < words.count {
            let before = words[k - 1], after = words[k + 1]
            if before.first!.isDigit && after.first!.isDigit { return nil }
            if rules.suffixes[before] != nil && w == "AT" { return nil }
        }
        if !units.isEmpty, let suffixAt = words.indices.dropFirst().first(where: { majorSuffixes.contains(rules.suffixes[words[$0]] ?? "") }) {
            var k = suffixAt + 1
            if k < words.count, rules.directionals[words[k]] != nil { k += 1 }
            let tail = words[k...]
            if (1...3).contains(tail.count),
               tail.contains(where: { $0.count >= 3 && $0.allSatisfy(\.isAlpha) && rules.suffixes[$0] == nil && rules.directionals[$0] == nil }),
               tail.dropFirst().allSatisfy({ !$0.contains(where: \.isDigit) }), tail.count >= 2 || !tail.first!.contains(where: \.isDigit) {
                words.removeLast(tail.count)
            }
        }
        var parts = StreetParts(name: "", units: units, rest: rest)
        // 4922 B SOUTH CORNELL: a letter between the number and a directional belongs to the number.
        if words.count >= 3, words[0].count == 1, words[0].first!.isAlpha, rules.directionals[words[0]] == nil,
           rules.directionals[words[1]] != nil {
            parts.numberSuffix = words.removeFirst()
        }
        // Postdirectional (also two words: SOUTH WEST).
        if words.count >= 2, let (dir, n) = directionalAtEnd(words), words.count - n >= 1 {
            parts.postdirectional = dir
            words.removeLast(n)
        }
        // Suffix, unless it is the whole name.
        if words.count >= 2, let last = words.last, let standard = rules.suffixes[last],
           !(words.count >= 2 && isRouteWord(words, words.count - 2) && last.allSatisfy(\.isDigit)) {
            parts.suffix = standard
            words.removeLast()
        }
        // 3419 SAINT JOHN W ST: an abbreviated directional between the name and the suffix is
        // the postdirectional, which goes after the suffix (spelled out, PARK WEST DR, it is a name word).
        if parts.postdirectional == nil, parts.suffix != nil, words.count >= 2, let last = words.last, last.count <= 2,
           let d = rules.directionals[last], words.dropLast().contains(where: { rules.directionals[$0] == nil }) {
            parts.postdirectional = d
            words.removeLast()
        }
        // Predirectional, unless it is the whole name (200 NORTH ST).
        if words.count >= 2, let (dir, n) = directionalAtStart(words), words.count - n >= 1 {
            parts.predirectional = dir
            words.removeFirst(n)
        }
        // A name that was only a directional and a postdirectional: the first was the name.
        if words.isEmpty { return nil }
        // A suffix word first (AVENUE OF THE AMERICAS, AVE H, VIA DE VENTURA) is part of the name; AVE
        // there is spelled out, so AVE F and AVENUE F are one street.
        if words.count >= 2, rules.suffixes[words[0]] == "AVE", let full = rules.suffixWords["AVE"] { words[0] = full }
        parts.name = streetName(words)
        if parts.name.isEmpty { return nil }
        rest = parts.rest
        return parts
    }

    func isDirectional(_ tokens: ArraySlice<Token>, at i: Int) -> Bool { rules.directionals[tokens[i].text] != nil }

    /// The street name as written: ordinal words stay words (FIFTH AVE, as the USPS keeps
    /// them), misspelt route words take their standard spelling (OLD HGWY 50 -> OLD HWY 50).
    func streetName(_ words: [String]) -> String {
        if rules.routeSpellings.isEmpty { return words.joined(separator: " ") }
        return words.map { rules.routeSpellings[$0] ?? $0 }.joined(separator: " ")
    }

    /// A route word at `k` makes the number after it part of the name (US HIGHWAY 278,
    /// COUNTY ROAD 183, ROAD 5). ROAD and RD do only where they start the name or follow a
    /// route word or a directional: in CAMERON RD 3 the number is a unit.
    func isRouteWord(_ words: [String], _ k: Int) -> Bool {
        // US HIGHWAY NO 130: NO after a route word is part of the route's name.
        if k > 0, k < words.count, ["NO", "NUMBER"].contains(words[k]), highwayWords.contains(words[k - 1]) || rules.routeWords.contains(words[k - 1]) {
            return true
        }
        guard k >= 0, k < words.count, rules.routeWords.contains(words[k]) else { return false }
        guard rules.suffixes[words[k]] == "RD", k > 0 else { return true }
        let previous = words[k - 1]
        return rules.routeWords.contains(previous) || rules.directionals[previous] != nil
    }

    /// A unit identifier standing alone between commas, after the street: `, 12C,`, `, C-5`.
    func bareUnit(_ tokens: ArraySlice<Token>, at i: Int) -> Bool {
        let text = tokens[i].text
        guard text.contains(where: \.isDigit), text.count <= 8, !isOrdinal(text), zipToken(text) == nil else { return false }
        return i + 1 == tokens.endIndex || tokens[i + 1].commaBefore
    }

    func directionalAtEnd(_ words: [String]) -> (String, Int)? {
        if words.count >= 3, let a = rules.directionals[words[words.count - 2]], let b = rules.directionals[words[words.count - 1]],
           let combined = combine(a, b) {
            return (combined, 2)
        }
        if let d = rules.directionals[words[words.count - 1]] { return (d, 1) }
        return nil
    }

    func directionalAtStart(_ words: [String]) -> (String, Int)? {
        // S AND W FARM RD: two directions joined by AND.
        if words.count >= 4, words[1] == "AND", let a = rules.directionals[words[0]], let b = rules.directionals[words[2]],
           let combined = combine(a, b) {
            return (combined, 3)
        }
        if words.count >= 3, let a = rules.directionals[words[0]], let b = rules.directionals[words[1]], let combined = combine(a, b) {
            return (combined, 2)
        }
        if let d = rules.directionals[words[0]] { return (d, 1) }
        return nil
    }

    /// SOUTH WEST -> SW.
    func combine(_ a: String, _ b: String) -> String? {
        guard (a == "N" || a == "S") && (b == "E" || b == "W") else { return nil }
        return a + b
    }

    // MARK: Addresses given in pieces

    /// An address whose pieces are already known: columns of a list (house number, street,
    /// street type), or the labels of a labelled address.
    public struct Components: Sendable {
        public var number: [String] = []
        /// Street words in order, directionals and types included.
        public var street: [String] = []
        /// (designator, identifier) pairs; either may be missing.
        public var units: [(String?, String?)] = []
        /// Box words: PO BOX 12, RR 2 BOX 5, HC 68 BOX 19.
        public var box: [String] = []

        public init() {}
    }

    /// Standardises an address given in pieces, with the same rules as a line.
    public func standardize(components c: Components) -> Result<StandardAddress, AddressProblem> {
        var units: [(String, String?)] = []
        for (designator, id) in c.units {
            var d = designator.map { tokenize($0).map(\.text).joined(separator: " ") }
            var idWords = id.map { tokenize($0).map(\.text).filter { $0 != "#" } } ?? []
            // NO 102, SUITE 100, LOBBY: the identifier carries its own designator.
            if let first = idWords.first, first == "NO" || first == "NUMBER", idWords.count > 1 { idWords.removeFirst() }
            if let first = idWords.first, let known = rules.units[first], known.standard != "#",
               d == nil || rules.units[d!] == nil {
                d = first
                idWords.removeFirst()
            }
            let idText: String? = idWords.isEmpty ? nil : idWords.joined(separator: " ")
            if let d, let known = rules.units[d] {
                let standard = known.standard
                units.append((standard, idText.map { unitIdentifier($0, for: standard) }))
            } else if let d {
                units.append((d, idText))
            } else if let idText, !idText.isEmpty {
                units.append(("#", idText))
            }
        }
        var boxUnits: [(String, String?)] = []
        if !c.box.isEmpty {
            let tokens = tokenize(c.box.joined(separator: " "))
            guard var box = parseBox(tokens[...]), box.rest.isEmpty else {
                return .failure(AddressProblem("cannot read the box '\(c.box.joined(separator: " "))'"))
            }
            let lockbox = box.address.kind == .poBox && box.address.boxType != "PO BOX"
            if c.number.isEmpty || !lockbox {
                box.address.units = units + box.address.units
                return .success(box.address)
            }
            boxUnits = [(box.address.boxType, box.address.box)] + box.address.units
        }
        let number = tokenize(c.number.joined(separator: " ")).map(\.text)
        let marker = number.count == 2 && Self.mileWords.contains(number[0])
        guard let first = number.first, isHouseNumber(first) || marker else {
            return .failure(AddressProblem("no house number"))
        }
        var address = StandardAddress()
        address.number = number.joined(separator: " ")
        let streetTokens = tokenize(c.street.joined(separator: " ")).filter { $0.text != "#" }.map { Token(text: $0.text, commaBefore: false) }
        guard let street = parseStreetParts(streetTokens[...]), street.rest.isEmpty else {
            return .failure(AddressProblem("cannot read the street '\(c.street.joined(separator: " "))'"))
        }
        if let letter = street.numberSuffix { address.number! += " " + letter }
        address.predirectional = street.predirectional
        address.street = street.name
        address.suffix = street.suffix
        address.postdirectional = street.postdirectional
        address.units = street.units + units + boxUnits
        return .success(address)
    }

    /// A reason for a rejected address.
    func explain(_ tokens: [Token]) -> String {
        let text = tokens.map(\.text).joined(separator: " ")
        if !tokens.contains(where: { $0.text.contains(where: \.isDigit) }) {
            return "no house number or box number in '\(text)'"
        }
        if tokens.contains(where: { $0.text == "&" || $0.text == "AND" }) && !tokens.contains(where: { isHouseNumber($0.text) }) {
            return "'\(text)' is an intersection, not a delivery address"
        }
        return "cannot find a delivery line (house number and street, or a box) in '\(text)'"
    }
}


extension Character {
    /// 0-9 (only ASCII digits: cheaper than isNumber, and what addresses use).
    @inline(__always) var isDigit: Bool {
        guard let a = asciiValue else { return false }
        return a >= 48 && a <= 57
    }

    /// A letter: ASCII quickly, others by their Unicode properties.
    @inline(__always) var isAlpha: Bool {
        if let a = asciiValue { return (a >= 65 && a <= 90) || (a >= 97 && a <= 122) }
        return isLetter
    }
}
