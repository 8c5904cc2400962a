/// Cuts one input into JSON texts. It accepts what users hand to a stage:
/// - JSONL: one value per line (the stream's own format, and the fast path);
/// - a JSON array of values, on one line or pretty-printed;
/// - one or more pretty-printed objects, one after the other.
/// The format is decided by the first non-blank line: `[` starts an array; a line that is a
/// complete value means JSONL; otherwise the values span lines. A value that never closes is
/// reported as broken, and in the multi-line forms a `{` at the start of a line while a value
/// is still open starts the next value, so one damaged object does not swallow the rest.
public final class JSONTextReader {
    /// One piece of input.
    public enum Event {
        /// A complete JSON text (not yet validated) that starts at `line`. The bytes are
        /// valid until the next event and have `LJ_PADDING` readable bytes after them.
        case text(UnsafeBufferPointer<UInt8>, line: Int)
        /// Input that cannot be cut into a JSON text.
        case broken(UnsafeBufferPointer<UInt8>, line: Int, reason: String)
        /// Something is off with the input as a whole, though no record is lost.
        case warning(line: Int, message: String)
    }

    private enum Mode { case undecided, lines, multi, array }

    private let lines: LineReader
    private var mode = Mode.undecided
    private let accum = ByteBuffer(capacity: 1 << 16)
    private var accumLine = 0
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var inValue = false
    private var arrayOpen = false
    private var arrayClosed = false

    public init(lines: LineReader) { self.lines = lines }

    /// Bytes read from the source so far.
    public var bytesRead: Int { lines.bytesRead }

    /// Calls `body` for every text or broken piece, in input order.
    public func forEach(_ body: (Event) throws -> Void) throws {
        while let line = try lines.next() {
            switch mode {
            case .lines:
                let bytes = line.withoutCR
                if !line.isBlank { try body(.text(bytes, line: line.number)) }
            case .undecided:
                if line.isBlank { continue }
                decideMode(line)
                if mode == .lines {
                    try body(.text(line.withoutCR, line: line.number))
                } else {
                    try scan(line, body)
                }
            case .multi, .array:
                try scan(line, body)
            }
        }
        if inValue {
            try emitBroken(body, "unterminated JSON value: the input ended before it closed")
        }
        if mode == .array && !arrayClosed {
            try body(.warning(line: lines.lineNumber, message: "the JSON array is not closed before the end of the input"))
        }
    }

    private func decideMode(_ line: LineReader.Line) {
        let bytes = line.bytes
        var i = 0
        while i < bytes.count, isSpace(bytes[i]) { i += 1 }
        if bytes[i] == 91 {
            mode = .array
            return
        }
        var scanner = DepthScanner()
        for b in bytes[i...] { scanner.feed(b) }
        mode = scanner.depth > 0 || scanner.inString ? .multi : .lines
    }

    private func scan(_ line: LineReader.Line, _ body: (Event) throws -> Void) throws {
        let bytes = line.withoutCR
        let n = bytes.count
        var i = 0
        if inValue && depth > 0 && !inString && n > 0 && bytes[0] == 123 {
            try emitBroken(body, "unterminated JSON value: a new object starts at line \(line.number) before it closed")
        }
        var segmentStart = inValue ? 0 : -1
        while i < n {
            let b = bytes[i]
            if !inValue {
                if isSpace(b) {
                    i += 1
                    continue
                }
                if mode == .array {
                    if !arrayOpen {
                        if b == 91 {
                            arrayOpen = true
                            i += 1
                            continue
                        }
                    } else if !arrayClosed {
                        if b == 44 {
                            i += 1
                            continue
                        }
                        if b == 93 {
                            arrayClosed = true
                            i += 1
                            continue
                        }
                    } else {
                        accumLine = line.number
                        accum.removeAll()
                        accum.append(UnsafeBufferPointer(rebasing: bytes[i...]))
                        try body(.broken(accum.bytes, line: line.number, reason: "unexpected text after the JSON array"))
                        accum.removeAll()
                        return
                    }
                }
                inValue = true
                accumLine = line.number
                accum.removeAll()
                depth = 0
                inString = false
                escaped = false
                segmentStart = i
            }
            if inString {
                if escaped {
                    escaped = false
                } else if b == 92 {
                    escaped = true
                } else if b == 34 {
                    inString = false
                }
                i += 1
                continue
            }
            switch b {
            case 34:
                inString = true
            case 123, 91:
                depth += 1
            case 125, 93:
                if depth == 0 && mode == .array {
                    // A scalar element ends at the array's closing bracket.
                    accum.append(UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]))
                    try emitText(body)
                    segmentStart = -1
                    continue
                }
                if depth == 0 {
                    // A stray closing bracket: hand it on as a text of its own for the parser to reject.
                    accum.append(UnsafeBufferPointer(rebasing: bytes[segmentStart...i]))
                    try emitText(body)
                    segmentStart = -1
                    i += 1
                    continue
                }
                depth -= 1
                if depth == 0 {
                    accum.append(UnsafeBufferPointer(rebasing: bytes[segmentStart...i]))
                    try emitText(body)
                    segmentStart = -1
                    i += 1
                    continue
                }
            case 44 where depth == 0, 32 where depth == 0, 9 where depth == 0:
                // A scalar value ends at a comma or a space.
                accum.append(UnsafeBufferPointer(rebasing: bytes[segmentStart..<i]))
                try emitText(body)
                segmentStart = -1
                continue
            default:
                break
            }
            i += 1
        }
        if inValue && segmentStart >= 0 {
            accum.append(UnsafeBufferPointer(rebasing: bytes[segmentStart...]))
            if depth == 0 && !inString {
                try emitText(body)
            } else {
                accum.append(10)
            }
        }
    }

    private func emitText(_ body: (Event) throws -> Void) throws {
        inValue = false
        depth = 0
        accum.reserve(Int(64))
        let text = accum.bytes
        try body(.text(text, line: accumLine))
        accum.removeAll()
    }

    private func emitBroken(_ body: (Event) throws -> Void, _ reason: String) throws {
        inValue = false
        depth = 0
        inString = false
        escaped = false
        var bytes = accum.bytes
        if bytes.last == 10 { bytes = UnsafeBufferPointer(rebasing: bytes.dropLast()) }
        try body(.broken(bytes, line: accumLine, reason: reason))
        accum.removeAll()
    }

    @inline(__always) private func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 13 || b == 10 }
}

/// Tracks nesting depth through JSON text, skipping brackets inside strings.
struct DepthScanner {
    var depth = 0
    var inString = false
    var escaped = false

    mutating func feed(_ b: UInt8) {
        if inString {
            if escaped { escaped = false } else if b == 92 { escaped = true } else if b == 34 { inString = false }
            return
        }
        switch b {
        case 34: inString = true
        case 123, 91: depth += 1
        case 125, 93: depth -= 1
        default: break
        }
    }
}
