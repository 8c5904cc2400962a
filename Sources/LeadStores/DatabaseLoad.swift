import LeadRules
import StageKit

/// Loads the staged tree into one SQLite file (`lead-export db`): a table per row of
/// `db-tables.csv`, typed from the records, then the views of `db-views.sql`.
///
/// A load is one transaction: a reader sees the last load or this one, never half of it, and
/// a killed load leaves the last one (SQLite's rollback journal). Loads are incremental: each
/// row keeps a hash of its content (`_row_hash`), a row whose content is unchanged is not
/// written, a changed one is replaced, and rows gone from the tree are deleted. Each load
/// adds its counts per table to `_leadetl_loads`.
public struct DatabaseLoad {
    public struct Counts {
        public var rows = 0, inserted = 0, updated = 0, deleted = 0, unchanged = 0
    }

    let db: SQLiteDatabase
    let stage: Stage

    public init(path: String, stage: Stage) throws(StageError) {
        db = try SQLiteDatabase(path: path)
        self.stage = stage
    }

    /// Loads every table from under `logs`, then makes the views again.
    public func load(_ tables: [DatabaseTable], views: String, logs: String) throws -> [(String, Counts)] {
        try db.execute("BEGIN IMMEDIATE")
        do {
            try db.execute("""
                CREATE TABLE IF NOT EXISTS _leadetl_loads (
                  table_name TEXT NOT NULL, source TEXT NOT NULL,
                  loaded_at TEXT NOT NULL CHECK (loaded_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]*'),
                  rows INTEGER NOT NULL, inserted INTEGER NOT NULL, updated INTEGER NOT NULL,
                  deleted INTEGER NOT NULL, unchanged INTEGER NOT NULL)
                """)
            for name in DatabaseLoad.viewNames(views) { try db.execute("DROP VIEW IF EXISTS \(DatabaseTable.quoted(name))") }
            var results: [(String, Counts)] = []
            let crash = CrashPoint(stage: stage)
            for (n, table) in tables.enumerated() {
                let counts = try load(table, from: logs + "/" + table.source)
                crash?.reached(step: n + 1)
                let log = try db.prepare("INSERT INTO _leadetl_loads VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                log.bind(table.name, at: 1)
                log.bind(table.source, at: 2)
                log.bind(stage.clock.now.iso8601, at: 3)
                for (i, n) in [counts.rows, counts.inserted, counts.updated, counts.deleted, counts.unchanged].enumerated() {
                    log.bind(Int64(n), at: Int32(4 + i))
                }
                try log.step()
                results.append((table.name, counts))
            }
            if !views.isEmpty { try db.execute(views) }
            try db.execute("COMMIT")
            return results
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// The names the SQL creates views by (`CREATE VIEW name`).
    static func viewNames(_ sql: String) -> [String] {
        var names: [String] = []
        let words = sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
        for i in words.indices.dropLast(2) where words[i].uppercased() == "CREATE" && words[i + 1].uppercased() == "VIEW" {
            names.append(words[i + 2].trimmingCharacters(in: "\"("))
        }
        return names
    }

    /// The rows of a record: the record, or for a child table the elements of its array
    /// field, each with the record's key columns it does not hold itself first.
    func rows(of record: Record, _ table: DatabaseTable) -> [Record] {
        guard let field = table.rowsFrom else { return [record] }
        return (record[field]?.array ?? []).compactMap { element in
            guard let element = element.object else { return nil }
            var row = Record()
            for k in table.key where element[k] == nil { row.append(k, record[k] ?? .null) }
            for f in element.fields { row.append(f.key, f.value) }
            return row
        }
    }

    func load(_ table: DatabaseTable, from path: String) throws -> Counts {
        var counts = Counts()
        let exists = Stage.fileExists(path)
        // First pass: the columns and their types.
        var typer = ColumnTyper()
        for k in table.key { typer.observe(k, nil) }
        if exists {
            try stage.forEachJSON([path], counting: false) { tape, _ in
                guard tape.isObject else { return }
                for row in rows(of: Record(tape: tape), table) {
                    for f in row.fields { typer.observe(f.key, f.value) }
                }
            }
        }
        for index in table.indexes { for c in index { typer.observe(c, nil) } }
        for column in table.types.keys.sorted() { typer.observe(column, nil) }
        func type(_ column: String) -> ColumnType { table.types[column] ?? typer.type(of: column) }
        let q = DatabaseTable.quoted(table.name)
        var existing = try db.columns(of: table.name)
        if !existing.isEmpty && existing.filter(\.key).map(\.name) != table.key {
            try db.execute("DROP TABLE \(q)")
            existing = []
        }
        if existing.isEmpty {
            let declarations = typer.order.filter { $0 != "_row_hash" }.map { column in
                type(column).declaration(column) + (table.key.contains(column) ? " NOT NULL" : "")
            }
            try db.execute("CREATE TABLE \(q) (\(declarations.joined(separator: ", ")), _row_hash INTEGER NOT NULL, PRIMARY KEY (\(table.key.map(DatabaseTable.quoted).joined(separator: ", "))))")
        } else {
            for column in typer.order where column != "_row_hash" && !existing.contains(where: { $0.name == column }) {
                try db.execute("ALTER TABLE \(q) ADD COLUMN \(type(column).declaration(column))")
            }
        }
        for index in table.indexes where !index.isEmpty {
            let name = DatabaseTable.quoted("idx_" + table.name + "_" + index.joined(separator: "_"))
            try db.execute("CREATE INDEX IF NOT EXISTS \(name) ON \(q) (\(index.map(DatabaseTable.quoted).joined(separator: ", ")))")
        }
        let columns = try db.columns(of: table.name).map(\.name).filter { $0 != "_row_hash" }
        let typed = Set(columns.filter { let t = type($0); return t != .text && t != .json })
        let keyWhere = table.key.map { DatabaseTable.quoted($0) + " = ?" }.joined(separator: " AND ")
        let find = try db.prepare("SELECT _row_hash FROM \(q) WHERE \(keyWhere)")
        let put = try db.prepare("INSERT OR REPLACE INTO \(q) (\(columns.map(DatabaseTable.quoted).joined(separator: ", ")), _row_hash) VALUES (\(Array(repeating: "?", count: columns.count + 1).joined(separator: ", ")))")
        // Each row's values by column, from one walk over its fields.
        var columnIndex: [String: Int] = [:]
        for (i, c) in columns.enumerated() { columnIndex[c] = i }
        let keyIndexes = table.key.map { columnIndex[$0]! }
        let isTyped = columns.map { typed.contains($0) }
        var values = [JSONValue?](repeating: nil, count: columns.count)
        var seen = Set<String>()
        if exists {
            // Records are parsed on every core; a row's content hash is its line's bytes as
            // read (a child row's, its columns' JSON).
            try stage.forEachRecord([path], transform: { _ in }, encoding: .input) { record, line, _ in
                for row in rows(of: record, table) {
                    for i in values.indices { values[i] = nil }
                    for f in row.fields { if let i = columnIndex[f.key] { values[i] = f.value } }
                    var keyText: [String] = []
                    for (k, i) in zip(table.key, keyIndexes) {
                        let v = values[i]?.resolved ?? .null
                        let text = v.isNull ? "" : (v.text ?? v.json)
                        guard !text.isEmpty else {
                            throw RecordRejected("\(table.name): no \(k) (the table's key is \(table.key.joined(separator: " + ")))")
                        }
                        keyText.append(text)
                    }
                    let key = keyText.joined(separator: "\u{1}")
                    guard seen.insert(key).inserted else {
                        throw RecordRejected("\(table.name): key \(keyText.joined(separator: ", ")) is there already, on an earlier row")
                    }
                    var hash: UInt64 = 0xcbf29ce484222325
                    if table.rowsFrom == nil {
                        for byte in line { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
                    } else {
                        for value in values {
                            for byte in (value?.json ?? "null").utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
                            hash = (hash ^ 0x1f) &* 0x100000001b3
                        }
                    }
                    let stored = Int64(bitPattern: hash)
                    find.reset()
                    for (n, i) in keyIndexes.enumerated() { find.bind(values[i], at: Int32(n + 1)) }
                    var old: Int64?
                    if try find.step() { old = find.int(0) }
                    find.reset()
                    counts.rows += 1
                    if old == stored { counts.unchanged += 1; continue }
                    put.reset()
                    for i in values.indices { put.bind(values[i], at: Int32(i + 1), emptyIsNull: isTyped[i]) }
                    put.bind(stored, at: Int32(columns.count + 1))
                    do {
                        try put.step()
                    } catch let error as StageError {
                        counts.rows -= 1
                        throw RecordRejected("\(table.name): \(error.description)")
                    }
                    if old == nil { counts.inserted += 1 } else { counts.updated += 1 }
                }
                stage.recordsOut += 1
            }
        }
        // Rows no longer in the tree.
        let keys = try db.prepare("SELECT rowid, \(table.key.map(DatabaseTable.quoted).joined(separator: ", ")) FROM \(q)")
        var gone: [Int64] = []
        while try keys.step() {
            let key = (0..<table.key.count).map { keys.text(Int32($0 + 1)) ?? "" }.joined(separator: "\u{1}")
            if !seen.contains(key) { gone.append(keys.int(0)) }
        }
        let remove = try db.prepare("DELETE FROM \(q) WHERE rowid = ?")
        for rowid in gone {
            remove.reset()
            remove.bind(rowid, at: 1)
            try remove.step()
            counts.deleted += 1
        }
        return counts
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
