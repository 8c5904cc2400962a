import StageKit

/// Where the next page of a paged listing search is.
public enum PageCursor: Equatable, Sendable {
    /// Spark native: `_page=N`.
    case page(Int)
    /// RESO OData: the `@odata.nextLink` to follow.
    case url(String)

    public var json: JSONValue {
        switch self {
        case .page(let n): return ["page": .int(n)]
        case .url(let u): return ["url": .string(u)]
        }
    }

    public init?(json: JSONValue) {
        if let n = json.object?["page"]?.int { self = .page(n) } else if let u = json.object?["url"]?.string { self = .url(u) } else { return nil }
    }
}

/// One page of a listing search: the raw listings with their keys, the ones that cannot be
/// used (with why and their place on the page), and the next page.
public struct ListingPage {
    public var listings: [(key: String, listing: JSONValue)]
    public var next: PageCursor?
    public var rejects: [(reason: String, position: Int, listing: JSONValue)] = []
    /// The recorded file the page came from (a replay), for the rejects.
    public var file: String?

    public init(listings: [(key: String, listing: JSONValue)], next: PageCursor?) {
        self.listings = listings
        self.next = next
    }
}

/// A paged listing search in one API's dialect.
public protocol ListingSource {
    /// The page to start with.
    var first: PageCursor { get }
    func url(for cursor: PageCursor) -> String
    func interpret(_ response: HTTPResponse, at cursor: PageCursor) -> ResponseVerdict<ListingPage>
    /// The key of a raw listing as this API sends it.
    func key(of listing: JSONValue) -> String?
}

/// The Spark native API: `GET {base}/v1/listings?_filter=…&_expand=Photos&_limit=N&_pagination=1&_page=K`,
/// answered by `{"D":{"Success":true,"Results":[…],"Pagination":{"TotalPages":…,"CurrentPage":…}}}`.
public struct SparkListingSource: ListingSource {
    public let base: String
    public let filter: String
    public let expand: String?
    public let limit: Int

    public init(base: String, filter: String, expand: String?, limit: Int) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.filter = filter
        self.expand = expand
        self.limit = limit
    }

    public var first: PageCursor { .page(1) }

    public func url(for cursor: PageCursor) -> String {
        guard case .page(let page) = cursor else { if case .url(let u) = cursor { return u }; return base }
        var query = [("_filter", filter)]
        if let expand { query.append(("_expand", expand)) }
        query += [("_limit", String(limit)), ("_pagination", "1"), ("_page", String(page))]
        return base + "/v1/listings?" + encodeQuery(query)
    }

    public func key(of listing: JSONValue) -> String? {
        let o = listing.object
        return o?["Id"]?.text ?? o?["StandardFields"]?.object?["ListingKey"]?.text
    }

    public func interpret(_ response: HTTPResponse, at cursor: PageCursor) -> ResponseVerdict<ListingPage> {
        guard let d = parseJSON(response.body)?.object?["D"]?.object else {
            return .retry("the response is not a Spark API page (malformed JSON or no \"D\")")
        }
        guard d["Success"]?.bool == true else {
            let code = d["Code"]?.int
            let message = d["Message"]?.string ?? "no message"
            let text = "Spark API error \(code.map(String.init) ?? "?"): \(message)"
            return code == 1550 ? .retry(text) : .fail(text)
        }
        guard let results = d["Results"]?.array else { return .retry("the Spark page has no Results array") }
        var page = ListingPage(listings: [], next: nil)
        page.file = response.file
        for (n, result) in results.enumerated() {
            guard let key = key(of: result), !key.isEmpty else {
                page.rejects.append(("a listing without Id (and without StandardFields.ListingKey)", n + 1, result))
                continue
            }
            page.listings.append((key, result))
        }
        let requested: Int
        if case .page(let n) = cursor { requested = n } else { requested = 1 }
        if let pagination = d["Pagination"]?.object,
           let total = pagination["TotalPages"]?.int {
            let current = pagination["CurrentPage"]?.int ?? requested
            page.next = current < total ? .page(current + 1) : nil
        } else {
            page.next = results.count >= limit && !results.isEmpty ? .page(requested + 1) : nil
        }
        return .done(page)
    }
}

/// The RESO Web API (OData): `GET {root}/Property?$filter=…&$expand=Media&$top=N`, where the
/// root is the server's OData service root (Spark: `https://sparkapi.com/Reso/OData`, MLS
/// Grid: `https://api.mlsgrid.com/v2`), answered by `{"value":[…],"@odata.nextLink":"…"}`;
/// pages are followed by their next link (absolute, or relative to the root).
public struct ResoListingSource: ListingSource {
    public let root: String
    public let filter: String
    public let expandMedia: Bool
    public let top: Int

    public init(root: String, filter: String, expandMedia: Bool, top: Int) {
        self.root = root.hasSuffix("/") ? String(root.dropLast()) : root
        self.filter = filter
        self.expandMedia = expandMedia
        self.top = top
    }

    public var first: PageCursor { .url(firstURL) }

    var firstURL: String {
        var query = [("$filter", filter)]
        if expandMedia { query.append(("$expand", "Media")) }
        query.append(("$top", String(top)))
        return root + "/Property?" + encodeQuery(query)
    }

    public func url(for cursor: PageCursor) -> String {
        switch cursor {
        case .url(let u): return u
        case .page: return firstURL
        }
    }

    public func key(of listing: JSONValue) -> String? { listing.object?["ListingKey"]?.text }

    public func interpret(_ response: HTTPResponse, at cursor: PageCursor) -> ResponseVerdict<ListingPage> {
        guard let body = parseJSON(response.body)?.object else {
            return .retry("the response is not an OData page (malformed JSON)")
        }
        if let error = body["error"]?.object {
            return .fail("RESO API error \(error["code"]?.text ?? "?"): \(error["message"]?.text ?? "no message")")
        }
        guard let values = body["value"]?.array else { return .retry("the OData page has no value array") }
        var page = ListingPage(listings: [], next: nil)
        page.file = response.file
        for (n, value) in values.enumerated() {
            guard let key = key(of: value), !key.isEmpty else {
                page.rejects.append(("a Property without ListingKey", n + 1, value))
                continue
            }
            page.listings.append((key, value))
        }
        if let next = body["@odata.nextLink"]?.string, !next.isEmpty {
            page.next = .url(resolve(next))
        }
        return .done(page)
    }

    /// An absolute next link as is; `/path` on the root's host; anything else under the root.
    func resolve(_ link: String) -> String {
        if link.hasPrefix("http://") || link.hasPrefix("https://") { return link }
        if link.hasPrefix("/") {
            // scheme://host[:port] of the root
            if let schemeEnd = root.range(of: "://"),
               let pathStart = root[schemeEnd.upperBound...].firstIndex(of: "/") {
                return String(root[..<pathStart]) + link
            }
            return root + link
        }
        return root + "/" + link
    }
}

/// Percent-encodes query parameters (RFC 3986 unreserved characters stay as they are).
public func encodeQuery(_ items: [(String, String)]) -> String {
    items.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
}

public func percentEncode(_ text: String) -> String {
    var out = ""
    for b in text.utf8 {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(UnicodeScalar(b))
        default:
            let hex = Array("0123456789ABCDEF")
            out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
        }
    }
    return out
}

/// The value of query parameter `name` in `url`, decoded; nil when absent.
public func queryValue(_ url: String, _ name: String) -> String? {
    guard let q = url.firstIndex(of: "?") else { return nil }
    for pair in url[url.index(after: q)...].split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        if percentDecode(String(parts[0])) == name { return parts.count > 1 ? percentDecode(String(parts[1])) : "" }
    }
    return nil
}

public func percentDecode(_ text: String) -> String {
    var bytes: [UInt8] = []
    var it = Array(text.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            it = it.dropFirst(2)
        } else if b == UInt8(ascii: "+") {
            bytes.append(32)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Recorded responses instead of the network, for offline runs and tests. Listing pages are
/// `page-0001.json`, `page-0002.json`, … in `directory`: a Spark request for `_page=K` gets
/// page K; a RESO request (a `/Property` path, under any root) with `$skip=S&$top=T` gets
/// page S/T+1, the first request page 1.
/// Any other URL (a photo) is served from the file named like its last path component.
/// A missing file is a 404.
public final class ReplayTransport: HTTPTransport, @unchecked Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func send(_ request: HTTPRequest) -> Result<HTTPResponse, TransportError> {
        let file = directory + "/" + fileName(for: request.url)
        guard let bytes = readWholeFile(file) else {
            return .success(HTTPResponse(status: 404, body: Array("no recorded response \(file)".utf8)))
        }
        return .success(HTTPResponse(status: 200, headers: ["content-type": contentType(file)], body: bytes, file: file))
    }

    func fileName(for url: String) -> String {
        if url.contains("/v1/listings") {
            return String(format: "page-%04d.json", Int(queryValue(url, "_page") ?? "1") ?? 1)
        }
        let path = url.split(separator: "?").first.map(String.init) ?? url
        if path.hasSuffix("/Property") {
            let skip = Int(queryValue(url, "$skip") ?? "0") ?? 0
            let top = max(1, Int(queryValue(url, "$top") ?? "1") ?? 1)
            return String(format: "page-%04d.json", skip / top + 1)
        }
        return path.split(separator: "/").last.map(String.init) ?? "index"
    }

    func contentType(_ file: String) -> String {
        if file.hasSuffix(".json") { return "application/json" }
        if file.hasSuffix(".jpg") || file.hasSuffix(".jpeg") { return "image/jpeg" }
        if file.hasSuffix(".png") { return "image/png" }
        return "application/octet-stream"
    }
}

/// The whole content of a file, or nil.
public func readWholeFile(_ path: String) -> [UInt8]? { try? ByteSource.readAll(path) }

#if canImport(Foundation)
import Foundation
#endif
