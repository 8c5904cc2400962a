/// Which of n processes running the same stage side by side this one is (`--shard i/n`, or
/// `LEAD_SHARD=i/n`; i from 1 to n), as under `make -j`, `xargs -P` or Spark's `RDD.pipe`.
/// Every side file the stage writes (its rejects, the replaced rows of a flatten, its
/// reports) gets a path of its own, `<name>.shard-<i>-of-<n>.<ext>`, so that no shard
/// replaces or removes another's.
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    /// 1 ... count.
    public let index: Int
    public let count: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 1, i <= n else { return nil }
        index = i
        count = n
    }

    public var description: String { "\(index)/\(count)" }

    /// The shard a key belongs to, 1 ... n: FNV-1a 64 of the key's UTF-8 bytes, mod n, plus
    /// one. The same hash everywhere, so a driver can partition by it and a store sharded
    /// with it merges shard by shard.
    public static func of(_ key: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(count)) + 1
    }

    /// Whether this shard handles `key`.
    public func owns(_ key: String) -> Bool { Shard.of(key, count: count) == index }

    /// `dir/out.rejects.jsonl` -> `dir/out.rejects.shard-2-of-4.jsonl` (a `.gz` stays last:
    /// `x.jsonl.gz` -> `x.shard-2-of-4.jsonl.gz`; a name without extension gets the tag at
    /// the end).
    public func path(_ path: String) -> String {
        let slash = path.lastIndex(of: "/").map { path.index(after: $0) } ?? path.startIndex
        let name = path[slash...]
        var extStart = name.lastIndex(of: ".")
        if let dot = extStart, name[dot...] == ".gz", let inner = name[..<dot].lastIndex(of: ".") { extStart = inner }
        let tag = ".shard-\(index)-of-\(count)"
        guard let dot = extStart, dot > name.startIndex else { return path + tag }
        return String(path[..<dot]) + tag + String(path[dot...])
    }
}
