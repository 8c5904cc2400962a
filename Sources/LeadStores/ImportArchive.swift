#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StageKit

/// The import archive of the leads store, `<logs>/leads/imports/<source>/`: every list
/// imported, kept as received. Copies are content-addressed, so importing a file twice keeps
/// one copy and concurrent imports of the same file agree.
public enum ImportArchive {
    /// Keeps a copy of the file at `path`, byte for byte, in `directory` under a name that
    /// holds the day and the start of its SHA-256 (`20261123-1f2e3d4c5b6a-list.csv`), so that
    /// copies of different files never overwrite each other and a file kept before is not
    /// written again. Returns the kept copy's path.
    public static func keep(_ path: String, in directory: String, day: CivilDate) throws(StageError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("\(path): cannot open: \(errnoText())") }
        defer { close(fd) }
        let chunk = 1 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        func eachChunk(_ body: (UnsafeBufferPointer<UInt8>) throws(StageError) -> Void) throws(StageError) {
            guard lseek(fd, 0, SEEK_SET) == 0 else { throw .io("\(path): cannot read it twice: \(errnoText())") }
            while true {
                let n = read(fd, buffer, chunk)
                if n < 0 { throw .io("\(path): read failed: \(errnoText())") }
                if n == 0 { return }
                try body(UnsafeBufferPointer(start: buffer, count: n))
            }
        }
        var hash = SHA256()
        try eachChunk { (bytes) throws(StageError) in hash.update(bytes) }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let kept = directory + "/" + day.compact + "-" + String(hash.finalizeHex().prefix(12)) + "-" + name
        var st = stat()
        if stat(kept, &st) == 0 { return kept }
        let sink = try ByteSink(path: kept, raw: true)
        try eachChunk { (bytes) throws(StageError) in
            sink.buffer.append(bytes)
            try sink.flushIfNeeded()
        }
        try sink.commit()
        return kept
    }

}
