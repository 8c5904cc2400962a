import Foundation
import LeadStores
import Testing
import TestSupport

/// make db as a user runs it: after make, again after a sale, killed half way, after a
/// pipeline's file is gone; the seeds' questions asked in SQL.
@Suite("Database: make db loads the staged tree into SQLite", .serialized)
struct DatabaseTests {
    typealias Tree = RunsOverTimeTests.Tree

    static func rows(_ path: String, _ sql: String) throws -> [[String]] {
        let db = try SQLiteDatabase(path: path)
        let statement = try db.prepare(sql)
        var out: [[String]] = []
        while try statement.step() {
            out.append((0..<Int32(statement.columnCount)).map { statement.text($0) ?? "NULL" })
        }
        return out
    }

    static func lines(_ path: String) throws -> Int {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count
    }

    /// The counts of the last load of `table`: rows, inserted, updated, deleted, unchanged.
    static func lastLoad(_ db: String, _ table: String) throws -> [String] {
        try rows(db, "SELECT rows, inserted, updated, deleted, unchanged FROM _leadetl_loads WHERE table_name = '\(table)' ORDER BY rowid DESC LIMIT 1").first ?? []
    }

    @Test func theTreeLoadsTypedAndAgainOnlyWhatChanged() throws {
        let tree = try Tree.fresh("db")
        #expect(try RunsOverTimeTests.make(["pipelines"], tree: tree).status == 0)
        let made = try RunsOverTimeTests.make(["db"], tree: tree)
        #expect(made.status == 0, "\(made.stdout.suffix(1500))")
        let db = tree.logs + "/leadetl.sqlite"
        let mode = (try FileManager.default.attributesOfItem(atPath: db)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600, "the database holds owners' names: 0600")

        // Every record of every table's file is a row.
        let permits = try DatabaseTests.lines(tree.logs + "/permits/permits.jsonl")
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM permits") == [["\(permits)"]])
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM leads") == [["\(try DatabaseTests.lines(tree.logs + "/leads/leads.jsonl"))"]])
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM gps_expired_listings") ==
                [["\(try DatabaseTests.lines(tree.logs + "/expired/gps/flattened_gps_expired_listings.jsonl"))"]])
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM listing_analytics") ==
                [["\(try DatabaseTests.lines(tree.logs + "/events/listing_analytics.jsonl"))"]])
        let tags = try DatabaseTests.rows(db, "SELECT count(*) FROM lead_tags")[0][0]
        #expect(Int(tags)! > 40)
        // Typed columns: ZIPs are text, hours integers, rates real, flags 0 or 1, times ISO text.
        #expect(try DatabaseTests.rows(db, "SELECT DISTINCT typeof(property_zip) FROM leads WHERE property_zip IS NOT NULL") == [["text"]])
        #expect(try DatabaseTests.rows(db, "SELECT DISTINCT typeof(hour) FROM listing_analytics") == [["integer"]])
        #expect(try DatabaseTests.rows(db, "SELECT DISTINCT typeof(conversion_rate) FROM listing_totals") == [["real"]])
        #expect(try DatabaseTests.rows(db, "SELECT DISTINCT typeof(skipTraced) FROM gps_expired_listings") == [["integer"]])
        let declared = try DatabaseTests.rows(db, "SELECT sql FROM sqlite_master WHERE name = 'permits'")[0][0]
        #expect(declared.contains("\"scored_at\" TEXT CHECK"), "timestamps are checked ISO text")
        #expect(declared.contains("PRIMARY KEY (\"permit_id\")"))
        let indexes = try DatabaseTests.rows(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'gps_expired_listings'").map { $0[0] }
        #expect(indexes.contains("idx_gps_expired_listings_expiresAt"), "seed 000's expiresAt index")

        // Seed 003: all tier A pool leads with status new; one is sold, and leaves the pool.
        let pool = "SELECT permit_id FROM permits WHERE category = 'pool' AND tier = 'A' AND status = 'new' ORDER BY permit_id"
        let before = try DatabaseTests.rows(db, pool).map { $0[0] }
        #expect(!before.isEmpty)
        let sold = try Binaries.run("lead-export", ["sold", "--permit-id", before[0], "--to", "ABC Pool Company", "--price", "25.00",
                                                    "--now", "2016-03-15T10:00:00Z", "--dir", tree.exports, "--logs", tree.logs], in: tree.root)
        #expect(sold.status == 0, "\(sold.stderr)")
        #expect(try RunsOverTimeTests.make(["db"], tree: tree).status == 0)
        #expect(try DatabaseTests.rows(db, pool).map { $0[0] } == Array(before.dropFirst()))
        #expect(try DatabaseTests.rows(db, "SELECT status, sold_to, sold_price, typeof(sold_price), sold_at FROM permits WHERE permit_id = '\(before[0])'")
                == [["sold", "ABC Pool Company", "25.0", "real", "2016-03-15T10:00:00Z"]])
        // Only the sold permit was written again.
        #expect(try DatabaseTests.lastLoad(db, "permits") == ["\(permits)", "0", "1", "0", "\(permits - 1)"])
        #expect(try DatabaseTests.lastLoad(db, "leads")[4] == DatabaseTests.lastLoad(db, "leads")[0], "no lead changed")

        // Seed 004's frontend grouping, across runs.
        let grouped = try DatabaseTests.rows(db, "SELECT runs, total_actions FROM event_leads_grouped WHERE seeker_id = 'seeker-456' AND listing_id = 'listing-123'")
        #expect(grouped.count == 1 && Int(grouped[0][0])! >= 2, "\(grouped)")
    }

    /// A load killed half way leaves the last load whole; the next one ends as if uninterrupted.
    @Test func aKilledLoadLeavesTheLastOne() throws {
        let tree = try Tree.fresh("db-kill")
        #expect(try RunsOverTimeTests.make(["pipelines", "db"], tree: tree).status == 0)
        let db = tree.logs + "/leadetl.sqlite"
        let loads = try DatabaseTests.rows(db, "SELECT count(*) FROM _leadetl_loads")
        // A pipeline's file gone: its rows go on the next load; killed after the third table.
        try FileManager.default.removeItem(atPath: tree.logs + "/closed/gps/flattened_gps_closed_listings.jsonl")
        try FileManager.default.removeItem(atPath: tree.logs + "/expired/gps/flattened_gps_expired_listings.jsonl")
        let killed = try RunsOverTimeTests.make(["db"], tree: tree, environment: ["LEAD_CRASH_AT": "export/db:4"])
        #expect(killed.status != 0)
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM _leadetl_loads") == loads)
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM gps_closed_listings") != [["0"]], "the killed load's deletions are rolled back")
        #expect(try RunsOverTimeTests.make(["db"], tree: tree).status == 0)
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM gps_closed_listings") == [["0"]])
        #expect(try DatabaseTests.rows(db, "SELECT count(*) FROM gps_expired_listings") == [["0"]])
        #expect(try DatabaseTests.lastLoad(db, "gps_expired_listings")[3] != "0")
        #expect(RunsOverTimeTests.leftovers(tree).isEmpty)
    }
}
