/// A growable run of bytes. Writers append encoded records to it; a `ByteSink` drains it.
/// It is a class so that writers can share one buffer without copying.
public final class ByteBuffer {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var _count: Int = 0
    /// Bytes currently held.
    public var count: Int { _count }

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for at least `extra` more bytes.
    @inlinable public func reserve(_ extra: Int) {
        if _count + extra > capacity { grow(_count + extra) }
    }

    @usableFromInline func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inlinable public func append(_ byte: UInt8) {
        if _count == capacity { grow(_count + 1) }
        base[_count] = byte
        _count += 1
    }

    @inlinable public func append(_ bytes: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (base + _count).update(from: bytes.assumingMemoryBound(to: UInt8.self), count: n)
        _count += n
    }

    public func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        if let p = bytes.baseAddress { append(UnsafeRawPointer(p), count: bytes.count) }
    }

    /// Appends what another buffer holds.
    public func append(_ other: ByteBuffer) {
        append(UnsafeRawPointer(other.base), count: other.count)
    }

    public func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    /// Appends the UTF-8 of `text` as is (no escaping).
    public func append(_ text: String) {
        var text = text
        text.withUTF8 { append($0) }
    }

    /// Appends a decimal integer.
    public func append(decimal value: Int) {
        if value >= 0 && value < 10 {
            append(UInt8(48 + value))
            return
        }
        var v = value.magnitude
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &tmp) { raw in
            var i = raw.count
            repeat {
                i -= 1
                raw[i] = UInt8(48 + v % 10)
                v /= 10
            } while v > 0
            if value < 0 {
                i -= 1
                raw[i] = 45
            }
            append(raw.baseAddress! + i, count: raw.count - i)
        }
    }

    /// The bytes held, valid until the buffer changes.
    public var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// The bytes at `range`, valid until the buffer changes.
    public func bytes(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    /// The last byte, if any.
    public var last: UInt8? { count > 0 ? base[count - 1] : nil }

    /// Drops the last `n` bytes.
    public func removeLast(_ n: Int = 1) { _count = max(0, _count - n) }

    /// Forgets the contents, keeping the storage.
    public func removeAll() { _count = 0 }

    /// Trades storage with `other`: each holds what the other held (no bytes are copied).
    func swapStorage(with other: ByteBuffer) {
        swap(&base, &other.base)
        swap(&capacity, &other.capacity)
        swap(&_count, &other._count)
    }

    /// Cuts the contents back to `length` bytes.
    public func truncate(to length: Int) { _count = min(_count, max(0, length)) }

    /// The contents as a String (invalid UTF-8 repaired).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    public var array: [UInt8] { Array(bytes) }
}
