#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lines sorted by a key, however many there are: they are held, each with its key, up to half
/// a memory budget (`LEAD_MEMORY`; the other half is left to the stage's reading and writing),
/// and when that is reached the lines held are sorted and written out as a run to an unlinked
/// scratch file (`SpoolFile`); `finish` merges the runs, reading each in blocks that together
/// take another quarter at most. Within the budget nothing touches the disk. Keys compare as bytes (as `LC_ALL=C sort`), and
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

    private struct Item {
        var offset: Int
        var keyCount: Int32
        var lineCount: Int32
    }

    public let budget: Int
    private let directory: String?
    private let arena = ByteBuffer(capacity: 1 << 20)
    private var items: [Item] = []
    private var runs: [(file: SpoolFile, end: Int)] = []
    private var header = [UInt8](repeating: 0, count: 8)
    /// Lines added.
    public private(set) var count = 0
    /// Runs written to disk so far (0: everything fitted in memory).
    public var spilledRuns: Int { runs.count }

    /// `directory`: where the scratch files go ($TMPDIR or /tmp when nil).
    public init(budget: Int, directory: String? = nil) {
        self.budget = max(budget, 1 << 20)
        self.directory = directory
    }

    private var holdLimit: Int { budget / 2 }

    public func add(key: UnsafeBufferPointer<UInt8>, line: UnsafeBufferPointer<UInt8>) throws(StageError) {
        items.append(Item(offset: arena.count, keyCount: Int32(key.count), lineCount: Int32(line.count)))
        arena.append(key)
        arena.append(line)
        count += 1
        if arena.count + items.count * MemoryLayout<Item>.stride >= holdLimit { try spill() }
    }

    public func add(key: String, line: UnsafeBufferPointer<UInt8>) throws(StageError) {
        let bytes = Array(key.utf8)
        try bytes.withUnsafeBufferPointer { k throws(StageError) in try add(key: k, line: line) }
    }

    /// Hands every line to `body` in key order (with its key), then forgets them all.
    public func finish(_ body: (_ key: UnsafeBufferPointer<UInt8>, _ line: UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        defer { items.removeAll(); arena.removeAll(); runs.removeAll() }
        if runs.isEmpty {
            sortItems()
            let base = arena.base
            for item in items {
                let key = UnsafeBufferPointer(start: base + item.offset, count: Int(item.keyCount))
                try body(key, UnsafeBufferPointer(start: base + item.offset + Int(item.keyCount), count: Int(item.lineCount)))
            }
            return
        }
        if !items.isEmpty { try spill() }
        let blockSize = min(max(budget / 4 / (2 * runs.count), 1 << 14), 1 << 20)
        let readers = runs.map { RunReader(file: $0.file, end: $0.end, blockSize: blockSize) }
        for r in readers { try r.advance() }
        while true {
            // Few runs (each is a budget's worth of lines): the smallest head by a scan; the
            // earlier run wins a tie, which keeps equal keys in the order they came.
            var best: RunReader?
            for r in readers where r.hasLine {
                if let b = best, Self.compare(r.key, b.key) >= 0 { continue }
                best = r
            }
            guard let b = best else { return }
            try body(b.key, b.line)
            try b.advance()
        }
    }

    private static func compare(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
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

    /// Sorts what is held and writes it as a run: per line its key's and its own length (4 bytes
    /// each, little-endian), the key, the line.
    private func spill() throws(StageError) {
        sortItems()
        let file = try SpoolFile(directory: directory, bufferSize: 1 << 16)
        var end = 0
        let base = arena.base
        for item in items {
            let k = UInt32(item.keyCount), l = UInt32(item.lineCount)
            for i in 0..<4 {
                header[i] = UInt8(truncatingIfNeeded: k >> (8 * UInt32(i)))
                header[4 + i] = UInt8(truncatingIfNeeded: l >> (8 * UInt32(i)))
            }
            let size = 8 + Int(item.keyCount) + Int(item.lineCount)
            _ = try header.withUnsafeBufferPointer { h throws(StageError) in try file.append(h) }
            _ = try file.append(UnsafeBufferPointer(start: base + item.offset, count: size - 8))
            end += size
        }
        runs.append((file, end))
        items.removeAll(keepingCapacity: true)
        arena.removeAll()
    }

    /// Reads one run back in blocks, a line at a time.
    private final class RunReader {
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
