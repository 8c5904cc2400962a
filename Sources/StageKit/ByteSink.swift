import CWriteback
import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a stage's bytes go: stdout, or a file that is written beside its target as
/// `.<name>.tmp-<pid>` and renamed into place only by `commit()`, so a failed or killed
/// stage never leaves a half-written file. A path ending in `.gz` is gzip-compressed.
///
/// Files are created 0600 whatever the umask (outputs hold owners' names, addresses and
/// phones). The temporary file is locked (`flock`) by its writer for as long as it is open,
/// so a later run can tell the temporary file of a dead writer (unlocked: removed) from one
/// being written (locked: left alone), whatever happened to the writer's PID.
public final class ByteSink {
    /// The target path, or nil for stdout.
    public let path: String?
    /// The bytes waiting to be written; writers append here, then call `flushIfNeeded()`.
    public let buffer: ByteBuffer
    /// Bytes handed to the file or pipe so far (before compression).
    public private(set) var bytesWritten = 0

    private var fd: Int32
    private var gz: gzFile?
    private var tempPath: String?
    private var finished = false
    private let flushThreshold: Int
    /// Bytes written since the kernel was last asked to start writing the file to disk.
    private var sinceWriteback = 0
    /// How often (in bytes written) a file being written is handed to the disk: the commit's
    /// fsync then waits for the last few megabytes, not for the whole file at the end.
    static let writebackInterval = 8 << 20

    /// Opens stdout (`path` nil or `-`) or a temporary file beside `path`. With `raw`, a path
    /// ending in `.gz` is written as given (for bytes that are gzip already).
    public init(path: String?, bufferSize: Int = 1 << 20, raw: Bool = false) throws(StageError) {
        flushThreshold = bufferSize
        buffer = ByteBuffer(capacity: bufferSize + 4096)
        guard let path, path != "-" else {
            self.path = nil
            fd = 1
            return
        }
        self.path = path
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            // /dev/null, a FIFO, a terminal: write straight to it; renaming over it would replace it.
            fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .io("\(path): cannot open for writing: \(errnoText())") }
            if path.hasSuffix(".gz") && !raw {
                guard let g = gzdopen(dup(fd), "wb6") else { throw .io("\(path): cannot start gzip stream") }
                gz = g
            }
            return
        }
        let temp = try AtomicFiles.prepareTemp(for: path)
        fd = try AtomicFiles.createLocked(temp, for: path)
        tempPath = temp
        if path.hasSuffix(".gz") && !raw {
            // zlib closes the descriptor it is given; a duplicate keeps ours, and its lock, open.
            guard let g = gzdopen(dup(fd), "wb6") else {
                close(fd)
                unlink(temp)
                AtomicFiles.forget(temp)
                throw .io("\(path): cannot start gzip stream")
            }
            gzbuffer(g, 1 << 18)
            gz = g
        }
    }

    /// A file written in place as `.<name>.partial` beside `path`, kept across runs so that an
    /// interrupted stage can resume: the first `keep` bytes of an existing partial file are
    /// kept, anything after them (a half-written batch) is cut off. `checkpoint()` makes what
    /// was written durable; `commit()` renames the partial file into place.
    public init(resumablePath path: String, keep: Int, bufferSize: Int = 1 << 20) throws(StageError) {
        flushThreshold = bufferSize
        buffer = ByteBuffer(capacity: bufferSize + 4096)
        self.path = path
        let (dir, name) = AtomicFiles.splitPath(path)
        try AtomicFiles.makeDirectories(dir)
        let partial = (dir.isEmpty ? "" : dir + "/") + "." + name + ".partial"
        fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io("\(partial): cannot open: \(errnoText())") }
        _ = fchmod(fd, 0o600)
        var st = stat()
        fstat(fd, &st)
        if Int(st.st_size) < keep {
            close(fd)
            throw .io("\(partial): holds \(st.st_size) bytes, fewer than the \(keep) the state file records")
        }
        if ftruncate(fd, off_t(keep)) != 0 || lseek(fd, off_t(keep), SEEK_SET) < 0 {
            close(fd)
            throw .io("\(partial): cannot cut back to \(keep) bytes: \(errnoText())")
        }
        bytesWritten = keep
        tempPath = partial
        resumable = true
    }

    /// The path of the partial file of a resumable output for `path`.
    public static func partialPath(for path: String) -> String {
        let (dir, name) = AtomicFiles.splitPath(path)
        return (dir.isEmpty ? "" : dir + "/") + "." + name + ".partial"
    }

    private var resumable = false

    /// Flushes and syncs: everything written so far survives a crash. Returns the byte count.
    @discardableResult
    public func checkpoint() throws(StageError) -> Int {
        try flush()
        if fd >= 0 && fsync(fd) != 0 && errno != EINVAL { throw .io("\(displayName): fsync failed: \(errnoText())") }
        return bytesWritten
    }

    deinit { discard() }

    /// A name for messages: the target path, or "stdout".
    public var displayName: String { path ?? "stdout" }

    /// Hands the buffer to the writing thread once it holds more than the flush threshold.
    @inlinable public func flushIfNeeded() throws(StageError) {
        if buffer.count >= flushThresholdValue { try flushInBackground() }
    }

    @usableFromInline var flushThresholdValue: Int { flushThreshold }

    /// Full buffers are written on a thread of their own while the stage fills the next;
    /// `flush()` and everything after it wait for the write in flight.
    private let background = BackgroundWrites(label: "leadetl.sink")

    /// Has the writing thread write the full buffer while the stage fills it again.
    @usableFromInline func flushInBackground() throws(StageError) {
        bytesWritten += try background.hand(buffer) { [unowned self] bytes throws(StageError) in try self.writeOut(bytes) }
    }

    private func awaitWrite() throws(StageError) { try background.settle() }

    /// Writes everything buffered (after the write in flight), and returns once it is written.
    public func flush() throws(StageError) {
        try awaitWrite()
        guard buffer.count > 0 else { return }
        bytesWritten += buffer.count
        defer { buffer.removeAll() }
        try writeOut(buffer.bytes)
    }

    /// Writes `bytes` to the file, pipe or gzip stream.
    private func writeOut(_ bytes: UnsafeBufferPointer<UInt8>) throws(StageError) {
        if let gz {
            var offset = 0
            while offset < bytes.count {
                let chunk = min(bytes.count - offset, 1 << 30)
                let n = gzwrite(gz, bytes.baseAddress! + offset, UInt32(chunk))
                if n <= 0 { throw .io("\(displayName): gzip write failed: \(gzErrorText(gz))") }
                offset += Int(n)
            }
            startWritebackIfDue(bytes.count)
            return
        }
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE && path == nil { throw .brokenPipe }
                throw .io("\(displayName): write failed: \(errnoText())")
            }
            offset += n
        }
        startWritebackIfDue(bytes.count)
    }

    /// Every `writebackInterval` bytes of a file written atomically or resumably, asks the
    /// kernel to start writing it out (it does not wait), so that disk and processor work
    /// side by side.
    private func startWritebackIfDue(_ count: Int) {
        guard tempPath != nil, fd >= 0 else { return }
        sinceWriteback += count
        guard sinceWriteback >= ByteSink.writebackInterval else { return }
        sinceWriteback = 0
        _ = lead_start_writeback(fd)
    }

    /// Flushes and, for a file, renames it into place. After this the sink is closed.
    public func commit() throws(StageError) {
        try seal()
        try install()
    }

    /// The temporary file the bytes are written to, until `install()` (nil for stdout or a
    /// device, which are written in place).
    public var temporaryPath: String? { tempPath }

    private var sealed = false

    /// The first half of `commit()`: everything flushed, the gzip stream ended and the
    /// temporary file synced to disk, still locked and not yet in place. A store commits
    /// several files as one by sealing them all, writing its journal, then installing them.
    public func seal() throws(StageError) {
        guard !finished, !sealed else { return }
        try flush()
        sealed = true
        if let g = gz {
            gz = nil
            let rc = gzclose(g)
            if rc != Z_OK {
                finished = true
                closeDescriptor()
                removeTemp()
                throw .io("\(displayName): closing gzip stream failed (\(rc))")
            }
        }
        guard let path, tempPath != nil, fd >= 0 else { return }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS {
            let message = errnoText()
            finished = true
            closeDescriptor()
            removeTemp()
            throw .io("\(path): fsync failed: \(message)")
        }
    }

    /// The second half of `commit()`: the sealed file renamed into place, then closed.
    public func install() throws(StageError) {
        guard !finished else { return }
        try seal()
        finished = true
        guard let temp = tempPath, let path else {
            if fd > 2 { closeDescriptor() }
            return
        }
        if rename(temp, path) != 0 {
            let message = errnoText()
            closeDescriptor()
            removeTemp()
            throw .io("\(path): cannot rename into place: \(message)")
        }
        closeDescriptor()
        AtomicFiles.forget(temp)
        tempPath = nil
    }

    /// Closes a sealed sink whose temporary file someone else moved (a journal applied by a
    /// store): nothing is renamed or removed.
    public func released() {
        guard !finished else { return }
        finished = true
        closeDescriptor()
        if let temp = tempPath { AtomicFiles.forget(temp) }
        tempPath = nil
    }

    private func closeDescriptor() {
        background.wait()
        if fd > 2 { close(fd) }
        fd = -1
    }

    /// Abandons the output: the temporary file is removed and the target left as it was.
    /// A resumable output keeps what was checkpointed, for the next run.
    public func discard() {
        guard !finished else { return }
        finished = true
        background.wait()
        if resumable {
            if fd >= 0 { close(fd) }
            fd = -1
            return
        }
        if let g = gz {
            gz = nil
            gzclose(g)
        }
        closeDescriptor()
        removeTemp()
    }

    private func removeTemp() {
        if let temp = tempPath {
            unlink(temp)
            AtomicFiles.forget(temp)
            tempPath = nil
        }
    }
}

/// Bookkeeping for temporary files: the ones this process has open (removed if the process
/// is interrupted) and stale ones that a killed process left behind.
public enum AtomicFiles {
    nonisolated(unsafe) private static var slots = [UnsafeMutablePointer<CChar>?](repeating: nil, count: 256)
    nonisolated(unsafe) private static var handlersInstalled = false

    /// Creates the target's directory, removes stale temporaries of dead processes and
    /// returns this process's temporary path for `path`.
    static func prepareTemp(for path: String) throws(StageError) -> String {
        let (dir, name) = splitPath(path)
        try makeDirectories(dir)
        removeStaleTemps(dir: dir, name: name)
        let temp = (dir.isEmpty ? "" : dir + "/") + "." + name + ".tmp-" + String(getpid())
        register(temp)
        return temp
    }

    /// Creates `dir` and its parents when missing, 0700 whatever the umask.
    public static func makeDirectories(_ dir: String) throws(StageError) {
        guard !dir.isEmpty, dir != "." else { return }
        var partial = dir.hasPrefix("/") ? "" : "."
        for component in dir.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o700) == 0 {
                _ = chmod(partial, 0o700)
            } else if errno != EEXIST {
                throw .io("\(dir): cannot create directory: \(errnoText())")
            }
        }
    }

    /// Creates (or truncates) `path` for writing, 0600 whatever the umask; -1 on failure.
    public static func createPrivate(_ path: String, flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC) -> Int32 {
        let fd = open(path, flags, 0o600)
        if fd >= 0 { _ = fchmod(fd, 0o600) }
        return fd
    }

    /// The name of the journal a store leaves in its directory while it commits; while one is
    /// there, its temporary files belong to it (the next run of the store finishes it).
    public static let journalName = ".journal"

    /// The directory part of a path ("." for a bare file name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func splitPath(_ path: String) -> (dir: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    /// Creates the temporary file `temp` (0600) and takes its `flock`, which the writer holds
    /// for as long as the file is open. A sweeper of another run may have locked and removed
    /// the new file in the instant between its creation and our lock; the lock is then taken
    /// on a file that has no name any more, so we check that the name is still ours and
    /// create it again if it is not.
    static func createLocked(_ temp: String, for path: String) throws(StageError) -> Int32 {
        for _ in 0..<100 {
            let fd = createPrivate(temp)
            guard fd >= 0 else {
                forget(temp)
                throw .io("\(path): cannot create: \(errnoText())")
            }
            while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
            var held = stat(), named = stat()
            if fstat(fd, &held) == 0, lstat(temp, &named) == 0, held.st_dev == named.st_dev, held.st_ino == named.st_ino {
                return fd
            }
            close(fd)
        }
        forget(temp)
        throw .io("\(path): cannot keep a temporary file beside it: another process keeps removing it")
    }

    /// Removes the temporary file at `path` if it was left by a writer that is gone: its
    /// writer holds an `flock` on it while it is open, so a lock we can take means nobody
    /// writes it. The file is removed while we hold the lock, and only if the name still
    /// names the file we locked, so a writer that creates the name again meanwhile keeps it.
    /// (A PID says less: a killed writer may not be reaped yet, and PIDs are reused.)
    static func removeIfAbandoned(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        var held = stat(), named = stat()
        guard fstat(fd, &held) == 0, lstat(path, &named) == 0, held.st_dev == named.st_dev, held.st_ino == named.st_ino else {
            return false
        }
        return unlink(path) == 0
    }

    /// `.<name>.tmp-<digits>`: a temporary file of `ByteSink` (and with `backups`, a store's
    /// `.<name>.old-<digits>`, the old version kept while a change is made).
    static func isTemporaryName(_ name: String, backups: Bool = false) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.first == 46 else { return false }
        var i = bytes.count
        while i > 0 && bytes[i - 1] >= 48 && bytes[i - 1] <= 57 { i -= 1 }
        guard i < bytes.count, i >= 6 else { return false }
        let tag = Array(bytes[(i - 5)..<i])
        return tag == Array(".tmp-".utf8) || (backups && tag == Array(".old-".utf8))
    }

    private static func removeStaleTemps(dir: String, name: String) {
        if access((dir.isEmpty ? "" : dir + "/") + journalName, F_OK) == 0 { return }
        let prefix = "." + name + ".tmp-"
        for entry in entries(of: dir.isEmpty ? "." : dir) where entry.hasPrefix(prefix) && isTemporaryName(entry) {
            let path = (dir.isEmpty ? "" : dir + "/") + entry
            _ = removeIfAbandoned(path)
        }
    }

    /// Removes every temporary file of a dead writer in `dir` (and, `depth` levels down, its
    /// subdirectories), and the old versions a store kept for a change that was made, except
    /// in a directory holding a journal. Call it with the store locked. Returns how many went.
    @discardableResult
    public static func removeAbandonedTemps(in dir: String, depth: Int = 0) -> Int {
        var removed = 0
        let hasJournal = access(dir + "/" + journalName, F_OK) == 0
        for entry in entries(of: dir) where entry != "." && entry != ".." {
            let path = dir + "/" + entry
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if depth > 0 && !entry.hasPrefix(".") { removed += removeAbandonedTemps(in: path, depth: depth - 1) }
            } else if !hasJournal, (st.st_mode & S_IFMT) == S_IFREG, isTemporaryName(entry, backups: true), removeIfAbandoned(path) {
                removed += 1
            }
        }
        return removed
    }

    static func entries(of dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            })
        }
        return names
    }

    private static func register(_ temp: String) {
        installHandlers()
        for i in slots.indices where slots[i] == nil {
            slots[i] = strdup(temp)
            return
        }
    }

    static func forget(_ temp: String) {
        for i in slots.indices {
            if let p = slots[i], String(cString: p) == temp {
                slots[i] = nil
                free(p)
            }
        }
    }

    private static func installHandlers() {
        guard !handlersInstalled else { return }
        handlersInstalled = true
        // A parent may have started us with these blocked (Foundation's Process does).
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, sig) }
        sigprocmask(SIG_UNBLOCK, &set, nil)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { sig in
                AtomicFiles.removeAllTemps()
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
    }

    /// Called from a signal handler: only async-signal-safe calls.
    private static func removeAllTemps() {
        slots.withUnsafeBufferPointer { buf in
            for p in buf { if let p { unlink(p) } }
        }
    }

    /// Writes `bytes` to `path` atomically (temporary file, then rename).
    public static func write(_ bytes: [UInt8], to path: String) throws(StageError) {
        let sink = try ByteSink(path: path)
        sink.buffer.append(bytes)
        try sink.commit()
    }
}

/// The text of the current errno.
public func errnoText() -> String { String(cString: strerror(errno)) }

func gzErrorText(_ gz: gzFile) -> String {
    var code: Int32 = 0
    guard let message = gzerror(gz, &code) else { return "error \(code)" }
    return String(cString: message)
}
