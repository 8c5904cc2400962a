import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One GET request.
public struct HTTPRequest: Sendable {
    public var url: String
    public var headers: [(String, String)]
    public var timeout: Double

    public init(url: String, headers: [(String, String)] = [], timeout: Double = 30) {
        self.url = url
        self.headers = headers
        self.timeout = timeout
    }
}

/// A response: status, headers (names lowercased) and body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Why no response came back.
public enum TransportError: Error, CustomStringConvertible, Sendable {
    case timeout
    case connection(String)
    case invalidURL(String)

    public var description: String {
        switch self {
        case .timeout: return "timed out"
        case .connection(let why): return why
        case .invalidURL(let url): return "invalid URL \(url)"
        }
    }
}

/// Something that answers GET requests: the network, or recorded files.
public protocol HTTPTransport: AnyObject, Sendable {
    func send(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError>
}

/// The network, through Foundation's URLSession (libcurl on Linux): HTTP and HTTPS.
public final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
    private let session: URLSession

    public init() {
        let config = URLSessionConfiguration.ephemeral
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        config.httpMaximumConnectionsPerHost = 4
        session = URLSession(configuration: config)
    }

    private final class Outcome: @unchecked Sendable {
        var result: Result<HTTPResponse, TransportError> = .failure(.connection("no response"))
    }

    public func send(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError> {
        guard let url = URL(string: request.url), url.scheme == "http" || url.scheme == "https" else {
            return .failure(.invalidURL(request.url))
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = "GET"
        urlRequest.timeoutInterval = request.timeout
        for (name, value) in request.headers { urlRequest.setValue(value, forHTTPHeaderField: name) }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let task = session.dataTask(with: urlRequest) { data, response, error in
            if let error {
                let code = (error as? URLError)?.code
                outcome.result = .failure(code == .timedOut ? .timeout : .connection(error.localizedDescription))
            } else if let http = response as? HTTPURLResponse {
                var headers: [String: String] = [:]
                for (k, v) in http.allHeaderFields {
                    if let k = k as? String, let v = v as? String { headers[k.lowercased()] = v }
                }
                outcome.result = .success(HTTPResponse(status: http.statusCode, headers: headers, body: [UInt8](data ?? Data())))
            }
            done.signal()
        }
        task.resume()
        // URLSession's own timeout covers a silent server; this covers one that trickles.
        if done.wait(timeout: .now() + request.timeout + 5) == .timedOut {
            task.cancel()
            done.wait()
            return .failure(.timeout)
        }
        return outcome.result
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
