#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// What the shards of a keyed export share (`lead-export permits|events --shard i/n`, then
/// `--join-shards n`): where shard i of n leaves its part (`<folder>/i-of-n/`, its counts in
/// `report.json`), the fingerprint of the store files it read, and the checks the join makes
/// before it uses the parts: every part there, run at the join's clock, having read the store
/// as the join finds it (so a run between the shards and the join fails the join instead of
/// being lost).
struct ShardParts {
    /// `<store>/shards`.
    let folder: String
    /// What makes the parts, for messages (`lead-export permits`).
    let command: String

    func dir(_ shard: Shard) -> String { folder + "/\(shard.index)-of-\(shard.count)" }
    func reportPath(_ shard: Shard) -> String { dir(shard) + "/report.json" }

    /// The files' inode, size and change time (a store file is replaced by rename, so a
    /// change gives another inode), hashed.
    static func fingerprint(of paths: [String]) -> String {
        var parts: [String] = []
        for path in paths {
            var info = stat()
            if stat(path, &info) != 0 {
                parts.append(path + ":-")
                continue
            }
            parts.append("\(path):\(info.st_ino):\(info.st_size):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)")
        }
        return SHA256.hex(Array(parts.joined(separator: "\n").utf8))
    }

    /// Locks shard `shard`'s part for this run; the store directories `reading` are only
    /// read. A change a killed run left half made in them must be settled first (lead-cleanup
    /// stores), unless the process that started this one holds them (scripts/locked.sh).
    @discardableResult
    func lockPart(_ stage: Stage, _ shard: Shard, reading: [String]) throws -> Store {
        let store = try Store.open([dir(shard)], for: stage)
        let held = Set((stage.environment["LEAD_LOCKS"] ?? "").split(separator: ":").map(String.init))
        for dir in reading where Stage.fileExists(StoreJournal.path(in: dir)) {
            guard let real = realpath(dir, nil) else { continue }
            defer { free(real) }
            if held.contains(String(cString: real)) { continue }
            throw StageError.usage("\(dir): an interrupted run left a change half made: run lead-cleanup stores \(dir) before the shards")
        }
        return store
    }

    /// A shard's report, written as its part's last file.
    func writeReport(_ report: Record, shard: Shard, stage: Stage) throws {
        let sink = try stage.openOutput(reportPath(shard))
        JSONWriter.writeLine(report, into: sink.buffer)
    }

    /// The reports of shards 1...count, each checked: there, all run at one clock (their
    /// `now`), that of `clock` when it is fixed (--now, LEAD_NOW), having read the store whose
    /// fingerprint is `current` (their `fingerprint`); and that clock, which the join applies.
    /// A join on the real clock takes the shards' (give the shards one --now).
    func reports(count: Int, clock: Clock, current: String) throws -> (reports: [Record], now: Timestamp) {
        var out: [Record] = []
        for i in 1...count {
            let shard = Shard("\(i)/\(count)")!
            let path = reportPath(shard)
            guard Stage.fileExists(path) else {
                throw StageError.usage("\(path): no part of shard \(i) of \(count) (run \(command) --shard \(i)/\(count) first)")
            }
            let bytes = try ByteSource.readAll(path)
            guard let report = bytes.withUnsafeBufferPointer({ RecordParser().record($0) }) else {
                throw StageError.data("\(path): not a shard's report")
            }
            let ran = report.text("now") ?? "?"
            if clock.isFixed, ran != clock.now.iso8601 {
                throw StageError.usage("\(path): shard \(i) ran at \(ran), not at \(clock.now.iso8601): give the join the shards' --now")
            }
            if let first = out.first?.text("now"), first != ran {
                throw StageError.usage("\(path): shard \(i) ran at \(ran), shard 1 at \(first): give every shard one --now")
            }
            guard report.text("fingerprint") == current else {
                throw StageError.data("\(path): the store or a ledger changed after shard \(i) of \(count) read it: run the shards again")
            }
            out.append(report)
        }
        guard let now = Timestamp(iso8601: out[0].text("now") ?? "") else {
            throw StageError.data("\(reportPath(Shard("1/\(count)")!)): no readable now")
        }
        return (out, now)
    }

    /// The parts are used up when the join succeeds.
    func removeOnSuccess(count: Int, stage: Stage) {
        for i in 1...count {
            for path in Directory.files(in: dir(Shard("\(i)/\(count)")!), suffix: "", recursive: true) { stage.removeOnSuccess(path) }
        }
    }
}
