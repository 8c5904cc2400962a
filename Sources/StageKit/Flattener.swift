import CSimdJSON

/// Flattens nested JSON the way Miller's `flatten` verb does: nested keys are joined with a
/// separator (`.` by default), array elements are keyed 1, 2, ... (`photos.1.url`), an empty
/// object or array becomes the string `"{}"` or `"[]"`, and scalars keep their JSON type.
/// It works on the tape, so a record is flattened without building any values.
public final class JSONFlattener {
    public let separator: [UInt8]
    /// Whether the separator holds a byte a JSON string must escape.
    private let separatorNeedsEscapes: Bool
    private let path = ByteBuffer(capacity: 256)
    /// Whether the path built so far has a decoded key in it (which may hold bytes a JSON
    /// string must escape); the keys of the input written as they came need no escaping.
    private var pathNeedsEscapes = false
    /// The leaves `collect` found last.
    public let leaves = FlatLeaves()

    public init(separator: String = ".") {
        self.separator = Array(separator.utf8)
        separatorNeedsEscapes = self.separator.contains { $0 == 34 || $0 == 92 || $0 < 0x20 }
    }

    /// Finds each flattened key (decoded UTF-8) of object `tape` and the tape node of its
    /// value, in order, into `leaves` (replacing what it held). A node that is an empty
    /// container stands for `"{}"` or `"[]"`. The hot loops of the format stages read the
    /// leaves back by index: no closure is called per leaf.
    public func collect(_ tape: JSONTape) {
        leaves.removeAll()
        path.removeAll()
        for child in tape.children(0) {
            pathNeedsEscapes = false
            appendKey(tape, child)
            gather(tape, child)
            path.removeAll()
        }
    }

    private func appendKey(_ tape: JSONTape, _ i: Int) {
        if tape.keyIsEscaped(i) {
            pathNeedsEscapes = true
            let raw = tape.rawKey(i)
            JSONTape.unescape(raw, into: path)
        } else {
            path.append(tape.rawKey(i))
        }
    }

    private func gather(_ tape: JSONTape, _ i: Int) {
        let kind = tape.kind(i)
        if (kind == LJ_OBJECT.rawValue || kind == LJ_ARRAY.rawValue) && tape.childCount(i) > 0 {
            let mark = path.count, marked = pathNeedsEscapes
            pathNeedsEscapes = marked || separatorNeedsEscapes
            var index = 0
            for child in tape.children(i) {
                index += 1
                path.append(separator)
                if kind == LJ_OBJECT.rawValue { appendKey(tape, child) } else { path.append(decimal: index) }
                gather(tape, child)
                path.truncate(to: mark)
                pathNeedsEscapes = marked || separatorNeedsEscapes
            }
            pathNeedsEscapes = marked
            return
        }
        leaves.append(path.bytes, node: i, needsEscapes: pathNeedsEscapes)
    }

    /// Writes the flattened form of object `tape` as one JSON object (no newline).
    public func write(_ tape: JSONTape, into out: ByteBuffer) {
        collect(tape)
        out.append(123)
        for i in 0..<leaves.count {
            if i > 0 { out.append(44) }
            if leaves.keyNeedsEscapes(i) {
                JSONWriter.writeString(bytes: leaves.key(i), into: out)
            } else {
                // Keys read without escapes hold no byte to escape (the parser checked).
                out.append(34)
                out.append(leaves.key(i))
                out.append(34)
            }
            out.append(58)
            JSONFlattener.writeLeafValue(tape, leaves.node(i), into: out)
        }
        out.append(125)
    }

    /// Writes a leaf's value as JSON: `"{}"`/`"[]"` for empty containers, else the scalar.
    public static func writeLeafValue(_ tape: JSONTape, _ node: Int, into out: ByteBuffer) {
        switch tape.kind(node) {
        case LJ_OBJECT.rawValue: JSONWriter.appendLiteral("\"{}\"", out)
        case LJ_ARRAY.rawValue: JSONWriter.appendLiteral("\"[]\"", out)
        default: JSONWriter.writeNode(tape, node, into: out)
        }
    }

    /// Writes a leaf's value as CSV cell text into `out`: strings decoded, numbers as
    /// written, `true`/`false`, null as nothing, empty containers as `{}`/`[]`.
    public static func writeLeafText(_ tape: JSONTape, _ node: Int, into out: ByteBuffer) {
        switch tape.kind(node) {
        case LJ_OBJECT.rawValue: JSONWriter.appendLiteral("{}", out)
        case LJ_ARRAY.rawValue: JSONWriter.appendLiteral("[]", out)
        case LJ_NULL.rawValue: break
        case LJ_STRING.rawValue:
            let body = tape.rawStringBody(node)
            if tape.valueIsEscaped(node) { JSONTape.unescape(body, into: out) } else { out.append(body) }
        case LJ_FLOAT.rawValue:
            // A whole number prints without the .0 of a fractional field, as JSONValue.text.
            let raw = tape.rawValue(node)
            if raw.count > 2, raw[raw.count - 1] == 48, raw[raw.count - 2] == 46 {
                out.append(UnsafeBufferPointer(rebasing: raw[..<(raw.count - 2)]))
            } else {
                out.append(raw)
            }
        default: out.append(tape.rawValue(node))
        }
    }
}

/// The leaves of one flattened object (`JSONFlattener.collect`): each key's bytes, back to
/// back, and its value's tape node; reused from object to object.
public final class FlatLeaves {
    let keys = ByteBuffer(capacity: 1024)
    private var ends: UnsafeMutablePointer<Int>
    private var nodes: UnsafeMutablePointer<Int>
    /// Per leaf: whether its key may hold bytes a JSON string must escape.
    private var escapes: UnsafeMutablePointer<Bool>
    private var capacity = 64
    /// The number of leaves.
    public private(set) var count = 0

    init() {
        ends = .allocate(capacity: capacity)
        nodes = .allocate(capacity: capacity)
        escapes = .allocate(capacity: capacity)
    }

    deinit {
        ends.deallocate()
        nodes.deallocate()
        escapes.deallocate()
    }

    func removeAll() {
        count = 0
        keys.removeAll()
    }

    func append(_ key: UnsafeBufferPointer<UInt8>, node: Int, needsEscapes: Bool) {
        if count == capacity {
            let larger = capacity * 2
            let newEnds = UnsafeMutablePointer<Int>.allocate(capacity: larger), newNodes = UnsafeMutablePointer<Int>.allocate(capacity: larger)
            let newEscapes = UnsafeMutablePointer<Bool>.allocate(capacity: larger)
            newEnds.update(from: ends, count: count)
            newNodes.update(from: nodes, count: count)
            newEscapes.update(from: escapes, count: count)
            ends.deallocate()
            nodes.deallocate()
            escapes.deallocate()
            (ends, nodes, escapes, capacity) = (newEnds, newNodes, newEscapes, larger)
        }
        keys.append(key)
        ends[count] = keys.count
        nodes[count] = node
        escapes[count] = needsEscapes
        count += 1
    }

    /// Whether leaf `i`'s key may hold bytes a JSON string must escape.
    @inline(__always) func keyNeedsEscapes(_ i: Int) -> Bool { escapes[i] }

    /// Leaf `i`'s flattened key.
    @inline(__always) public func key(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        let start = i == 0 ? 0 : ends[i - 1]
        return UnsafeBufferPointer(start: keys.base + start, count: ends[i] - start)
    }

    /// Leaf `i`'s value node.
    @inline(__always) public func node(_ i: Int) -> Int { nodes[i] }
}

/// A hash table from byte strings to small integers (column numbers, say), for hot loops
/// that must not build a String per lookup.
public final class ByteKeyTable {
    private var keys = ByteBuffer(capacity: 4096)
    private var spans: [(start: Int, count: Int)] = []
    private var slots: [Int32]
    private var mask: Int

    public init() {
        slots = Array(repeating: -1, count: 256)
        mask = 255
    }

    /// The number of keys.
    public var count: Int { spans.count }

    /// A table of the same keys, numbered the same, that later inserts into this one leave alone.
    public func copy() -> ByteKeyTable {
        let other = ByteKeyTable()
        other.keys.append(keys.bytes)
        other.spans = spans
        other.slots = slots
        other.mask = mask
        return other
    }

    /// Key number `i`'s bytes.
    public func key(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: keys.base + spans[i].start, count: spans[i].count)
    }

    public func keyString(_ i: Int) -> String { String(decoding: key(i), as: UTF8.self) }

    /// True when key number `i` equals `bytes`.
    @inline(__always) public func keyEquals(_ i: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let span = spans[i]
        guard span.count == bytes.count else { return false }
        return span.count == 0 || memcmp(keys.base + span.start, bytes.baseAddress!, span.count) == 0
    }

    /// The number of `bytes`, or nil.
    public func find(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var slot = ByteKeyTable.hash(bytes) & mask
        while true {
            let v = Int(slots[slot])
            if v < 0 { return nil }
            if keyEquals(v, bytes) { return v }
            slot = (slot + 1) & mask
        }
    }

    /// The number of `bytes`, adding it if new.
    @discardableResult
    public func insert(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        if let found = find(bytes) { return found }
        let index = spans.count
        spans.append((keys.count, bytes.count))
        keys.append(bytes)
        if spans.count * 2 > slots.count { rehash() } else { place(index) }
        return index
    }

    private func place(_ index: Int) {
        var slot = ByteKeyTable.hash(key(index)) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(index)
    }

    private func rehash() {
        slots = Array(repeating: -1, count: slots.count * 2)
        mask = slots.count - 1
        for i in 0..<spans.count { place(i) }
    }

    @inline(__always) static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
