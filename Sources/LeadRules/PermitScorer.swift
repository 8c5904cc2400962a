import StageKit

/// One rule of `stages/score/permit-rules.csv`: when the filter holds, the permit gets the
/// points (and the flag, when there is one); the reason, with `{field}` replaced by the
/// permit's value, goes into the reasoning.
public struct PermitRule: Sendable {
    public let name: String
    public let when: LeadFilter
    public let points: Int
    public let flag: String?
    public let reason: String
    public let line: Int
}

/// What one category is worth and who buys it: `stages/score/permit-categories.csv`.
public struct PermitCategory: Sendable {
    public let demandPoints: Int
    public let idealContractor: String
}

/// The explainable permit scorer. Before the rules run, four fields are derived and appended
/// (the rules and the exports use them): days_old (whole days from issued_at to --now),
/// is_absentee (the owner's mailing address is known and is not the property: another street
/// line, ZIP or city), commercial_owner (the owner's name holds one of the owner words of the
/// settings: LLC, INC, TRUST, ...), and category_demand (the category's demand points). Then
/// every rule of permit-rules.csv whose `when` holds adds its points; the score is their sum
/// held to score_min..score_max. contact_priority is the first rule of permit-contact.csv
/// that holds; ideal_contractor comes from the category.
public struct PermitScorer: Sendable {
    public let rules: [PermitRule]
    public let categories: [String: PermitCategory]
    public let contact: [(priority: String, when: LeadFilter)]
    public let ownerWords: Set<String>
    public let scoreRange: ClosedRange<Int>
    public let defaultContractor: String

    public static let functions: Set<String> = []

    public static func load(directory: String) throws(StageError) -> PermitScorer {
        var rules: [PermitRule] = []
        for row in try RulesFile(path: directory + "/permit-rules.csv", required: ["rule", "when", "points", "reason"]).rows {
            rules.append(PermitRule(name: try row.required("rule"), when: try row.filter("when"), points: try row.integer("points"),
                                    flag: row["flag"].isEmpty ? nil : row["flag"], reason: try row.required("reason"), line: row.line))
        }
        var categories: [String: PermitCategory] = [:]
        for row in try RulesFile(path: directory + "/permit-categories.csv", required: ["category", "demand_points", "ideal_contractor"]).rows {
            categories[try row.required("category")] = PermitCategory(demandPoints: try row.integer("demand_points"),
                                                                      idealContractor: try row.required("ideal_contractor"))
        }
        var contact: [(String, LeadFilter)] = []
        for row in try RulesFile(path: directory + "/permit-contact.csv", required: ["contact_priority", "when"]).rows {
            let priority = try row.required("contact_priority")
            guard ["call", "email", "skip"].contains(priority) else { throw row.error("contact_priority must be call, email or skip") }
            contact.append((priority, try row.filter("when")))
        }
        let settingsFile = try RulesFile(path: directory + "/permit-settings.csv", required: ["setting", "value"])
        let settings = try settingsFile.settings(known: ["owner_words", "score_min", "score_max", "default_contractor"])
        func setting(_ name: String) throws(StageError) -> RulesFile.Row {
            guard let row = settings[name] else { throw StageError.rules(file: settingsFile.path, line: nil, message: "no \(name) setting") }
            return row
        }
        let low = try setting("score_min").integer("value"), high = try setting("score_max").integer("value")
        guard low < high else { throw (try setting("score_max")).error("score_max must be more than score_min") }
        return PermitScorer(rules: rules, categories: categories, contact: contact,
                            ownerWords: Set(try setting("owner_words").list("value").map { $0.lowercased() }),
                            scoreRange: low...high, defaultContractor: try setting("default_contractor").required("value"))
    }

    /// Appends days_old, is_absentee, commercial_owner and category_demand (replacing them when present).
    public func derive(_ permit: inout Record, now: Timestamp) {
        var daysOld: JSONValue = .null
        if let issued = permit.text("issued_at"), !issued.isEmpty {
            if let at = Timestamp(iso8601: issued) { daysOld = .int(Int((now.seconds - at.seconds) / 86_400)) }
        }
        permit["days_old"] = daysOld
        permit["is_absentee"] = .bool(PermitScorer.isAbsentee(permit))
        let owner = PermitWords.split(permit.text("owner_name") ?? "")
        permit["commercial_owner"] = .bool(owner.contains { ownerWords.contains(String($0)) })
        let category = permit.text("category") ?? ""
        permit["category_demand"] = .int(categories[category]?.demandPoints ?? 0)
    }

    /// The owner's mailing address is known and is not the property's.
    public static func isAbsentee(_ permit: Record) -> Bool {
        func text(_ field: String) -> String { (permit.text(field) ?? "").trimmingSpaces.uppercased() }
        let line = text("mailing_address"), zip = String(text("mailing_zip").prefix(5)), city = text("mailing_city")
        if line.isEmpty && zip.isEmpty && city.isEmpty { return false }
        if !line.isEmpty && line != text("property_address") { return true }
        let propertyZIP = String(text("property_zip").prefix(5))
        if !zip.isEmpty && !propertyZIP.isEmpty { return zip != propertyZIP }
        let propertyCity = text("property_city")
        if !city.isEmpty && !propertyCity.isEmpty { return city != propertyCity }
        return false
    }

    /// Scores a permit with the rules: appends the derived fields, score, reasoning,
    /// ideal_contractor, contact_priority, flags, score_breakdown and scored_at.
    public func score(_ permit: inout Record, now: Timestamp) {
        derive(&permit, now: now)
        let context = FilterContext(now: now)
        var total = 0
        var reasons: [String] = []
        var flags: [String] = []
        var breakdown: [JSONValue] = []
        let category = permit.text("category") ?? ""
        if let demand = categories[category]?.demandPoints, demand != 0 {
            total += demand
            reasons.append("\(String(category.map { $0 == "_" ? " " : $0 })) demand (\(PermitScorer.signed(demand)))")
            breakdown.append(.object(["rule": .string("category_demand"), "points": .int(demand)]))
        }
        for rule in rules where rule.when.matches(permit, context: context) {
            total += rule.points
            reasons.append("\(PermitScorer.fill(rule.reason, permit)) (\(PermitScorer.signed(rule.points)))")
            breakdown.append(.object(["rule": .string(rule.name), "points": .int(rule.points)]))
            if let flag = rule.flag, !flags.contains(flag) { flags.append(flag) }
        }
        let score = min(max(total, scoreRange.lowerBound), scoreRange.upperBound)
        var reasoning = "Score \(score)"
        if score != total { reasoning += " (\(total) held to \(scoreRange.lowerBound)-\(scoreRange.upperBound))" }
        reasoning += reasons.isEmpty ? ": no rule fired." : ": " + reasons.joined(separator: "; ") + "."
        permit["score"] = .int(score)
        permit["reasoning"] = .string(reasoning)
        permit["ideal_contractor"] = .string(categories[category]?.idealContractor ?? defaultContractor)
        permit["flags"] = .array(flags.map { .string($0) })
        permit["contact_priority"] = .string(contactPriority(permit, context: context))
        permit["score_breakdown"] = .array(breakdown)
        permit["scored_by"] = .string("rules")
        permit["scored_at"] = .string(now.iso8601)
    }

    /// The first contact rule that holds (the score and flags set), else skip.
    public func contactPriority(_ permit: Record, context: FilterContext) -> String {
        contact.first { $0.when.matches(permit, context: context) }?.priority ?? "skip"
    }

    static func signed(_ n: Int) -> String { n >= 0 ? "+\(n)" : "\(n)" }

    /// `{field}` replaced by the permit's value: whole numbers of money with thousands commas
    /// when the field is a value (`{job_value}` -> `$98,515`), other values as written.
    static func fill(_ template: String, _ permit: Record) -> String {
        guard template.contains("{") else { return template }
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            let name = String(rest[rest.index(after: open)..<close])
            out += display(name, permit[name])
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    static func display(_ field: String, _ value: JSONValue?) -> String {
        guard let value, !value.isNull else { return "unknown" }
        if field.hasSuffix("_value"), let d = value.double {
            let whole = Int(d.rounded())
            var digits = String(abs(whole))
            var grouped = ""
            while digits.count > 3 {
                grouped = "," + digits.suffix(3) + grouped
                digits.removeLast(3)
            }
            return (whole < 0 ? "-$" : "$") + digits + grouped
        }
        return value.text ?? value.json
    }
}
