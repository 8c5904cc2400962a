#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The summary lines of a pipeline's stages, kept for the run report: with `--summaries FILE`
/// (or `LEAD_SUMMARIES`, which the Makefile sets to `<logs>/<pipeline>/summaries.jsonl`),
/// every stage adds its summary line, with when it ran and what it wrote, to FILE.
///
/// The file is rewritten whole (a new file renamed into place), never appended to in place:
/// `make` keeps earlier runs as hard links in `<logs>/_previous/`, and an append would change
/// their copy too. Writers take an `flock` on the file's directory around the rewrite, so
/// stages running side by side (`make -j`) never lose a line. The newest `keptLines` lines
/// are kept.
public enum SummaryLog {
    public static let keptLines = 5000

    /// The file named by `option`, else by `LEAD_SUMMARIES`; nil when neither names one.
    public static func path(option: String?) -> String? {
        if let option, !option.isEmpty { return option }
        if let env = getenv("LEAD_SUMMARIES"), env.pointee != 0 { return String(cString: env) }
        return nil
    }

    /// Adds `line` (one JSON object, without its newline) to the file at `path`.
    public static func append(_ line: String, to path: String, keeping keep: Int = keptLines) throws(StageError) {
        let dir = AtomicFiles.directory(of: path)
        try AtomicFiles.makeDirectories(dir)
        let dirFD = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dirFD >= 0 else { throw .io("\(dir): cannot open: \(errnoText())") }
        defer { close(dirFD) }
        while flock(dirFD, LOCK_EX) != 0 {
            if errno != EINTR { throw .io("\(dir): cannot lock: \(errnoText())") }
        }
        let old = access(path, F_OK) == 0 ? try ByteSource.readAll(path) : []
        let sink = try ByteSink(path: path)
        for kept in old.split(separator: 10).suffix(max(0, keep - 1)) {
            kept.withUnsafeBufferPointer { sink.buffer.append($0) }
            sink.buffer.append(10)
        }
        sink.buffer.append(line)
        sink.buffer.append("\n")
        try sink.commit()
    }
}
