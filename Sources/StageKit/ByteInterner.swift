/// Byte strings numbered 0, 1, 2, ... in the order they are first seen, held once each in one
/// arena: a keyed tally counts ids and viewers by number without making a String (and its
/// allocation and hashing) of every record's bytes. Open addressing over the numbers, a
/// multiplicative hash of the bytes.
public struct ByteInterner {
    /// Every text back to back.
    private var arena: [UInt8] = []
    /// Where text n starts in `arena`, and one past the last: count + 1 entries.
    private var starts: [Int] = [0]
    /// Each text's hash, to compare and to grow without hashing again.
    private var hashes: [UInt64] = []
    /// Number + 1 of the text in each slot, 0 for an empty one; a power of two long, never
    /// more than half full.
    private var slots: [Int32] = [Int32](repeating: 0, count: 64)

    public init() {}

    /// The texts seen.
    public var count: Int { hashes.count }

    /// About the bytes held: the arena, the starts, hashes and slots as allocated.
    public var memory: Int { arena.capacity + starts.capacity * 8 + hashes.capacity * 8 + slots.capacity * 4 }

    /// The number of `bytes`, given a new one when they are new.
    public mutating func id(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        let hash = ByteInterner.hash(bytes)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash >> 7) & mask
        while true {
            let held = slots[slot]
            if held == 0 { break }
            let n = Int(held - 1)
            if hashes[n] == hash && equals(n, bytes) { return Int32(n) }
            slot = (slot + 1) & mask
        }
        let n = Int32(hashes.count)
        arena.append(contentsOf: bytes)
        starts.append(arena.count)
        hashes.append(hash)
        slots[slot] = n + 1
        if hashes.count * 2 > slots.count { grow() }
        return n
    }

    /// The number of `text`.
    public mutating func id(_ text: String) -> Int32 {
        var text = text
        return text.withUTF8 { id($0) }
    }

    /// Text `n` as a String.
    public func string(_ n: Int32) -> String {
        let start = starts[Int(n)], end = starts[Int(n) + 1]
        return arena.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[start..<end]), as: UTF8.self) }
    }

    /// Calls `body` with the bytes of text `n`.
    public func withBytes<R>(_ n: Int32, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let start = starts[Int(n)], end = starts[Int(n) + 1]
        return try arena.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<end])) }
    }

    /// Whether text `a` precedes text `b` in byte order.
    public func precedes(_ a: Int32, _ b: Int32) -> Bool {
        let sa = starts[Int(a)], ea = starts[Int(a) + 1], sb = starts[Int(b)], eb = starts[Int(b) + 1]
        return arena.withUnsafeBufferPointer { p in
            let n = min(ea - sa, eb - sb)
            let c = n == 0 ? 0 : memcmp(p.baseAddress! + sa, p.baseAddress! + sb, n)
            return c != 0 ? c < 0 : ea - sa < eb - sb
        }
    }

    private func equals(_ n: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = starts[n], length = starts[n + 1] - start
        guard length == bytes.count else { return false }
        if length == 0 { return true }
        return arena.withUnsafeBufferPointer { memcmp($0.baseAddress! + start, bytes.baseAddress!, length) == 0 }
    }

    private mutating func grow() {
        var bigger = [Int32](repeating: 0, count: slots.count * 2)
        let mask = bigger.count - 1
        for (n, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash >> 7) & mask
            while bigger[slot] != 0 { slot = (slot + 1) & mask }
            bigger[slot] = Int32(n + 1)
        }
        slots = bigger
    }

    /// A 64-bit hash of `bytes`: eight bytes at a time, each step a multiply and a rotate.
    public static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        guard let base = bytes.baseAddress else { return h }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= bytes.count {
            let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ word) &* 0xFF51_AFD7_ED55_8CCD
            h = (h << 31) | (h >> 33)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < bytes.count {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 29
        h = h &* 0xFF51_AFD7_ED55_8CCD
        return h ^ (h >> 32)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
