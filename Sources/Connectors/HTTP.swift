import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One request: a GET, or a POST with a body (an OAuth token request, a PostHog query).
public struct HTTPRequest: Sendable {
    public var url: String
    public var headers: [(String, String)]
    public var timeout: Double
    public var method: String
    public var body: [UInt8]?

    public init(url: String, headers: [(String, String)] = [], timeout: Double = 30, method: String = "GET", body: [UInt8]? = nil) {
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.method = method
        self.body = body
    }
}

/// A response: status, headers (names lowercased) and body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]
    /// Where the body came from when it is not the network (a recorded page's file).
    public var file: String?

    public init(status: Int, headers: [String: String] = [:], body: [UInt8], file: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.file = file
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Why no response came back.
public enum TransportError: Error, CustomStringConvertible, Sendable {
    case timeout
    case connection(String)
    case invalidURL(String)
    /// The body was larger than the limit (bytes).
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .timeout: return "timed out"
        case .connection(let why): return why
        case .invalidURL(let url): return "invalid URL \(url)"
        case .tooLarge(let limit): return "the response is larger than \(limit / (1 << 20)) MB (max_response_mb of stages/fetch/settings.csv)"
        }
    }
}

/// The scheme, host and port of a URL: what credentials belong to.
public struct URLOrigin: Equatable, Sendable, CustomStringConvertible {
    public let scheme: String
    public let host: String
    public let port: Int

    public init?(_ url: String) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host?.lowercased(), !host.isEmpty else { return nil }
        self.scheme = scheme
        self.host = host
        port = components.port ?? (scheme == "https" ? 443 : 80)
    }

    public var description: String { "\(scheme)://\(host):\(port)" }
}

/// Something that answers GET requests: the network, or recorded files. Redirects are not
/// followed: a 3xx comes back as it is, for the caller to judge where it points.
public protocol HTTPTransport: AnyObject, Sendable {
    func send(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError>
}

extension HTTPTransport {
    /// Sends `request`, following redirects to any host (at most `hops`), for requests that
    /// carry no credential (photos from a CDN).
    public func sendFollowingRedirects(_ request: HTTPRequest, hops: Int = 5) -> Result<HTTPResponse, TransportError> {
        var current = request
        for _ in 0...hops {
            let result = send(current)
            guard case .success(let response) = result, (300..<400).contains(response.status),
                  let location = response.header("Location"), let next = resolveURL(location, against: current.url) else { return result }
            current.url = next
        }
        return .failure(.connection("more than \(hops) redirects"))
    }
}

/// `reference` resolved against `base` (an absolute or relative URL).
public func resolveURL(_ reference: String, against base: String) -> String? {
    guard let baseURL = URL(string: base), let url = URL(string: reference, relativeTo: baseURL) else { return nil }
    return url.absoluteString
}

/// The network, through Foundation's URLSession (libcurl on Linux): HTTP and HTTPS. It never
/// follows a redirect itself (so no header is ever re-sent to another host behind the
/// caller's back) and stops reading a body past `maxResponseBytes`.
public final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
    private let session: URLSession
    private let tasks: TaskTable
    public let maxResponseBytes: Int

    public init(maxResponseBytes: Int = 64 << 20) {
        self.maxResponseBytes = maxResponseBytes
        let config = URLSessionConfiguration.ephemeral
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.httpMaximumConnectionsPerHost = 4
        tasks = TaskTable()
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        session = URLSession(configuration: config, delegate: tasks, delegateQueue: queue)
    }

    /// One request in flight: what came back so far.
    final class Transfer: @unchecked Sendable {
        let limit: Int
        var response: HTTPURLResponse?
        var body = Data()
        var error: TransportError?
        let done = DispatchSemaphore(value: 0)
        init(limit: Int) { self.limit = limit }
    }

    /// The session's delegate: each task's transfer, by task identifier.
    final class TaskTable: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        private let lock = NSLock()
        private var transfers: [Int: Transfer] = [:]

        func add(_ transfer: Transfer, for task: URLSessionTask) {
            lock.lock(); transfers[task.taskIdentifier] = transfer; lock.unlock()
        }

        func transfer(_ task: URLSessionTask) -> Transfer? {
            lock.lock(); defer { lock.unlock() }
            return transfers[task.taskIdentifier]
        }

        func remove(_ task: URLSessionTask) -> Transfer? {
            lock.lock(); defer { lock.unlock() }
            return transfers.removeValue(forKey: task.taskIdentifier)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(nil)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            guard let transfer = transfer(dataTask) else { return completionHandler(.cancel) }
            transfer.response = response as? HTTPURLResponse
            if response.expectedContentLength > Int64(transfer.limit) {
                transfer.error = .tooLarge(transfer.limit)
                return completionHandler(.cancel)
            }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard let transfer = transfer(dataTask), transfer.error == nil else { return }
            if transfer.body.count + data.count > transfer.limit {
                transfer.error = .tooLarge(transfer.limit)
                transfer.body = Data()
                dataTask.cancel()
                return
            }
            transfer.body.append(data)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            guard let transfer = remove(task) else { return }
            if transfer.error == nil, let error {
                let code = (error as? URLError)?.code
                transfer.error = code == .timedOut ? .timeout : .connection(error.localizedDescription)
            }
            transfer.done.signal()
        }
    }

    public func send(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError> {
        guard let url = URL(string: request.url), url.scheme == "http" || url.scheme == "https" else {
            return .failure(.invalidURL(request.url))
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        if let body = request.body { urlRequest.httpBody = Data(body) }
        urlRequest.timeoutInterval = request.timeout
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        let transfer = Transfer(limit: maxResponseBytes)
        let task = session.dataTask(with: urlRequest)
        tasks.add(transfer, for: task)
        task.resume()
        // URLSession's own timeout covers a silent server; this covers one that trickles.
        if transfer.done.wait(timeout: .now() + request.timeout + 5) == .timedOut {
            task.cancel()
            transfer.done.wait()
            return .failure(.timeout)
        }
        if let error = transfer.error { return .failure(error) }
        guard let http = transfer.response else { return .failure(.connection("no response")) }
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields {
            if let k = k as? String, let v = v as? String { headers[k.lowercased()] = v }
        }
        return .success(HTTPResponse(status: http.statusCode, headers: headers, body: [UInt8](transfer.body)))
    }
}

/// Spaces requests so that no more than `perSecond` start in any second.
public final class RateLimiter: @unchecked Sendable {
    private let interval: Double
    private var next = 0.0
    private let lock = NSLock()

    public init(perSecond: Double) { interval = perSecond > 0 ? 1 / perSecond : 0 }

    /// Blocks until the next request may start.
    public func wait() {
        lock.lock()
        let now = monotonicNow()
        let start = max(now, next)
        next = start + interval
        lock.unlock()
        if start > now { sleepSeconds(start - now) }
    }
}

/// Exponential backoff with jitter, capped; a server's `Retry-After` wins when it sends one
/// (up to `maxRetryAfter`, so a server cannot park a batch run for hours).
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double
    public var maxRetryAfter: Double

    public init(maxAttempts: Int, baseDelay: Double, maxDelay: Double, maxRetryAfter: Double = 300) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// The wait before try number `attempt + 1`, after `attempt` failed tries.
    public func delay(afterAttempt attempt: Int, retryAfter: Double?) -> Double {
        if let retryAfter { return min(max(0, retryAfter), maxRetryAfter) }
        let ceiling = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return Double.random(in: (ceiling / 2)...max(ceiling / 2, ceiling))
    }

    /// Seconds from a `Retry-After` header: delta-seconds or an HTTP date.
    public static func retryAfter(_ header: String?, now: Date = Date()) -> Double? {
        guard let header = header?.trimmingCharacters(in: .whitespaces), !header.isEmpty else { return nil }
        if let seconds = Double(header) { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: header) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
