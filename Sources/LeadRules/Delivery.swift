import StageKit

/// How owner names are split into a first and a last name for delivery services
/// (`stages/export/names.csv`: kind,word with kind entity, suffix, prefix, joiner or
/// particle). An entity (a word or phrase such as LLC, TRUST, ESTATE OF) is kept whole as the
/// last name with `is_entity`; `LAST, FIRST` is read as written; a couple (`JOHN & MARY
/// SMITH`, `JOHN SMITH AND MARY JONES`) gives its first person; prefixes (MR, DR) and
/// suffixes (JR, III) are dropped, middle names and initials too; particles (DE, VAN) stay
/// with the last name (`MARIA DE LA CRUZ` -> MARIA, DE LA CRUZ).
public struct OwnerNames: Sendable {
    public struct Split: Equatable, Sendable {
        public let first: String
        public let last: String
        public let isEntity: Bool

        public init(first: String, last: String, isEntity: Bool) {
            self.first = first
            self.last = last
            self.isEntity = isEntity
        }
    }

    let entities: [String]
    let suffixes: Set<String>
    let prefixes: Set<String>
    let joiners: Set<String>
    let particles: Set<String>

    public static func load(_ path: String) throws(StageError) -> OwnerNames {
        let file = try RulesFile(path: path, required: ["kind", "word"])
        var entities: [String] = [], suffixes = Set<String>(), prefixes = Set<String>(), joiners = Set<String>(), particles = Set<String>()
        for row in file.rows {
            let word = OwnerNames.words(try row.required("word")).joined(separator: " ")
            switch row["kind"] {
            case "entity": entities.append(word)
            case "suffix": suffixes.insert(word)
            case "prefix": prefixes.insert(word)
            case "joiner": joiners.insert(word)
            case "particle": particles.insert(word)
            default: throw row.error("kind must be entity, suffix, prefix, joiner or particle")
            }
        }
        return OwnerNames(entities: entities, suffixes: suffixes, prefixes: prefixes, joiners: joiners, particles: particles)
    }

    /// Upper-case words without the punctuation around them (`Smith,` -> SMITH; `&` stays).
    static func words(_ text: String) -> [String] {
        let punctuation: Set<Character> = [".", ",", ";", "(", ")", "\""]
        return text.uppercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { word in
            var w = Substring(word)
            while let f = w.first, punctuation.contains(f) { w = w.dropFirst() }
            while let l = w.last, punctuation.contains(l) { w = w.dropLast() }
            return w.isEmpty ? nil : String(w)
        }
    }

    public func split(_ name: String) -> Split {
        let whole = name.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        let all = OwnerNames.words(whole)
        guard !all.isEmpty else { return Split(first: "", last: "", isEntity: false) }
        let padded = " " + all.joined(separator: " ") + " "
        if entities.contains(where: { padded.contains(" " + $0 + " ") }) { return Split(first: "", last: whole, isEntity: true) }
        if let comma = whole.firstIndex(of: ",") {
            // LAST, FIRST MIDDLE (& SPOUSE)
            let last = trim(OwnerNames.words(String(whole[..<comma])), lastName: true)
            let given = firstPerson(OwnerNames.words(String(whole[whole.index(after: comma)...])))
            let first = trim(given, lastName: false)
            if !last.isEmpty && !first.isEmpty { return Split(first: first[0], last: last.joined(separator: " "), isEntity: false) }
        }
        var person = all
        if let j = all.firstIndex(where: { joiners.contains($0) }) {
            let before = Array(all[..<j])
            // JOHN SMITH & MARY JONES: the first person whole; JOHN & MARY SMITH: the shared last name.
            person = trim(before, lastName: true).count >= 2 ? before : Array(before.prefix(1)) + Array(all[(j + 1)...]).dropFirst()
        }
        let kept = trim(person, lastName: true)
        guard kept.count >= 2 else { return Split(first: kept.first ?? "", last: "", isEntity: false) }
        var lastStart = kept.count - 1
        while lastStart > 1 && particles.contains(kept[lastStart - 1]) { lastStart -= 1 }
        return Split(first: kept[0], last: kept[lastStart...].joined(separator: " "), isEntity: false)
    }

    /// The words of the first person of `words` (up to a joiner).
    func firstPerson(_ words: [String]) -> [String] {
        if let j = words.firstIndex(where: { joiners.contains($0) }) { return Array(words[..<j]) }
        return words
    }

    /// Without prefixes at the start and suffixes at the end.
    func trim(_ words: [String], lastName: Bool) -> [String] {
        var w = words
        while let f = w.first, prefixes.contains(f) { w.removeFirst() }
        while w.count > 1 {
            if let l = w.last, suffixes.contains(l) { w.removeLast(); continue }
            if w.count > 2, suffixes.contains(w[w.count - 2] + " " + w[w.count - 1]) { w.removeLast(2); continue }
            break
        }
        return w
    }
}

/// Phone numbers in E.164 (`+15125550100`), North American numbers by default: 10 digits,
/// or 11 starting with 1, whose area code and exchange start with 2-9; a number written
/// with `+` and another country code is kept when it has 8 to 15 digits.
public enum PhoneNumbers {
    public static func e164(_ text: String) -> String? {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { return nil }
        var digits = ""
        for c in trimmed {
            if c.isASCII && c.isNumber { digits.append(c) } else if !" ()-.+/".contains(c) {
                // An extension or letters: not a number a dialer can take.
                return nil
            }
        }
        if trimmed.hasPrefix("+") && !digits.hasPrefix("1") {
            return (8...15).contains(digits.count) ? "+" + digits : nil
        }
        if digits.count == 11 && digits.hasPrefix("1") { digits.removeFirst() }
        guard digits.count == 10 else { return nil }
        let chars = Array(digits)
        guard chars[0] >= "2", chars[3] >= "2" else { return nil }
        return "+1" + digits
    }
}

/// An email address as a sender takes it: trimmed, lower case, one `@` with a dotted
/// domain and no spaces; nil when it is not one.
public enum EmailAddresses {
    public static func normalized(_ text: String) -> String? {
        let e = text.trimmingSpaces.lowercased()
        let parts = e.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
              !e.contains(" "), !e.contains(",") else { return nil }
        return e
    }
}
