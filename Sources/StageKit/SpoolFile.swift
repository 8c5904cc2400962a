#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An anonymous scratch file for records that must wait (a dedupe holding every incoming
/// lead until the master has been read): append bytes, get back where they went, read them
/// again later. The file is unlinked as soon as it is created, so nothing is left behind
/// however the stage ends; the page cache, not the heap, holds what is spooled.
public final class SpoolFile {
    /// Where one appended piece lives.
    public struct Span: Sendable {
        public let offset: Int
        public let count: Int

        public init(offset: Int, count: Int) {
            self.offset = offset
            self.count = count
        }
    }

    private let fd: Int32
    private let pending: ByteBuffer
    private let bufferSize: Int
    private var flushed = 0

    /// Creates the file in `directory` ($TMPDIR or /tmp when nil); appends are written out in
    /// blocks of `bufferSize` bytes.
    public init(directory: String? = nil, bufferSize: Int = 1 << 20) throws(StageError) {
        self.bufferSize = bufferSize
        pending = ByteBuffer(capacity: bufferSize)
        let dir = directory ?? ProcessInfoLite.environment["TMPDIR"] ?? "/tmp"
        var template = Array((dir + "/lead-spool-XXXXXX").utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .io("\(dir): cannot create a spool file: \(errnoText())") }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
    }

    deinit {
        background.wait()
        close(fd)
    }

    /// Appends `bytes`; returns where they are.
    public func append(_ bytes: UnsafeBufferPointer<UInt8>) throws(StageError) -> Span {
        let span = Span(offset: flushed + pending.count, count: bytes.count)
        pending.append(bytes)
        if pending.count >= bufferSize { try flushInBackground() }
        return span
    }

    /// Appends what `buffer` holds.
    public func append(_ buffer: ByteBuffer) throws(StageError) -> Span {
        try append(UnsafeBufferPointer(start: buffer.base, count: buffer.count))
    }

    /// Appends one framed piece, made of `parts` back to back: its length (4 bytes,
    /// little-endian), then its bytes. A file of framed pieces only is read back, in order,
    /// by `forEachFramed`.
    public func appendFramed(_ parts: UnsafeBufferPointer<UInt8>...) throws(StageError) {
        let n = UInt32(parts.reduce(0) { $0 + $1.count })
        for i in 0..<4 { pending.append(UInt8(truncatingIfNeeded: n >> (8 * UInt32(i)))) }
        for part in parts { pending.append(part) }
        if pending.count >= bufferSize { try flushInBackground() }
    }

    /// Every framed piece (`appendFramed`), in the order appended, read a megabyte at a time.
    public func forEachFramed(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let total = flushed + pending.count
        let block = ByteBuffer(capacity: 1 << 20)
        // The start of a piece that the block read last cut in two, carried into the next.
        let carried = ByteBuffer(capacity: 1 << 12)
        var offset = 0
        while offset < total {
            try read(Span(offset: offset, count: min(1 << 20, total - offset)), into: block)
            offset += block.count
            var bytes = block.bytes
            if carried.count > 0 {
                carried.append(bytes)
                bytes = carried.bytes
            }
            var at = 0
            while bytes.count - at >= 4 {
                let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
                guard bytes.count - at - 4 >= n else { break }
                try body(UnsafeBufferPointer(rebasing: bytes[(at + 4)..<(at + 4 + n)]))
                at += 4 + n
            }
            let rest = UnsafeBufferPointer(rebasing: bytes[at...])
            if carried.count > 0 {
                let keep = Array(rest)
                carried.removeAll()
                keep.withUnsafeBufferPointer { carried.append($0) }
            } else {
                carried.append(rest)
            }
        }
        if carried.count > 0 { throw StageError.io("spool file: it ends inside a piece") }
    }

    /// A full block is written on a thread of its own while the next fills; a read waits.
    private let background = BackgroundWrites(label: "leadetl.spool")

    private func flushInBackground() throws(StageError) {
        flushed += try background.hand(pending) { [unowned self] bytes throws(StageError) in try self.writeAll(bytes) }
    }

    private func settle() throws(StageError) { try background.settle() }

    private func flush() throws(StageError) {
        try settle()
        try writeAll(pending.bytes)
        flushed += pending.count
        pending.removeAll()
    }

    private func writeAll(_ bytes: UnsafeBufferPointer<UInt8>) throws(StageError) {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("spool file: write failed: \(errnoText())")
            }
            done += n
        }
    }

    /// Reads a span back into `into` (replacing what it held).
    public func read(_ span: Span, into out: ByteBuffer) throws(StageError) {
        try flush()
        out.removeAll()
        out.reserve(span.count)
        var done = 0
        while done < span.count {
            let n = pread(fd, out.base + done, span.count - done, off_t(span.offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("spool file: read failed: \(errnoText())")
            }
            if n == 0 { throw .io("spool file: ended early") }
            done += n
        }
        out._count = span.count
    }

    /// Reads `spans` back, in order, a block of a megabyte or more at a time: for pieces
    /// appended one after another and read back in the same order.
    public func readInOrder(_ spans: [Span], _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let block = ByteBuffer(capacity: 1 << 20)
        var start = 0
        for span in spans {
            if span.offset < start || span.offset + span.count > start + block.count {
                // The next block: from this span to as many after it as a megabyte takes.
                var end = span.offset + span.count
                let total = flushed + pending.count
                end = max(end, min(total, span.offset + (1 << 20)))
                try read(Span(offset: span.offset, count: end - span.offset), into: block)
                start = span.offset
            }
            try body(block.bytes((span.offset - start)..<(span.offset - start + span.count)))
        }
    }
}
