#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// The state a pipeline keeps between runs lives in store directories (the lead master's
/// `local-logs/leads/`, the permits tree `exports/` with `local-logs/permits/`, the events
/// files `local-logs/events/`, each listing folder, each photo index). A stage that reads and
/// rewrites a store opens it first: `Store.open` locks its directories for the run, finishes
/// a change a killed run left half made (the journal), removes abandoned temporary files,
/// and takes over the stage's commit, so every output, log line and removal of the run
/// lands as one change or not at all:
///
/// 1. every output is sealed beside its target (written, synced, still locked);
/// 2. the lines for each log are sealed beside it, unless the log already ends with them
///    (the same run tried again);
/// 3. when there is more than one change, the journal is put in place;
/// 4. the renames, appends (O_APPEND, whole lines) and removals are made;
/// 5. the journal is removed and the lock released.
///
/// Files are created 0600 and directories 0700 (StageKit's `ByteSink`).
public final class Store: OutputCommitter {
    /// The store's directories, as real paths.
    public var directories: [String] { lock.directories }
    let lock: StoreLock
    private var appends: [(log: String, bytes: [UInt8])] = []
    private var moves: [(from: String, to: String)] = []

    init(lock: StoreLock) { self.lock = lock }

    /// Opens the store of `directories` for `stage`: see the type's description. Waits for a
    /// run that holds it (saying whom it waits for), or with `--no-wait` (`LEAD_NO_WAIT=1`)
    /// fails with exit 2 naming the holder.
    @discardableResult
    public static func open(_ directories: [String], for stage: Stage) throws(StageError) -> Store {
        let wait = !stage.options.noWait && stage.environment["LEAD_NO_WAIT"] != "1"
        let lock = try StoreLock.acquire(directories, holder: StoreLock.describeThisProcess(now: Clock.systemNow()),
                                         wait: wait, environment: stage.environment) { message in stage.note(message) }
        stage.atExit { lock.release() }
        for dir in lock.directories {
            if try StoreJournal.recover(directory: dir) {
                stage.note("finished the change an interrupted run left in \(dir)")
            }
        }
        for dir in lock.directories { AtomicFiles.removeAbandonedTemps(in: dir, depth: 3) }
        let store = Store(lock: lock)
        stage.committer = store
        return store
    }

    /// Lines to append to the log at `path` when the stage succeeds, in the same change as
    /// its outputs: a failed run adds nothing.
    public func appendLog(_ entries: [Record], to path: String) {
        guard !entries.isEmpty else { return }
        let buffer = ByteBuffer(capacity: 1 << 12)
        for entry in entries { JSONWriter.writeLine(entry, into: buffer) }
        appendLines(Array(buffer.bytes), to: path)
    }

    /// Whole JSONL lines (ending in a newline) to append to the log at `path` on success.
    public func appendLines(_ bytes: [UInt8], to path: String) {
        guard !bytes.isEmpty else { return }
        if let i = appends.firstIndex(where: { $0.log == path }) {
            appends[i].bytes += bytes
        } else {
            appends.append((path, bytes))
        }
    }

    /// A file to move (rename) when the stage succeeds, in the same change and before the
    /// outputs are put in place. The target's directory is created now.
    public func move(_ from: String, to target: String) throws(StageError) {
        try AtomicFiles.makeDirectories(AtomicFiles.directory(of: target))
        moves.append((from, target))
    }

    public func commit(_ sinks: [ByteSink], removing removals: [String]) throws(StageError) {
        for sink in sinks { try sink.seal() }
        var operations: [StoreJournal.Operation] = moves.map { .rename(from: Store.absolute($0.from), to: Store.absolute($0.to)) }
        moves.removeAll()
        var installed: [ByteSink] = []
        for sink in sinks {
            guard let temp = sink.temporaryPath, let path = sink.path else { continue }
            operations.append(.rename(from: Store.absolute(temp), to: Store.absolute(path)))
            installed.append(sink)
        }
        var staged: [ByteSink] = []
        for (log, bytes) in appends where !StoreLog.endsWith(log, bytes) {
            let sink = try ByteSink(path: log, raw: true)
            sink.buffer.append(bytes)
            try sink.seal()
            operations.append(.append(log: Store.absolute(log), from: Store.absolute(sink.temporaryPath!),
                                      size: StoreJournal.fileSize(log) ?? 0))
            staged.append(sink)
        }
        for path in removals where access(path, F_OK) == 0 { operations.append(.remove(Store.absolute(path))) }
        appends.removeAll()
        defer {
            for sink in installed + staged { sink.released() }
        }
        guard operations.count > 1, let home = lock.directories.first else {
            for operation in operations { try StoreJournal.apply(operation) }
            return
        }
        let journal = StoreJournal.path(in: home)
        try StoreJournal.write(operations, to: journal)
        for operation in operations { try StoreJournal.apply(operation) }
        unlink(journal)
    }

    /// `path` made absolute against the working directory.
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(cString: buffer)
        var rest = Substring(path)
        while rest.hasPrefix("./") { rest = rest.dropFirst(2) }
        return (cwd == "/" ? "" : cwd) + "/" + rest
    }
}
