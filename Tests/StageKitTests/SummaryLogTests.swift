import Foundation
import StageKit
import Testing

@Suite("Summary log: every stage's line kept, side by side, without touching kept runs")
struct SummaryLogTests {
    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "lead-summaries-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func writersSideBySideLoseNoLine() throws {
        let log = try scratch() + "/leads/summaries.jsonl"
        DispatchQueue.concurrentPerform(iterations: 8) { writer in
            for i in 0..<40 { try! SummaryLog.append("{\"writer\":\(writer),\"i\":\(i)}", to: log) }
        }
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 320)
        #expect(Set(lines).count == 320)
    }

    /// make keeps earlier runs as hard links: the log is replaced, so their copy stays as it was.
    @Test func aKeptRunsHardLinkStaysAsItWas() throws {
        let dir = try scratch()
        let log = dir + "/summaries.jsonl"
        try SummaryLog.append("{\"run\":1}", to: log)
        try FileManager.default.linkItem(atPath: log, toPath: dir + "/kept.jsonl")
        try SummaryLog.append("{\"run\":2}", to: log)
        #expect(try String(contentsOfFile: dir + "/kept.jsonl", encoding: .utf8) == "{\"run\":1}\n")
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "{\"run\":1}\n{\"run\":2}\n")
        let mode = (try FileManager.default.attributesOfItem(atPath: log)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
    }

    @Test func onlyTheNewestLinesAreKept() throws {
        let log = try scratch() + "/summaries.jsonl"
        for i in 1...5 { try SummaryLog.append("{\"i\":\(i)}", to: log, keeping: 3) }
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "{\"i\":3}\n{\"i\":4}\n{\"i\":5}\n")
    }
}
