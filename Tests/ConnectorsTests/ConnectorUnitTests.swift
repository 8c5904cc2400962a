import Connectors
import Foundation
import StageKit
import Testing

@Suite struct RetryAndRateTests {
    @Test func retryAfterSecondsAndHTTPDates() {
        #expect(RetryPolicy.retryAfter("7") == 7)
        #expect(RetryPolicy.retryAfter(" 0 ") == 0)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(RetryPolicy.retryAfter("Tue, 14 Nov 2023 22:13:40 GMT", now: now) == 20)
        #expect(RetryPolicy.retryAfter("soon") == nil)
        #expect(RetryPolicy.retryAfter(nil) == nil)
    }

    @Test func backoffGrowsIsCappedAndHonoursRetryAfter() {
        let policy = RetryPolicy(maxAttempts: 6, baseDelay: 0.5, maxDelay: 4, maxRetryAfter: 60)
        for attempt in 1...8 {
            let ceiling = min(4, 0.5 * pow(2, Double(attempt - 1)))
            let d = policy.delay(afterAttempt: attempt, retryAfter: nil)
            #expect(d >= ceiling / 2 && d <= ceiling)
        }
        #expect(policy.delay(afterAttempt: 1, retryAfter: 30) == 30)
        #expect(policy.delay(afterAttempt: 1, retryAfter: 3600) == 60)
    }

    @Test func rateLimiterSpacesRequests() {
        let limiter = RateLimiter(perSecond: 20)
        let start = Date()
        for _ in 0..<11 { limiter.wait() }
        #expect(Date().timeIntervalSince(start) >= 0.49)
    }

    @Test func retryableResponses() {
        let sparkBusy = Array(#"{"D":{"Success":false,"Code":1550,"Message":"Over rate limit"}}"#.utf8)
        #expect(APIClient.isRetryable(HTTPResponse(status: 503, body: sparkBusy)))
        #expect(APIClient.isRetryable(HTTPResponse(status: 403, body: sparkBusy)))
        #expect(APIClient.isRetryable(HTTPResponse(status: 429, body: [])))
        #expect(!APIClient.isRetryable(HTTPResponse(status: 404, body: [])))
        #expect(APIClient.describe(HTTPResponse(status: 503, body: sparkBusy)) == "HTTP 503 (Spark code 1550: Over rate limit)")
    }
}

@Suite struct ListingSourceTests {
    let spark = SparkListingSource(base: "https://sparkapi.com/", filter: "MlsId Eq 'x' And City Eq 'Mesa'", expand: "Photos", limit: 25)

    func response(_ text: String) -> HTTPResponse { HTTPResponse(status: 200, body: Array(text.utf8)) }

    @Test func sparkURL() {
        #expect(spark.url(for: .page(2)) ==
                "https://sparkapi.com/v1/listings?_filter=MlsId%20Eq%20%27x%27%20And%20City%20Eq%20%27Mesa%27&_expand=Photos&_limit=25&_pagination=1&_page=2")
        #expect(queryValue(spark.url(for: .page(2)), "_filter") == "MlsId Eq 'x' And City Eq 'Mesa'")
    }

    @Test func sparkPages() {
        let page = #"{"D":{"Success":true,"Results":[{"Id":"A"},{"Id":"B","StandardFields":{}}],"Pagination":{"TotalPages":3,"CurrentPage":2}}}"#
        guard case .done(let p) = spark.interpret(response(page), at: .page(2)) else { Issue.record("not done"); return }
        #expect(p.listings.map(\.key) == ["A", "B"])
        #expect(p.next == .page(3))
        let last = #"{"D":{"Success":true,"Results":[],"Pagination":{"TotalPages":3,"CurrentPage":3}}}"#
        guard case .done(let l) = spark.interpret(response(last), at: .page(3)) else { Issue.record("not done"); return }
        #expect(l.next == nil)
    }

    @Test func sparkErrorsInTheBody() {
        guard case .retry = spark.interpret(response(#"{"D":{"Success":false,"Code":1550,"Message":"slow down"}}"#), at: .page(1)) else {
            Issue.record("1550 should be retried"); return
        }
        guard case .fail(let why) = spark.interpret(response(#"{"D":{"Success":false,"Code":1040,"Message":"Invalid field"}}"#), at: .page(1)) else {
            Issue.record("1040 should fail"); return
        }
        #expect(why == "Spark API error 1040: Invalid field")
        guard case .retry = spark.interpret(response(#"{"D":{"Succ"#), at: .page(1)) else { Issue.record("malformed should retry"); return }
    }

    @Test func resoNextLinks() {
        let reso = ResoListingSource(root: "https://sparkapi.com/Reso/OData/", filter: "City eq 'Irvine'", expandMedia: true, top: 10)
        #expect(reso.url(for: reso.first) == "https://sparkapi.com/Reso/OData/Property?%24filter=City%20eq%20%27Irvine%27&%24expand=Media&%24top=10")
        let page = #"{"value":[{"ListingKey":"R1"}],"@odata.nextLink":"/Reso/OData/Property?$skip=10"}"#
        guard case .done(let p) = reso.interpret(response(page), at: reso.first) else { Issue.record("not done"); return }
        #expect(p.next == .url("https://sparkapi.com/Reso/OData/Property?$skip=10"))
        let relative = #"{"value":[],"@odata.nextLink":"Property?$skip=20"}"#
        guard case .done(let q) = reso.interpret(response(relative), at: reso.first) else { Issue.record("not done"); return }
        #expect(q.next == .url("https://sparkapi.com/Reso/OData/Property?$skip=20"), "a relative link is under the root")
        let grid = ResoListingSource(root: "https://api.mlsgrid.com/v2", filter: "MlgCanView eq true", expandMedia: false, top: 1000)
        #expect(grid.url(for: grid.first) == "https://api.mlsgrid.com/v2/Property?%24filter=MlgCanView%20eq%20true&%24top=1000")
        guard case .fail = reso.interpret(response(#"{"error":{"code":"400","message":"bad filter"}}"#), at: reso.first) else {
            Issue.record("OData error should fail"); return
        }
    }

    @Test func percentEncodingRoundTrips() {
        for text in ["a b'c(d)", "é&=?", "$filter", "plain-._~"] {
            #expect(percentDecode(percentEncode(text)) == text)
        }
        #expect(percentEncode("a b") == "a%20b")
    }

    @Test func replayMapsRequestsToPages() throws {
        let dir = NSTemporaryDirectory() + "replay-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "{\"n\":2}".write(toFile: dir + "/page-0002.json", atomically: true, encoding: .utf8)
        try "{\"n\":3}".write(toFile: dir + "/page-0003.json", atomically: true, encoding: .utf8)
        let replay = ReplayTransport(directory: dir)
        let ok = replay.send(HTTPRequest(url: "https://sparkapi.com/v1/listings?_page=2"))
        #expect((try? ok.get())?.body == Array("{\"n\":2}".utf8))
        let reso = replay.send(HTTPRequest(url: "https://x/Reso/OData/Property?$top=5&$skip=10"))
        #expect((try? reso.get())?.body == Array("{\"n\":3}".utf8))
        let grid = replay.send(HTTPRequest(url: "https://api.mlsgrid.com/v2/Property?$top=5&$skip=5"))
        #expect((try? grid.get())?.body == Array("{\"n\":2}".utf8), "any OData root")
        #expect((try? replay.send(HTTPRequest(url: "https://sparkapi.com/v1/listings?_page=9")).get())?.status == 404)
    }
}

@Suite struct PhotoRulesTests {
    @Test func imageMagic() {
        #expect(PhotoFetcher.imageExtension([0xFF, 0xD8, 0xFF, 0xE0]) == "jpg")
        #expect(PhotoFetcher.imageExtension([0x89, 0x50, 0x4E, 0x47, 0x0D]) == "png")
        #expect(PhotoFetcher.imageExtension(Array("GIF89a".utf8)) == "gif")
        #expect(PhotoFetcher.imageExtension(Array("RIFF1234WEBPVP8".utf8)) == "webp")
        #expect(PhotoFetcher.imageExtension(Array("<html>".utf8)) == nil)
    }

    @Test func fileNames() {
        #expect(PhotoFetcher.isSafeFileName("20260820100000011000000003"))
        #expect(PhotoFetcher.isSafeFileName("A-1_b.2"))
        for bad in ["../x", ".hidden", "a/b", "", "a b", "ü"] { #expect(!PhotoFetcher.isSafeFileName(bad)) }
    }

    @Test func sha256KnownVectors() {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array(String(repeating: "a", count: 1_000).utf8)) ==
                "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)) ==
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A million a's, fed in pieces of every size from 1 to 130 bytes (blocks split anywhere).
        let million = [UInt8](repeating: 97, count: 1_000_000)
        var hasher = SHA256(), at = 0, piece = 1
        while at < million.count {
            let end = min(million.count, at + piece)
            hasher.update(million[at..<end])
            at = end
            piece = piece % 130 + 1
        }
        #expect(hasher.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(SHA256.hex(million) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
