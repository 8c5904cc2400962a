import LeadRules
import StageKit
import Testing

@Suite("Database tables: the rules file and column types")
struct DatabaseTablesTests {
    func typed(_ values: [JSONValue?]) -> ColumnType {
        var typer = ColumnTyper()
        for v in values { typer.observe("c", v) }
        return typer.type(of: "c")
    }

    @Test func columnsTakeTheNarrowestTypeThatHoldsEveryValue() {
        #expect(typed([.int(1), .null, .string(""), .int(3)]) == .integer)
        #expect(typed([.int(0), .double(12.73)]) == .real)
        #expect(typed([.bool(true), .bool(false), nil]) == .boolean)
        #expect(typed([.string("2026-11-23T06:00:00Z"), .string("2016-03-07")]) == .timestamp)
        #expect(typed([.string("2026-11-23"), .string("soon")]) == .text)
        #expect(typed([.string("78701"), .string("07870")]) == .text, "ZIPs stay text")
        #expect(typed([.array([.string("a")]), .null]) == .json)
        #expect(typed([.int(1), .string("x")]) == .text)
        #expect(typed([nil, .null]) == .text)
        #expect(!ColumnTyper.isTimestamp("2026-13-45T99:00:00Z"))
        #expect(!ColumnTyper.isTimestamp("12/01/2026"))
    }

    @Test func declarationsCheckWhatTheTypeHolds() {
        #expect(ColumnType.timestamp.declaration("sold_at").contains("CHECK (\"sold_at\" IS NULL OR \"sold_at\" GLOB"))
        #expect(ColumnType.boolean.declaration("x") == "\"x\" INTEGER CHECK (\"x\" IS NULL OR \"x\" IN (0, 1))")
        #expect(DatabaseTable.quoted("a\"b") == "\"a\"\"b\"")
        #expect(DatabaseTable.isIdentifier("gps_expired_listings") && !DatabaseTable.isIdentifier("1x") && !DatabaseTable.isIdentifier("a;b"))
    }

    @Test func theShippedTablesLoad() throws {
        let tables = try DatabaseTable.load(repoStages + "/export/db-tables.csv")
        let names = tables.map(\.name)
        for name in ["gps_expired_listings", "crmls_expired_listings", "leads", "lead_tags", "permits", "event_leads", "listing_analytics", "listing_totals"] {
            #expect(names.contains(name))
        }
        let permits = tables.first { $0.name == "permits" }!
        #expect(permits.key == ["permit_id"] && permits.types["sold_price"] == .real && permits.types["sold_at"] == .timestamp)
        #expect(tables.first { $0.name == "lead_tags" }!.rowsFrom == "tags")
    }
}
