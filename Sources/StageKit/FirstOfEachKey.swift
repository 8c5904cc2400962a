/// Lines kept once per key (the first of each), in the order they come, within a memory
/// budget (`LEAD_MEMORY`): the keys seen are held while they take no more than a quarter, and
/// each new line is written at once. Past that the lines are no longer decided as they come:
/// they wait in an unlinked scratch file (`SpoolFile`), their keys with their places go to an
/// `ExternalSort` (with the keys held so far, which come first), and `finish` finds every
/// repeat by merging the sorted keys, then writes the waiting lines that are firsts, in order.
/// Either way the same lines are written in the same order.
public final class FirstOfEachKey {
    public enum Decision { case write, duplicate, deferred }

    private let budget: Int
    private var seen = Set<String>()
    private var held = 0
    private var sorter: ExternalSort?
    private var spool: SpoolFile?
    private var waiting = 0
    /// Repeats found so far (those decided at `finish` included, once it has run).
    public private(set) var duplicates = 0
    /// Scratch runs the keys went through on disk; nil while they are all held.
    public var runsOnDisk: Int? { sorter?.spilledRuns }

    /// Bytes a held key takes besides its text: the set's slot and the string's header.
    static let keyOverhead = 64

    public init(budget: Int) {
        self.budget = budget
    }

    /// What to do with `line` of `key` (nil: a line without a key, never a repeat): write it
    /// now, drop it (a repeat), or nothing (it waits for `finish`).
    public func offer(key: String?, line: UnsafeBufferPointer<UInt8>) throws(StageError) -> Decision {
        if sorter == nil {
            guard let key else { return .write }
            guard seen.insert(key).inserted else {
                duplicates += 1
                return .duplicate
            }
            held += key.utf8.count + FirstOfEachKey.keyOverhead
            if held > budget / 4 { try sortFromHere() }
            return .write
        }
        waiting += 1
        try spool!.appendFramed(line)
        if let key { try sorter!.add(key: key, line: place(waiting)) }
        return .deferred
    }

    /// A waiting line's place (1, 2, ...; 0 is a key seen before the lines began to wait).
    private func place(_ n: Int) -> UnsafeBufferPointer<UInt8> {
        placeBytes.removeAll()
        for i in 0..<8 { placeBytes.append(UInt8(truncatingIfNeeded: UInt64(n) >> (8 * UInt64(i)))) }
        return placeBytes.bytes
    }
    private let placeBytes = ByteBuffer(capacity: 8)

    private func sortFromHere() throws(StageError) {
        let sorter = ExternalSort(budget: budget)
        for key in seen { try sorter.add(key: key, line: place(0)) }
        seen = []
        self.sorter = sorter
        spool = try SpoolFile()
    }

    /// Writes the waiting lines that are the first of their key, in the order they came.
    public func finish(_ write: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard let sorter, let spool else { return }
        // One bit per waiting line: set for a repeat.
        var repeats = [UInt64](repeating: 0, count: waiting / 64 + 1)
        var previous: [UInt8] = []
        var first = true
        try sorter.finish { key, line in
            let n = line.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            if !first, key.elementsEqual(previous) {
                repeats[n / 64] |= 1 << UInt64(n % 64)
                return
            }
            first = false
            previous.removeAll(keepingCapacity: true)
            previous.append(contentsOf: key)
        }
        var place = 0
        try spool.forEachFramed { line in
            place += 1
            if repeats[place / 64] & (1 << UInt64(place % 64)) != 0 {
                duplicates += 1
            } else {
                try write(line)
            }
        }
    }
}
