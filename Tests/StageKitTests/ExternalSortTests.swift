import Foundation
import Testing
import StageKit

/// ExternalSort: the same order in memory and through runs on disk, equal keys in the order
/// they came, and LEAD_MEMORY read as a size.
struct ExternalSortTests {
    /// Lines of random keys (many repeated, some prefixes of others, some empty), numbered.
    static func lines(_ n: Int) -> [(key: String, line: String)] {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcé\u{1}z")
        return (0..<n).map { i in
            let length = Int.random(in: 0...6, using: &rng)
            let key = String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
            return (key, "{\"i\":\(i),\"pad\":\"\(String(repeating: "x", count: Int.random(in: 0...60, using: &rng)))\"}")
        }
    }

    /// What the sorter gives back, as (key, line) strings.
    static func sorted(_ input: [(key: String, line: String)], budget: Int) throws -> (out: [(String, String)], runs: Int) {
        let sorter = ExternalSort(budget: budget)
        for (key, line) in input {
            var line = line
            try line.withUTF8 { try sorter.add(key: key, line: $0) }
        }
        let runs = sorter.spilledRuns
        var out: [(String, String)] = []
        try sorter.finish { key, line in
            out.append((String(decoding: key, as: UTF8.self), String(decoding: line, as: UTF8.self)))
        }
        return (out, runs)
    }

    /// Byte order of the keys, then the order of input (a stable sort).
    static func expected(_ input: [(key: String, line: String)]) -> [(String, String)] {
        input.enumerated().sorted { a, b in
            if a.element.key != b.element.key { return a.element.key.utf8.lexicographicallyPrecedes(b.element.key.utf8) }
            return a.offset < b.offset
        }.map { ($0.element.key, $0.element.line) }
    }

    @Test func withinTheBudgetNothingSpills() throws {
        let input = Self.lines(5_000)
        let (out, runs) = try Self.sorted(input, budget: 256 << 20)
        #expect(runs == 0)
        #expect(out.map { $0.0 + "\t" + $0.1 } == Self.expected(input).map { $0.0 + "\t" + $0.1 })
    }

    @Test func pastTheBudgetRunsAreMergedInTheSameOrder() throws {
        // About 4 MB of lines against a 1 MB budget (half of it held): several runs.
        let input = Self.lines(80_000)
        let (out, runs) = try Self.sorted(input, budget: 1 << 20)
        #expect(runs >= 4, "\(runs) runs")
        #expect(out.count == input.count)
        #expect(out.map { $0.0 + "\t" + $0.1 } == Self.expected(input).map { $0.0 + "\t" + $0.1 })
    }

    @Test func aLineLongerThanAReadBlockComesBackWhole() throws {
        let long = "{\"big\":\"" + String(repeating: "y", count: 3 << 20) + "\"}"
        var input = Self.lines(20_000)
        input.insert(("m", long), at: 7_000)
        let (out, runs) = try Self.sorted(input, budget: 1 << 20)
        #expect(runs >= 2)
        #expect(out.map { $0.0 + "\t" + $0.1 } == Self.expected(input).map { $0.0 + "\t" + $0.1 })
    }

    @Test func aSmallBudgetOverManyRunsMergesThemAsItGoes() throws {
        // About 4 MB against a 64 KB budget: some 130 runs, merged 64 at a time.
        let input = Self.lines(80_000)
        let (out, runs) = try Self.sorted(input, budget: 64 << 10)
        #expect(runs > 64, "\(runs) runs")
        #expect(out.map { $0.0 + "\t" + $0.1 } == Self.expected(input).map { $0.0 + "\t" + $0.1 })
    }

    @Test func leadMemoryIsASize() throws {
        #expect(try ExternalSort.budget([:]) == 256 << 20)
        #expect(try ExternalSort.budget(["LEAD_MEMORY": "512M"]) == 512 << 20)
        #expect(try ExternalSort.budget(["LEAD_MEMORY": "2g"]) == 2 << 30)
        #expect(try ExternalSort.budget(["LEAD_MEMORY": "64K"]) == 64 << 10)
        #expect(try ExternalSort.budget(["LEAD_MEMORY": "1000000"]) == 1_000_000)
        for bad in ["lots", "-1M", "0", "12MB", "9999999999G"] {
            #expect(throws: StageError.self, "\(bad)") { try ExternalSort.budget(["LEAD_MEMORY": bad]) }
        }
    }
}

/// FirstOfEachKey: the first line of each key, in order, whether the keys are held or sorted.
struct FirstOfEachKeyTests {
    /// Runs `lines` through a FirstOfEachKey of `budget`; returns what was written and the repeats.
    static func run(_ lines: [(key: String?, line: String)], budget: Int) throws -> (written: [String], duplicates: Int, deferred: Int) {
        let once = FirstOfEachKey(budget: budget)
        var written: [String] = [], deferred = 0
        for (key, line) in lines {
            var line = line
            switch try line.withUTF8({ try once.offer(key: key, line: $0) }) {
            case .write: written.append(line)
            case .duplicate: break
            case .deferred: deferred += 1
            }
        }
        try once.finish { written.append(String(decoding: $0, as: UTF8.self)) }
        return (written, once.duplicates, deferred)
    }

    static func lines(_ n: Int) -> [(key: String?, line: String)] {
        var rng = SystemRandomNumberGenerator()
        return (0..<n).map { i in
            let key: String? = Int.random(in: 0..<20, using: &rng) == 0 ? nil : "event-\(Int.random(in: 0..<(n / 3), using: &rng))"
            return (key, "{\"i\":\(i),\"id\":\"\(key ?? "-")\"}")
        }
    }

    static func expected(_ lines: [(key: String?, line: String)]) -> (written: [String], duplicates: Int) {
        var seen = Set<String>(), out: [String] = [], repeats = 0
        for (key, line) in lines {
            if let key, !seen.insert(key).inserted { repeats += 1; continue }
            out.append(line)
        }
        return (out, repeats)
    }

    @Test func withinTheBudgetEachLineIsDecidedAsItComes() throws {
        let lines = Self.lines(20_000)
        let got = try Self.run(lines, budget: 256 << 20)
        #expect(got.deferred == 0)
        #expect(got.written == Self.expected(lines).written && got.duplicates == Self.expected(lines).duplicates)
    }

    @Test func pastTheBudgetTheSameLinesInTheSameOrder() throws {
        // 60,000 lines of 20,000 keys against a 256 KB budget: the keys pass a quarter of it early,
        // and the sort of the rest writes runs.
        let lines = Self.lines(60_000)
        let got = try Self.run(lines, budget: 256 << 10)
        #expect(got.deferred > 50_000, "\(got.deferred) lines waited")
        let want = Self.expected(lines)
        #expect(got.written.count == want.written.count && got.written == want.written)
        #expect(got.duplicates == want.duplicates)
    }
}

/// ByteInterner: one number per distinct byte string, in the order first seen, through the
/// table's growth; the texts and their byte order come back as they went in.
struct ByteInternerTests {
    @Test func numbersEachTextOnceAndGivesItBack() {
        var interner = ByteInterner()
        var expected: [String: Int32] = [:]
        var order: [String] = []
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abé\u{0}z0123456789")
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...19, using: &rng)
            let text = String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
            let n = interner.id(text)
            if let known = expected[text] {
                #expect(n == known, "\(text) again")
            } else {
                #expect(Int(n) == order.count, "a new text gets the next number")
                expected[text] = n
                order.append(text)
            }
        }
        #expect(interner.count == order.count)
        for (i, text) in order.enumerated() {
            #expect(interner.string(Int32(i)) == text)
            interner.withBytes(Int32(i)) { #expect(Array($0) == Array(text.utf8)) }
        }
        for _ in 0..<2_000 {
            let a = Int32.random(in: 0..<Int32(order.count), using: &rng), b = Int32.random(in: 0..<Int32(order.count), using: &rng)
            #expect(interner.precedes(a, b) == order[Int(a)].utf8.lexicographicallyPrecedes(order[Int(b)].utf8))
        }
    }
}

/// SpoolFile's framed pieces come back whole and in order, whether a piece is empty, fits in
/// a block many times over, or spans several blocks of the read.
struct SpoolFileFramedTests {
    @Test func piecesOfEverySizeComeBackInOrder() throws {
        let spool = try SpoolFile(bufferSize: 1 << 16)
        var rng = SystemRandomNumberGenerator()
        var pieces: [[UInt8]] = []
        for i in 0..<3_000 {
            let size = i % 500 == 7 ? Int.random(in: (1 << 20)...(3 << 20), using: &rng) : Int.random(in: 0..<300, using: &rng)
            let piece = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            pieces.append(piece)
            let half = size / 2
            try piece.withUnsafeBufferPointer { p in
                try spool.appendFramed(UnsafeBufferPointer(rebasing: p[..<half]), UnsafeBufferPointer(rebasing: p[half...]))
            }
        }
        var read: [[UInt8]] = []
        try spool.forEachFramed { read.append(Array($0)) }
        #expect(read.count == pieces.count)
        #expect(read == pieces)
    }
}
