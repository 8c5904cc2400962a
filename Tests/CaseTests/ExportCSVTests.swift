import Foundation
import TestSupport
import Testing

/// `lead-export csv` reads its input once: rows written before a later column was seen get
/// that column's empty cell when they are copied out. Checked against a CSV made here by
/// hand, on input long enough for many batches and workers, from files, several files and stdin.
@Suite struct ExportCSVTests {
    /// Records whose columns appear late: `late` first in record 7,001 (a later batch than
    /// the first), `deep.x` nested in the last one, `_origin` in some (left out), an empty
    /// object, and values that need quoting.
    static func records() -> [[(String, String?)]] {
        (0..<10_000).map { i in
            var r: [(String, String?)] = [("id", "\(i)")]
            if i % 3 == 0 { r.append(("name", i % 9 == 0 ? "a, \"quoted\" \(i)" : "n\(i)")) }
            if i >= 7_000 && i % 2 == 0 { r.append(("late", "L\(i)")) }
            if i == 9_999 { r.append(("deep.x", "D")) }
            if i % 1000 == 17 { r.append(("_origin", nil)) }
            if i == 5 { r = [] }
            return r
        }
    }

    static func json(_ r: [(String, String?)]) -> String {
        let fields = r.map { key, value -> String in
            if key == "_origin" { return "\"_origin\":\"x.jsonl:1\"" }
            if key == "deep.x" { return "\"deep\":{\"x\":\"\(value!)\"}" }
            let escaped = value!.replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(key)\":\"\(escaped)\""
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func expected(_ records: [[(String, String?)]]) -> String {
        var header: [String] = []
        for r in records { for (k, _) in r where k != "_origin" && !header.contains(k) { header.append(k) } }
        func cell(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        var lines = [header.joined(separator: ",")]
        for r in records {
            let values = Dictionary(r.filter { $0.0 != "_origin" }.map { ($0.0, $0.1!) }, uniquingKeysWith: { $1 })
            lines.append(header.map { values[$0].map(cell) ?? "" }.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func columnsSeenLateGetTheirEmptyCellsInEarlierRows() throws {
        let records = ExportCSVTests.records()
        let text = records.map(ExportCSVTests.json).joined(separator: "\n") + "\n"
        let want = ExportCSVTests.expected(records)
        let dir = try Binaries.scratch("export-csv")
        try text.write(toFile: dir + "/all.jsonl", atomically: true, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        try (lines[..<6_000].joined(separator: "\n") + "\n").write(toFile: dir + "/a.jsonl", atomically: true, encoding: .utf8)
        try lines[6_000...].joined(separator: "\n").write(toFile: dir + "/b.jsonl", atomically: true, encoding: .utf8)
        for threads in ["1", "2", "4"] {
            let environment = ["LEAD_THREADS": threads]
            let whole = try Binaries.run("lead-export", ["csv", "all.jsonl", "-o", "whole.csv"], in: dir, environment: environment)
            #expect(whole.status == 0, "\(whole.stderr)")
            #expect(try String(contentsOfFile: dir + "/whole.csv", encoding: .utf8) == want, "\(threads) threads")
            let two = try Binaries.run("lead-export", ["csv", "a.jsonl", "b.jsonl"], in: dir, environment: environment)
            #expect(two.status == 0 && two.stdout == want, "two files, \(threads) threads: \(two.stderr)")
            let piped = try Binaries.run("lead-export", ["csv"], in: dir, environment: environment, stdin: text)
            #expect(piped.status == 0 && piped.stdout == want, "stdin, \(threads) threads: \(piped.stderr)")
        }
        // CRLF and another delimiter: the empty cells go before the line end.
        let crlf = try Binaries.run("lead-export", ["csv", "--crlf", "-d", ";"], in: dir,
                                    stdin: "{\"a\":1}\n{}\n{\"b\":2,\"a\":3}\n{\"c\":\"x;y\"}\n")
        #expect(crlf.stdout == "a;b;c\r\n1;;\r\n;;\r\n3;2;\r\n;;\"x;y\"\r\n", "\(crlf.stdout)")
        // Records without any column: nothing to write.
        let none = try Binaries.run("lead-export", ["csv"], in: dir, stdin: "{}\n{}\n")
        #expect(none.status == 0 && none.stdout.isEmpty)
    }
}
