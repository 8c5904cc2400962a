import CSimdJSON
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// True when `bytes` is valid UTF-8.
public func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
    return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { lj_validate_utf8($0, bytes.count) }
}

/// The offset of the first byte that makes `bytes` invalid UTF-8, or nil.
public func firstInvalidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    if validUTF8(bytes) { return nil }
    var i = 0
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        let length: Int
        if b < 0x80 { length = 1 } else if b >> 5 == 0x6 && b >= 0xC2 { length = 2 } else if b >> 4 == 0xE { length = 3 } else if b >> 3 == 0x1E && b <= 0xF4 { length = 4 } else { return i }
        if i + length > n { return i }
        for k in 1..<length where bytes[i + k] >> 6 != 0x2 { return i }
        if length > 1 && !validUTF8(UnsafeBufferPointer(rebasing: bytes[i..<(i + length)])) { return i }
        i += length
    }
    return nil
}

/// Standard base64, for raw bytes that are not UTF-8.
public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], 61, 61]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], 61]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The process environment without Foundation.
public enum ProcessInfoLite {
    public static var environment: [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }
}

/// A value handed to other threads by code that keeps their accesses apart (or takes the lock).
final class UncheckedBox<T>: @unchecked Sendable {
    var value: T
    private var mutex = pthread_mutex_t()
    init(_ value: T) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }
    deinit { pthread_mutex_destroy(&mutex) }

    func withLock(_ body: () -> Void) {
        pthread_mutex_lock(&mutex)
        body()
        pthread_mutex_unlock(&mutex)
    }
}

/// Two batches used in turn by a reading thread and the workers: while the workers do one
/// batch, the reading thread fills the other, and hands out the one before once the workers
/// are done with it. A batch's buffers are touched by one side at a time.
struct BatchPipeline<Batch: AnyObject> {
    let batches: [Batch]
    private var filling = 0
    private var inFlight: (batch: Batch, group: DispatchGroup)?

    init(_ make: () -> Batch) { batches = [make(), make()] }

    /// The batch the reading thread fills.
    var current: Batch { batches[filling] }

    /// Sends the current batch to the workers (`work`, off this thread), hands out the one
    /// before it (`hand`, on this thread) and makes the other batch current, emptied by `reset`.
    mutating func launch(_ work: @escaping (Batch) -> Void, hand: (Batch) throws -> Void, reset: (Batch) -> Void) throws {
        let group = DispatchGroup()
        let box = UncheckedBox(current), job = UncheckedBox(work)
        DispatchQueue.global().async(group: group) { job.value(box.value) }
        if let previous = inFlight {
            previous.group.wait()
            try hand(previous.batch)
        }
        inFlight = (current, group)
        filling = 1 - filling
        // The batch now filling was handed out above (or never used): cleared for reuse.
        reset(current)
    }

    /// Waits for the batch in flight and hands it out.
    mutating func finish(hand: (Batch) throws -> Void, reset: (Batch) -> Void) throws {
        guard let last = inFlight else { return }
        last.group.wait()
        inFlight = nil
        try hand(last.batch)
        reset(last.batch)
    }
}

/// The file a batch's texts come from (a batch never spans two files), with a copy in
/// storage of its own for each worker. A String's reference count is written each time it
/// is used, and one string used by every thread has its count's cache line bounce between
/// the processors: on 2,000,000 events that was an eighth of the reading thread's time.
struct BatchPath {
    /// The path, for the reading thread.
    private(set) var path = ""
    private var generation = 0

    mutating func set(_ path: String) {
        guard path != self.path else { return }
        self.path = path
        generation += 1
    }

    /// A worker's own copy of the path.
    struct Copy {
        private(set) var path = ""
        private var generation = -1

        mutating func update(from batch: BatchPath) {
            guard generation != batch.generation else { return }
            path = String(decoding: Array(batch.path.utf8), as: UTF8.self)
            generation = batch.generation
        }
    }
}
