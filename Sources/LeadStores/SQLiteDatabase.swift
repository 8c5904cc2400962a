import CSQLite
import LeadRules
import StageKit

#if canImport(Glibc)
import Glibc
#endif

/// A SQLite database file (Debian's libsqlite3), created 0600 whatever the umask: the
/// tables hold owners' names, addresses and phones.
public final class SQLiteDatabase {
    public let path: String
    private var db: OpaquePointer?

    public init(path: String) throws(StageError) {
        self.path = path
        try AtomicFiles.makeDirectories(AtomicFiles.directory(of: path))
        if access(path, F_OK) != 0 {
            let fd = AtomicFiles.createPrivate(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC)
            if fd >= 0 { close(fd) }
        }
        _ = chmod(path, 0o600)
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            db = nil
            throw .io("\(path): cannot open the database: \(message)")
        }
        // Another load of the same file waits for this one instead of failing.
        sqlite3_busy_timeout(db, 600_000)
    }

    deinit { sqlite3_close(db) }

    public var lastError: String { String(cString: sqlite3_errmsg(db)) }

    /// Runs SQL statements that return nothing.
    public func execute(_ sql: String) throws(StageError) {
        var error: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &error) != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? lastError
            sqlite3_free(error)
            throw .io("\(path): \(message) in: \(sql.prefix(200))")
        }
    }

    public func prepare(_ sql: String) throws(StageError) -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw .io("\(path): \(lastError) in: \(sql.prefix(200))")
        }
        return Statement(statement, database: self)
    }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(db)) }

    /// The columns of a table (name and declared type, and whether it is in the primary key),
    /// empty when there is no such table.
    public func columns(of table: String) throws(StageError) -> [(name: String, type: String, key: Bool)] {
        let info = try prepare("PRAGMA table_info(\(DatabaseTable.quoted(table)))")
        var out: [(String, String, Bool)] = []
        while try info.step() { out.append((info.text(1) ?? "", info.text(2) ?? "", info.int(5) > 0)) }
        return out
    }

    /// One prepared statement.
    public final class Statement {
        let handle: OpaquePointer
        unowned let database: SQLiteDatabase

        init(_ handle: OpaquePointer, database: SQLiteDatabase) {
            self.handle = handle
            self.database = database
        }

        deinit { sqlite3_finalize(handle) }

        private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

        public func reset() {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }

        /// Binds a JSON value at 1-based `index`: numbers as numbers, booleans as 0 or 1,
        /// strings as text, arrays and objects as their JSON text, null as NULL; with
        /// `emptyIsNull`, an empty string is NULL too (a typed column's unknown value).
        public func bind(_ value: JSONValue?, at index: Int32, emptyIsNull: Bool = false) {
            guard let value = value?.resolved else { sqlite3_bind_null(handle, index); return }
            switch value {
            case .null: sqlite3_bind_null(handle, index)
            case .bool(let b): sqlite3_bind_int64(handle, index, b ? 1 : 0)
            case .int(let i): sqlite3_bind_int64(handle, index, Int64(i))
            case .double(let d): sqlite3_bind_double(handle, index, d)
            case .string(let s):
                if s.isEmpty && emptyIsNull { sqlite3_bind_null(handle, index) } else { bind(s, at: index) }
            case .array, .object, .raw: bind(value.json, at: index)
            }
        }

        public func bind(_ text: String, at index: Int32) {
            sqlite3_bind_text(handle, index, text, -1, Statement.transient)
        }

        public func bind(_ number: Int64, at index: Int32) { sqlite3_bind_int64(handle, index, number) }

        /// Steps once: true while there is a row.
        @discardableResult
        public func step() throws(StageError) -> Bool {
            switch sqlite3_step(handle) {
            case SQLITE_ROW: return true
            case SQLITE_DONE: return false
            default:
                let message = database.lastError
                sqlite3_reset(handle)
                throw .data(message)
            }
        }

        public func text(_ column: Int32) -> String? {
            guard let p = sqlite3_column_text(handle, column) else { return nil }
            return String(cString: p)
        }

        public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

        /// How many columns a row of this statement has.
        public var columnCount: Int { Int(sqlite3_column_count(handle)) }
    }
}
