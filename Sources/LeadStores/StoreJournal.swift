#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// The journal that makes several file changes one: a store writes every new file beside
/// its target (sealed, synced), then the journal (`<dir>/.journal`, itself put in place by one
/// rename), then makes the changes it lists, then removes it. A run killed before the
/// journal is in place changed nothing (its temporary files are removed as abandoned); one
/// killed after it is finished by the next run of the store, which applies the journal again.
/// Every step can be applied twice: a rename whose source is gone was made, an append whose
/// log already grew by it was made, a removal of a missing file was made.
///
/// One JSON object per line: `{"op":"rename","from":..,"to":..}`,
/// `{"op":"append","log":..,"from":..,"size":N}` (append the bytes of `from` to `log`, whose
/// size before was N), `{"op":"remove","path":..}`, and last `{"op":"end"}`. Paths are
/// absolute.
public enum StoreJournal {
    public enum Operation: Equatable, Sendable {
        case rename(from: String, to: String)
        case append(log: String, from: String, size: Int)
        case remove(String)
    }

    /// The journal file of a store directory.
    public static func path(in directory: String) -> String { directory + "/" + AtomicFiles.journalName }

    /// Writes the journal for `operations` into place (atomically and synced).
    public static func write(_ operations: [Operation], to path: String) throws(StageError) {
        let sink = try ByteSink(path: path)
        for operation in operations {
            var line = Record()
            switch operation {
            case .rename(let from, let to):
                line.append("op", "rename")
                line.append("from", .string(from))
                line.append("to", .string(to))
            case .append(let log, let from, let size):
                line.append("op", "append")
                line.append("log", .string(log))
                line.append("from", .string(from))
                line.append("size", .int(size))
            case .remove(let target):
                line.append("op", "remove")
                line.append("path", .string(target))
            }
            JSONWriter.writeLine(line, into: sink.buffer)
        }
        JSONWriter.writeLine(["op": "end"], into: sink.buffer)
        try sink.commit()
        syncDirectory(of: path)
    }

    /// Reads a journal; nil when it is not complete (no end line: never put in place by a
    /// commit, so nothing it lists was started).
    public static func read(_ path: String) throws(StageError) -> [Operation]? {
        let bytes = try ByteSource.readAll(path)
        var operations: [Operation] = []
        var ended = false
        for line in bytes.split(separator: 10) where !line.isEmpty {
            guard let o = JSONValue(parsing: String(decoding: line, as: UTF8.self))?.object, let op = o.text("op") else {
                throw .io("\(path): not a store journal (unreadable line); finish or undo the change by hand, then remove it")
            }
            switch op {
            case "rename":
                guard let from = o.text("from"), let to = o.text("to") else { throw .io("\(path): a rename without from or to") }
                operations.append(.rename(from: from, to: to))
            case "append":
                guard let log = o.text("log"), let from = o.text("from"), let size = o["size"]?.int else {
                    throw .io("\(path): an append without log, from or size")
                }
                operations.append(.append(log: log, from: from, size: size))
            case "remove":
                guard let target = o.text("path") else { throw .io("\(path): a remove without path") }
                operations.append(.remove(target))
            case "end":
                ended = true
            default:
                throw .io("\(path): unknown journal operation '\(op)'")
            }
        }
        return ended ? operations : nil
    }

    /// Makes one change, or finds it made.
    public static func apply(_ operation: Operation) throws(StageError) {
        switch operation {
        case .rename(let from, let to):
            guard access(from, F_OK) == 0 else { return }
            guard rename(from, to) == 0 else { throw .io("\(to): cannot rename \(from) into place: \(errnoText())") }
        case .append(let log, let from, let size):
            guard access(from, F_OK) == 0 else { return }
            let addition = fileSize(from) ?? 0
            let current = fileSize(log) ?? 0
            if current == size {
                try appendFile(from, to: log)
            } else if current != size + addition {
                throw .io("\(log): is \(current) bytes, neither the \(size) before this change nor the \(size + addition) after it; the log was changed while the store was locked")
            }
            unlink(from)
        case .remove(let target):
            if unlink(target) != 0 && errno != ENOENT { throw .io("\(target): cannot remove: \(errnoText())") }
        }
    }

    /// Finishes the change a killed run left in `directory`, if any. Returns true when there
    /// was one.
    @discardableResult
    public static func recover(directory: String) throws(StageError) -> Bool {
        let journal = path(in: directory)
        guard access(journal, F_OK) == 0 else { return false }
        if let operations = try read(journal) {
            for operation in operations { try apply(operation) }
        }
        unlink(journal)
        return true
    }

    /// Appends the whole of `from` to `log` with O_APPEND, then syncs the log.
    static func appendFile(_ from: String, to log: String) throws(StageError) {
        let bytes = try ByteSource.readAll(from)
        try StoreLog.appendWhole(bytes, to: log)
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
