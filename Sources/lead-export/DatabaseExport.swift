import ArgumentParser
import LeadRules
import LeadStores
import StageKit

extension LeadExport {
    struct DB: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "db",
            abstract: "Load the staged tree into one SQLite file, incrementally and atomically.",
            discussion: """
            The tables are the rows of stages/export/db-tables.csv (the listings of each \
            pipeline, leads and lead_tags, permits with status, sold_to, sold_at, sold_price and \
            delivered_at, event_leads, listing_analytics, listing_totals), each loaded from its \
            file under --logs, with its primary key and indexes; the columns are the records' \
            fields, typed from their values (INTEGER, REAL, ISO 8601 timestamps as TEXT with a \
            CHECK, booleans 0 or 1, arrays and objects as JSON text: query them with \
            json_extract). Then the views of stages/export/db-views.sql (event_leads_grouped, \
            permit_pool). A load is one transaction, and writes only the rows whose content \
            changed; rows gone from the tree are deleted. _leadetl_loads keeps each load's counts.

            Example:
              lead-export db --logs local-logs --to local-logs/leadetl.sqlite
              sqlite3 local-logs/leadetl.sqlite "SELECT permit_id, score FROM permits WHERE category = 'pool' AND tier = 'A' AND status = 'new'"
            """
        )

        @Option(help: ArgumentHelp("The logs root the runs wrote.", valueName: "dir"))
        var logs = "local-logs"

        @Option(help: ArgumentHelp("The database file (default <logs>/leadetl.sqlite).", valueName: "file"))
        var to: String?

        @OptionGroup var common: CommonOptions

        func run() throws {
            Stage.run("export", command: "db", options: common) { stage in
                let rules = stage.rulesDirectory()
                let tables = try DatabaseTable.load(rules + "/db-tables.csv")
                let viewsPath = rules + "/db-views.sql"
                let views = Stage.fileExists(viewsPath) ? String(decoding: try ByteSource.readAll(viewsPath), as: UTF8.self) : ""
                guard tables.contains(where: { Stage.fileExists(logs + "/" + $0.source) }) else {
                    throw StageError.usage("no staged tree under \(logs): none of the tables' files is there (run make first, or give --logs)")
                }
                let path = to ?? logs + "/leadetl.sqlite"
                let counts = try DatabaseLoad(path: path, stage: stage).load(tables, views: views, logs: logs)
                var summary = Record()
                for (name, c) in counts {
                    summary.append(name, .object(["rows": .int(c.rows), "inserted": .int(c.inserted), "updated": .int(c.updated),
                                                  "deleted": .int(c.deleted), "unchanged": .int(c.unchanged)]))
                }
                stage.summary.append("database", .string(path))
                stage.summary.append("tables", .object(summary))
            }
        }
    }
}
