import Foundation

/// A small HTTP/1.1 server on 127.0.0.1 for testing fetches: each request is recorded and
/// answered by a handler that can misbehave on purpose (error statuses, delays, dropped
/// connections, malformed bodies). One connection per request (`Connection: close`).
public final class TestHTTPServer: @unchecked Sendable {
    public struct Request: Sendable {
        public let method: String
        public let target: String
        public let headers: [String: String]
        /// The request body (Content-Length bytes after the head).
        public var body: [UInt8] = []
        /// Seconds since the server started.
        public let at: Double

        public var path: String { String(target.split(separator: "?", maxSplits: 1).first ?? "") }

        public func query(_ name: String) -> String? {
            guard let q = target.firstIndex(of: "?") else { return nil }
            for pair in target[target.index(after: q)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts[0].removingPercentEncoding == name { return parts.count > 1 ? String(parts[1]).removingPercentEncoding : "" }
            }
            return nil
        }
    }

    public enum Reply {
        case respond(status: Int, headers: [String: String] = [:], body: [UInt8], delay: Double = 0)
        /// Close the connection without answering.
        case drop

        public static func json(_ text: String, status: Int = 200, headers: [String: String] = [:], delay: Double = 0) -> Reply {
            .respond(status: status, headers: ["Content-Type": "application/json"].merging(headers) { $1 }, body: Array(text.utf8), delay: delay)
        }
    }

    private let socketFD: Int32
    public let port: Int
    private let lock = NSLock()
    private var recorded: [Request] = []
    private let started = Date()
    private var handler: (Request, Int) -> Reply
    private var stopped = false

    /// The loopback address it listens on (127.0.0.2 plays another host).
    public let address: String

    /// `handler` gets the request and how many requests with the same target came before it.
    public init(address: String = "127.0.0.1", handler: @escaping (Request, Int) -> Reply) throws {
        self.handler = handler
        self.address = address
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr(address)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw CocoaError(.fileWriteUnknown) }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socketFD = fd
        port = Int(UInt16(bigEndian: actual.sin_port))
        let thread = Thread { [weak self] in self?.acceptLoop() }
        thread.start()
    }

    public var baseURL: String { "http://\(address):\(port)" }

    public var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    public func setHandler(_ handler: @escaping (Request, Int) -> Reply) {
        lock.lock()
        self.handler = handler
        lock.unlock()
    }

    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        shutdown(socketFD, Int32(SHUT_RDWR))
        close(socketFD)
    }

    private func acceptLoop() {
        while true {
            let client = accept(socketFD, nil, nil)
            if client < 0 {
                lock.lock()
                let done = stopped
                lock.unlock()
                if done { return }
                continue
            }
            Thread { self.serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !data.containsHeaderEnd {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { return }
            data += buffer[0..<n]
        }
        let head = String(decoding: data, as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var request = Request(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers,
                              at: Date().timeIntervalSince(started))
        if let length = headers["content-length"].flatMap({ Int($0) }), length > 0 {
            var rest = Array(data[(data.headEnd ?? data.count)...])
            while rest.count < length {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                rest += buffer[0..<n]
            }
            request.body = Array(rest.prefix(length))
        }
        lock.lock()
        let before = recorded.filter { $0.target == request.target }.count
        recorded.append(request)
        let handler = self.handler
        lock.unlock()
        switch handler(request, before) {
        case .drop:
            return
        case .respond(let status, let extra, let body, let delay):
            if delay > 0 { Thread.sleep(forTimeInterval: delay) }
            var text = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Status")\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
            for (k, v) in extra { text += "\(k): \(v)\r\n" }
            text += "\r\n"
            var out = Array(text.utf8) + body
            var offset = 0
            while offset < out.count {
                let n = out[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                offset += n
            }
            out.removeAll()
        }
    }
}

extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool { headEnd != nil }

    /// The offset just after the blank line that ends the head.
    var headEnd: Int? {
        guard count >= 4 else { return nil }
        for i in 0...(count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 { return i + 4 }
        return nil
    }
}
