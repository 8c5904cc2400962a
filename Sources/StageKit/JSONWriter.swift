import CSimdJSON

/// Writes JSON in the record stream's one format: compact, keys in order, integers without
/// a decimal point, other numbers in their shortest round-trip form, and strings escaping
/// only what JSON requires (`"`, `\` and control characters).
public enum JSONWriter {
    /// Writes `record` as one JSON object (no newline).
    public static func write(_ record: Record, into out: ByteBuffer) {
        out.append(123)
        var first = true
        for field in record.fields {
            if !first { out.append(44) }
            first = false
            writeString(field.key, into: out)
            out.append(58)
            write(field.value, into: out)
        }
        out.append(125)
    }

    /// Adds one field to the JSON object that ends `out` (written by `write(_:into:)`),
    /// before its closing brace.
    public static func append(_ key: String, _ value: JSONValue, toObjectIn out: ByteBuffer) {
        out.removeLast()
        if out.count > 0, out.base[out.count - 1] != 123 { out.append(44) }
        writeString(key, into: out)
        out.append(58)
        write(value, into: out)
        out.append(125)
    }

    /// Writes `record` followed by `\n`.
    public static func writeLine(_ record: Record, into out: ByteBuffer) {
        write(record, into: out)
        out.append(10)
    }

    public static func write(_ value: JSONValue, into out: ByteBuffer) {
        switch value {
        case .null: appendLiteral("null", out)
        case .bool(let b): appendLiteral(b ? "true" : "false", out)
        case .int(let i): out.append(decimal: i)
        case .double(let d): writeDouble(d, into: out)
        case .string(let s): writeString(s, into: out)
        case .array(let elements):
            out.append(91)
            var first = true
            for e in elements {
                if !first { out.append(44) }
                first = false
                write(e, into: out)
            }
            out.append(93)
        case .object(let record): write(record, into: out)
        case .raw(let r): writeNode(r.tape, r.node, into: out)
        }
    }

    /// Writes node `i` of `tape` compactly: scalars as read (strings with needless escapes
    /// re-encoded), containers without their original whitespace.
    public static func writeNode(_ tape: JSONTape, _ i: Int, into out: ByteBuffer) {
        switch UInt32(tape.nodes[i].kind) {
        case LJ_OBJECT.rawValue:
            out.append(123)
            var first = true
            for child in tape.children(i) {
                if !first { out.append(44) }
                first = false
                writeRawKey(tape, child, into: out)
                out.append(58)
                writeNode(tape, child, into: out)
            }
            out.append(125)
        case LJ_ARRAY.rawValue:
            out.append(91)
            var first = true
            for child in tape.children(i) {
                if !first { out.append(44) }
                first = false
                writeNode(tape, child, into: out)
            }
            out.append(93)
        case LJ_STRING.rawValue:
            if tape.valueIsEscaped(i) {
                writeString(tape.string(i), into: out)
            } else {
                out.append(tape.rawValue(i))
            }
        default:
            out.append(tape.rawValue(i))
        }
    }

    /// Writes the key of node `i` as a JSON string.
    public static func writeRawKey(_ tape: JSONTape, _ i: Int, into out: ByteBuffer) {
        if tape.keyIsEscaped(i) {
            writeString(tape.key(i), into: out)
        } else {
            out.append(34)
            out.append(tape.rawKey(i))
            out.append(34)
        }
    }

    public static func writeString(_ s: String, into out: ByteBuffer) {
        var s = s
        s.withUTF8 { writeString(bytes: $0, into: out) }
    }

    /// Writes UTF-8 bytes as a JSON string (quotes included).
    public static func writeString(bytes: UnsafeBufferPointer<UInt8>, into out: ByteBuffer) {
        out.reserve(bytes.count + 2)
        out.append(34)
        writeEscapedBody(bytes, into: out)
        out.append(34)
    }

    /// Writes UTF-8 bytes escaped for the inside of a JSON string.
    public static func writeEscapedBody(_ bytes: UnsafeBufferPointer<UInt8>, into out: ByteBuffer) {
        guard let base = bytes.baseAddress else { return }
        let n = bytes.count
        var i = 0
        while i < n {
            let run = base.withMemoryRebound(to: CChar.self, capacity: n) { lj_find_special($0 + i, n - i) }
            if run > 0 { out.append(base + i, count: run) }
            i += run
            guard i < n else { break }
            let b = base[i]
            switch b {
            case 34: appendLiteral("\\\"", out)
            case 92: appendLiteral("\\\\", out)
            case 10: appendLiteral("\\n", out)
            case 13: appendLiteral("\\r", out)
            case 9: appendLiteral("\\t", out)
            case 8: appendLiteral("\\b", out)
            case 12: appendLiteral("\\f", out)
            default:
                appendLiteral("\\u00", out)
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 15)])
            }
            i += 1
        }
    }

    /// A double prints with a decimal point even when whole (`2.0`), so a fractional field is
    /// a float in every row for the readers that type columns (DuckDB, polars, pandas).
    public static func writeDouble(_ d: Double, into out: ByteBuffer) {
        if let i = exactInteger(d) {
            out.append(decimal: i)
            appendLiteral(".0", out)
        } else if d.isFinite {
            out.append(d.description)
        } else {
            appendLiteral("null", out)
        }
    }

    /// A number as the record stream prints it: whole numbers below 2^53 without a decimal
    /// point, others in shortest round-trip form; NaN and infinities have no JSON form.
    public static func format(_ d: Double) -> String {
        if let i = exactInteger(d) { return String(i) }
        return d.isFinite ? d.description : "null"
    }

    static func exactInteger(_ d: Double) -> Int? {
        guard d.isFinite, d.rounded(.towardZero) == d, abs(d) < 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }

    @inline(__always) static func appendLiteral(_ s: StaticString, _ out: ByteBuffer) {
        out.append(UnsafeRawPointer(s.utf8Start), count: s.utf8CodeUnitCount)
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

extension SourceLocation {
    /// Writes `description` (`path:line`) as a JSON string, without making the String.
    public func writeJSON(into out: ByteBuffer) {
        out.append(34)
        var path = displayPath
        path.withUTF8 { JSONWriter.writeEscapedBody($0, into: out) }
        out.append(58)
        out.append(decimal: line)
        out.append(34)
    }
}
