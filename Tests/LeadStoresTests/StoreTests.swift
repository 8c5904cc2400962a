import Foundation
import LeadStores
import StageKit
import Testing
import TestSupport

/// A fresh scratch directory for one test.
func scratch(_ label: String) throws -> String { try Binaries.scratch("stores-" + label) }

func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "<missing>" }

func mode(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_mode & 0o777) : -1
}

@Suite("Store files: modes, temporary files, the journal, logs, locks")
struct StoreFileTests {
    @Test func outputsArePrivateWhateverTheUmask() throws {
        let dir = try scratch("modes")
        let old = umask(0o022)
        defer { umask(old) }
        let sink = try ByteSink(path: dir + "/a/b/leads.jsonl")
        sink.buffer.append("{}\n")
        try sink.commit()
        #expect(mode(dir + "/a/b/leads.jsonl") == 0o600)
        #expect(mode(dir + "/a") == 0o700)
        #expect(mode(dir + "/a/b") == 0o700)
        try StoreLog.appendWhole(Array("x\n".utf8), to: dir + "/a/log.jsonl")
        #expect(mode(dir + "/a/log.jsonl") == 0o600)
        // A rewrite keeps it private even after someone loosened it.
        chmod(dir + "/a/b/leads.jsonl", 0o644)
        let again = try ByteSink(path: dir + "/a/b/leads.jsonl")
        again.buffer.append("{}\n")
        try again.commit()
        #expect(mode(dir + "/a/b/leads.jsonl") == 0o600)
    }

    @Test func abandonedTemporaryFilesGoAndLiveOnesStay() throws {
        let dir = try scratch("temps")
        // A live writer's temporary file (this process holds its lock) and a dead one's.
        let live = try ByteSink(path: dir + "/live.jsonl")
        live.buffer.append("x")
        try live.flush()
        let dead = dir + "/.dead.jsonl.tmp-999999"
        FileManager.default.createFile(atPath: dead, contents: Data("half".utf8))
        let deadOfLivePID = dir + "/.other.jsonl.tmp-\(getpid())"
        FileManager.default.createFile(atPath: deadOfLivePID, contents: Data("half".utf8))
        let removed = AtomicFiles.removeAbandonedTemps(in: dir)
        #expect(removed == 2)
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(!FileManager.default.fileExists(atPath: deadOfLivePID))
        #expect(FileManager.default.fileExists(atPath: live.temporaryPath!))
        live.discard()
    }

    @Test func aJournalIsFinishedOnceWhateverPointItStoppedAt() throws {
        let dir = try scratch("journal")
        try "old a\n".write(toFile: dir + "/a.csv", atomically: true, encoding: .utf8)
        try "line 1\n".write(toFile: dir + "/log.jsonl", atomically: true, encoding: .utf8)
        try "gone\n".write(toFile: dir + "/stale.csv", atomically: true, encoding: .utf8)
        try "new a\n".write(toFile: dir + "/.a.csv.tmp-1", atomically: true, encoding: .utf8)
        try "new b\n".write(toFile: dir + "/.b.csv.tmp-1", atomically: true, encoding: .utf8)
        try "line 2\n".write(toFile: dir + "/.log.jsonl.tmp-1", atomically: true, encoding: .utf8)
        let operations: [StoreJournal.Operation] = [
            .rename(from: dir + "/.a.csv.tmp-1", to: dir + "/a.csv"),
            .rename(from: dir + "/.b.csv.tmp-1", to: dir + "/b.csv"),
            .append(log: dir + "/log.jsonl", from: dir + "/.log.jsonl.tmp-1", size: 7),
            .remove(dir + "/stale.csv"),
        ]
        try StoreJournal.write(operations, to: StoreJournal.path(in: dir))
        // Killed after the first rename: the next run finishes the rest, and only once.
        try StoreJournal.apply(operations[0])
        #expect(try StoreJournal.recover(directory: dir))
        #expect(read(dir + "/a.csv") == "new a\n")
        #expect(read(dir + "/b.csv") == "new b\n")
        #expect(read(dir + "/log.jsonl") == "line 1\nline 2\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/stale.csv"))
        #expect(!FileManager.default.fileExists(atPath: StoreJournal.path(in: dir)))
        #expect(try !StoreJournal.recover(directory: dir))
        // Applying an append again after it was made changes nothing.
        try "line 3\n".write(toFile: dir + "/.log.jsonl.tmp-2", atomically: true, encoding: .utf8)
        let append = StoreJournal.Operation.append(log: dir + "/log.jsonl", from: dir + "/.log.jsonl.tmp-2", size: 14)
        try StoreJournal.apply(append)
        try "line 3\n".write(toFile: dir + "/.log.jsonl.tmp-2", atomically: true, encoding: .utf8)
        try StoreJournal.apply(append)
        #expect(read(dir + "/log.jsonl") == "line 1\nline 2\nline 3\n")
    }

    @Test func anIncompleteJournalChangesNothing() throws {
        let dir = try scratch("incomplete")
        try "a\n".write(toFile: dir + "/a.csv", atomically: true, encoding: .utf8)
        try "b\n".write(toFile: dir + "/.a.csv.tmp-1", atomically: true, encoding: .utf8)
        try #"{"op":"rename","from":"\#(dir)/.a.csv.tmp-1","to":"\#(dir)/a.csv"}"# .appending("\n")
            .write(toFile: StoreJournal.path(in: dir), atomically: true, encoding: .utf8)
        #expect(try StoreJournal.recover(directory: dir))
        #expect(read(dir + "/a.csv") == "a\n")
    }

    @Test func aLogKnowsTheLinesItEndsWith() throws {
        let dir = try scratch("log")
        let log = dir + "/dedupe.jsonl"
        try StoreLog.appendWhole(Array("{\"a\":1}\n{\"b\":2}\n".utf8), to: log)
        #expect(StoreLog.endsWith(log, Array("{\"b\":2}\n".utf8)))
        #expect(StoreLog.endsWith(log, Array("{\"a\":1}\n{\"b\":2}\n".utf8)))
        #expect(!StoreLog.endsWith(log, Array("\"b\":2}\n".utf8)))
        #expect(!StoreLog.endsWith(log, Array("{\"a\":1}\n".utf8)))
    }

    @Test func concurrentAppendsLoseNoLine() throws {
        let dir = try scratch("appends")
        let log = dir + "/log.jsonl"
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for i in 0..<250 {
                let line = Array("{\"worker\":\(worker),\"i\":\(i),\"pad\":\"\(String(repeating: "x", count: 200))\"}\n".utf8)
                try? StoreLog.appendWhole(line, to: log)
            }
        }
        let lines = read(log).split(separator: "\n")
        #expect(lines.count == 2000)
        #expect(lines.allSatisfy { $0.hasPrefix("{\"worker\":") && $0.hasSuffix("\"}") })
    }

    @Test func aSecondLockWaitsOrNamesTheHolder() throws {
        let dir = try scratch("lock")
        let first = try StoreLock.acquire([dir], holder: "pid 1 lead-normalize --dedupe since now", wait: true,
                                          environment: [:]) { _ in }
        #expect(read(dir + "/.lock") == "pid 1 lead-normalize --dedupe since now\n")
        #expect(mode(dir + "/.lock") == 0o600)
        let refused = Result { try StoreLock.acquire([dir], holder: "pid 2", wait: false, environment: [:]) { _ in } }
        switch refused {
        case .success: Issue.record("a held lock was taken again")
        case .failure(let error):
            let stageError = error as? StageError
            #expect(stageError?.exitCode == 2)
            #expect(stageError?.description.contains("locked by pid 1 lead-normalize --dedupe since now") == true)
        }
        // Held by the parent that started this process: not locked again.
        let real = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
        _ = try StoreLock.acquire([dir], holder: "pid 3", wait: false, environment: ["LEAD_LOCKS": real]) { _ in }
        // A waiter is told whom it waits for, and gets the lock once it is let go.
        let waited = UncheckedFlag()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let second = try? StoreLock.acquire([dir], holder: "pid 4", wait: true, environment: [:]) { message in
                waited.set(message)
            }
            second?.release()
            done.signal()
        }
        Thread.sleep(forTimeInterval: 0.3)
        first.release()
        #expect(done.wait(timeout: .now() + 5) == .success)
        #expect(waited.value?.contains("locked by pid 1") == true)
        #expect(read(dir + "/.lock") == "")
    }
}

final class UncheckedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var text: String?
    func set(_ value: String) { lock.lock(); text = value; lock.unlock() }
    var value: String? { lock.lock(); defer { lock.unlock() }; return text }
}
