import Foundation
import Testing
import StageKit

/// Writes `bytes` to a fresh temporary file and returns its path.
func tempFile(_ bytes: [UInt8], suffix: String = ".txt") -> String {
    let path = NSTemporaryDirectory() + "stagekit-test-" + UUID().uuidString + suffix
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    return path
}

func tempFile(_ text: String, suffix: String = ".txt") -> String { tempFile(Array(text.utf8), suffix: suffix) }

/// What a JSONTextReader makes of `text`: texts as "line:text", broken as "line!reason".
func jsonTexts(_ text: String) throws -> [String] {
    let path = tempFile(text)
    defer { unlink(path) }
    let reader = JSONTextReader(lines: LineReader(source: try ByteSource(path: path), chunkSize: 16))
    var out: [String] = []
    try reader.forEach { event in
        switch event {
        case .text(let bytes, let line): out.append("\(line):" + String(decoding: bytes, as: UTF8.self))
        case .broken(_, let line, let reason): out.append("\(line)!" + reason)
        case .warning(let line, let message): out.append("\(line)?" + message)
        }
    }
    return out
}

/// What a CSVReader makes of `text`: rows as "line:f1|f2", broken as "line!reason".
func csvRows(_ text: String, delimiter: UInt8 = 44) throws -> [String] {
    let path = tempFile(text)
    defer { unlink(path) }
    let reader = CSVReader(lines: LineReader(source: try ByteSource(path: path), chunkSize: 16), delimiter: delimiter)
    var out: [String] = []
    try reader.forEach { event in
        switch event {
        case .row(let row): out.append("\(row.line):" + (0..<row.count).map { row.string($0) }.joined(separator: "|"))
        case .broken(_, let line, let reason): out.append("\(line)!" + reason)
        }
    }
    return out
}

@Suite struct JSONTextReaderTests {
    @Test func jsonlLinesSkipBlankOnesAndCR() throws {
        #expect(try jsonTexts("{\"a\":1}\r\n\n  \n{\"b\":2}") == ["1:{\"a\":1}", "4:{\"b\":2}"])
    }

    @Test func arrayOnOneLineAndAcrossLines() throws {
        #expect(try jsonTexts("[{\"a\":1},{\"b\":[1,2]}, 3 ,\"s,]\"]") ==
                ["1:{\"a\":1}", "1:{\"b\":[1,2]}", "1:3", "1:\"s,]\""])
        #expect(try jsonTexts("[\n  {\n    \"a\": \"}\"\n  },\n  {\"b\": 2}\n]\n") ==
                ["2:{\n    \"a\": \"}\"\n  }", "5:{\"b\": 2}"])
    }

    @Test func prettyObjectsOneAfterAnother() throws {
        #expect(try jsonTexts("{\n \"a\": 1\n}\n{\n \"b\": \"{\"\n}\n") == ["1:{\n \"a\": 1\n}", "4:{\n \"b\": \"{\"\n}"])
    }

    @Test func anUnclosedObjectDoesNotSwallowTheNext() throws {
        #expect(try jsonTexts("{\n \"a\": 1\n{\n \"b\": 2\n}\n") ==
                ["1!unterminated JSON value: a new object starts at line 3 before it closed", "3:{\n \"b\": 2\n}"])
    }

    @Test func unclosedArrayIsAWarning() throws {
        #expect(try jsonTexts("[{\"a\":1}") == ["1:{\"a\":1}", "1?the JSON array is not closed before the end of the input"])
    }

    @Test func longLinesGrowTheBuffer() throws {
        let long = "{\"x\":\"" + String(repeating: "y", count: 5000) + "\"}"
        #expect(try jsonTexts(long + "\n{}\n") == ["1:" + long, "2:{}"])
    }
}

@Suite struct CSVReaderTests {
    @Test func quotedFieldsAndLineNumbers() throws {
        #expect(try csvRows("a,b\n\"x, y\",\"say \"\"hi\"\"\"\n\"multi\nline\",z\n\nlast,row") ==
                ["1:a|b", "2:x, y|say \"hi\"", "3:multi\nline|z", "6:last|row"])
    }

    @Test func spacesAreKept() throws {
        #expect(try csvRows(" a , b \n") == ["1: a | b "])
    }

    @Test func brokenRowsAndRecovery() throws {
        #expect(try csvRows("a,\"b\"c\nok,1\n") ==
                ["1!malformed CSV: a quote inside an unquoted field, or text after a closing quote", "2:ok|1"])
        #expect(try csvRows("a,b\nx,\"open\nmore\n") ==
                ["1:a|b", "2!unterminated quoted field: the input ended inside quotes opened on line 2"])
        #expect(try csvRows("a,b\nx,\u{0}\n") == ["1:a|b", "2!NUL byte in field 2"])
        #expect(try csvRows("a\tb\n1\t2\n", delimiter: 9) == ["1:a|b", "2:1|2"])
    }

    @Test func invalidUTF8IsReported() throws {
        let path = tempFile([97, 44, 98, 10, 49, 44, 0xE1, 10])
        defer { unlink(path) }
        var out: [String] = []
        try CSVReader(lines: LineReader(source: try ByteSource(path: path))).forEach { event in
            if case .broken(_, let line, let reason) = event { out.append("\(line)!" + reason) }
        }
        #expect(out == ["2!invalid UTF-8 in field 2"])
    }
}

@Suite struct ShardTests {
    @Test func sidePathsOfAShard() throws {
        let shard = try #require(Shard("2/4"))
        #expect(shard.path("out.rejects.jsonl") == "out.rejects.shard-2-of-4.jsonl")
        #expect(shard.path("logs/permits/replaced-austin.jsonl") == "logs/permits/replaced-austin.shard-2-of-4.jsonl")
        #expect(shard.path("dir.v2/x.jsonl.gz") == "dir.v2/x.shard-2-of-4.jsonl.gz")
        #expect(shard.path("dir.v2/README") == "dir.v2/README.shard-2-of-4")
        #expect(shard.path(".hidden") == ".hidden.shard-2-of-4")
        for bad in ["0/4", "5/4", "2", "2/0", "a/b", "2/4/1", ""] { #expect(Shard(bad) == nil, "\(bad)") }
    }

    /// The documented hash (FNV-1a 64 of the key's UTF-8, mod n, plus one), so drivers and
    /// stores outside LeadETL can shard the same way.
    @Test func theShardOfAKeyIsStable() throws {
        #expect(Shard.of("", count: 3) == 3 && Shard.of("", count: 7) == 3)
        #expect(Shard.of("a", count: 3) == 2 && Shard.of("a", count: 7) == 6)
        #expect(Shard.of("123 MAIN ST|78701", count: 3) == 1 && Shard.of("123 MAIN ST|78701", count: 7) == 2)
        #expect(try #require(Shard("1/3")).owns("123 MAIN ST|78701") && !(try #require(Shard("2/3")).owns("123 MAIN ST|78701")))
    }
}

@Suite struct TextEncodingTests {
    /// The bytes of `path` read back through a ByteSource in `encoding`, `chunk` bytes at a time.
    func read(_ bytes: [UInt8], _ encoding: TextEncoding, chunk: Int) throws -> String {
        let path = tempFile(bytes, suffix: ".csv")
        defer { unlink(path) }
        let source = try ByteSource(path: path, encoding: encoding)
        var out: [UInt8] = []
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        while true {
            let n = try source.read(into: buffer, count: chunk)
            if n == 0 { break }
            #expect(n <= chunk)
            out += UnsafeBufferPointer(start: buffer, count: n)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let bytes: [UInt8] = Array("Jos".utf8) + [0xE9, 0x20, 0x96, 0x20, 0x80, 0x20, 0x93, 0x71, 0x94, 0x20, 0x9F, 0x81, 0xFF]

    @Test(arguments: [1, 2, 3, 7, 1 << 16]) func windows1252AndLatin1BecomeUTF8(_ chunk: Int) throws {
        #expect(try read(TextEncodingTests.bytes, .cp1252, chunk: chunk) == "Jos\u{E9} \u{2013} \u{20AC} \u{201C}q\u{201D} \u{178}\u{81}\u{FF}")
        #expect(try read(TextEncodingTests.bytes, .latin1, chunk: chunk) == "Jos\u{E9} \u{96} \u{80} \u{93}q\u{94} \u{9F}\u{81}\u{FF}")
    }

    @Test func spellingsOfTheOption() {
        #expect(TextEncoding(argument: "Windows-1252") == .cp1252 && TextEncoding(argument: "ISO-8859-1") == .latin1)
        #expect(TextEncoding(argument: "UTF-8") == .utf8 && TextEncoding(argument: "ebcdic") == nil)
    }

    @Test func aCSVReadInItsEncodingHasNoBrokenRows() throws {
        let path = tempFile(Array("a,b\n1,Pe".utf8) + [0xF1, 0x61, 10], suffix: ".csv")
        defer { unlink(path) }
        var rows: [String] = []
        try CSVReader(lines: LineReader(source: try ByteSource(path: path, encoding: .latin1), chunkSize: 4)).forEach { event in
            if case .row(let row) = event { rows.append(row.string(1)) }
        }
        #expect(rows == ["b", "Pe\u{F1}a"])
    }
}

@Suite struct CSVWriterTests {
    func row(_ fields: [String], safe: Bool = false) -> String {
        let out = ByteBuffer()
        var w = CSVWriter(out: out, spreadsheetSafe: safe)
        w.writeRow(fields)
        return out.string
    }

    @Test func rfc4180Quoting() {
        #expect(row(["a", "b,c", "say \"hi\"", "x\ny", "", " s "]) == "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\",, s \n")
    }

    @Test func formulaInjection() {
        #expect(row(["=1+1", "@x", "+1 512", "-12.5", "+5", "\tx", "-", "1e5", "safe"], safe: true)
                == "'=1+1,'@x,'+1 512,-12.5,+5,'\tx,'-,1e5,safe\n")
        // Phone numbers reach dialers as written; anything else after a sign is guarded.
        #expect(row(["+1 512-555-0100", "+44 (20) 7946 0958", "-555-0100 99", "+1 512 555 0100x2", "+1-512-555-0100+cmd"], safe: true)
                == "+1 512-555-0100,+44 (20) 7946 0958,-555-0100 99,'+1 512 555 0100x2,'+1-512-555-0100+cmd\n")
        #expect(row(["=1,2"], safe: true) == "\"'=1,2\"\n")
    }

    @Test(arguments: ["1", "-1", "+1.5", "-.5", "1e-3", "-2E+10"]) func plainNumbers(_ text: String) {
        var t = text
        #expect(t.withUTF8 { CSVWriter.isPlainNumber($0) })
    }

    @Test(arguments: ["-", "+", "1-2", "e5", "-1e", "--1", "- 1"]) func notNumbers(_ text: String) {
        var t = text
        #expect(!t.withUTF8 { CSVWriter.isPlainNumber($0) })
    }
}

@Suite struct TimestampTests {
    @Test(arguments: [
        ("2026-11-23", "2026-11-23T00:00:00Z"),
        ("2026-11-23T06:07:08Z", "2026-11-23T06:07:08Z"),
        ("2026-11-23 06:07", "2026-11-23T06:07:00Z"),
        ("2026-11-23T06:07:08.250Z", "2026-11-23T06:07:08.25Z"),
        ("2026-11-23T06:07:08.123456789Z", "2026-11-23T06:07:08.123456789Z"),
        ("2026-11-23T01:00:00+02:00", "2026-11-22T23:00:00Z"),
        ("2026-11-23T01:00:00-0530", "2026-11-23T06:30:00Z"),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z"),
        ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
    ])
    func parsesAndFormats(_ text: String, _ iso: String) {
        #expect(Timestamp(iso8601: text)?.iso8601 == iso)
    }

    @Test(arguments: ["", "2026-13-01", "2025-02-29", "2026-11-23T25:00", "2026-11-23X", "11/23/2026", "2026-11-23T06:07:08.Z"])
    func rejectsInvalid(_ text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }

    @Test func calendarArithmetic() {
        for day in stride(from: -800_000, through: 800_000, by: 997) {
            let d = CivilDate(daysSinceEpoch: day)
            #expect(d.daysSinceEpoch == day)
        }
        let t = Timestamp(iso8601: "2026-08-25T00:00:00Z")!
        #expect(t.adding(days: 90).iso8601 == "2026-11-23T00:00:00Z")
        #expect(t.days(until: Timestamp(iso8601: "2026-11-22T23:59:59Z")!) == 89)
        #expect(Timestamp(iso8601: "2026-11-23T17:45:00Z")!.hour == 17)
        #expect(Timestamp(seconds: -1).date.iso8601 == "1969-12-31")
    }

    @Test func clockPrefersOptionThenEnvironment() throws {
        #expect(try Clock.resolve(option: "2026-01-02", environment: ["LEAD_NOW": "2020-01-01"]).now.iso8601 == "2026-01-02T00:00:00Z")
        #expect(try Clock.resolve(option: nil, environment: ["LEAD_NOW": "2020-01-01"]).now.iso8601 == "2020-01-01T00:00:00Z")
        #expect(try !Clock.resolve(option: nil, environment: [:]).isFixed)
        #expect(throws: StageError.self) { try Clock.resolve(option: "soon", environment: [:]) }
    }
}

@Suite struct SupportTests {
    @Test func byteKeyTable() {
        let table = ByteKeyTable()
        for i in 0..<5000 {
            var key = "key.\(i)"
            #expect(key.withUTF8 { table.insert($0) } == i)
        }
        for i in stride(from: 0, to: 5000, by: 7) {
            var key = "key.\(i)"
            #expect(key.withUTF8 { table.find($0) } == i)
        }
        var missing = "nope"
        #expect(missing.withUTF8 { table.find($0) } == nil)
        #expect(table.keyString(42) == "key.42")
    }

    @Test func base64() {
        for (input, expected) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            var s = input
            #expect(s.withUTF8 { Base64.encode($0) } == expected)
        }
    }

    @Test func utf8Validation() {
        let cases: [([UInt8], Int?)] = [([0x61, 0xC3, 0xA9], nil), ([0x61, 0xE1, 0x62], 1), ([0xF0, 0x9F, 0x98], 0),
                                        ([0xC0, 0x80], 0), ([0xED, 0xA0, 0x80], 0)]
        for (bytes, bad) in cases {
            #expect(bytes.withUnsafeBufferPointer { firstInvalidUTF8($0) } == bad)
        }
    }

    @Test func rejectsPathFollowsOutput() {
        #expect(Stage.rejectsPath(forOutput: "local-logs/x/flat.jsonl") == "local-logs/x/flat.rejects.jsonl")
        #expect(Stage.rejectsPath(forOutput: "out.csv.gz") == "out.rejects.jsonl")
        #expect(Stage.rejectsPath(forOutput: "noext") == "noext.rejects.jsonl")
    }

    @Test func atomicSinkLeavesNothingWhenDiscarded() throws {
        let dir = NSTemporaryDirectory() + "sink-" + UUID().uuidString
        let target = dir + "/sub/out.jsonl"
        let sink = try ByteSink(path: target)
        sink.buffer.append("partial")
        try sink.flush()
        sink.discard()
        #expect(!FileManager.default.fileExists(atPath: target))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/sub").isEmpty)
        let ok = try ByteSink(path: target)
        ok.buffer.append("done\n")
        try ok.commit()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "done\n")
        try FileManager.default.removeItem(atPath: dir)
    }

    @Test func gzipRoundTrip() throws {
        let path = NSTemporaryDirectory() + "gz-" + UUID().uuidString + ".jsonl.gz"
        defer { unlink(path) }
        let sink = try ByteSink(path: path)
        for i in 0..<1000 { sink.buffer.append("{\"i\":\(i)}\n") }
        try sink.commit()
        let lines = LineReader(source: try ByteSource(path: path))
        var count = 0
        while let line = try lines.next() {
            #expect(String(decoding: line.bytes, as: UTF8.self) == "{\"i\":\(count)}")
            count += 1
        }
        #expect(count == 1000)
    }

    /// Full buffers are written on the sink's writing thread while the next fills: the bytes
    /// arrive whole and in order, in a plain file and through gzip, and a write that fails
    /// there (a pipe whose reader is gone) is thrown by the next flush, not lost.
    @Test func backgroundWritesKeepOrderAndErrors() throws {
        for suffix in [".jsonl", ".jsonl.gz"] {
            let path = NSTemporaryDirectory() + "bg-" + UUID().uuidString + suffix
            defer { unlink(path) }
            let sink = try ByteSink(path: path, bufferSize: 4096)
            for i in 0..<50_000 {
                sink.buffer.append("{\"i\":\(i)}\n")
                try sink.flushIfNeeded()
            }
            try sink.commit()
            let lines = LineReader(source: try ByteSource(path: path))
            var count = 0
            while let line = try lines.next() {
                guard String(decoding: line.bytes, as: UTF8.self) == "{\"i\":\(count)}" else {
                    Issue.record("\(suffix): line \(count + 1) is \(String(decoding: line.bytes, as: UTF8.self))")
                    break
                }
                count += 1
            }
            #expect(count == 50_000, "\(suffix)")
        }
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        let path = "/dev/fd/\(fds[1])"
        let sink = try ByteSink(path: path, bufferSize: 4096)
        var failed: StageError?
        do {
            for _ in 0..<100 {
                sink.buffer.append(String(repeating: "x", count: 5000))
                try sink.flushIfNeeded()
            }
            try sink.commit()
        } catch {
            failed = error
        }
        #expect(failed != nil)
        close(fds[1])
    }
}
