import StageKit

/// Files of JSON lines, each sorted by a key, read as one sorted stream: the parts of a keyed
/// stage's shards joined (`lead-export permits --join-shards`, `lead-export events
/// --join-shards`). Only the key is read of each line (from its tape); the line is handed on
/// as it is. On equal keys the earlier file's line comes first.
public enum SortedMerge {
    public static func lines<Key>(_ paths: [String], key: (JSONTape) throws -> Key, before: (Key, Key) -> Bool,
                                  _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        let parser = JSONParser()
        let padded = ByteBuffer(capacity: 1 << 12)
        // Each file's current line waits in its own buffer, reused line after line.
        var readers: [(source: ByteSource, reader: LineReader, path: String, line: ByteBuffer)] = []
        var heads: [Key?] = []
        func advance(_ r: Int) throws {
            while true {
                guard let line = try readers[r].reader.next() else { heads[r] = nil; return }
                let bytes = line.withoutCR
                if bytes.isEmpty { continue }
                padded.removeAll()
                padded.append(bytes)
                padded.append(JSONParser.zeroPadding)
                guard case .success(let tape) = parser.parse(padded.bytes(0..<bytes.count)), tape.isObject else {
                    throw StageError.data("\(readers[r].path):\(line.number): not a JSON object")
                }
                let k = try key(tape)
                if let previous = heads[r], before(k, previous) {
                    throw StageError.data("\(readers[r].path):\(line.number): out of order; a shard's part is written sorted, was it edited?")
                }
                heads[r] = k
                readers[r].line.removeAll()
                readers[r].line.append(bytes)
                return
            }
        }
        defer { for r in readers { r.source.close() } }
        for path in paths where Stage.fileExists(path) {
            let source = try ByteSource(path: path)
            readers.append((source, LineReader(source: source), path, ByteBuffer(capacity: 1 << 12)))
            heads.append(nil)
            try advance(readers.count - 1)
        }
        while true {
            var best: Int?
            for r in heads.indices {
                guard let head = heads[r] else { continue }
                if let b = best, !before(head, heads[b]!) { continue }
                best = r
            }
            guard let b = best else { return }
            try body(readers[b].line.bytes)
            try advance(b)
        }
    }
}
