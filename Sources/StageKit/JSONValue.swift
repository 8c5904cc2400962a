import CSimdJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One JSON value. Values read from input stay `.raw` (a reference into the text they came
/// from) until someone looks inside, so fields a stage does not touch cost nothing and are
/// written back exactly as they were read. Use the accessors (`string`, `int`, `double`,
/// `array`, `object`, ...) rather than matching cases: they see through `.raw`.
public enum JSONValue {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(Record)
    /// A value still in its source text.
    case raw(RawJSON)

    /// The value with `.raw` decoded one level (a raw container's members stay raw).
    public var resolved: JSONValue {
        if case .raw(let r) = self { return r.resolved }
        return self
    }

    /// What kind of JSON value this is.
    public enum Kind: String, Sendable { case null, bool, number, string, array, object }

    /// True when both values are still their source text and the texts are the same bytes:
    /// a quick "equal" before comparing values.
    public func hasSameRawText(as other: JSONValue) -> Bool {
        guard case .raw(let a) = self, case .raw(let b) = other else { return false }
        let x = a.tape.rawValue(a.node), y = b.tape.rawValue(b.node)
        return x.count == y.count && (x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0)
    }

    /// The kind in words for messages: "an array", "a string", "null", ...
    public var kindDescription: String {
        switch kind {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    public var kind: Kind {
        switch self {
        case .null: return .null
        case .bool: return .bool
        case .int, .double: return .number
        case .string: return .string
        case .array: return .array
        case .object: return .object
        case .raw(let r): return r.kind
        }
    }

    public var isNull: Bool { kind == .null }

    /// The text of a string value; nil for any other kind.
    public var string: String? {
        switch self {
        case .string(let s): return s
        case .raw(let r) where r.kind == .string: return r.tape.string(r.node)
        default: return nil
        }
    }

    /// A scalar as text: a string as is, a number as written (a whole number without the `.0`
    /// the record stream gives a fractional field: `2.0` is `2`, as in a CSV cell),
    /// `true`/`false`; nil for null, arrays and objects.
    public var text: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return JSONWriter.format(d)
        case .bool(let b): return b ? "true" : "false"
        case .null, .array, .object: return nil
        case .raw(let r):
            switch r.kind {
            case .string: return r.tape.string(r.node)
            case .number:
                let raw = r.tape.rawValue(r.node)
                if raw.count > 2, raw[raw.count - 1] == 48, raw[raw.count - 2] == 46 {
                    return String(decoding: UnsafeBufferPointer(rebasing: raw[..<(raw.count - 2)]), as: UTF8.self)
                }
                return String(decoding: raw, as: UTF8.self)
            case .bool: return String(decoding: r.tape.rawValue(r.node), as: UTF8.self)
            default: return nil
            }
        }
    }

    /// An integer value, or a floating-point value that is a whole number in Int range.
    public var int: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d): return d.rounded() == d && abs(d) < 9.2e18 ? Int(d) : nil
        case .raw(let r) where r.kind == .number:
            if r.tape.kind(r.node) == LJ_INT.rawValue { return r.integer }
            return JSONValue.double(r.double).int
        default: return nil
        }
    }

    /// A number as Double.
    public var double: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .raw(let r) where r.kind == .number: return r.double
        default: return nil
        }
    }

    public var bool: Bool? {
        switch self {
        case .bool(let b): return b
        case .raw(let r) where r.kind == .bool: return r.tape.kind(r.node) == LJ_TRUE.rawValue
        default: return nil
        }
    }

    /// The elements of an array value.
    public var array: [JSONValue]? {
        switch self {
        case .array(let a): return a
        case .raw(let r) where r.kind == .array:
            return r.tape.children(r.node).map { .raw(RawJSON(document: r.document, node: $0)) }
        default: return nil
        }
    }

    /// The members of an object value.
    public var object: Record? {
        switch self {
        case .object(let o): return o
        case .raw(let r) where r.kind == .object: return Record(document: r.document, node: r.node)
        default: return nil
        }
    }

    /// The value as compact JSON text.
    public var json: String {
        let buffer = ByteBuffer(capacity: 64)
        JSONWriter.write(self, into: buffer)
        return buffer.string
    }
}

/// A value that is still text inside a `JSONDocument`.
public struct RawJSON {
    public let document: JSONDocument
    public let node: Int

    public init(document: JSONDocument, node: Int) {
        self.document = document
        self.node = node
    }

    public var tape: JSONTape { document.tape }

    public var kind: JSONValue.Kind {
        switch UInt32(tape.nodes[node].kind) {
        case LJ_NULL.rawValue: return .null
        case LJ_TRUE.rawValue, LJ_FALSE.rawValue: return .bool
        case LJ_STRING.rawValue: return .string
        case LJ_OBJECT.rawValue: return .object
        case LJ_ARRAY.rawValue: return .array
        default: return .number
        }
    }

    var integer: Int {
        var v = 0
        var negative = false
        for b in tape.rawValue(node) {
            if b == 45 { negative = true } else { v = v &* 10 &+ Int(b &- 48) }
        }
        return negative ? -v : v
    }

    var double: Double {
        // The token is valid JSON and followed by a delimiter, so strtod stops at its end.
        tape.rawValue(node).baseAddress!.withMemoryRebound(to: CChar.self, capacity: 1) { strtod($0, nil) }
    }

    var resolved: JSONValue {
        switch UInt32(tape.nodes[node].kind) {
        case LJ_NULL.rawValue: return .null
        case LJ_TRUE.rawValue: return .bool(true)
        case LJ_FALSE.rawValue: return .bool(false)
        case LJ_INT.rawValue: return .int(integer)
        case LJ_BIGINT.rawValue, LJ_FLOAT.rawValue: return .double(double)
        case LJ_STRING.rawValue: return .string(tape.string(node))
        case LJ_ARRAY.rawValue: return .array(tape.children(node).map { .raw(RawJSON(document: document, node: $0)) })
        default: return .object(Record(document: document, node: node))
        }
    }
}

extension JSONValue: Equatable {
    /// JSON equality: numbers by value (1 == 1.0), objects regardless of member order.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        let x = a.resolved, y = b.resolved
        switch (x, y) {
        case (.null, .null): return true
        case (.bool(let p), .bool(let q)): return p == q
        case (.string(let p), .string(let q)): return p == q
        case (.int(let p), .int(let q)): return p == q
        case (.int, .double), (.double, .int), (.double, .double): return x.double == y.double
        case (.array(let p), .array(let q)): return p == q
        case (.object(let p), .object(let q)):
            guard p.count == q.count else { return false }
            for field in p.fields {
                guard let other = q[field.key], other == field.value else { return false }
            }
            return true
        default: return false
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Record(elements.map { Record.Field(key: $0.0, value: $0.1) }))
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { json }
}

extension JSONValue {
    /// Parses one JSON text (a value of any kind); nil when it is not valid JSON.
    public init?(parsing text: String) {
        var bytes = Array(text.utf8)
        let count = bytes.count
        bytes += [UInt8](repeating: 0, count: Int(LJ_PADDING))
        let parser = JSONParser()
        let parsed: JSONValue? = bytes.withUnsafeBufferPointer { buffer in
            // The tape borrows the parser's nodes: keep the parser alive until they are copied.
            withExtendedLifetime(parser) {
                switch parser.parse(UnsafeBufferPointer(rebasing: buffer[0..<count])) {
                case .success(let tape): return .raw(RawJSON(document: JSONDocument(copying: tape), node: 0))
                case .failure: return nil
                }
            }
        }
        guard let parsed else { return nil }
        self = parsed
    }
}

extension JSONValue {
    /// Counts by name as an object with the names in byte order (`{"a":2,"b":1}`), so the
    /// same counts always print the same.
    public init(counts: [String: Int]) {
        var r = Record()
        for key in counts.keys.sorted(by: { $0.precedesInByteOrder($1) }) { r.append(key, .int(counts[key]!)) }
        self = .object(r)
    }
}

extension String {
    /// Whether this string sorts before `other` in UTF-8 byte order (what `LC_ALL=C sort`
    /// does), compared with memcmp over the contiguous bytes when there are some.
    @inlinable
    public func precedesInByteOrder(_ other: String) -> Bool {
        let fast: Bool? = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b -> Bool in
                let n = Swift.min(a.count, b.count)
                if n > 0 {
                    let c = memcmp(a.baseAddress!, b.baseAddress!, n)
                    if c != 0 { return c < 0 }
                }
                return a.count < b.count
            }
        } ?? nil
        return fast ?? utf8.lexicographicallyPrecedes(other.utf8)
    }
}
