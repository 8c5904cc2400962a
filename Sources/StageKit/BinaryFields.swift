/// The compact binary form of values a sort's scratch files carry (`ExternalSort` lines of
/// parts and actions): integers as 8 bytes little-endian, texts as their byte length (-1 for
/// none) then the bytes, times as seconds and nanoseconds.
extension ByteBuffer {
    public func appendBinary(_ v: Int64) {
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: UInt64(bitPattern: v).littleEndian, as: UInt64.self)
        advance(by: 8)
    }

    public func appendBinary(_ text: String?) {
        guard let text else { return appendBinary(Int64(-1)) }
        appendBinary(Int64(text.utf8.count))
        append(text)
    }

    /// A text given as its UTF-8 bytes, read back by `BinaryFields.text()` as the String.
    public func appendBinary(_ text: UnsafeBufferPointer<UInt8>?) {
        guard let text else { return appendBinary(Int64(-1)) }
        appendBinary(Int64(text.count))
        append(text)
    }

    public func appendBinary(_ time: Timestamp?) {
        appendBinary(Int64(time == nil ? 0 : 1))
        appendBinary(time?.seconds ?? 0)
        appendBinary(Int64(time?.nanoseconds ?? 0))
    }
}

/// Reads what `ByteBuffer.appendBinary` wrote, in the same order; nil past the end or on a
/// length that does not fit.
public struct BinaryFields {
    let bytes: UnsafeBufferPointer<UInt8>
    var at = 0

    public init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The bytes not read yet.
    public var rest: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[at...]) }

    /// Whether every byte was read.
    public var atEnd: Bool { at == bytes.count }

    public mutating func int() -> Int64? {
        guard at + 8 <= bytes.count else { return nil }
        let v = UnsafeRawPointer(bytes.baseAddress! + at).loadUnaligned(as: UInt64.self)
        at += 8
        return Int64(bitPattern: UInt64(littleEndian: v))
    }

    /// A text, or .some(nil) for none; nil when the bytes do not hold one.
    public mutating func text() -> String?? {
        guard let n = int(), n >= -1 else { return nil }
        if n < 0 { return .some(nil) }
        guard at + Int(n) <= bytes.count else { return nil }
        defer { at += Int(n) }
        return .some(String(decoding: UnsafeBufferPointer(rebasing: bytes[at..<(at + Int(n))]), as: UTF8.self))
    }

    /// A text's bytes (valid while the bytes read are), or .some(nil) for none; nil when the
    /// bytes do not hold one.
    public mutating func bytesOfText() -> UnsafeBufferPointer<UInt8>?? {
        guard let n = int(), n >= -1 else { return nil }
        if n < 0 { return .some(nil) }
        guard at + Int(n) <= bytes.count else { return nil }
        defer { at += Int(n) }
        return .some(UnsafeBufferPointer(rebasing: bytes[at..<(at + Int(n))]))
    }

    /// A text that must be there.
    public mutating func string() -> String? {
        guard case .some(.some(let t)) = text() else { return nil }
        return t
    }

    /// A time, or .some(nil) for none; nil when the bytes do not hold one.
    public mutating func time() -> Timestamp?? {
        guard let has = int(), let seconds = int(), let nanos = int() else { return nil }
        return .some(has == 0 ? nil : Timestamp(seconds: seconds, nanoseconds: Int32(truncatingIfNeeded: nanos)))
    }
}
