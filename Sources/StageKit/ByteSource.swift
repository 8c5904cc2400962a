import CSimdJSON
import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a stage's input comes from: a file, or stdin for `-`. A path ending in `.gz`
/// is decompressed; stdin is decompressed when it starts with the gzip magic bytes.
public final class ByteSource {
    /// The path as given, or `-` for stdin.
    public let path: String
    private var fd: Int32 = -1
    private var gz: gzFile?
    private var checkedGzip = false

    public init(path: String) throws(StageError) {
        self.path = path
        if path == "-" {
            // zlib reads plain input through unchanged, so stdin may be either.
            guard let g = gzdopen(dup(0), "rb") else { throw .io("stdin: cannot read") }
            gz = g
            checkedGzip = true
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .io("\(path): cannot open: \(errnoText())") }
            var st = stat()
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                Glibc.close(fd)
                throw .io("\(path): is a directory")
            }
            if path.hasSuffix(".gz") {
                guard let g = gzdopen(fd, "rb") else {
                    Glibc.close(fd)
                    throw .io("\(path): cannot start gzip stream")
                }
                gz = g
                fd = -1
            }
        }
        if let gz { gzbuffer(gz, 1 << 18) }
    }

    deinit { close() }

    /// A name for messages.
    public var displayName: String { path == "-" ? "stdin" : path }

    /// Reads up to `count` bytes; 0 means end of input.
    public func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(StageError) -> Int {
        if let gz {
            let n = gzread(gz, buffer, UInt32(min(count, 1 << 30)))
            if n < 0 { throw .io("\(displayName): \(gzErrorText(gz))") }
            if !checkedGzip {
                checkedGzip = true
                if n > 0 && gzdirect(gz) != 0 { throw .io("\(displayName): not gzip-compressed data") }
            }
            if n == 0 {
                var code: Int32 = 0
                _ = gzerror(gz, &code)
                if code == Z_BUF_ERROR {
                    throw .io("\(displayName): gzip stream is truncated (unexpected end of file)")
                }
                if code != Z_OK { throw .io("\(displayName): \(gzErrorText(gz))") }
            }
            return Int(n)
        }
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw .io("\(displayName): read failed: \(errnoText())")
        }
    }

    public func close() {
        if let g = gz {
            gzclose(g)
            gz = nil
        }
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
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
        let n = try source.read(into: base + end, count: capacity - end)
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
