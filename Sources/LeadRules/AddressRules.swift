import StageKit

/// The tables of USPS Publication 28 that address standardisation reads from
/// `stages/normalize/`: street suffixes (Appendix C1), secondary unit designators
/// (Appendix C2), directionals, state names, street-name words and city words.
public struct AddressRules: Sendable {
    /// Any spelling of a street suffix -> its standard abbreviation (AVENUE, AV, AVEN -> AVE).
    public let suffixes: [String: String]
    /// A standard suffix abbreviation -> its full word, for suffixes used before the name
    /// (AVENUE OF THE AMERICAS), which are spelled out.
    public let suffixWords: [String: String]
    /// A unit designator -> its standard form and whether an identifier follows.
    public let units: [String: UnitDesignator]
    /// NORTH, N -> N, ...
    public let directionals: [String: String]
    /// State names and abbreviations (possibly several words) -> the USPS code.
    public let states: [String: String]
    public let longestStateName: Int
    /// FIFTH -> 5TH, ...
    public let ordinals: [String: String]
    /// Words after which a number is part of a route name (US HIGHWAY 278, COUNTY ROAD 183).
    public let routeWords: Set<String>
    /// Misspelt route words and the spelling they take in a standard line (HGWY -> HWY).
    public var routeSpellings: [String: String] = [:]
    /// Words that begin multi-word city names (ST LOUIS, N PALM BEACH).
    public let cityWords: Set<String>
    /// Words that join a street name's parts (VIA DE VENTURA, CAMINO DEL MAR): a suffix word
    /// before them does not end the street.
    public let joinerWords: Set<String>
    /// Words after a route number that belong to the route (HIGHWAY 71 BUSINESS).
    public let routeQualifiers: Set<String>
    /// Words that introduce an account number, not a unit (CUSTOMER # 55-0037082).
    public let referenceWords: Set<String>
    /// Words that end building names (TOWER, BLDG, CENTER).
    public let buildingWords: Set<String>
    /// City names easily read as street words (ST LOUIS, CEDAR RAPIDS).
    public let cityNames: Set<String>

    public struct UnitDesignator: Sendable {
        public let standard: String
        public let needsIdentifier: Bool
    }

    /// Reads the tables from `directory` (stages/normalize).
    public static func load(directory: String) throws(StageError) -> AddressRules {
        var suffixes: [String: String] = [:]
        var suffixWords: [String: String] = [:]
        for row in try RulesFile(path: directory + "/street-suffixes.csv", required: ["suffix", "standard"]).rows {
            let spelling = try row.required("suffix").uppercased()
            let standard = try row.required("standard").uppercased()
            if let existing = suffixes[spelling], existing != standard {
                throw row.error("\(spelling) is already the suffix \(existing)")
            }
            suffixes[spelling] = standard
            if suffixWords[standard] == nil { suffixWords[standard] = spelling }
        }
        var units: [String: UnitDesignator] = [:]
        for row in try RulesFile(path: directory + "/unit-designators.csv", required: ["designator", "standard", "needs_id"]).rows {
            let needs = row["needs_id"].lowercased()
            guard needs == "yes" || needs == "no" else { throw row.error("needs_id must be yes or no") }
            units[try row.required("designator").uppercased()] =
                UnitDesignator(standard: try row.required("standard").uppercased(), needsIdentifier: needs == "yes")
        }
        var directionals: [String: String] = [:]
        for row in try RulesFile(path: directory + "/directionals.csv", required: ["directional", "standard"]).rows {
            directionals[try row.required("directional").uppercased()] = try row.required("standard").uppercased()
        }
        var states: [String: String] = [:]
        var longest = 1
        for row in try RulesFile(path: directory + "/states.csv", required: ["name", "code"]).rows {
            let name = try row.required("name").uppercased()
            let code = try row.required("code").uppercased()
            guard code.count == 2 else { throw row.error("a state code has two letters, not '\(code)'") }
            states[name] = code
            longest = max(longest, name.split(separator: " ").count)
        }
        var ordinals: [String: String] = [:]
        var routeWords = Set<String>()
        var routeSpellings: [String: String] = [:]
        var joinerWords = Set<String>()
        var routeQualifiers = Set<String>()
        var referenceWords = Set<String>()
        var buildingWords = Set<String>()
        var tens: [(String, Int)] = []
        for row in try RulesFile(path: directory + "/street-name-words.csv", required: ["word", "standard", "kind"]).rows {
            switch row["kind"] {
            case "ordinal": ordinals[try row.required("word").uppercased()] = try row.required("standard").uppercased()
            case "route":
                let word = try row.required("word").uppercased()
                routeWords.insert(word)
                let standard = row["standard"].uppercased()
                if !standard.isEmpty && standard != word { routeSpellings[word] = standard }
            case "joiner": joinerWords.insert(try row.required("word").uppercased())
            case "route-qualifier": routeQualifiers.insert(try row.required("word").uppercased())
            case "reference": referenceWords.insert(try row.required("word").uppercased())
            case "building": buildingWords.insert(try row.required("word").uppercased())
            case "tens":
                guard let value = Int(row["standard"]), value % 10 == 0, value >= 20 else {
                    throw row.error("a tens word's standard is its value: 20, 30, ... 90")
                }
                tens.append((try row.required("word").uppercased(), value))
            default: throw row.error("kind must be ordinal, tens, route, joiner, route-qualifier, reference or building")
            }
        }
        // TWENTY-FIRST -> 21ST: each tens word joined to each of FIRST ... NINTH.
        let ones = ordinals.compactMap { word, standard -> (String, Int)? in
            guard let n = Int(standard.dropLast(2)), (1...9).contains(n) else { return nil }
            return (word, n)
        }
        for (tensWord, value) in tens {
            for (unitWord, n) in ones {
                let ending = n == 1 ? "ST" : n == 2 ? "ND" : n == 3 ? "RD" : "TH"
                ordinals[tensWord + "-" + unitWord] = "\(value + n)\(ending)"
            }
        }
        var cityNames = Set<String>()
        for row in try RulesFile(path: directory + "/city-names.csv", required: ["city"]).rows {
            cityNames.insert(try row.required("city").uppercased())
        }
        var cityWords = Set<String>()
        for row in try RulesFile(path: directory + "/city-words.csv", required: ["word"]).rows {
            cityWords.insert(try row.required("word").uppercased())
        }
        var rules = AddressRules(suffixes: suffixes, suffixWords: suffixWords, units: units, directionals: directionals,
                                 states: states, longestStateName: longest, ordinals: ordinals, routeWords: routeWords,
                                 cityWords: cityWords, joinerWords: joinerWords, routeQualifiers: routeQualifiers,
                                 referenceWords: referenceWords, buildingWords: buildingWords, cityNames: cityNames)
        rules.routeSpellings = routeSpellings
        return rules
    }
}
