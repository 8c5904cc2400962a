import StageKit

/// Words of a permit's text, for keyword rules: lowercase ASCII runs of letters or of digits
/// (`2-story` is `2 story`, `2story` too, `BLD2023-01` is `bld 2023 01`, `req'd` is `req d`).
public enum PermitWords {
    /// A text's words, lowercased: runs of letters and runs of digits (`2-story` is 2, story;
    /// `BLD2023` is bld, 2023). A run of letters between digits is not a word but part of a
    /// code (`70AC112511`, a project number, is one word, not an AC).
    public static func split(_ text: String) -> [String] {
        var words: [String] = []
        var run: [UInt8] = []
        var cuts: [Int] = []   // where, inside the run, letters and digits meet
        var kinds: [Int] = []  // the kind of each part (1 letters, 2 digits)
        func flush() {
            guard !run.isEmpty else { return }
            var coded = false
            if kinds.count >= 3 {
                for i in 1..<(kinds.count - 1) where kinds[i] == 1 && kinds[i - 1] == 2 && kinds[i + 1] == 2 { coded = true }
            }
            if coded {
                words.append(String(decoding: run, as: UTF8.self))
            } else {
                var start = 0
                for end in cuts + [run.count] {
                    words.append(String(decoding: run[start..<end], as: UTF8.self))
                    start = end
                }
            }
            run.removeAll(keepingCapacity: true); cuts.removeAll(keepingCapacity: true); kinds.removeAll(keepingCapacity: true)
        }
        var text = text
        text.withUTF8 { bytes in
            for var b in bytes {
                if b >= 65 && b <= 90 { b += 32 }
                let k = (b >= 97 && b <= 122) ? 1 : ((b >= 48 && b <= 57) ? 2 : 0)
                if k == 0 { flush(); continue }
                if let last = kinds.last {
                    if last != k { cuts.append(run.count); kinds.append(k) }
                } else {
                    kinds.append(k)
                }
                run.append(b)
            }
        }
        flush()
        return words
    }
}

/// A permit text's words as the keyword patterns compare them: for each word its FNV-1a
/// hash, its first eight bytes and its length, taken once per permit, so that a pattern word
/// is matched by comparing integers (the bytes only when they agree); `|` keeps fields apart.
public struct PatternWords: Sendable {
    struct Key: Sendable {
        let hash: UInt64
        /// The first 8 bytes, the first in the low byte, zero-padded.
        let head: UInt64
        /// -1 for the field boundary.
        let count: Int
    }
    let keys: [Key]
    public let texts: [String]
    /// Which words the text holds, roughly: a bit (of 128) per word hash, and a bit (of 64) per
    /// first byte; a pattern alternative needing a bit the text lacks cannot match.
    let bloom: Bloom

    public init(_ texts: [String]) {
        self.texts = texts
        keys = texts.map { text in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325, head: UInt64 = 0, n = 0
            for byte in text.utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
                if n < 8 { head |= UInt64(byte) << (8 * UInt64(n)) }
                n += 1
            }
            return Key(hash: hash, head: head, count: text == "|" ? -1 : n)
        }
        var bloom = Bloom()
        for key in keys where key.count >= 0 {
            bloom.addWord(key.hash)
            bloom.addInitial(key.head)
        }
        self.bloom = bloom
    }

    struct Bloom: Sendable {
        var low: UInt64 = 0, high: UInt64 = 0, initials: UInt64 = 0

        mutating func addWord(_ hash: UInt64) {
            let bit = hash >> 57
            if bit < 64 { low |= 1 << bit } else { high |= 1 << (bit - 64) }
        }
        mutating func addInitial(_ head: UInt64) { initials |= 1 << (head & 63) }
        /// Whether every bit of `needed` is here.
        func covers(_ needed: Bloom) -> Bool {
            low & needed.low == needed.low && high & needed.high == needed.high && initials & needed.initials == needed.initials
        }
    }

    static func hash(_ text: String) -> UInt64 { PatternWords([text]).keys[0].hash }
    static func head(_ text: String) -> UInt64 { PatternWords([text]).keys[0].head }
    public var count: Int { keys.count }
}

/// A keyword pattern: alternatives separated by `|`, each one or more words that must appear
/// in a row (`swimming pool`); a word ending in `*` matches any word it begins
/// (`roof*`: roof, roofing, roofs), a lone `*` any one word (`new * residence`), and `**` up to
/// four words, or none (`construct ** sfr`: construct sfr, construct one new sfr).
public struct KeywordPattern: Sendable {
    /// A pattern word; `text` is the alternative's `texts` entry that spells it out.
    enum Word: Sendable, Equatable {
        case exact(hash: UInt64, text: Int), prefix(head: UInt64, mask: UInt64, count: Int, text: Int), any, gap
    }
    /// A class, so that walking the alternatives of every rule for every permit costs one
    /// reference count each, not one per array inside.
    final class Alternative: Sendable {
        let words: [Word]
        /// The words and prefixes, for the rare comparison the integers cannot settle.
        let texts: [String]
        /// The words that are not `**`: the fewest the alternative can match.
        let fixed: Int
        /// The bits of its words and prefixes: a text without them all is passed over.
        let needs: PatternWords.Bloom

        init(words: [Word], texts: [String]) {
            self.words = words
            self.texts = texts
            fixed = words.filter { $0 != .gap }.count
            var needs = PatternWords.Bloom()
            for word in words {
                switch word {
                case .exact(let hash, _): needs.addWord(hash)
                case .prefix(let head, _, _, _): needs.addInitial(head)
                case .any, .gap: break
                }
            }
            self.needs = needs
        }

        @inline(__always)
        func matches(_ word: Word, _ words: PatternWords, _ i: Int) -> Bool {
            let key = words.keys[i]
            switch word {
            case .exact(let hash, let text): return key.hash == hash && words.texts[i] == texts[text]
            case .prefix(let head, let mask, let count, let text):
                guard key.count >= count, key.head & mask == head else { return false }
                return count <= 8 || words.texts[i].utf8.starts(with: texts[text].utf8)
            case .any, .gap: return key.count >= 0
            }
        }
    }
    /// The most words `**` stands for.
    static let gapWords = 4
    let alternatives: [Alternative]
    public let text: String

    public init?(_ text: String) {
        var alternatives: [Alternative] = []
        for alternative in text.split(separator: "|") {
            var words: [Word] = [], texts: [String] = []
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
                    texts.append(part)
                    if star && n == parts.count - 1 {
                        let count = part.utf8.count
                        words.append(.prefix(head: PatternWords.head(part), mask: count >= 8 ? ~0 : (1 << (8 * UInt64(count))) - 1,
                                             count: count, text: texts.count - 1))
                    } else {
                        words.append(.exact(hash: PatternWords.hash(part), text: texts.count - 1))
                    }
                }
            }
            guard let first = words.first, first != .any, first != .gap, words.last != .gap else { return nil }
            alternatives.append(Alternative(words: words, texts: texts))
        }
        guard !alternatives.isEmpty else { return nil }
        self.alternatives = alternatives
        self.text = text
    }

    /// The alternative found in `words`, or nil.
    public func firstMatch(in words: [String]) -> String? { firstMatch(in: PatternWords(words)) }

    /// The alternative found in `words`, or nil: the first alternative, at its first place.
    public func firstMatch(in words: PatternWords) -> String? {
        for alternative in alternatives {
            guard alternative.fixed <= words.count, words.bloom.covers(alternative.needs) else { continue }
            let first = alternative.words[0]
            for start in 0...(words.count - alternative.fixed) where alternative.matches(first, words, start) {
                if let end = KeywordPattern.match(alternative, 1, words, at: start + 1) {
                    return words.texts[start..<end].joined(separator: " ")
                }
            }
        }
        return nil
    }

    /// Where the alternative's words from `from` on, matched at `start`, end, or nil. A field
    /// boundary (`|`) is never crossed.
    static func match(_ alternative: Alternative, _ from: Int, _ words: PatternWords, at start: Int) -> Int? {
        var p = from, at = start
        while p < alternative.words.count {
            let word = alternative.words[p]
            if word == .gap {
                for skip in 0...gapWords where at + skip <= words.count {
                    if skip > 0 && words.keys[at + skip - 1].count < 0 { break }
                    if let end = match(alternative, p + 1, words, at: at + skip) { return end }
                }
                return nil
            }
            guard at < words.count, alternative.matches(word, words, at) else { return nil }
            p += 1
            at += 1
        }
        return at
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

    /// Its place in `allCases`.
    var index: Int {
        switch self {
        case .description: return 0
        case .permitType: return 1
        case .workType: return 2
        case .permitID: return 3
        case .type: return 4
        case .text: return 5
        }
    }
}

/// The words of one permit's fields, split once and spelled out with the vocabulary
/// (`PLBG` is `plumbing`, `SNGL FAM` is `single family`). Fields joined in one text are
/// kept apart by `|`, which no pattern crosses.
public struct PermitWordSet {
    let words: [PatternWords]

    public init(_ permit: Record, vocabulary: TradeVocabulary = TradeVocabulary(entries: [])) {
        // Each field is split and spelled once; the texts that join fields reuse the words.
        var byField: [String: [String]] = [:]
        for field in PermitText.text.fields + ["permit_id"] {
            byField[field] = vocabulary.spell(PermitWords.split(permit.text(field) ?? ""))
        }
        words = PermitText.allCases.map { text in
            var out: [String] = []
            for field in text.fields {
                guard let split = byField[field], !split.isEmpty else { continue }
                if !out.isEmpty { out.append("|") }
                out += split
            }
            return PatternWords(out)
        }
    }

    func of(_ text: PermitText) -> PatternWords { words[text.index] }
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
    // Classes, so that trying every rule on every permit costs one reference count per rule.
    public final class Rule: Sendable {
        public let group: String
        public let category: String
        public let condition: TextCondition
        public let and: TextCondition?
        public let unless: TextCondition?
        public let commercialCategory: String?
        public let line: Int

        init(group: String, category: String, condition: TextCondition, and: TextCondition?, unless: TextCondition?,
             commercialCategory: String?, line: Int) {
            self.group = group
            self.category = category
            self.condition = condition
            self.and = and
            self.unless = unless
            self.commercialCategory = commercialCategory
            self.line = line
        }
    }
    public final class CommercialRule: Sendable {
        public let condition: TextCondition
        public let commercial: Bool
        public let line: Int

        init(condition: TextCondition, commercial: Bool, line: Int) {
            self.condition = condition
            self.commercial = commercial
            self.line = line
        }
    }
    public final class TagRule: Sendable {
        public let tag: String
        public let condition: TextCondition

        init(tag: String, condition: TextCondition) {
            self.tag = tag
            self.condition = condition
        }
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
