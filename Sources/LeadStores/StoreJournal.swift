#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// The journal that makes several file changes one. A store commit:
///
/// 1. seals every new file beside its target (written, synced);
/// 2. keeps the old version of each file it will replace or remove as a hard link beside it
///    (`.<name>.old-<pid>`: no copy, the old bytes simply stay reachable);
/// 3. puts the journal (`<dir>/.journal`, listing every change and its backup) in place with
///    one rename;
/// 4. makes the changes: renames, log appends (O_APPEND), removals, moves;
/// 5. removes the journal: this is the commit point;
/// 6. removes the backups and staged log lines.
///
/// A run killed before 3 changed nothing (its temporary files are abandoned and go). A run
/// killed between 3 and 5 leaves the journal: the next run of the store rolls every change
/// back (the backups renamed into place, logs cut back to their old size, new files removed),
/// so the store is as it was and the killed stage, run again, starts from the same state as
/// the first time and ends where an uninterrupted run would. A run killed after 5 made the
/// whole change. Rolling back can be done twice: each step checks what it finds.
///
/// One JSON object per line: `{"op":"rename","from":..,"to":..,"backup":..|null}`,
/// `{"op":"append","log":..,"from":..,"size":N}` (N: the log's size before, -1 when there was
/// no log), `{"op":"remove","path":..,"backup":..}`, and last `{"op":"end"}`. Paths are absolute.
public enum StoreJournal {
    public enum Operation: Equatable, Sendable {
        case rename(from: String, to: String, backup: String?)
        case append(log: String, from: String, size: Int)
        case remove(String, backup: String?)
    }

    /// The journal file of a store directory.
    public static func path(in directory: String) -> String { directory + "/" + AtomicFiles.journalName }

    /// The backup name of `path` for this process: `.<name>.old-<pid>` beside it.
    public static func backupPath(for path: String) -> String {
        let dir = AtomicFiles.directory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return (dir == "." && !path.hasPrefix("./") ? "" : dir + "/") + "." + name + ".old-" + String(getpid())
    }

    /// Keeps the current version of `path` (if any) as a hard link; returns the link's path.
    public static func keepBackup(of path: String) throws(StageError) -> String? {
        guard access(path, F_OK) == 0 else { return nil }
        let backup = backupPath(for: path)
        unlink(backup)
        guard link(path, backup) == 0 else { throw .io("\(path): cannot keep the old version as \(backup): \(errnoText())") }
        return backup
    }

    /// Writes the journal for `operations` into place (atomically and synced).
    public static func write(_ operations: [Operation], to path: String) throws(StageError) {
        let sink = try ByteSink(path: path)
        for operation in operations {
            var line = Record()
            switch operation {
            case .rename(let from, let to, let backup):
                line.append("op", "rename")
                line.append("from", .string(from))
                line.append("to", .string(to))
                line.append("backup", backup.map { .string($0) } ?? .null)
            case .append(let log, let from, let size):
                line.append("op", "append")
                line.append("log", .string(log))
                line.append("from", .string(from))
                line.append("size", .int(size))
            case .remove(let target, let backup):
                line.append("op", "remove")
                line.append("path", .string(target))
                line.append("backup", backup.map { .string($0) } ?? .null)
            }
            JSONWriter.writeLine(line, into: sink.buffer)
        }
        JSONWriter.writeLine(["op": "end"], into: sink.buffer)
        try sink.commit()
        syncDirectory(of: path)
    }

    /// Reads a journal; nil when it is not complete (no end line).
    public static func read(_ path: String) throws(StageError) -> [Operation]? {
        let bytes = try ByteSource.readAll(path)
        var operations: [Operation] = []
        var ended = false
        for line in bytes.split(separator: 10) where !line.isEmpty {
            guard let o = JSONValue(parsing: String(decoding: line, as: UTF8.self))?.object, let op = o.text("op") else {
                throw .io("\(path): not a store journal (unreadable line); undo the change by hand, then remove it")
            }
            switch op {
            case "rename":
                guard let from = o.text("from"), let to = o.text("to") else { throw .io("\(path): a rename without from or to") }
                operations.append(.rename(from: from, to: to, backup: o.text("backup")))
            case "append":
                guard let log = o.text("log"), let from = o.text("from"), let size = o["size"]?.int else {
                    throw .io("\(path): an append without log, from or size")
                }
                operations.append(.append(log: log, from: from, size: size))
            case "remove":
                guard let target = o.text("path") else { throw .io("\(path): a remove without path") }
                operations.append(.remove(target, backup: o.text("backup")))
            case "end":
                ended = true
            default:
                throw .io("\(path): unknown journal operation '\(op)'")
            }
        }
        return ended ? operations : nil
    }

    /// Makes one change.
    public static func apply(_ operation: Operation) throws(StageError) {
        switch operation {
        case .rename(let from, let to, _):
            guard rename(from, to) == 0 else { throw .io("\(to): cannot rename \(from) into place: \(errnoText())") }
        case .append(let log, let from, _):
            try StoreLog.appendFile(from, to: log)
        case .remove(let target, _):
            if unlink(target) != 0 && errno != ENOENT { throw .io("\(target): cannot remove: \(errnoText())") }
        }
    }

    /// Undoes one change, made or not: the old version back in place, the new one back where
    /// it was written (a temporary file, which goes as abandoned, or a resumable fetch's
    /// partial output, which the next run resumes).
    public static func undo(_ operation: Operation) throws(StageError) {
        switch operation {
        case .rename(let from, let to, let backup):
            let made = access(from, F_OK) != 0 && access(to, F_OK) == 0 && !(backup.map { sameFile(to, $0) } ?? false)
            if made {
                guard rename(to, from) == 0 else { throw .io("\(to): cannot move the new version back to \(from): \(errnoText())") }
            }
            if let backup { try restore(backup, to: to) }
        case .append(let log, let from, let size):
            if size < 0 {
                unlink(log)
            } else if let current = fileSize(log), current > size {
                guard truncate(log, off_t(size)) == 0 else { throw .io("\(log): cannot cut back to \(size) bytes: \(errnoText())") }
            }
            unlink(from)
        case .remove(let target, let backup):
            if let backup { try restore(backup, to: target) }
        }
    }

    /// Puts the kept old version back at `path` (when the change was not made, they are the
    /// same file and the backup link just goes).
    static func restore(_ backup: String, to path: String) throws(StageError) {
        guard access(backup, F_OK) == 0 else { return }
        if sameFile(backup, path) {
            unlink(backup)
        } else if rename(backup, path) != 0 {
            throw .io("\(path): cannot put the old version back: \(errnoText())")
        }
    }

    static func sameFile(_ a: String, _ b: String) -> Bool {
        var x = stat(), y = stat()
        guard stat(a, &x) == 0, stat(b, &y) == 0 else { return false }
        return x.st_dev == y.st_dev && x.st_ino == y.st_ino
    }

    /// The files a change leaves once it is made: backups and staged log lines.
    static func leftovers(_ operation: Operation) -> [String] {
        switch operation {
        case .rename(_, _, let backup): return backup.map { [$0] } ?? []
        case .append(_, let from, _): return [from]
        case .remove(_, let backup): return backup.map { [$0] } ?? []
        }
    }

    /// Rolls back the change a killed run left in `directory`, if any (see the type's
    /// description). Returns true when there was one.
    @discardableResult
    public static func recover(directory: String) throws(StageError) -> Bool {
        let journal = path(in: directory)
        guard access(journal, F_OK) == 0 else { return false }
        if let operations = try read(journal) {
            for operation in operations.reversed() { try undo(operation) }
        }
        unlink(journal)
        return true
    }

    static func fileSize(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }

    static func syncDirectory(of path: String) {
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// Appending to a store's logs (dedupe.jsonl, audit.jsonl, deliveries.jsonl, ...): whole
/// lines, in one `write` on a descriptor opened with O_APPEND, so writers that share a log
/// never lose or interleave each other's lines and nothing is read and copied.
public enum StoreLog {
    /// Appends `bytes` (whole lines, ending in a newline) to `log`, created 0600.
    public static func appendWhole(_ bytes: [UInt8], to log: String) throws(StageError) {
        guard !bytes.isEmpty else { return }
        let dir = log.lastIndex(of: "/").map { String(log[..<$0]) } ?? ""
        try AtomicFiles.makeDirectories(dir)
        let fd = AtomicFiles.createPrivate(log, flags: O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw .io("\(log): cannot open for appending: \(errnoText())") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("\(log): append failed: \(errnoText())")
            }
            offset += n
        }
        if fsync(fd) != 0 && errno != EINVAL { throw .io("\(log): fsync failed: \(errnoText())") }
    }

    /// Appends the whole file `from` (whole lines) to `log`, created 0600, a block at a time.
    public static func appendFile(_ from: String, to log: String) throws(StageError) {
        let source = try ByteSource(path: from)
        defer { source.close() }
        let dir = log.lastIndex(of: "/").map { String(log[..<$0]) } ?? ""
        try AtomicFiles.makeDirectories(dir)
        let fd = AtomicFiles.createPrivate(log, flags: O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw .io("\(log): cannot open for appending: \(errnoText())") }
        defer { close(fd) }
        let block = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
        defer { block.deallocate() }
        while true {
            let got = try source.read(into: block, count: 1 << 20)
            if got == 0 { break }
            var offset = 0
            while offset < got {
                let n = write(fd, block + offset, got - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io("\(log): append failed: \(errnoText())")
                }
                offset += n
            }
        }
        if fsync(fd) != 0 && errno != EINVAL { throw .io("\(log): fsync failed: \(errnoText())") }
    }

    /// Whether `log` already ends with exactly the bytes of the file `file`, at a line start.
    public static func endsWith(_ log: String, file: String) -> Bool {
        guard let count = StoreJournal.fileSize(file), count > 0, let size = StoreJournal.fileSize(log), size >= count else { return false }
        let a = open(log, O_RDONLY | O_CLOEXEC), b = open(file, O_RDONLY | O_CLOEXEC)
        defer { if a >= 0 { close(a) }; if b >= 0 { close(b) } }
        guard a >= 0, b >= 0 else { return false }
        let start = size - count
        if start > 0 {
            var byte: UInt8 = 0
            guard pread(a, &byte, 1, off_t(start - 1)) == 1, byte == 10 else { return false }
        }
        let x = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16), y = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
        defer { x.deallocate(); y.deallocate() }
        var done = 0
        while done < count {
            let want = min(1 << 16, count - done)
            guard pread(a, x, want, off_t(start + done)) == want, pread(b, y, want, off_t(done)) == want,
                  memcmp(x, y, want) == 0 else { return false }
            done += want
        }
        return true
    }

    /// Whether `log` already ends with exactly `bytes` at a line start: the same lines
    /// appended by an earlier try of the same run.
    public static func endsWith(_ log: String, _ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty, let size = StoreJournal.fileSize(log), size >= bytes.count else { return false }
        let fd = open(log, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let start = size - bytes.count
        let want = bytes.count + (start > 0 ? 1 : 0)
        var tail = [UInt8](repeating: 0, count: want)
        let n = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(start - (start > 0 ? 1 : 0))) }
        guard n == want else { return false }
        if start > 0 {
            guard tail[0] == 10 else { return false }
            return Array(tail[1...]) == bytes
        }
        return tail == bytes
    }
}
