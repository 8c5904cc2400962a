import CSimdJSON
import StageKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `EventCatalog.flatten` on the parsed text itself, for `lead-flatten events` on every
/// processor: the event's fields are found by comparing key bytes, values are copied as
/// they were read, and the flat event is written straight out, with the fields a schema
/// adds (null) and `_origin` where the record path puts them. One per worker.
///
/// It takes only the plain case: every key and value it reads unescaped, values without
/// surrounding spaces, a message type in ASCII, a known event with what it needs. For
/// anything else `write` returns false and writes nothing, and the caller takes the record
/// path, which decides (and words the reject) the same as always.
public final class EventTapeFlattener {
    /// The tag `lead-flatten events` gives a written flat event of kind `kind`.
    public static func tag(_ kind: EventCatalog.Kind) -> Int { 2 + EventCatalog.Kind.allCases.firstIndex(of: kind)! }
    /// The kind of a flat event's tag (nil: the run record or a skipped event).
    public static func kind(ofTag tag: Int) -> EventCatalog.Kind? {
        tag >= 2 && tag - 2 < EventCatalog.Kind.allCases.count ? EventCatalog.Kind.allCases[tag - 2] : nil
    }
    public static let runTag = 0
    /// A skipped event: the bytes written are its name.
    public static let skippedTag = 1

    /// One member of a flat event, in output order: its `"key":` and where its value comes from.
    enum Slot {
        case constant([UInt8])
        /// One of `EventCatalog.fields`, by index.
        case field(Int)
        case timestamp
        case origin
    }

    // Everything `write` reads per event lives in plain memory: key bytes and constants in
    // one block, the plans, slots and paths as spans into it. (Nested Swift arrays cost a
    // retain and a release each time the loop steps into one, which was most of the work.)
    struct Span {
        var start: Int32
        var count: Int32
    }

    struct PlanInfo {
        var name: Span
        var tag: Int
        var isLead: Bool
        var slots: Range<Int>
    }

    struct SlotInfo {
        var key: Span
        /// 0 a constant (`value`), 1 a field (`field`), 2 the timestamp, 3 the origin.
        var kind: UInt8
        var value: Span
        var field: Int
    }

    private let bytes: UnsafeMutablePointer<UInt8>
    private let planInfo: UnsafeMutableBufferPointer<PlanInfo>
    private let slotInfo: UnsafeMutableBufferPointer<SlotInfo>
    /// Field f's paths are `fieldPaths[f]..<fieldPaths[f + 1]`; path p's keys are
    /// `pathKeys[p]..<pathKeys[p + 1]`; key k's bytes are `keySpans[k]`.
    private let fieldPaths: UnsafeMutableBufferPointer<Int>
    private let pathKeys: UnsafeMutableBufferPointer<Int>
    private let keySpans: UnsafeMutableBufferPointer<Span>
    private let fieldCount: Int
    private let eventKey: Span
    private let timestampKey: Span
    let messageTypeIndex: Int
    let listingIndex: Int
    let seekerIndex: Int
    /// Where each field's value is in the current text: (start, count) in the tape's text,
    /// count -1 for none.
    private let found: UnsafeMutableBufferPointer<(start: Int, count: Int)>

    public init(catalog: EventCatalog, schema: RecordSchema?, stampsOrigin: Bool) {
        func encoded(_ key: String) -> [UInt8] {
            let b = ByteBuffer(capacity: key.utf8.count + 3)
            JSONWriter.writeString(key, into: b)
            b.append(58)
            return Array(b.bytes)
        }
        func stringValue(_ text: String) -> [UInt8] {
            let b = ByteBuffer(capacity: text.utf8.count + 2)
            JSONWriter.writeString(text, into: b)
            return Array(b.bytes)
        }
        var block: [UInt8] = []
        func span(_ b: [UInt8]) -> Span {
            defer { block.append(contentsOf: b) }
            return Span(start: Int32(block.count), count: Int32(b.count))
        }
        var plans: [PlanInfo] = []
        var slotList: [SlotInfo] = []
        for name in catalog.names {
            let entry = catalog.events[name]!
            var slots: [(String, Slot)] = [("kind", .constant(stringValue(entry.kind.recordKind))), ("event", .constant(stringValue(name)))]
            for (i, f) in EventCatalog.fields.enumerated() where EventCatalog.carries(f, entry) { slots.append((f, .field(i))) }
            if let type = entry.leadType { slots.append(("lead_type", .constant(stringValue(type)))) }
            slots.append(("timestamp", .timestamp))
            // As RecordSchema.fill and Stage.stampOrigin do to the record: the schema's missing
            // fields after the event's, null; the origin in the schema's place, else last.
            for field in schema?.fields ?? [] where !slots.contains(where: { $0.0 == field }) {
                slots.append((field, field == Stage.originField && stampsOrigin ? .origin : .constant(Array("null".utf8))))
            }
            if stampsOrigin && !slots.contains(where: { $0.0 == Stage.originField }) { slots.append((Stage.originField, .origin)) }
            let first = slotList.count
            for (key, slot) in slots {
                var info = SlotInfo(key: span(encoded(key)), kind: 0, value: Span(start: 0, count: 0), field: 0)
                switch slot {
                case .constant(let b): info.value = span(b)
                case .field(let f): info.kind = 1; info.field = f
                case .timestamp: info.kind = 2
                case .origin: info.kind = 3
                }
                slotList.append(info)
            }
            plans.append(PlanInfo(name: span(Array(name.utf8)), tag: EventTapeFlattener.tag(entry.kind), isLead: entry.kind == .lead,
                                  slots: first..<slotList.count))
        }
        eventKey = span(Array("event".utf8))
        timestampKey = span(Array("timestamp".utf8))
        var fieldPaths: [Int] = [0], pathKeys: [Int] = [0], keySpans: [Span] = []
        for field in EventCatalog.fields {
            for path in catalog.paths[field] ?? [] {
                for key in path { keySpans.append(span(Array(key.utf8))) }
                pathKeys.append(keySpans.count)
            }
            fieldPaths.append(pathKeys.count - 1)
        }
        func copy<T>(_ list: [T]) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(list.count, 1))
            _ = b.initialize(from: list)
            return b
        }
        bytes = .allocate(capacity: max(block.count, 1))
        bytes.initialize(from: block, count: block.count)
        planInfo = copy(plans)
        slotInfo = copy(slotList)
        self.fieldPaths = copy(fieldPaths)
        self.pathKeys = copy(pathKeys)
        self.keySpans = copy(keySpans)
        fieldCount = EventCatalog.fields.count
        messageTypeIndex = EventCatalog.fields.firstIndex(of: "message_type")!
        listingIndex = EventCatalog.fields.firstIndex(of: "listing_id")!
        seekerIndex = EventCatalog.fields.firstIndex(of: "seeker_id")!
        found = copy(Array(repeating: (0, -1), count: EventCatalog.fields.count))
    }

    deinit {
        bytes.deallocate()
        planInfo.deallocate()
        slotInfo.deallocate()
        fieldPaths.deallocate()
        pathKeys.deallocate()
        keySpans.deallocate()
        found.deallocate()
    }

    @inline(__always) private func view(_ s: Span) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: bytes + Int(s.start), count: Int(s.count))
    }

    /// The first member `key` of object node `object`; nil when there is none, or when a key
    /// of the object is escaped (`plain` false: the record path decides).
    @inline(__always)
    static func member(_ tape: JSONTape, _ object: Int, _ key: UnsafeBufferPointer<UInt8>, plain: inout Bool) -> Int? {
        for child in tape.children(object) {
            if tape.keyIsEscaped(child) { plain = false; return nil }
            let raw = tape.rawKey(child)
            if raw.count == key.count && (key.count == 0 || memcmp(raw.baseAddress!, key.baseAddress!, key.count) == 0) { return child }
        }
        return nil
    }

    /// Writes the flat event of `tape` (a PostHog event) and returns its tag, or returns the
    /// skipped tag having written the event's name; nil, with nothing written, when the text
    /// is not the plain case.
    public func write(_ tape: JSONTape, origin: SourceLocation, into out: ByteBuffer) -> Int? {
        guard tape.isObject else { return nil }
        var plain = true
        for child in tape.children(0) {
            if tape.keyIsEscaped(child) { return nil }
            // Input with a kind is a run record or already flat: the record path.
            let raw = tape.rawKey(child)
            if raw.count == 4 && raw[0] == 107 && raw[1] == 105 && raw[2] == 110 && raw[3] == 100 { return nil }
        }
        guard let nameNode = EventTapeFlattener.member(tape, 0, view(eventKey), plain: &plain),
              tape.kind(nameNode) == LJ_STRING.rawValue, !tape.valueIsEscaped(nameNode) else { return nil }
        let name = tape.rawStringBody(nameNode)
        var chosen = -1
        for p in 0..<planInfo.count {
            let planName = view(planInfo[p].name)
            if planName.count == name.count && (name.count == 0 || memcmp(planName.baseAddress!, name.baseAddress!, name.count) == 0) {
                chosen = p
                break
            }
        }
        guard chosen >= 0 else {
            out.append(name)
            return EventTapeFlattener.skippedTag
        }
        let plan = planInfo[chosen]
        guard let stampNode = EventTapeFlattener.member(tape, 0, view(timestampKey), plain: &plain),
              tape.kind(stampNode) == LJ_STRING.rawValue, !tape.valueIsEscaped(stampNode),
              let at = Timestamp.parse(tape.rawStringBody(stampNode)) else { return nil }
        let text = tape.base
        for f in 0..<fieldCount {
            found[f] = (0, -1)
            for path in fieldPaths[f]..<fieldPaths[f + 1] {
                var node = 0
                var reached = true
                for k in pathKeys[path]..<pathKeys[path + 1] {
                    guard tape.kind(node) == LJ_OBJECT.rawValue,
                          let child = EventTapeFlattener.member(tape, node, view(keySpans[k]), plain: &plain) else { reached = false; break }
                    node = child
                }
                guard plain else { return nil }
                guard reached else { continue }
                let kind = tape.kind(node)
                if kind == LJ_STRING.rawValue {
                    if tape.valueIsEscaped(node) { return nil }
                    let body = tape.rawStringBody(node)
                    guard body.count > 0 else { continue }
                    if EventTapeFlattener.isSpace(body[0]) || EventTapeFlattener.isSpace(body[body.count - 1]) { return nil }
                    found[f] = (body.baseAddress! - text, body.count)
                } else if kind == LJ_INT.rawValue || kind == LJ_BIGINT.rawValue || kind == LJ_FLOAT.rawValue
                            || kind == LJ_TRUE.rawValue || kind == LJ_FALSE.rawValue {
                    // JSONValue.text: a number as written (a whole `.0` dropped), true/false.
                    let raw = tape.rawValue(node)
                    var n = raw.count
                    if kind != LJ_TRUE.rawValue && kind != LJ_FALSE.rawValue, n > 2, raw[n - 1] == 48, raw[n - 2] == 46 { n -= 2 }
                    found[f] = (raw.baseAddress! - text, n)
                } else {
                    continue
                }
                break
            }
        }
        guard found[listingIndex].count > 0 else { return nil }
        if plan.isLead && found[seekerIndex].count <= 0 { return nil }
        let message = found[messageTypeIndex]
        if message.count > 0 {
            for i in message.start..<(message.start + message.count) where text[i] >= 0x80 { return nil }
        }
        out.append(123)
        for n in plan.slots {
            let slot = slotInfo[n]
            if n > plan.slots.lowerBound { out.append(44) }
            out.append(view(slot.key))
            switch slot.kind {
            case 0:
                out.append(view(slot.value))
            case 1:
                let f = slot.field
                let (start, count) = found[f]
                if count <= 0 {
                    out.append(EventTapeFlattener.null.utf8Start, count: 4)
                } else if f == messageTypeIndex {
                    out.append(34)
                    for i in start..<(start + count) {
                        let b = text[i]
                        out.append(b >= 65 && b <= 90 ? b + 32 : b)
                    }
                    out.append(34)
                } else {
                    JSONWriter.writeString(bytes: UnsafeBufferPointer(start: text + start, count: count), into: out)
                }
            case 2:
                out.append(34)
                at.writeISO8601(into: out)
                out.append(34)
            default:
                origin.writeJSON(into: out)
            }
        }
        out.append(125)
        return plan.tag
    }

    static let null: StaticString = "null"

    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }
}
