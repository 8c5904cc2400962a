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
/// (`roof*`: roof, roofing, roofs), a lone `*` any one word (`new * residence`), and `**` up to
/// four words, or none (`construct ** sfr`: construct sfr, construct one new sfr).
public struct KeywordPattern: Sendable {
    enum Word: Sendable, Equatable {
        case exact(String), prefix(String), any, gap
        func matches(_ w: String) -> Bool {
            switch self {
            case .exact(let e): return w == e
            case .prefix(let p): return w.hasPrefix(p)
            case .any, .gap: return true
            }
        }
    }
    /// The most words `**` stands for.
    static let gapWords = 4
    let alternatives: [[Word]]
    public let text: String

    public init?(_ text: String) {
        var alternatives: [[Word]] = []
        for alternative in text.split(separator: "|") {
            var words: [Word] = []
            for piece in alternative.split(separator: " ") {
                if piece == "*" || piece == "**" {
                    words.append(piece == "*" ? .any : .gap)
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
            guard let first = words.first, first != .any, first != .gap, words.last != .gap else { return nil }
            alternatives.append(words)
        }
        guard !alternatives.isEmpty else { return nil }
        self.alternatives = alternatives
        self.text = text
    }

    /// The alternative found in `words`, or nil.
    public func firstMatch(in words: [String]) -> String? {
        for alternative in alternatives {
            let fixed = alternative.filter { $0 != .gap }.count
            guard fixed <= words.count else { continue }
            for start in 0...(words.count - fixed) {
                if let end = KeywordPattern.match(alternative[...], words, at: start) {
                    return words[start..<end].joined(separator: " ")
                }
            }
        }
        return nil
    }

    /// Where `pattern` matched at `start` ends, or nil. A field boundary (`|`) is never
    /// crossed.
    static func match(_ pattern: ArraySlice<Word>, _ words: [String], at start: Int) -> Int? {
        guard let word = pattern.first else { return start }
        if word == .gap {
            for skip in 0...gapWords where start + skip <= words.count {
                if skip > 0 && words[start + skip - 1] == "|" { break }
                if let end = match(pattern.dropFirst(), words, at: start + skip) { return end }
            }
            return nil
        }
        guard start < words.count, words[start] != "|", word.matches(words[start]) else { return nil }
        return match(pattern.dropFirst(), words, at: start + 1)
    }
}

/// The permit text a trade rule can look at: a field, or `type`, the type fields together
/// (permit_type, permit_subtype, work_class, work_type: what the city filed the permit as).
public enum PermitText: String, Sendable, CaseIterable {
    case description, permitType = "permit_type", workType = "work_type", permitID = "permit_id", type, text

    /// The record fields of the text (`text`: the type fields and the description).
    var fields: [String] {
        switch self {
        case .description: return ["project_description"]
        case .type: return ["permit_type", "permit_subtype", "work_class", "work_type"]
        case .text: return ["permit_type", "permit_subtype", "work_class", "work_type", "project_description"]
        default: return [rawValue]
        }
    }
}

/// The words of one permit's fields, split once and spelled out with the vocabulary
/// (`PLBG` is `plumbing`, `SNGL FAM` is `single family`). Fields joined in one text are
/// kept apart by `|`, which no pattern crosses.
public struct PermitWordSet {
    let words: [[String]]

    public init(_ permit: Record, vocabulary: TradeVocabulary = TradeVocabulary(entries: [])) {
        words = PermitText.allCases.map { text in
            var out: [String] = []
            for field in text.fields {
                let split = vocabulary.spell(PermitWords.split(permit.text(field) ?? ""))
                if split.isEmpty { continue }
                if !out.isEmpty { out.append("|") }
                out += split
            }
            return out
        }
    }

    func of(_ text: PermitText) -> [String] { words[PermitText.allCases.firstIndex(of: text)!] }
}

/// The abbreviations and spellings of permit systems, `stages/tag/trade-words.csv`
/// (`from,to`): each run of words `from` is read as the words `to` before any rule looks
/// (`plbg` -> `plumbing`, `non res` -> `nonresidential`, `w h` -> `water heater`), the longest
/// run first.
public struct TradeVocabulary: Sendable {
    let entries: [(from: [String], to: [String])]
    let byFirst: [String: [Int]]

    public init(entries: [(from: [String], to: [String])]) {
        let sorted = entries.sorted { $0.from.count > $1.from.count }
        self.entries = sorted
        var index: [String: [Int]] = [:]
        for (n, entry) in sorted.enumerated() { index[entry.from[0], default: []].append(n) }
        byFirst = index
    }

    public static func load(_ path: String) throws(StageError) -> TradeVocabulary {
        var entries: [([String], [String])] = []
        for row in try RulesFile(path: path, required: ["from", "to"]).rows {
            let from = PermitWords.split(try row.required("from")), to = PermitWords.split(row["to"])
            guard !from.isEmpty else { throw row.error("from has no words") }
            entries.append((from, to))
        }
        return TradeVocabulary(entries: entries)
    }

    /// `words` with every run the vocabulary knows spelled out.
    public func spell(_ words: [String]) -> [String] {
        guard !entries.isEmpty else { return words }
        var out: [String] = []
        out.reserveCapacity(words.count)
        var i = 0
        outer: while i < words.count {
            if let candidates = byFirst[words[i]] {
                for n in candidates {
                    let from = entries[n].from
                    if i + from.count <= words.count && Array(words[i..<(i + from.count)]) == from {
                        out += entries[n].to
                        i += from.count
                        continue outer
                    }
                }
            }
            out.append(words[i])
            i += 1
        }
        return out
    }
}

/// One condition of a rule: a keyword pattern over one field.
public struct TextCondition: Sendable {
    public let field: PermitText
    public let pattern: KeywordPattern

    /// `field:pattern`, as the `and` column writes it.
    init(field: String, pattern: String, row: RulesFile.Row) throws(StageError) {
        guard let f = PermitText(rawValue: field) else {
            throw row.error("unknown field '\(field)' (description, type, text, permit_type, work_type, permit_id)")
        }
        guard let p = KeywordPattern(pattern) else { throw row.error("cannot read the pattern '\(pattern)'") }
        self.field = f
        self.pattern = p
    }

    func match(_ words: PermitWordSet) -> String? { pattern.firstMatch(in: words.of(field)) }
}

/// The trade rules of `stages/tag/`: `trades.csv`
/// (`trade_group,category,field,pattern[,and][,unless][,commercial_category]`), `commercial.csv`
/// (`field,pattern,means`), `trade-words.csv` (the vocabulary) and `trade-tags.csv`
/// (`tag,field,pattern`).
///
/// A permit's trade is the first trade rule, in file order, whose pattern is found in its
/// field (and whose `and` condition, `field:pattern`, holds too, and whose `unless` condition
/// does not); none: other/other. The permit is commercial when the first commercial rule
/// that matches says `commercial` (none: residential). A commercial permit takes the rule's
/// commercial_category in the commercial group (a pool becomes commercial/commercial_pool); a
/// rule without one sends commercial work to other/other, since its buyers are residential
/// contractors. Besides the one category that decides the export file, `trade_tags` lists
/// every trade the permit touches: each tag of trade-tags.csv whose pattern is found, so a
/// solar permit on a new roof reaches the roofer's and the solar installer's lists.
public struct TradeRules: Sendable {
    public struct Rule: Sendable {
        public let group: String
        public let category: String
        public let condition: TextCondition
        public let and: TextCondition?
        public let unless: TextCondition?
        public let commercialCategory: String?
        public let line: Int
    }
    public struct CommercialRule: Sendable {
        public let condition: TextCondition
        public let commercial: Bool
        public let line: Int
    }
    public struct TagRule: Sendable {
        public let tag: String
        public let condition: TextCondition
    }

    public static let commercialGroup = "commercial"
    public static let other = "other"

    public let rules: [Rule]
    public let commercial: [CommercialRule]
    public let vocabulary: TradeVocabulary
    public let tags: [TagRule]
    let file: String
    let commercialFile: String

    /// The rules of a stages/tag directory.
    public static func load(directory: String) throws(StageError) -> TradeRules {
        try load(trades: directory + "/trades.csv", commercial: directory + "/commercial.csv",
                 vocabulary: directory + "/trade-words.csv", tags: directory + "/trade-tags.csv")
    }

    public static func load(trades: String, commercial: String, vocabulary: String? = nil, tags: String? = nil) throws(StageError) -> TradeRules {
        func condition(_ text: String, _ row: RulesFile.Row, _ column: String) throws(StageError) -> TextCondition? {
            guard !text.isEmpty else { return nil }
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { throw row.error("\(column) must be field:pattern") }
            return try TextCondition(field: String(parts[0]), pattern: String(parts[1]), row: row)
        }
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
            rules.append(Rule(group: group, category: category,
                              condition: try TextCondition(field: try row.required("field"), pattern: try row.required("pattern"), row: row),
                              and: try condition(row["and"], row, "and"), unless: try condition(row["unless"], row, "unless"),
                              commercialCategory: row["commercial_category"].isEmpty ? nil : row["commercial_category"],
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
        var tagRules: [TagRule] = []
        if let tags {
            for row in try RulesFile(path: tags, required: ["tag", "field", "pattern"]).rows {
                let tag = try row.required("tag")
                guard tag.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
                    throw row.error("'\(tag)' is not a plain tag name (lowercase letters, digits, _)")
                }
                tagRules.append(TagRule(tag: tag, condition: try TextCondition(field: try row.required("field"), pattern: try row.required("pattern"), row: row)))
            }
        }
        return TradeRules(rules: rules, commercial: commercialRules,
                          vocabulary: try vocabulary.map(TradeVocabulary.load) ?? TradeVocabulary(entries: []),
                          tags: tagRules, file: trades, commercialFile: commercial)
    }

    /// What `classify` decided, and why.
    public struct Trade: Equatable, Sendable {
        public var group: String
        public var category: String
        public var isCommercial: Bool
        /// `trades.csv:12 description "swimming pool"; commercial.csv:3 permit_type "c"`.
        public var because: String
        /// Every trade the permit touches (trade-tags.csv), in file order.
        public var tags: [String] = []
    }

    public func classify(_ permit: Record) -> Trade {
        let words = PermitWordSet(permit, vocabulary: vocabulary)
        var trade = decide(words)
        var tags: [String] = []
        for rule in self.tags where !tags.contains(rule.tag) && rule.condition.match(words) != nil { tags.append(rule.tag) }
        if trade.category != TradeRules.other && !tags.contains(trade.category) { tags.insert(trade.category, at: 0) }
        trade.tags = tags
        return trade
    }

    func decide(_ words: PermitWordSet) -> Trade {
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
            if let unless = rule.unless, unless.match(words) != nil { continue }
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

    /// Appends (or replaces) trade_group, category, is_commercial, trade_tags and trade_rule.
    public func tag(_ permit: inout Record) {
        let trade = classify(permit)
        permit["trade_group"] = .string(trade.group)
        permit["category"] = .string(trade.category)
        permit["is_commercial"] = .bool(trade.isCommercial)
        permit["trade_tags"] = .array(trade.tags.map { .string($0) })
        permit["trade_rule"] = .string(trade.because)
    }
}
