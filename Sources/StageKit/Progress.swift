#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress on a terminal: records, megabytes and MB/s on stderr, redrawn at most twice a
/// second, erased when the stage ends. Silent when stderr is not a terminal.
final class Progress {
    private let label: String
    private let enabled: Bool
    private let started = Stage.monotonicSeconds()
    private lazy var lastDraw = started
    private var drawn = false
    private var countdown = 4096

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    /// Cheap to call per record: looks at the clock only every few thousand records.
    @inline(__always) func tick(records: Int, bytes: Int) {
        guard enabled else { return }
        countdown -= 1
        if countdown > 0 { return }
        countdown = 4096
        draw(records: records, bytes: bytes)
    }

    private func draw(records: Int, bytes: Int) {
        let now = Stage.monotonicSeconds()
        guard now - lastDraw >= 0.5 else { return }
        lastDraw = now
        let elapsed = max(now - started, 1e-9)
        let mb = Double(bytes) / 1e6
        let text = "\r\u{1B}[K\(label): \(Progress.grouped(records)) records, \(Progress.fixed(mb, 1)) MB, "
            + "\(Progress.fixed(mb / elapsed, 1)) MB/s"
        standardError(text)
        drawn = true
    }

    /// Erases the progress line before other output.
    func clear() {
        guard drawn else { return }
        standardError("\r\u{1B}[K")
        drawn = false
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return out
    }

    static func fixed(_ v: Double, _ places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let r = (v * scale).rounded() / scale
        var text = String(r)
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < places { text += String(repeating: "0", count: places - decimals) }
        }
        return text
    }
}
