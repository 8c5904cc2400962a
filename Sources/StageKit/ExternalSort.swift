#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lines sorted by a key, however many there are: they are held, each with its key, up to a
/// quarter of a memory budget (`LEAD_MEMORY`; the rest is left to the stage's reading and
/// writing, and to a second sort a merge join needs), and when that is reached the lines held
/// are sorted and written out as a run to an unlinked scratch file (`SpoolFile`); `finish`
/// merges the runs, reading each in blocks that together take another quarter at most (64 runs
/// of one level are merged into one as they come, so few files are open). Within the budget
/// nothing touches the disk. Keys compare as bytes (as `LC_ALL=C sort`), and
/// lines with equal keys come out in the order they were added.
public final class ExternalSort {
    /// The budget `LEAD_MEMORY` sets: bytes, or a number with K, M or G (`512M`, `2G`); 256 MB
    /// when unset.
    public static func budget(_ environment: [String: String]) throws(StageError) -> Int {
        guard let text = environment["LEAD_MEMORY"]?.trimmingSpaces, !text.isEmpty else { return 256 << 20 }
        var digits = Substring(text)
        var shift = 0
        switch digits.last.map({ Character($0.uppercased()) }) {
        case "K": shift = 10; digits.removeLast()
        case "M": shift = 20; digits.removeLast()
        case "G": shift = 30; digits.removeLast()
        default: break
        }
        guard let n = Int(digits), n > 0, n < (1 << (62 - shift)) else {
            throw .usage("LEAD_MEMORY=\(text): give bytes, or a number with K, M or G (256M)")
        }
        return n << shift
    }

    struct Item {
        var offset: Int
        var keyCount: Int32
        var lineCount: Int32
    }

    public let budget: Int
    private let directory: String?
    var arena = ByteBuffer(capacity: 1 << 20)
    var items: [Item] = []
    private var runs: [(file: SpoolFile, end: Int, level: Int)] = []
    private var header = [UInt8](repeating: 0, count: 8)
    /// Lines added.
    public private(set) var count = 0
    /// Runs written to disk so far (0: everything fitted in memory), merged ones included.
    public private(set) var spilledRuns = 0

    /// `directory`: where the scratch files go ($TMPDIR or /tmp when nil).
    public init(budget: Int, directory: String? = nil) {
        self.budget = max(budget, 1 << 16)
        self.directory = directory
    }

    private var holdLimit: Int { budget / 4 }

    public func add(key: UnsafeBufferPointer<UInt8>, line: UnsafeBufferPointer<UInt8>) throws(StageError) {
        items.append(Item(offset: arena.count, keyCount: Int32(key.count), lineCount: Int32(line.count)))
        arena.append(key)
        arena.append(line)
        count += 1
        if arena.count + items.count * MemoryLayout<Item>.stride >= holdLimit { try spill() }
    }

    public func add(key: String, line: UnsafeBufferPointer<UInt8>) throws(StageError) {
        // The key's bytes through one reused buffer, not an array per line.
        keyScratch.removeAll()
        keyScratch.append(key)
        try add(key: keyScratch.bytes, line: line)
    }
    private let keyScratch = ByteBuffer(capacity: 256)

    /// Hands every line to `body` in key order (with its key).
    public func finish(_ body: (_ key: UnsafeBufferPointer<UInt8>, _ line: UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let cursor = try sorted()
        while try cursor.next() { try body(cursor.key, cursor.line) }
    }

    /// Writes the lines held so far as a run, so that their memory is free for other work
    /// before the merge (nothing when none are held).
    public func spillHeld() throws(StageError) {
        if !items.isEmpty { try spill() }
        arena = ByteBuffer(capacity: 1 << 16)
        items = []
    }

    /// The lines in key order, read one at a time (for merging with another sorted stream).
    /// Add nothing once it is made.
    public func sorted() throws(StageError) -> Cursor {
        if runs.isEmpty && spilledRuns == 0 {
            sortItems()
            return Cursor(sorter: self, readers: [])
        }
        if !items.isEmpty { try spill() }
        arena = ByteBuffer(capacity: 1 << 16)
        items = []
        let blockSize = min(max(budget / 4 / (2 * runs.count), 1 << 14), 1 << 20)
        let readers = runs.map { RunReader(file: $0.file, end: $0.end, blockSize: blockSize) }
        for r in readers { try r.advance() }
        return Cursor(sorter: self, readers: readers)
    }

    /// The current line of a sorted stream: `next()` moves to the next one (false at the end);
    /// `key` and `line` are valid until it is called again.
    public final class Cursor {
        let sorter: ExternalSort
        let readers: [RunReader]
        var index = -1
        var current: RunReader?
        public private(set) var key = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        public private(set) var line = UnsafeBufferPointer<UInt8>(start: nil, count: 0)

        init(sorter: ExternalSort, readers: [RunReader]) {
            self.sorter = sorter
            self.readers = readers
        }

        public func next() throws(StageError) -> Bool {
            if readers.isEmpty {
                index += 1
                guard index < sorter.items.count else { return false }
                let item = sorter.items[index], base = sorter.arena.base
                key = UnsafeBufferPointer(start: base + item.offset, count: Int(item.keyCount))
                line = UnsafeBufferPointer(start: base + item.offset + Int(item.keyCount), count: Int(item.lineCount))
                return true
            }
            if let c = current { try c.advance() }
            // Few runs (each a quarter of a budget of lines, or merged): the smallest head by a scan;
            // the earlier run wins a tie, which keeps equal keys in the order they came.
            var best: RunReader?
            for r in readers where r.hasLine {
                if let b = best, ExternalSort.compare(r.key, b.key) >= 0 { continue }
                best = r
            }
            current = best
            guard let b = best else { return false }
            key = b.key
            line = b.line
            return true
        }
    }

    /// Byte order of two keys (as memcmp, the shorter first on a common prefix).
    public static func compare(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    private func sortItems() {
        let base = arena.base
        items.sort { x, y in
            let c = Self.compare(UnsafeBufferPointer(start: base + x.offset, count: Int(x.keyCount)),
                                 UnsafeBufferPointer(start: base + y.offset, count: Int(y.keyCount)))
            return c != 0 ? c < 0 : x.offset < y.offset
        }
    }

    /// Runs merged at once at most: past it the runs so far are merged into one (so a small
    /// budget over a large input keeps few files open).
    static let fanIn = 64

    /// Sorts what is held and writes it as a run: per line its key's and its own length (4 bytes
    /// each, little-endian), the key, the line.
    private func spill() throws(StageError) {
        sortItems()
        let file = try SpoolFile(directory: directory, bufferSize: 1 << 16)
        var end = 0
        let base = arena.base
        for item in items {
            end += try write(UnsafeBufferPointer(start: base + item.offset, count: Int(item.keyCount)),
                             UnsafeBufferPointer(start: base + item.offset + Int(item.keyCount), count: Int(item.lineCount)), to: file)
        }
        runs.append((file, end, 0))
        spilledRuns += 1
        items.removeAll(keepingCapacity: true)
        arena.removeAll()
        // fanIn runs of one level become one of the next (each line is rewritten once a level).
        while runs.count >= ExternalSort.fanIn, let level = runs.last?.level,
              runs.suffix(ExternalSort.fanIn).allSatisfy({ $0.level == level }) {
            try mergeRuns(last: ExternalSort.fanIn)
        }
    }

    private func write(_ key: UnsafeBufferPointer<UInt8>, _ line: UnsafeBufferPointer<UInt8>, to file: SpoolFile) throws(StageError) -> Int {
        let k = UInt32(key.count), l = UInt32(line.count)
        for i in 0..<4 {
            header[i] = UInt8(truncatingIfNeeded: k >> (8 * UInt32(i)))
            header[4 + i] = UInt8(truncatingIfNeeded: l >> (8 * UInt32(i)))
        }
        _ = try header.withUnsafeBufferPointer { h throws(StageError) in try file.append(h) }
        _ = try file.append(key)
        _ = try file.append(line)
        return 8 + key.count + line.count
    }

    /// The last `count` runs (one level's) merged into one of the next level.
    private func mergeRuns(last count: Int) throws(StageError) {
        let merging = runs.suffix(count)
        let blockSize = min(max(budget / 4 / (2 * count), 1 << 14), 1 << 20)
        let readers = merging.map { RunReader(file: $0.file, end: $0.end, blockSize: blockSize) }
        for r in readers { try r.advance() }
        let cursor = Cursor(sorter: self, readers: readers)
        let file = try SpoolFile(directory: directory, bufferSize: 1 << 16)
        var end = 0
        while try cursor.next() { end += try write(cursor.key, cursor.line, to: file) }
        let level = merging.last!.level + 1
        runs.removeLast(count)
        runs.append((file, end, level))
    }

    /// Reads one run back in blocks, a line at a time.
    final class RunReader {
        let file: SpoolFile
        let end: Int
        var position = 0
        let blockSize: Int
        let block: ByteBuffer
        var start = 0
        var key = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        var line = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        var hasLine = false
        private let scratch: ByteBuffer

        init(file: SpoolFile, end: Int, blockSize: Int) {
            self.file = file
            self.end = end
            self.blockSize = blockSize
            block = ByteBuffer(capacity: blockSize)
            scratch = ByteBuffer(capacity: blockSize)
        }

        /// Makes `n` bytes from `start` available in `block`.
        private func ensure(_ n: Int) throws(StageError) -> Bool {
            if block.count - start >= n { return true }
            if position >= end { return false }
            // Keep the unread tail, then read the next block after it.
            scratch.removeAll()
            scratch.append(block.bytes(start..<block.count))
            let want = min(max(n - scratch.count, blockSize), end - position)
            try file.read(SpoolFile.Span(offset: position, count: want), into: block)
            position += want
            scratch.append(block)
            block.removeAll()
            block.append(scratch)
            start = 0
            return block.count >= n
        }

        func advance() throws(StageError) {
            guard try ensure(8) else { hasLine = false; return }
            let h = block.base + start
            let k = Int(UInt32(h[0]) | UInt32(h[1]) << 8 | UInt32(h[2]) << 16 | UInt32(h[3]) << 24)
            let l = Int(UInt32(h[4]) | UInt32(h[5]) << 8 | UInt32(h[6]) << 16 | UInt32(h[7]) << 24)
            guard try ensure(8 + k + l) else { throw .io("scratch file of a sort: ended early") }
            let p = block.base + start
            key = UnsafeBufferPointer(start: p + 8, count: k)
            line = UnsafeBufferPointer(start: p + 8 + k, count: l)
            start += 8 + k + l
            hasLine = true
        }
    }
}
