import CSimdJSON
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One batch of `forEachRecord(_:transform:_:)`: the texts read, and per worker the records
/// made of them, transformed, and their JSON.
final class RecordBatch: @unchecked Sendable {
    /// One text of the batch: where its bytes are in `texts`, the line of `path` it starts
    /// on, and for input that could not be cut into a text, why.
    struct Item {
        var offset: Int
        var length: Int
        var line: Int
        var broken: String?
    }

    enum Outcome {
        case record(Record, offset: Int, length: Int)
        /// What a `TapeWriter` wrote of the text, in the worker's `out`, and the tag it
        /// returned.
        case written(offset: Int, length: Int, tag: Int)
        /// `unread`: the text could not be read as a record (it has no key to shard by).
        case rejected(String, line: Int, unread: Bool)
    }

    final class Worker {
        let parser = JSONParser()
        let keys = KeyCache()
        let out = ByteBuffer(capacity: 1 << 20)
        var outcomes: [Outcome] = []
        /// This worker's own writer, made the first time `write` runs on it.
        var writer: TapeWriter?
        /// The batch's path, in this worker's own copy.
        var path = BatchPath.Copy()

        func location(_ item: Item) -> SourceLocation { SourceLocation(path: path.path, line: item.line) }
    }

    /// What a worker of `Stage.forEachJSONWritten` does with one parsed text: writes its
    /// bytes to the buffer and returns a tag for the reading thread (what the bytes are),
    /// or throws `RecordRejected`.
    typealias TapeWriter = (JSONTape, SourceLocation, ByteBuffer) throws -> Int

    let texts = ByteBuffer(capacity: 1 << 22)
    var items: [Item] = []
    /// The file the texts come from.
    var path = BatchPath()
    let pool: [Worker]
    private(set) var chunks = 1

    init(workers: Int) {
        pool = (0..<workers).map { _ in Worker() }
        items.reserveCapacity(2048)
    }

    /// Empties the batch for the next texts (the records made of the last ones are released
    /// by the workers, when the batch is next transformed).
    func reset() {
        items.removeAll(keepingCapacity: true)
        texts.removeAll()
    }

    /// Splits the batch into one chunk per worker and, on as many threads, parses each
    /// text of a worker's chunk and hands its tape to `body` (after `start` has run on the
    /// worker); texts that could not be cut or parsed are the worker's rejects.
    private func eachTape(start: @escaping (Worker) -> Void, _ body: @escaping (Worker, Item, JSONTape) -> Void) {
        // Each worker calls them for its own chunk only.
        let start = UncheckedBox(start), body = UncheckedBox(body)
        let count = items.count
        chunks = min(pool.count, max(1, count / 64))
        let chunks = self.chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let worker = pool[chunk]
            // Last use's records are released here, on the worker.
            worker.outcomes.removeAll(keepingCapacity: true)
            worker.out.removeAll()
            worker.path.update(from: path)
            start.value(worker)
            let base = texts.base
            for item in items[(count * chunk / chunks)..<(count * (chunk + 1) / chunks)] {
                if let reason = item.broken {
                    worker.outcomes.append(.rejected(reason, line: item.line, unread: true))
                    continue
                }
                let bytes = UnsafeBufferPointer(start: base + item.offset, count: item.length)
                switch worker.parser.parse(bytes) {
                case .failure(let error):
                    let (line, reason) = Stage.describe(error, in: bytes, startLine: item.line)
                    worker.outcomes.append(.rejected("invalid JSON: " + reason, line: line, unread: true))
                case .success(let tape):
                    body.value(worker, item, tape)
                }
            }
        }
    }

    /// Parses every text and hands its tape to the worker's writer (made by `make`, one per
    /// worker), on as many threads as there are workers.
    func write(_ make: @escaping () -> TapeWriter) {
        let make = UncheckedBox(make)
        eachTape(start: { worker in if worker.writer == nil { worker.writer = make.value() } }) { worker, item, tape in
            let offset = worker.out.count
            do {
                let tag = try worker.writer!(tape, worker.location(item), worker.out)
                worker.outcomes.append(.written(offset: offset, length: worker.out.count - offset, tag: tag))
            } catch let rejected as RecordRejected {
                worker.outcomes.append(.rejected(rejected.reason, line: item.line, unread: false))
            } catch {
                worker.outcomes.append(.rejected("\(error)", line: item.line, unread: false))
            }
        }
    }

    /// Parses and transforms every text, on as many threads as there are workers.
    func transform(_ transform: @escaping (inout Record) throws -> Void, encoding: Stage.LineEncoding, stampingOrigin: Bool = false) {
        let transform = UncheckedBox(transform)
        eachTape(start: { _ in }) { worker, item, tape in
            guard tape.isObject else {
                worker.outcomes.append(.rejected("not a JSON object (found \(Stage.kindName(tape.kind(0))))", line: item.line, unread: true))
                return
            }
            var record = Record(tape: tape, keys: worker.keys)
            do {
                try transform.value(&record)
                if stampingOrigin && !record.hasValue(Stage.originField) {
                    record[Stage.originField] = .string(worker.location(item).description)
                }
                let offset = worker.out.count
                if encoding == .json { JSONWriter.write(record, into: worker.out) }
                worker.outcomes.append(.record(record, offset: offset, length: worker.out.count - offset))
            } catch let rejected as RecordRejected {
                worker.outcomes.append(.rejected(rejected.reason, line: item.line, unread: false))
            } catch {
                worker.outcomes.append(.rejected("\(error)", line: item.line, unread: false))
            }
        }
    }
}
