import Dispatch
import Foundation
import LeadStores
import StageKit

/// One listing's primary photo to cache.
public struct PhotoJob: Sendable {
    public let key: String
    public let url: String

    public init(key: String, url: String) {
        self.key = key
        self.url = url
    }
}

/// Caches primary photos as `<photos>/<ListingKey>.<ext>` with a few workers and a pause
/// between downloads. A skip index (ListingKey -> url, sha256, bytes, fetched_at, file)
/// means an unchanged photo is not fetched again. Every attempt gets a line in the run log
/// (key, url, status, bytes, ms, error). A 404, a timeout or content that is not an image is
/// logged and skipped: photos never fail a run.
public struct PhotoFetcher: Sendable {
    public let transport: HTTPTransport
    public let photosDirectory: String
    public let workers: Int
    public let delay: Double
    public let timeout: Double
    public let userAgent: String

    public init(transport: HTTPTransport, photosDirectory: String, workers: Int, delay: Double, timeout: Double,
                userAgent: String) {
        self.transport = transport
        self.photosDirectory = photosDirectory
        self.workers = max(1, workers)
        self.delay = delay
        self.timeout = timeout
        self.userAgent = userAgent
    }

    /// The outcome of one attempt.
    struct Attempt {
        var status: JSONValue = .null
        var bytes = 0
        var ms = 0
        var error: String?
        var entry: Record?
    }

    /// Downloads what the index does not already hold; writes the index and the run log.
    public func run(_ jobs: [PhotoJob], stage: Stage, indexPath: String, runLogPath: String) throws {
        var index = PhotoIndex.load(indexPath)
        var todo: [PhotoJob] = []
        var skipped = 0
        for job in jobs {
            if let entry = index[job.key], entry["url"]?.string == job.url,
               let file = entry["file"]?.string, fileExists(photosDirectory + "/" + file) {
                skipped += 1
            } else {
                todo.append(job)
            }
        }
        try AtomicFiles.makeDirectories(photosDirectory)
        let work = WorkQueue(count: todo.count)
        let now = stage.clock.now
        let jobs = todo
        DispatchQueue.concurrentPerform(iterations: min(workers, max(1, todo.count))) { _ in
            var first = true
            while let i = work.take() {
                if !first { Thread.sleep(forTimeInterval: delay) }
                first = false
                work.finish(i, download(jobs[i], now: now))
            }
        }
        let attempts = work.results
        let log = try stage.openOutput(runLogPath)
        var downloaded = 0, failed = 0
        for (job, attempt) in zip(todo, attempts) {
            var line = Record()
            line.append("key", .string(job.key))
            line.append("url", .string(job.url))
            line.append("status", attempt.status)
            line.append("bytes", .int(attempt.bytes))
            line.append("ms", .int(attempt.ms))
            line.append("error", attempt.error.map { .string($0) } ?? .null)
            JSONWriter.writeLine(line, into: log.buffer)
            if let entry = attempt.entry {
                index[job.key] = entry
                downloaded += 1
            } else {
                failed += 1
            }
        }
        let indexSink = try stage.openOutput(indexPath)
        JSONWriter.write(.object(PhotoIndex.record(index)), into: indexSink.buffer)
        indexSink.buffer.append(10)
        stage.recordsOut += downloaded
        stage.summary.append("downloaded", .int(downloaded))
        stage.summary.append("unchanged", .int(skipped))
        stage.summary.append("failed", .int(failed))
    }

    func download(_ job: PhotoJob, now: Timestamp) -> Attempt {
        var attempt = Attempt()
        guard PhotoFetcher.isSafeFileName(job.key) else {
            attempt.error = "ListingKey '\(job.key)' cannot be a file name"
            attempt.status = "skipped"
            return attempt
        }
        let started = monotonicNow()
        // A photo request carries no credential: redirects (to a CDN) are followed anywhere.
        let result = transport.sendFollowingRedirects(HTTPRequest(url: job.url, headers: [("User-Agent", userAgent)], timeout: timeout))
        attempt.ms = Int(((monotonicNow() - started) * 1000).rounded())
        switch result {
        case .failure(let error):
            attempt.status = .string(error.description == "timed out" ? "timeout" : "error")
            attempt.error = error.description
        case .success(let response):
            attempt.status = .int(response.status)
            attempt.bytes = response.body.count
            guard response.status == 200 else {
                attempt.error = response.status == 404 ? "not found" : "HTTP \(response.status)"
                return attempt
            }
            guard let ext = PhotoFetcher.imageExtension(response.body) else {
                let type = response.header("Content-Type") ?? "no content type"
                let start = String(decoding: response.body.prefix(16), as: UTF8.self)
                    .map { $0.isASCII && !$0.isWhitespace || $0 == " " ? String($0) : "." }.joined()
                attempt.error = "not an image (\(type); starts with \"\(start)\")"
                return attempt
            }
            let file = "\(job.key).\(ext)"
            do {
                for other in ["jpg", "png", "gif", "webp"] where other != ext {
                    unlink(photosDirectory + "/\(job.key).\(other)")
                }
                try AtomicFiles.write(response.body, to: photosDirectory + "/" + file)
            } catch {
                attempt.error = "cannot save: \(error)"
                return attempt
            }
            attempt.entry = [
                "url": .string(job.url), "sha256": .string(SHA256.hex(response.body)),
                "bytes": .int(response.body.count), "fetched_at": .string(now.iso8601), "file": .string(file),
            ]
        }
        return attempt
    }

    /// JPEG, PNG, GIF or WebP by their magic bytes.
    public static func imageExtension(_ body: [UInt8]) -> String? {
        if body.starts(with: [0xFF, 0xD8, 0xFF]) { return "jpg" }
        if body.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "png" }
        if body.starts(with: Array("GIF8".utf8)) { return "gif" }
        if body.count >= 12 && body.starts(with: Array("RIFF".utf8)) && Array(body[8..<12]) == Array("WEBP".utf8) { return "webp" }
        return nil
    }

    /// Letters, digits, `.`, `_` and `-`, not starting with a dot: safe as a file name.
    public static func isSafeFileName(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first, first != "." else { return false }
        return key.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Hands out job numbers to workers and collects their attempts.
    final class WorkQueue: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private let count: Int
        private(set) var results: [Attempt]

        init(count: Int) {
            self.count = count
            results = [Attempt](repeating: Attempt(), count: count)
        }

        func take() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard next < count else { return nil }
            next += 1
            return next - 1
        }

        func finish(_ i: Int, _ attempt: Attempt) {
            lock.lock()
            results[i] = attempt
            lock.unlock()
        }
    }
}
