import StageKit

/// The tier bands (`stages/tier/tiers.csv`: tier,min,max,action) and the review rules
/// (`stages/tier/review.csv`: reason,when).
public struct TierRules: Sendable {
    public struct Band: Sendable {
        public let tier: String
        public let range: ClosedRange<Int>
        public let action: String
    }
    public let bands: [Band]
    public let review: [(reason: String, when: LeadFilter)]

    public init(bands: [Band], review: [(reason: String, when: LeadFilter)]) {
        self.bands = bands
        self.review = review
    }

    public static func load(tiers: String, review: String) throws(StageError) -> TierRules {
        var bands: [Band] = []
        for row in try RulesFile(path: tiers, required: ["tier", "min", "max", "action"]).rows {
            let tier = try row.required("tier")
            guard tier.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
                throw row.error("'\(tier)' is not a plain tier name (letters, digits, _)")
            }
            let low = try row.integer("min"), high = try row.integer("max")
            guard low <= high else { throw row.error("min is more than max") }
            if let other = bands.first(where: { $0.range.overlaps(low...high) }) {
                throw row.error("\(low)-\(high) overlaps tier \(other.tier) (\(other.range.lowerBound)-\(other.range.upperBound))")
            }
            bands.append(Band(tier: tier, range: low...high, action: try row.required("action")))
        }
        guard !bands.isEmpty else { throw StageError.rules(file: tiers, line: nil, message: "no tiers") }
        var rules: [(String, LeadFilter)] = []
        for row in try RulesFile(path: review, required: ["reason", "when"]).rows {
            rules.append((try row.required("reason"), try row.filter("when")))
        }
        return TierRules(bands: bands, review: rules)
    }

    /// The band a score falls in.
    public func band(for score: Int) -> Band? { bands.first { $0.range.contains(score) } }

    /// Appends tier, tier_action, needs_review and review_reasons (a list).
    public func tier(_ permit: inout Record, now: Timestamp) throws(RecordRejected) {
        guard let value = permit["score"], let d = value.double, d.rounded() == d else {
            throw RecordRejected("no whole-number score (run lead-score first)")
        }
        guard let band = band(for: Int(d)) else { throw RecordRejected("score \(Int(d)) is in no tier of tiers.csv") }
        permit["tier"] = .string(band.tier)
        permit["tier_action"] = .string(band.action)
        let context = FilterContext(now: now)
        let reasons = review.filter { $0.when.matches(permit, context: context) }.map(\.reason)
        permit["needs_review"] = .bool(!reasons.isEmpty)
        permit["review_reasons"] = .array(reasons.map { .string($0) })
    }
}
