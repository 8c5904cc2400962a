import CSimdJSON
import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a stage's input comes from: a file, or stdin for `-`. A path ending in `.gz` is
/// decompressed (several gzip members one after another are read as one stream); stdin is
/// decompressed when it starts with the gzip magic bytes. Reads return as soon as some
/// bytes are available, so a stage keeps pace with a slow producer in a pipeline. With an
/// `encoding` other than UTF-8 the (decompressed) bytes are turned into UTF-8 as they are read.
public final class ByteSource {
    /// The path as given, or `-` for stdin.
    public let path: String
    private var fd: Int32 = -1
    private var inflater: GzipInflater?
    private var sniffStdin = false
    private var pending: [UInt8] = []
    /// The encoding of the file's text; what `read` returns is always UTF-8.
    public let encoding: TextEncoding
    private var scratch: UnsafeMutablePointer<UInt8>?
    private var scratchCapacity = 0

    public init(path: String, encoding: TextEncoding = .utf8) throws(StageError) {
        self.path = path
        self.encoding = encoding
        if path == "-" {
            fd = 0
            sniffStdin = true
            return
        }
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("\(path): cannot open: \(errnoText())") }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            Glibc.close(fd)
            fd = -1
            throw .io("\(path): is a directory")
        }
        if path.hasSuffix(".gz") { inflater = try GzipInflater(name: path) }
    }

    deinit {
        close()
        scratch?.deallocate()
    }

    /// A name for messages.
    public var displayName: String { path == "-" ? "stdin" : path }

    /// The whole content of the file at `path` (gzip-decoded when it ends in .gz).
    public static func readAll(_ path: String) throws(StageError) -> [UInt8] {
        let source = try ByteSource(path: path)
        defer { source.close() }
        var out: [UInt8] = []
        let chunk = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
        defer { chunk.deallocate() }
        while true {
            let n = try source.read(into: chunk, count: 1 << 16)
            if n == 0 { break }
            out.append(contentsOf: UnsafeBufferPointer(start: chunk, count: n))
        }
        return out
    }

    /// Reads up to `count` bytes (UTF-8); 0 means end of input.
    public func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(StageError) -> Int {
        guard encoding != .utf8 else { return try readDecoded(into: buffer, count: count) }
        guard count > 0 else { return 0 }
        if !carry.isEmpty {
            let n = min(count, carry.count)
            for i in 0..<n { buffer[i] = carry[i] }
            carry.removeFirst(n)
            return n
        }
        // A single-byte encoding takes at most 3 UTF-8 bytes per byte.
        let want = max(1, count / 3)
        if scratchCapacity < want + 3 {
            scratch?.deallocate()
            scratch = .allocate(capacity: want + 3)
            scratchCapacity = want + 3
        }
        let n = try readDecoded(into: scratch!, count: want)
        if count >= 3 { return encoding.transcode(UnsafeBufferPointer(start: scratch!, count: n), into: buffer) }
        // Too little room for one character: keep what does not fit for the next read.
        var one = [UInt8](repeating: 0, count: 3 * n)
        let m = one.withUnsafeMutableBufferPointer { encoding.transcode(UnsafeBufferPointer(start: scratch!, count: n), into: $0.baseAddress!) }
        let give = min(count, m)
        for i in 0..<give { buffer[i] = one[i] }
        carry = Array(one[give..<m])
        return give
    }
    private var carry: [UInt8] = []

    /// Reads up to `count` bytes of the file's text, decompressed.
    private func readDecoded(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(StageError) -> Int {
        if sniffStdin {
            sniffStdin = false
            var head = [UInt8](repeating: 0, count: 2)
            var got = 0
            while got < 2 {
                let n = try readRaw(&head[got], 2 - got)
                if n == 0 { break }
                got += n
            }
            pending = Array(head[0..<got])
            if got == 2 && head[0] == 0x1F && head[1] == 0x8B { inflater = try GzipInflater(name: "stdin") }
        }
        if let inflater {
            return try inflater.read(into: buffer, count: count) { (p, n) throws(StageError) in try self.readCompressed(p, n) }
        }
        return try readCompressed(buffer, count)
    }

    /// Raw bytes from the file, after any bytes read ahead while sniffing.
    private func readCompressed(_ buffer: UnsafeMutablePointer<UInt8>, _ count: Int) throws(StageError) -> Int {
        if !pending.isEmpty {
            let n = min(count, pending.count)
            for i in 0..<n { buffer[i] = pending[i] }
            pending.removeFirst(n)
            return n
        }
        return try readRaw(buffer, count)
    }

    private func readRaw(_ buffer: UnsafeMutablePointer<UInt8>, _ count: Int) throws(StageError) -> Int {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw .io("\(displayName): read failed: \(errnoText())")
        }
    }

    public func close() {
        inflater = nil
        if fd > 0 {
            Glibc.close(fd)
        }
        fd = -1
    }
}

/// gzip decompression with zlib's inflate, fed by the caller's reads.
final class GzipInflater {
    private var stream = z_stream()
    private let input: UnsafeMutablePointer<UInt8>
    private let inputCapacity = 1 << 18
    private let name: String
    private var inputEnded = false
    private var memberEnded = false
    private var sawData = false

    init(name: String) throws(StageError) {
        self.name = name
        input = .allocate(capacity: inputCapacity)
        let rc = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            input.deallocate()
            throw .io("\(name): cannot start gzip decompression (\(rc))")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int,
              source: (UnsafeMutablePointer<UInt8>, Int) throws(StageError) -> Int) throws(StageError) -> Int {
        stream.next_out = buffer
        stream.avail_out = UInt32(min(count, Int(UInt32.max)))
        while stream.avail_out > 0 {
            if stream.avail_in == 0 && !inputEnded {
                let n = try source(input, inputCapacity)
                if n == 0 {
                    inputEnded = true
                } else {
                    stream.next_in = input
                    stream.avail_in = UInt32(n)
                }
            }
            if stream.avail_in == 0 && inputEnded {
                if !sawData { throw .io("\(name): empty file, not gzip-compressed data") }
                if !memberEnded { throw .io("\(name): gzip stream is truncated (unexpected end of file)") }
                break
            }
            if memberEnded {
                // Another gzip member follows (concatenated .gz files).
                memberEnded = false
                inflateReset(&stream)
            }
            sawData = true
            let rc = inflate(&stream, Z_NO_FLUSH)
            if rc == Z_STREAM_END {
                memberEnded = true
            } else if rc == Z_DATA_ERROR {
                let detail = stream.msg.map { String(cString: $0) } ?? "corrupt data"
                throw .io("\(name): not valid gzip data (\(detail))")
            } else if rc != Z_OK && rc != Z_BUF_ERROR {
                throw .io("\(name): gzip decompression failed (\(rc))")
            }
            let produced = count - Int(stream.avail_out)
            if produced > 0 && (stream.avail_in == 0 || rc == Z_STREAM_END) { return produced }
        }
        return count - Int(stream.avail_out)
    }
}

/// Splits a `ByteSource` into lines, numbered from 1. A line's bytes stay valid until the
/// next call, and `LJ_PADDING` bytes after the end are always readable (simdjson needs this).
/// A UTF-8 byte-order mark at the start of the input is dropped.
public final class LineReader {
    public let source: ByteSource
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var eof = false
    private var atStart = true
    /// The number of the line returned last.
    public private(set) var lineNumber = 0
    /// Bytes consumed from the source so far.
    public private(set) var bytesRead = 0

    public init(source: ByteSource, chunkSize: Int = 1 << 20) {
        self.source = source
        capacity = chunkSize
        base = .allocate(capacity: capacity + Int(LJ_PADDING))
        base.initialize(repeating: 0, count: capacity + Int(LJ_PADDING))
    }

    deinit { base.deallocate() }

    /// One line: its bytes without the `\n` (a trailing `\r` is kept; see `withoutCR`),
    /// and whether a `\n` followed it in the input.
    public struct Line {
        public let bytes: UnsafeBufferPointer<UInt8>
        public let number: Int
        public let hasNewline: Bool

        /// The bytes without a trailing carriage return.
        public var withoutCR: UnsafeBufferPointer<UInt8> {
            if let last = bytes.last, last == 13 { return UnsafeBufferPointer(rebasing: bytes.dropLast()) }
            return bytes
        }

        /// The bytes including the `\n` when there was one.
        public var withNewline: UnsafeBufferPointer<UInt8> {
            hasNewline ? UnsafeBufferPointer(start: bytes.baseAddress, count: bytes.count + 1) : bytes
        }

        /// True when the line holds only spaces, tabs and carriage returns.
        public var isBlank: Bool {
            for b in bytes where b != 32 && b != 9 && b != 13 { return false }
            return true
        }
    }

    /// The next line, or nil at the end of the input.
    public func next() throws(StageError) -> Line? {
        while true {
            if start < end {
                let p = base + start
                if let nl = memchr(p, 10, end - start) {
                    let len = UnsafeMutablePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - p
                    start += len + 1
                    lineNumber += 1
                    return Line(bytes: UnsafeBufferPointer(start: p, count: len), number: lineNumber, hasNewline: true)
                }
            }
            if eof {
                guard start < end else { return nil }
                let p = base + start
                let len = end - start
                start = end
                lineNumber += 1
                // Keep simdjson's padding readable and deterministic after the last line.
                (base + end).initialize(repeating: 0, count: Int(LJ_PADDING))
                return Line(bytes: UnsafeBufferPointer(start: p, count: len), number: lineNumber, hasNewline: false)
            }
            try fill()
        }
    }

    private func fill() throws(StageError) {
        if start > 0 {
            let pending = end - start
            if pending > 0 { base.update(from: base + start, count: pending) }
            start = 0
            end = pending
        }
        if end == capacity {
            let newCapacity = capacity * 2
            let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity + Int(LJ_PADDING))
            newBase.update(from: base, count: end)
            (newBase + end).initialize(repeating: 0, count: newCapacity + Int(LJ_PADDING) - end)
            base.deallocate()
            base = newBase
            capacity = newCapacity
        }
        let n: Int
        do {
            n = try source.read(into: base + end, count: capacity - end)
        } catch .io(let message) {
            throw .io(lineNumber > 0 ? message + " after line \(lineNumber)" : message)
        }
        if n == 0 {
            eof = true
            return
        }
        bytesRead += n
        if atStart {
            atStart = false
            if n >= 3 && base[end] == 0xEF && base[end + 1] == 0xBB && base[end + 2] == 0xBF {
                start += 3
            }
        }
        end += n
    }
}
