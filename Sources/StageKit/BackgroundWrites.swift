import Dispatch

/// Full buffers written on a thread of their own while the caller fills the next one, one
/// write in flight at a time and in order: the kernel's copying into the page cache (and
/// gzip's compressing) runs beside the stage instead of on its one reading thread. Used by
/// `ByteSink` and `SpoolFile`; the caller waits (`settle`) before anything that needs its
/// bytes written (a read, a sync, a close).
final class BackgroundWrites: @unchecked Sendable {
    // @unchecked: `spare` and `failure` are set by the writing thread and read by the caller
    // only after waiting for it.
    private let label: String
    private var queue: DispatchQueue?
    private var inFlight: DispatchGroup?
    /// The buffer last written, emptied, to swap with the next full one.
    private var spare: ByteBuffer?
    /// What the last write failed with, thrown by the next `settle`.
    private var failure: StageError?

    init(label: String) { self.label = label }

    /// Takes `buffer`'s bytes (swapping its storage with the spare buffer's: no copy, and
    /// `buffer` is left empty) and has the writing thread hand them to `write`, after the
    /// write in flight. Returns how many bytes it took.
    func hand(_ buffer: ByteBuffer, to write: @escaping (UnsafeBufferPointer<UInt8>) throws(StageError) -> Void) throws(StageError) -> Int {
        try settle()
        let full = spare ?? ByteBuffer(capacity: buffer.capacity)
        spare = nil
        full.swapStorage(with: buffer)
        buffer.removeAll()
        let count = full.count
        let queue = self.queue ?? DispatchQueue(label: label)
        self.queue = queue
        let group = DispatchGroup()
        inFlight = group
        let box = UncheckedBox((self, full, write))
        queue.async(group: group) {
            let (writes, full, write) = box.value
            do throws(StageError) { try write(full.bytes) } catch { writes.failure = error }
            full.removeAll()
            writes.spare = full
        }
        return count
    }

    /// Waits for the write in flight, if any, and throws what it failed with.
    func settle() throws(StageError) {
        wait()
        if let error = failure {
            failure = nil
            throw error
        }
    }

    /// Waits for the write in flight, if any, whatever became of it.
    func wait() {
        inFlight?.wait()
        inFlight = nil
    }
}
