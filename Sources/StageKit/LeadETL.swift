/// The product's name and version, for user agents and `--version` (the VERSION file's; a
/// test keeps the two the same).
public enum LeadETL {
    public static let version = "0.1.0"
    public static var userAgent: String { "LeadETL/\(version)" }
}
