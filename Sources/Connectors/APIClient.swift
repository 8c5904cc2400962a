import StageKit

/// What a caller makes of a successful (2xx) response.
public enum ResponseVerdict<T> {
    /// The response is good: here is what it held.
    case done(T)
    /// The response is unusable but another try may do better (a malformed page).
    case retry(String)
    /// The response says the request cannot succeed (an API error in the body).
    case fail(String)
}

/// GET requests with the fetch rules of every connector: at most N requests per second,
/// retries with exponential backoff and jitter on timeouts, connection errors, HTTP 5xx,
/// 408 and 429 (honouring `Retry-After`), and a bounded number of tries, after which the
/// stage fails with exit status 3 and a message naming the URL and the last problem.
///
/// The headers (a bearer token, an app token) belong to one origin, `origin`: a request for
/// a URL on another scheme, host or port (a next link pointing elsewhere) is refused before
/// anything is sent, and so is a redirect to one; a redirect within the origin is followed.
public final class APIClient {
    public let transport: HTTPTransport
    public let limiter: RateLimiter?
    public let policy: RetryPolicy
    public let headers: [(String, String)]
    public let timeout: Double
    /// Called with a line for stderr when a request is retried.
    public var onRetry: ((String) -> Void)?
    public private(set) var requests = 0
    public private(set) var retries = 0

    /// Supplies the Authorization header (an OAuth token) when it is not among `headers`.
    public var authorizer: Authorizer?

    /// Where the headers may go; nil: anywhere (no credential in them).
    public let origin: URLOrigin?
    /// Redirects followed within the origin, at most.
    public static let maxRedirects = 5

    public init(transport: HTTPTransport, limiter: RateLimiter?, policy: RetryPolicy,
                headers: [(String, String)], timeout: Double, origin: URLOrigin? = nil) {
        self.origin = origin
        self.transport = transport
        self.limiter = limiter
        self.policy = policy
        self.headers = headers
        self.timeout = timeout
    }

    /// Fetches `url` until `interpret` accepts a response, a response says to stop, or the
    /// tries run out.
    public func get<T>(_ url: String, _ interpret: (HTTPResponse) -> ResponseVerdict<T>) throws(StageError) -> T {
        try send(url, method: "GET", body: nil, interpret)
    }

    /// POSTs `body` (JSON) to `url` with the same rules: a query API's request.
    public func post<T>(_ url: String, json body: [UInt8], _ interpret: (HTTPResponse) -> ResponseVerdict<T>) throws(StageError) -> T {
        try send(url, method: "POST", body: body, interpret)
    }

    func send<T>(_ url: String, method: String, body: [UInt8]?, _ interpret: (HTTPResponse) -> ResponseVerdict<T>) throws(StageError) -> T {
        try checkOrigin(url, reachedFrom: nil)
        var attempt = 0
        var target = url
        var hops = 0
        var refreshed = false, refresh = false
        while true {
            attempt += 1
            var sent = headers
            if let authorizer {
                sent.append(("Authorization", try authorizer.authorization(refresh: refresh)))
                refresh = false
            }
            limiter?.wait()
            requests += 1
            var retryAfter: Double?
            let problem: String
            if body != nil { sent.append(("Content-Type", "application/json")) }
            switch transport.send(HTTPRequest(url: target, headers: sent, timeout: timeout, method: method, body: body)) {
            case .success(let response) where response.status == 401 && authorizer != nil && !refreshed:
                // The token expired early or was revoked: one new token, one more try.
                refreshed = true
                refresh = true
                attempt -= 1
                continue
            case .success(let response) where (300..<400).contains(response.status) && response.header("Location") != nil:
                guard let next = resolveURL(response.header("Location")!, against: target) else {
                    throw .io("\(target): HTTP \(response.status) to an unreadable Location '\(response.header("Location")!)'")
                }
                try checkOrigin(next, reachedFrom: target)
                hops += 1
                guard hops <= APIClient.maxRedirects else { throw .io("\(url): more than \(APIClient.maxRedirects) redirects") }
                target = next
                attempt -= 1
                continue
            case .failure(.tooLarge(let limit)):
                throw .io("\(target): \(TransportError.tooLarge(limit))")
            case .failure(.invalidURL(let bad)):
                throw .usage("invalid URL: \(bad)")
            case .failure(let error):
                problem = "\(error)"
            case .success(let response) where (200..<300).contains(response.status):
                switch interpret(response) {
                case .done(let value): return value
                case .retry(let why): problem = why
                case .fail(let why): throw .io("\(url): \(why)")
                }
            case .success(let response):
                let why = APIClient.describe(response)
                guard APIClient.isRetryable(response) else { throw .io("\(url): \(why)") }
                problem = why
                retryAfter = RetryPolicy.retryAfter(response.header("Retry-After"))
            }
            if attempt >= policy.maxAttempts {
                throw .io("\(url): gave up after \(attempt) tries; last: \(problem)")
            }
            retries += 1
            let wait = policy.delay(afterAttempt: attempt, retryAfter: retryAfter)
            onRetry?("\(problem); retrying in \(formatSeconds(wait)) (try \(attempt + 1) of \(policy.maxAttempts))")
            sleepSeconds(wait)
        }
    }

    /// Refuses a URL outside the origin the credentials belong to, naming both hosts.
    func checkOrigin(_ url: String, reachedFrom previous: String?) throws(StageError) {
        guard let origin else { return }
        guard let other = URLOrigin(url) else { throw .usage("invalid URL: \(url)") }
        guard other != origin else { return }
        let how = previous.map { "\($0) redirected to \(url)" } ?? "the next page is \(url)"
        throw .io("\(how), on \(other.host):\(other.port), not \(origin.host):\(origin.port): refused, the credentials stay with \(origin.host):\(origin.port)")
    }

    /// 408, 425, 429 and 5xx are worth another try; Spark's over-rate-limit code 1550 too.
    public static func isRetryable(_ response: HTTPResponse) -> Bool {
        let s = response.status
        if s == 408 || s == 425 || s == 429 || s >= 500 { return true }
        return sparkError(response.body)?.code == 1550
    }

    /// `HTTP 503 (Spark code 1550: Over rate limit)`.
    public static func describe(_ response: HTTPResponse) -> String {
        var text = "HTTP \(response.status)"
        if let error = sparkError(response.body) {
            text += " (Spark code \(error.code.map(String.init) ?? "?"): \(error.message))"
        } else if !response.body.isEmpty {
            let snippet = String(decoding: response.body.prefix(120), as: UTF8.self)
                .split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
            text += ": \(snippet)"
        }
        return text
    }

    /// The `{"D":{"Success":false,"Code":..,"Message":..}}` of a Spark error body.
    public static func sparkError(_ body: [UInt8]) -> (code: Int?, message: String)? {
        guard let d = parseJSON(body)?.object?["D"]?.object, d["Success"]?.bool == false else { return nil }
        return (d["Code"]?.int, d["Message"]?.string ?? "no message")
    }
}

/// Parses a response body as JSON; nil when it is not valid JSON.
public func parseJSON(_ body: [UInt8]) -> JSONValue? {
    guard !body.isEmpty else { return nil }
    return JSONValue(parsing: String(decoding: body, as: UTF8.self))
}

func formatSeconds(_ s: Double) -> String {
    s < 10 ? String(Double(Int(s * 10)) / 10) + "s" : String(Int(s)) + "s"
}
