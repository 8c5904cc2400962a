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
/// 3. when there is more than one change, the old versions are kept and the journal is put
///    in place (`StoreJournal`), the renames, appends (O_APPEND, whole lines) and removals are
///    made, and the journal is removed: the commit point. A run killed before it is rolled
///    back by the next one;
/// 4. the lock is released.
///
/// Files are created 0600 and directories 0700 (StageKit's `ByteSink`).
public final class Store: OutputCommitter {
    /// The store's directories, as real paths.
    public var directories: [String] { lock.directories }
    let lock: StoreLock
    private var appends: [(log: String, bytes: [UInt8])] = []
    private var logSinks: [(log: String, sink: ByteSink)] = []
    private var moves: [(from: String, to: String)] = []

    /// Where this run kills itself, for tests (see `CrashPoint`).
    let crash: CrashPoint?

    init(lock: StoreLock, crash: CrashPoint?) {
        self.lock = lock
        self.crash = crash
    }

    /// Opens the store of `directories` for `stage`: see the type's description. Waits for a
    /// run that holds it (saying whom it waits for), or with `--no-wait` (`LEAD_NO_WAIT=1`)
    /// fails with exit 2 naming the holder.
    @discardableResult
    public static func open(_ directories: [String], for stage: Stage) throws(StageError) -> Store {
        let (store, _) = try lockAndSettle(directories, for: stage)
        stage.committer = store
        return store
    }

    /// What settling a store found.
    public struct Settled: Sendable {
        public var rolledBack = 0
        public var removed = 0
    }

    /// Locks `directories`, rolls back what killed runs left half made and removes their
    /// leftovers, then lets them go (lead-cleanup stores).
    @discardableResult
    public static func settle(_ directories: [String], for stage: Stage) throws(StageError) -> Settled {
        let (store, settled) = try lockAndSettle(directories, for: stage)
        store.lock.release()
        return settled
    }

    static func lockAndSettle(_ directories: [String], for stage: Stage) throws(StageError) -> (Store, Settled) {
        let wait = !stage.options.noWait && stage.environment["LEAD_NO_WAIT"] != "1"
        let lock = try StoreLock.acquire(directories, holder: StoreLock.describeThisProcess(now: Clock.systemNow()),
                                         wait: wait, environment: stage.environment) { message in stage.note(message) }
        stage.atExit { lock.release() }
        var settled = Settled()
        // A directory whose lock this process inherited may have a sibling's change in flight
        // (shards side by side under one scripts/locked.sh): the holder's run settled it
        // before it started them (make's settle-* targets), so it is not rolled back here.
        for dir in lock.directories where !lock.inherited.contains(dir) {
            if try StoreJournal.recover(directory: dir) {
                settled.rolledBack += 1
                stage.note("rolled back the change an interrupted run left half made in \(dir)")
            }
        }
        for dir in lock.directories { settled.removed += AtomicFiles.removeAbandonedTemps(in: dir, depth: 3) }
        return (Store(lock: lock, crash: CrashPoint(stage: stage)), settled)
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

    /// A sink for whole JSONL lines to append to the log at `path` on success, as
    /// `appendLines` but written out as they come (more lines than memory should hold): they
    /// are staged beside the log and appended with the change, after `appendLines`' lines.
    public func logSink(_ path: String) throws(StageError) -> ByteSink {
        if let open = logSinks.first(where: { $0.log == path }) { return open.sink }
        try AtomicFiles.makeDirectories(AtomicFiles.directory(of: path))
        let sink = try ByteSink(path: path, raw: true)
        logSinks.append((path, sink))
        return sink
    }

    /// A file to move (rename) when the stage succeeds, in the same change and before the
    /// outputs are put in place. The target's directory is created now.
    public func move(_ from: String, to target: String) throws(StageError) {
        try AtomicFiles.makeDirectories(AtomicFiles.directory(of: target))
        moves.append((from, target))
    }

    /// The change is made in this order: moves, log appends, removals, then the outputs in
    /// the order given (the stage's main output last); see `StoreJournal` for how a change
    /// of several files is made whole or rolled back.
    public func commit(_ sinks: [ByteSink], removing removals: [String]) throws(StageError) {
        for sink in sinks { try sink.seal() }
        var planned: [(kind: Int, from: String, to: String)] = moves.map { (0, Store.absolute($0.from), Store.absolute($0.to)) }
        moves.removeAll()
        var staged: [ByteSink] = []
        var appendPlans: [(log: String, from: String)] = []
        for (log, bytes) in appends where !StoreLog.endsWith(log, bytes) {
            let sink = try ByteSink(path: log, raw: true)
            sink.buffer.append(bytes)
            try sink.seal()
            appendPlans.append((Store.absolute(log), Store.absolute(sink.temporaryPath!)))
            staged.append(sink)
        }
        appends.removeAll()
        for (log, sink) in logSinks {
            try sink.seal()
            guard let temp = sink.temporaryPath, sink.bytesWritten > 0, !StoreLog.endsWith(log, file: temp) else {
                sink.discard()
                continue
            }
            appendPlans.append((Store.absolute(log), Store.absolute(temp)))
            staged.append(sink)
        }
        logSinks.removeAll()
        let removing = removals.filter { access($0, F_OK) == 0 }.map(Store.absolute)
        var installed: [ByteSink] = []
        for sink in sinks {
            guard let temp = sink.temporaryPath, let path = sink.path else { continue }
            planned.append((1, Store.absolute(temp), Store.absolute(path)))
            installed.append(sink)
        }
        defer {
            for sink in installed + staged { sink.released() }
        }
        let changes = planned.count + appendPlans.count + removing.count
        guard changes > 1, let home = lock.directories.first else {
            // One change is one rename (or append, or removal): atomic as it is.
            for (_, from, to) in planned { try StoreJournal.apply(.rename(from: from, to: to, backup: nil)) }
            for plan in appendPlans { try StoreJournal.apply(.append(log: plan.log, from: plan.from, size: 0)); unlink(plan.from) }
            for path in removing { try StoreJournal.apply(.remove(path, backup: nil)) }
            crash?.reached(step: Int.max)
            return
        }
        // The old versions kept, then the journal, then the changes, then the commit point.
        var operations: [StoreJournal.Operation] = []
        for (kind, from, to) in planned where kind == 0 {
            operations.append(.rename(from: from, to: to, backup: try StoreJournal.keepBackup(of: to)))
        }
        for plan in appendPlans {
            operations.append(.append(log: plan.log, from: plan.from, size: StoreJournal.fileSize(plan.log) ?? -1))
        }
        for path in removing { operations.append(.remove(path, backup: try StoreJournal.keepBackup(of: path))) }
        for (kind, from, to) in planned where kind == 1 {
            operations.append(.rename(from: from, to: to, backup: try StoreJournal.keepBackup(of: to)))
        }
        let journal = StoreJournal.path(in: home)
        do {
            try StoreJournal.write(operations, to: journal)
            crash?.reached(step: 0)
            for (n, operation) in operations.enumerated() {
                try StoreJournal.apply(operation)
                crash?.reached(step: n + 1)
            }
        } catch {
            // A change that cannot be made whole is undone now.
            for operation in operations.reversed() { try? StoreJournal.undo(operation) }
            unlink(journal)
            throw error
        }
        unlink(journal)
        StoreJournal.syncDirectory(of: journal)
        for operation in operations { for path in StoreJournal.leftovers(operation) { unlink(path) } }
        crash?.reached(step: Int.max)
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

/// A test hook: `LEAD_CRASH_AT=<stage>[/<command>]:<step>` makes that stage kill itself with
/// SIGKILL in its store commit, after the journal and `step` changes (`end`: after the whole
/// commit), so the tests can stop a run at every point of a commit, which random kills
/// almost never hit. Unset, it does nothing.
struct CrashPoint {
    let step: Int

    init?(stage: Stage) {
        guard let spec = stage.environment["LEAD_CRASH_AT"], let colon = spec.lastIndex(of: ":") else { return nil }
        let target = String(spec[..<colon]), stepText = String(spec[spec.index(after: colon)...])
        let name = stage.name + (stage.command.map { "/" + $0 } ?? "")
        guard target == stage.name || target == name else { return nil }
        guard let step = stepText == "end" ? Int.max : Int(stepText) else { return nil }
        self.step = step
    }

    func reached(step: Int) {
        if step == self.step { kill(getpid(), SIGKILL) }
    }
}
