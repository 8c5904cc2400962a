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

    /// Another run sweeping the directory for dead writers' temporary files, over and over,
    /// never takes the file of a writer that is creating it (the instant between the file's
    /// creation and its lock): every one of thousands of outputs lands.
    @Test func aSweeperNeverTakesATemporaryFileBeingCreated() throws {
        let dir = try scratch("sweep-race")
        let done = ManagedFlag()
        let sweeper = Thread {
            while !done.value { AtomicFiles.removeAbandonedTemps(in: dir) }
        }
        sweeper.start()
        defer { done.value = true }
        var failures: [String] = []
        for i in 0..<3000 {
            do {
                let sink = try ByteSink(path: dir + "/out-\(i % 7).jsonl")
                sink.buffer.append("{\"i\":\(i)}\n")
                try sink.commit()
            } catch {
                failures.append("\(i): \(error)")
            }
        }
        done.value = true
        #expect(failures.isEmpty, "\(failures.count) outputs lost, first: \(failures.prefix(3))")
    }

    /// A change killed at any step between the journal and its removal is rolled back whole
    /// by the next run: old files back, new ones gone, the log cut back, removed files back.
    @Test(arguments: 0...5)
    func aJournalLeftBehindIsRolledBackWhateverStepItStoppedAt(_ applied: Int) throws {
        let dir = try scratch("journal")
        try "old a\n".write(toFile: dir + "/a.csv", atomically: true, encoding: .utf8)
        try "line 1\n".write(toFile: dir + "/log.jsonl", atomically: true, encoding: .utf8)
        try "kept\n".write(toFile: dir + "/stale.csv", atomically: true, encoding: .utf8)
        try "new a\n".write(toFile: dir + "/.a.csv.tmp-1", atomically: true, encoding: .utf8)
        try "new b\n".write(toFile: dir + "/.b.csv.tmp-1", atomically: true, encoding: .utf8)
        try "line 2\n".write(toFile: dir + "/.log.jsonl.tmp-1", atomically: true, encoding: .utf8)
        let operations: [StoreJournal.Operation] = [
            .append(log: dir + "/log.jsonl", from: dir + "/.log.jsonl.tmp-1", size: 7),
            .remove(dir + "/stale.csv", backup: try StoreJournal.keepBackup(of: dir + "/stale.csv")),
            .rename(from: dir + "/.a.csv.tmp-1", to: dir + "/a.csv", backup: try StoreJournal.keepBackup(of: dir + "/a.csv")),
            .rename(from: dir + "/.b.csv.tmp-1", to: dir + "/b.csv", backup: try StoreJournal.keepBackup(of: dir + "/b.csv")),
            .append(log: dir + "/new-log.jsonl", from: dir + "/.log.jsonl.tmp-1", size: -1),
        ]
        try StoreJournal.write(operations, to: StoreJournal.path(in: dir))
        for operation in operations.prefix(min(applied, 4)) { try StoreJournal.apply(operation) }
        #expect(try StoreJournal.recover(directory: dir))
        #expect(read(dir + "/a.csv") == "old a\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/b.csv"))
        #expect(read(dir + "/log.jsonl") == "line 1\n")
        #expect(read(dir + "/stale.csv") == "kept\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/new-log.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: StoreJournal.path(in: dir)))
        #expect(try !StoreJournal.recover(directory: dir))
        // What is left are the new versions, back where they were written: abandoned
        // temporary files, which the store removes once it is open.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        #expect(left.allSatisfy { $0.contains(".tmp-") }, "\(left)")
        AtomicFiles.removeAbandonedTemps(in: dir)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }.isEmpty)
    }

    @Test func anIncompleteJournalChangesNothing() throws {
        let dir = try scratch("incomplete")
        try "a\n".write(toFile: dir + "/a.csv", atomically: true, encoding: .utf8)
        try "b\n".write(toFile: dir + "/.a.csv.tmp-1", atomically: true, encoding: .utf8)
        try #"{"op":"rename","from":"\#(dir)/.a.csv.tmp-1","to":"\#(dir)/a.csv","backup":null}"# .appending("\n")
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
        for _ in 0..<500 where waited.value == nil { Thread.sleep(forTimeInterval: 0.01) }
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

/// A flag one thread sets and another polls.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    var value: Bool {
        get { lock.lock(); defer { lock.unlock() }; return set }
        set { lock.lock(); set = newValue; lock.unlock() }
    }
}
