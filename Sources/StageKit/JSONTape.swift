import CSimdJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses JSON texts with simdjson into tapes. One parser is reused for a whole stream.
public final class JSONParser {
    private let handle: OpaquePointer

    public init() {
        guard let h = lj_parser_new() else { fatalError("out of memory creating the JSON parser") }
        handle = h
    }

    deinit { lj_parser_free(handle) }

    /// How many readable bytes must follow a text handed to `parse` (any bytes: the next
    /// text will do).
    public static let padding = Int(LJ_PADDING)

    /// `padding` zero bytes, to append after the last of a run of texts.
    public static let zeroPadding = [UInt8](repeating: 0, count: padding)

    /// Why a text is not valid JSON, and the byte offset where the problem was seen (-1: unknown).
    public struct SyntaxError: Error, CustomStringConvertible {
        public let message: String
        public let offset: Int
        public var description: String { message }
    }

    /// Parses `bytes`; `LJ_PADDING` bytes after the end must be readable. The tape borrows
    /// `bytes` and this parser's node storage: it is valid until the next `parse`, and only
    /// while the parser is alive (use `withExtendedLifetime` when the parser is a local).
    public func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<JSONTape, SyntaxError> {
        let base = bytes.baseAddress ?? UnsafePointer(emptyPadded)
        let n = base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
            lj_parse(handle, $0, bytes.count, bytes.count + Int(LJ_PADDING))
        }
        if n < 0 {
            return .failure(SyntaxError(message: String(cString: lj_error_message(handle)),
                                        offset: lj_error_offset(handle)))
        }
        return .success(JSONTape(base: base, nodes: lj_nodes(handle), count: Int(n)))
    }
}

nonisolated(unsafe) private let emptyPadded: UnsafeMutablePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(LJ_PADDING) + 1)
    p.initialize(repeating: 0, count: Int(LJ_PADDING) + 1)
    return p
}()

/// A parsed JSON text: the text's bytes and its nodes in document order. Node 0 is the
/// root; a container's children follow it, and `next(i)` skips a whole subtree.
/// A tape borrows its storage (see `JSONParser.parse`); `JSONDocument` owns a copy.
public struct JSONTape {
    public let base: UnsafePointer<UInt8>
    public let nodes: UnsafePointer<lj_node>
    public let count: Int

    public init(base: UnsafePointer<UInt8>, nodes: UnsafePointer<lj_node>, count: Int) {
        self.base = base
        self.nodes = nodes
        self.count = count
    }

    @inlinable public func kind(_ i: Int) -> UInt32 { UInt32(nodes[i].kind) }
    @inlinable public func next(_ i: Int) -> Int { Int(nodes[i].next) }
    @inlinable public func childCount(_ i: Int) -> Int { Int(nodes[i].count) }
    @inlinable public var isObject: Bool { count > 0 && nodes[0].kind == UInt8(LJ_OBJECT.rawValue) }

    /// The key of node `i` as written (escapes not decoded).
    @inlinable public func rawKey(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + Int(nodes[i].key_off), count: Int(nodes[i].key_len))
    }

    /// The value of node `i` as written: a scalar token or a whole container.
    @inlinable public func rawValue(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + Int(nodes[i].val_off), count: Int(nodes[i].val_len))
    }

    @inlinable public func keyIsEscaped(_ i: Int) -> Bool { nodes[i].flags & UInt8(LJ_KEY_ESCAPED.rawValue) != 0 }
    @inlinable public func valueIsEscaped(_ i: Int) -> Bool { nodes[i].flags & UInt8(LJ_VALUE_ESCAPED.rawValue) != 0 }

    /// The decoded key of node `i`.
    public func key(_ i: Int) -> String {
        let raw = rawKey(i)
        return keyIsEscaped(i) ? JSONTape.unescape(raw) : String(decoding: raw, as: UTF8.self)
    }

    /// The decoded text of string node `i` (without quotes).
    public func string(_ i: Int) -> String {
        let raw = rawValue(i)
        let body = UnsafeBufferPointer(rebasing: raw.dropFirst().dropLast())
        return valueIsEscaped(i) ? JSONTape.unescape(body) : String(decoding: body, as: UTF8.self)
    }

    /// The body of string node `i` without quotes, escapes not decoded.
    @inlinable public func rawStringBody(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + Int(nodes[i].val_off) + 1, count: Int(nodes[i].val_len) - 2)
    }

    /// The children of container node `i`.
    public func children(_ i: Int) -> JSONChildren { JSONChildren(tape: self, first: i + 1, end: next(i)) }

    /// The text of the top-level object's string member `key` (the first of that key), or nil
    /// when it is missing or not a string: one field read without building the record.
    public func topLevelString(_ key: StaticString) -> String? {
        guard let i = topLevelMember(key) else { return nil }
        return kind(i) == LJ_STRING.rawValue ? string(i) : nil
    }

    /// The top-level object's member `key` as a whole number, or nil when it is missing or
    /// not an integer.
    public func topLevelInt(_ key: StaticString) -> Int? {
        guard let i = topLevelMember(key), kind(i) == LJ_INT.rawValue else { return nil }
        return Int(String(decoding: rawValue(i), as: UTF8.self))
    }

    /// The node of the top-level object's first member `key`.
    public func topLevelMember(_ key: StaticString) -> Int? {
        guard isObject else { return nil }
        let wanted = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        for i in children(0) {
            let raw = rawKey(i)
            if raw.count == wanted.count, !keyIsEscaped(i), raw.elementsEqual(wanted) { return i }
        }
        return nil
    }

    /// Decodes JSON string escapes into a String.
    public static func unescape(_ body: UnsafeBufferPointer<UInt8>) -> String {
        guard body.count > 0 else { return "" }
        return String(unsafeUninitializedCapacity: body.count) { out in
            body.baseAddress!.withMemoryRebound(to: CChar.self, capacity: body.count) { src in
                out.baseAddress!.withMemoryRebound(to: CChar.self, capacity: body.count) { dst in
                    lj_unescape(src, body.count, dst)
                }
            }
        }
    }

    /// Decodes JSON string escapes into `buffer` (appending).
    public static func unescape(_ body: UnsafeBufferPointer<UInt8>, into buffer: ByteBuffer) {
        buffer.reserve(body.count)
        let n = body.baseAddress!.withMemoryRebound(to: CChar.self, capacity: body.count) { src in
            (buffer.base + buffer.count).withMemoryRebound(to: CChar.self, capacity: body.count) { dst in
                lj_unescape(src, body.count, dst)
            }
        }
        buffer.advance(by: n)
    }
}

extension ByteBuffer {
    /// Marks `n` bytes written directly after the end as part of the buffer.
    @usableFromInline func advance(by n: Int) { _count += n }
}

/// The direct children of a container node, as node indices.
public struct JSONChildren: Sequence {
    let tape: JSONTape
    let first: Int
    let end: Int

    public struct Iterator: IteratorProtocol {
        let tape: JSONTape
        var i: Int
        let end: Int
        public mutating func next() -> Int? {
            guard i < end else { return nil }
            defer { i = tape.next(i) }
            return i
        }
    }

    public func makeIterator() -> Iterator { Iterator(tape: tape, i: first, end: end) }
}

/// A JSON text and its tape, copied into storage of its own so that values taken from it
/// can outlive the reader's buffer. Records keep the fields nobody touched as references
/// into a document, and write them back out byte for byte.
public final class JSONDocument {
    let storage: UnsafeMutableRawPointer
    public let tape: JSONTape

    /// Copies a borrowed tape.
    public init(copying source: JSONTape) {
        let nodeBytes = source.count * MemoryLayout<lj_node>.stride
        let root = source.nodes[0]
        // Only the root's span is referenced by the nodes; copy that and rebase offsets.
        let textStart = Int(root.val_off)
        let textLength = Int(root.val_len)
        storage = UnsafeMutableRawPointer.allocate(byteCount: nodeBytes + textLength + 1,
                                                   alignment: MemoryLayout<lj_node>.alignment)
        let nodes = storage.bindMemory(to: lj_node.self, capacity: source.count)
        nodes.update(from: source.nodes, count: source.count)
        let text = (storage + nodeBytes).bindMemory(to: UInt8.self, capacity: textLength + 1)
        text.update(from: source.base + textStart, count: textLength)
        // A NUL after the text: number parsing (strtod) must stop at the end of a root scalar.
        text[textLength] = 0
        if textStart != 0 {
            for i in 0..<source.count {
                nodes[i].val_off -= UInt32(textStart)
                if nodes[i].flags & UInt8(LJ_HAS_KEY.rawValue) != 0 { nodes[i].key_off -= UInt32(textStart) }
            }
        }
        tape = JSONTape(base: UnsafePointer(text), nodes: UnsafePointer(nodes), count: source.count)
    }

    deinit { storage.deallocate() }
}
