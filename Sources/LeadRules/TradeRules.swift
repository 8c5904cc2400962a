import StageKit

/// Words of a permit's text, for keyword rules: lowercase ASCII runs of letters or of digits
/// (`2-story` is `2 story`, `2story` too, `BLD2023-01` is `bld 2023 01`, `req'd` is `req d`).
public enum PermitWords {
    public static func split(_ text: String) -> [String] {
        var words: [String] = []
        var current: [UInt8] = []
        var kind = 0 // 1 letters, 2 digits
        var text = text
        text.withUTF8 { bytes in
            for var b in bytes {
                if b >= 65 && b <= 90 { b += 32 }
                let k = (b >= 97 && b <= 122) ? 1 : ((b >= 48 && b <= 57) ? 2 : 0)
                if k != kind {
                    if !current.isEmpty { words.append(String(decoding: current, as: UTF8.self)); current.removeAll(keepingCapacity: true) }
                    kind = k
                }
                if k != 0 { current.append(b) }
            }
        }
        if !current.isEmpty { words.append(String(decoding: current, as: UTF8.self)) }
        return words
    }
}

/// A keyword pattern: alternatives separated by `|`, each one or more words that must appear
/// in a row (`swimming pool`); a word ending in `*` matches any word it begins
/// (`roof*`: roof, roofing, roofs), a lone `*` any one word (`new * residence`).
public struct KeywordPattern: Sendable {
    enum Word: Sendable, Equatable {
        case exact(String), prefix(String), any
        func matches(_ w: String) -> Bool {
            switch self {
            case .exact(let e): return w == e
            case .prefix(let p): return w.hasPrefix(p)
            case .any: return true
            }
        }
    }
    let alternatives: [[Word]]
    public let text: String

    public init?(_ text: String) {
        var alternatives: [[Word]] = []
        for alternative in text.split(separator: "|") {
            var words: [Word] = []
            for piece in alternative.split(separator: " ") {
                if piece == "*" {
                    words.append(.any)
                    continue
                }
                let star = piece.hasSuffix("*")
                let core = star ? piece.dropLast() : piece
                let parts = PermitWords.split(String(core))
                guard !parts.isEmpty else { return nil }
                for (n, part) in parts.enumerated() {
                    words.append(star && n == parts.count - 1 ? .prefix(String(part)) : .exact(String(part)))
                }
            }
            guard let first = words.first, first != .any else { return nil }
            alternatives.append(words)
        }
        guard !alternatives.isEmpty else { return nil }
        self.alternatives = alternatives
        self.text = text
    }

    /// The alternative found in `words`, or nil.
    public func firstMatch(in words: [String]) -> String? {
        for alternative in alternatives where alternative.count <= words.count {
            for start in 0...(words.count - alternative.count) {
                var all = true
                for (k, word) in alternative.enumerated() where !word.matches(words[start + k]) {
                    all = false
                    break
                }
                if all { return words[start..<(start + alternative.count)].joined(separator: " ") }
            }
        }
        return nil
    }
}

/// The permit text a trade rule can look at.
public enum PermitText: String, Sendable, CaseIterable {
    case description, permitType = "permit_type", workType = "work_type", permitID = "permit_id"

    var field: String { self == .description ? "project_description" : rawValue }
}

/// The words of one permit's fields, split once.
public struct PermitWordSet {
    let words: [[String]]

    public init(_ permit: Record) {
        words = PermitText.allCases.map { PermitWords.split(permit.text($0.field) ?? "") }
    }

    func of(_ text: PermitText) -> [String] { words[PermitText.allCases.firstIndex(of: text)!] }
}

/// One condition of a rule: a keyword pattern over one field.
public struct TextCondition: Sendable {
    public let field: PermitText
    public let pattern: KeywordPattern

    /// `field:pattern`, as the `and` column writes it.
    init(field: String, pattern: String, row: RulesFile.Row) throws(StageError) {
        guard let f = PermitText(rawValue: field) else {
            throw row.error("unknown field '\(field)' (description, permit_type, work_type, permit_id)")
        }
        guard let p = KeywordPattern(pattern) else { throw row.error("cannot read the pattern '\(pattern)'") }
        self.field = f
        self.pattern = p
    }

    func match(_ words: PermitWordSet) -> String? { pattern.firstMatch(in: words.of(field)) }
}

/// The trade rules, `stages/tag/trades.csv` (`trade_group,category,field,pattern[,and][,commercial_category]`)
/// and the commercial rules, `stages/tag/commercial.csv` (`field,pattern,means`).
///
/// A permit's trade is the first trade rule, in file order, whose pattern is found in its
/// field (and whose `and` condition, `field:pattern`, holds too); none: other/other. The permit
/// is commercial when the first commercial rule that matches says `commercial` (none:
/// residential). A commercial permit takes the rule's commercial_category in the commercial
/// group (a pool becomes commercial/commercial_pool); a rule without one sends commercial
/// work to other/other, since its buyers are residential contractors.
public struct TradeRules: Sendable {
    public struct Rule: Sendable {
        public let group: String
        public let category: String
        public let condition: TextCondition
        public let and: TextCondition?
        public let commercialCategory: String?
        public let line: Int
    }
    public struct CommercialRule: Sendable {
        public let condition: TextCondition
        public let commercial: Bool
        public let line: Int
    }

    public static let commercialGroup = "commercial"
    public static let other = "other"

    public let rules: [Rule]
    public let commercial: [CommercialRule]
    let file: String
    let commercialFile: String

    public static func load(trades: String, commercial: String) throws(StageError) -> TradeRules {
        var rules: [Rule] = []
        for row in try RulesFile(path: trades, required: ["trade_group", "category", "field", "pattern"]).rows {
            let group = try row.required("trade_group"), category = try row.required("category")
            for name in [group, category, row["commercial_category"]] where !name.isEmpty {
                // Group and category names become directories under exports/: plain names only.
                guard name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }),
                      !name.hasPrefix("_") else {
                    throw row.error("'\(name)' is not a plain name (lowercase letters, digits, _)")
                }
            }
            var and: TextCondition?
            if !row["and"].isEmpty {
                let parts = row["and"].split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { throw row.error("and must be field:pattern") }
                and = try TextCondition(field: String(parts[0]), pattern: String(parts[1]), row: row)
            }
            rules.append(Rule(group: group, category: category,
                              condition: try TextCondition(field: try row.required("field"), pattern: try row.required("pattern"), row: row),
                              and: and, commercialCategory: row["commercial_category"].isEmpty ? nil : row["commercial_category"],
                              line: row.line))
        }
        var commercialRules: [CommercialRule] = []
        for row in try RulesFile(path: commercial, required: ["field", "pattern", "means"]).rows {
            let means = try row.required("means")
            guard means == "commercial" || means == "residential" else { throw row.error("means must be commercial or residential") }
            commercialRules.append(CommercialRule(
                condition: try TextCondition(field: try row.required("field"), pattern: try row.required("pattern"), row: row),
                commercial: means == "commercial", line: row.line))
        }
        return TradeRules(rules: rules, commercial: commercialRules, file: trades, commercialFile: commercial)
    }

    /// What `classify` decided, and why.
    public struct Trade: Equatable, Sendable {
        public var group: String
        public var category: String
        public var isCommercial: Bool
        /// `trades.csv:12 description "swimming pool"; commercial.csv:3 permit_type "c"`.
        public var because: String
    }

    public func classify(_ permit: Record) -> Trade {
        let words = PermitWordSet(permit)
        var isCommercial = false
        var reasons: [String] = []
        for rule in commercial {
            if let found = rule.condition.match(words) {
                isCommercial = rule.commercial
                reasons.append("\(rule.commercial ? "commercial" : "residential"): \(name(commercialFile)):\(rule.line) \(rule.condition.field.rawValue) \"\(found)\"")
                break
            }
        }
        for rule in rules {
            guard let found = rule.condition.match(words) else { continue }
            var why = "\(name(file)):\(rule.line) \(rule.condition.field.rawValue) \"\(found)\""
            if let and = rule.and {
                guard let also = and.match(words) else { continue }
                why += " and \(and.field.rawValue) \"\(also)\""
            }
            reasons.insert(why, at: 0)
            if isCommercial {
                if let c = rule.commercialCategory {
                    return Trade(group: TradeRules.commercialGroup, category: c, isCommercial: true, because: reasons.joined(separator: "; "))
                }
                return Trade(group: TradeRules.other, category: TradeRules.other, isCommercial: true,
                             because: reasons.joined(separator: "; ") + " (\(rule.category), commercial)")
            }
            return Trade(group: rule.group, category: rule.category, isCommercial: false, because: reasons.joined(separator: "; "))
        }
        reasons.insert("no trade rule matched", at: 0)
        return Trade(group: TradeRules.other, category: TradeRules.other, isCommercial: isCommercial, because: reasons.joined(separator: "; "))
    }

    /// Every group/category pair the rules can produce (for the exports tree), in rule order.
    public var categories: [(group: String, category: String)] {
        var seen = Set<String>()
        var out: [(String, String)] = []
        for rule in rules {
            for pair in [(rule.group, rule.category)] + (rule.commercialCategory.map { [(TradeRules.commercialGroup, $0)] } ?? [])
            where seen.insert(pair.0 + "/" + pair.1).inserted {
                out.append(pair)
            }
        }
        if seen.insert("other/other").inserted { out.append((TradeRules.other, TradeRules.other)) }
        return out
    }

    func name(_ path: String) -> String { String(path.split(separator: "/").last ?? Substring(path)) }

    /// Appends (or replaces) trade_group, category, is_commercial and trade_rule.
    public func tag(_ permit: inout Record) {
        let trade = classify(permit)
        permit["trade_group"] = .string(trade.group)
        permit["category"] = .string(trade.category)
        permit["is_commercial"] = .bool(trade.isCommercial)
        permit["trade_rule"] = .string(trade.because)
    }
}
