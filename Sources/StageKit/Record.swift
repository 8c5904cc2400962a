import CSimdJSON
#if canImport(Glibc)
import Glibc
#endif

/// One record of the stream: a JSON object whose members keep their order. Fields a stage
/// does not know pass through untouched; setting an existing key replaces its value in
/// place, setting a new key appends it at the end.
public struct Record {
    /// One member of the object.
    public struct Field {
        public var key: String
        public var value: JSONValue

        public init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// The members, in order.
    public var fields: [Field]

    public init(_ fields: [Field] = []) { self.fields = fields }

    /// A record whose members are the members of object node `node` of `document`, kept raw.
    public init(document: JSONDocument, node: Int, keys: KeyCache? = nil) {
        let tape = document.tape
        var fields: [Field] = []
        fields.reserveCapacity(tape.childCount(node))
        for child in tape.children(node) {
            let key = keys?.key(tape, child) ?? tape.key(child)
            fields.append(Field(key: key, value: .raw(RawJSON(document: document, node: child))))
        }
        self.fields = fields
    }

    /// Copies a borrowed tape whose root is an object into a record.
    public init(tape: JSONTape, keys: KeyCache? = nil) {
        self.init(document: JSONDocument(copying: tape), node: 0, keys: keys)
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }
    public var keys: [String] { fields.map(\.key) }

    /// The position of `key`, or nil.
    /// Keys of other lengths are passed over on their UTF-8 count (kept by every native
    /// String), and no field is copied on the way: lookups run many times per record.
    public func index(of key: String) -> Int? {
        let count = key.utf8.count
        return fields.withUnsafeBufferPointer { fields in
            for i in fields.indices where fields[i].key.utf8.count == count && fields[i].key == key { return i }
            return nil
        }
    }

    /// The value of `key`; assigning nil removes the field.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index(of: key) else { return nil }
            return fields[i].value
        }
        set {
            if let i = index(of: key) {
                if let newValue { fields[i].value = newValue } else { fields.remove(at: i) }
            } else if let newValue {
                fields.append(Field(key: key, value: newValue))
            }
        }
    }

    /// Appends a field without looking for an existing one with the same key.
    public mutating func append(_ key: String, _ value: JSONValue) {
        fields.append(Field(key: key, value: value))
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let i = index(of: key) else { return nil }
        return fields.remove(at: i).value
    }

    /// Whether `key` is present with a value other than null (a schema fills unknowns with null).
    public func hasValue(_ key: String) -> Bool { self[key].map { !$0.isNull } ?? false }

    /// The text of a scalar field (see `JSONValue.text`); nil when missing, null or a container.
    public func text(_ key: String) -> String? { self[key]?.text }

    /// The record as one line of compact JSON (without the newline).
    public var json: String {
        let buffer = ByteBuffer(capacity: 256)
        JSONWriter.write(self, into: buffer)
        return buffer.string
    }
}

extension Record: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { Field(key: $0.0, value: $0.1) })
    }
}

extension Record: Equatable {
    /// Equal when both have the same keys with equal values (see `JSONValue.==`), in any order.
    public static func == (a: Record, b: Record) -> Bool { JSONValue.object(a) == JSONValue.object(b) }
}

extension Record: CustomStringConvertible {
    public var description: String { json }
}

/// Reuses the String of a key seen before, so reading a stream of records with the same
/// keys does not allocate a new String per key per record.
public final class KeyCache {
    private var slots: [String?]
    private let mask: Int

    public init(size: Int = 1024) {
        var n = 1
        while n < size { n <<= 1 }
        slots = Array(repeating: nil, count: n)
        mask = n - 1
    }

    /// The decoded key of node `i` of `tape`.
    public func key(_ tape: JSONTape, _ i: Int) -> String {
        if tape.keyIsEscaped(i) { return tape.key(i) }
        return key(tape.rawKey(i))
    }

    /// A String for the UTF-8 bytes `raw` (which must be valid UTF-8 without escapes).
    public func key(_ raw: UnsafeBufferPointer<UInt8>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in raw { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let slot = Int(truncatingIfNeeded: h) & mask
        if var cached = slots[slot] {
            // memcmp over the cached string's contiguous UTF-8 (elementsEqual on a UTF8View
            // walked it byte by byte, and key lookups run for every member of every record).
            let same = cached.withUTF8 { bytes in
                bytes.count == raw.count && (raw.count == 0 || memcmp(bytes.baseAddress!, raw.baseAddress!, raw.count) == 0)
            }
            if same { return cached }
        }
        let s = String(decoding: raw, as: UTF8.self)
        slots[slot] = s
        return s
    }
}

/// Parses single JSON objects held in memory (a line of a side file, a spooled record) into
/// records, reusing one parser and one padded buffer.
public final class RecordParser {
    private let parser = JSONParser()
    private let keys = KeyCache()
    private let scratch = ByteBuffer(capacity: 1 << 12)

    public init() {}

    /// The object in `bytes`, or nil when they are not one JSON object.
    public func record(_ bytes: UnsafeBufferPointer<UInt8>) -> Record? {
        scratch.removeAll()
        scratch.append(bytes)
        scratch.append(JSONParser.zeroPadding)
        let text = UnsafeBufferPointer(start: scratch.base, count: bytes.count)
        guard case .success(let tape) = parser.parse(text), tape.isObject else { return nil }
        return Record(tape: tape, keys: keys)
    }

    /// The object held by `buffer`.
    public func record(_ buffer: ByteBuffer) -> Record? { record(UnsafeBufferPointer(start: buffer.base, count: buffer.count)) }
}
