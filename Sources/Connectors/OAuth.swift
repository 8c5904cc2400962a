import StageKit

/// Where a request's `Authorization` header comes from when it is not a fixed token.
public protocol Authorizer: AnyObject {
    /// The header value (`Bearer …`); `refresh` asks for a new token (the server said 401).
    func authorization(refresh: Bool) throws(StageError) -> String
}

/// OAuth 2.0 client credentials (RFC 6749 §4.4), as RESO servers other than Spark use them:
/// `POST token_url` with `grant_type=client_credentials`, the client id and secret (and a
/// scope) in the form body, answered by `{"access_token": "...", "expires_in": 3600, ...}`.
/// The token is fetched on first use and again shortly before it expires (or when the API
/// answers 401). The secret goes only to the token URL and the token only to the API's
/// origin (the caller's APIClient); neither is ever printed: an error says what failed and
/// the server's OAuth `error` code, never a body.
public final class OAuthClientCredentials: Authorizer {
    public let tokenURL: String
    let clientID: String
    let clientSecret: String
    let scope: String?
    let transport: HTTPTransport
    let timeout: Double
    let policy: RetryPolicy
    let clock: () -> Double
    private var token: String?
    private var expiresAt = 0.0
    /// Tokens fetched so far.
    public private(set) var fetches = 0

    public init(tokenURL: String, clientID: String, clientSecret: String, scope: String?, transport: HTTPTransport,
                timeout: Double, policy: RetryPolicy, clock: (() -> Double)? = nil) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.scope = scope
        self.transport = transport
        self.timeout = timeout
        self.policy = policy
        self.clock = clock ?? { monotonicNow() }
    }

    public func authorization(refresh: Bool) throws(StageError) -> String {
        if refresh || token == nil || clock() >= expiresAt { try fetch() }
        return "Bearer " + token!
    }

    func fetch() throws(StageError) {
        var form = [("grant_type", "client_credentials"), ("client_id", clientID), ("client_secret", clientSecret)]
        if let scope { form.append(("scope", scope)) }
        let request = HTTPRequest(url: tokenURL, headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
                                  timeout: timeout, method: "POST", body: Array(encodeQuery(form).utf8))
        var attempt = 0
        while true {
            attempt += 1
            let problem: String
            switch transport.send(request) {
            case .failure(let error):
                problem = "\(error)"
            case .success(let response) where response.status == 200:
                guard let o = parseJSON(response.body)?.object, let access = o["access_token"]?.string, !access.isEmpty else {
                    throw .io("\(tokenURL): the token response has no access_token")
                }
                let lifetime = o["expires_in"]?.double ?? 3600
                // Renewed a little before it runs out: a tenth of its life, at most a minute.
                expiresAt = clock() + lifetime - min(60, lifetime / 10)
                token = access
                fetches += 1
                return
            case .success(let response):
                let code = parseJSON(response.body)?.object?["error"]?.string.map { " (\($0))" } ?? ""
                problem = "HTTP \(response.status)\(code)"
                if response.status < 500 && response.status != 429 && response.status != 408 {
                    throw .io("\(tokenURL): the token request was refused: \(problem); check the client id and secret variables")
                }
            }
            if attempt >= policy.maxAttempts { throw .io("\(tokenURL): no token after \(attempt) tries; last: \(problem)") }
            sleepSeconds(policy.delay(afterAttempt: attempt, retryAfter: nil))
        }
    }
}
