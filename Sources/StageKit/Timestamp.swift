/// An instant in UTC with nanosecond precision, independent of Foundation's date formatters
/// so that parsing and printing timestamps costs little per record and never depends on
/// the machine's locale or time zone.
public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// Fraction of a second, 0..<1_000_000_000.
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        a.seconds != b.seconds ? a.seconds < b.seconds : a.nanoseconds < b.nanoseconds
    }

    /// Seconds since the epoch as a floating-point number.
    public var epochSeconds: Double { Double(seconds) + Double(nanoseconds) / 1e9 }

    public func adding(seconds delta: Int64) -> Timestamp {
        Timestamp(seconds: seconds + delta, nanoseconds: nanoseconds)
    }

    public func adding(days: Int) -> Timestamp { adding(seconds: Int64(days) * 86_400) }

    /// The calendar date in UTC.
    public var date: CivilDate { CivilDate(daysSinceEpoch: Int(floorDiv(seconds, 86_400))) }

    /// Hour of the day in UTC, 0-23.
    public var hour: Int { Int(floorMod(seconds, 86_400) / 3600) }

    /// Midnight UTC of this instant's date.
    public var startOfDay: Timestamp { Timestamp(seconds: floorDiv(seconds, 86_400) * 86_400) }

    /// Whole days from `self` to `later`, rounded down (negative when `later` is earlier).
    public func days(until later: Timestamp) -> Int {
        Int(floorDiv(later.seconds - seconds, 86_400))
    }

    /// ISO 8601 in UTC: `2026-11-23T10:00:00Z`, with a fraction only when there is one
    /// (`.5`, `.123456`: as many digits as needed, at most nine).
    public var iso8601: String {
        let d = date
        let s = Int(floorMod(seconds, 86_400))
        if nanoseconds == 0, (0...9999).contains(d.year) {
            // The common case without allocating pieces: YYYY-MM-DDTHH:MM:SSZ.
            return String(unsafeUninitializedCapacity: 20) { out in
                Timestamp.writeWholeSecond(d, s, into: out)
                return 20
            }
        }
        var out = d.iso8601
        out += "T" + pad2(s / 3600) + ":" + pad2(s / 60 % 60) + ":" + pad2(s % 60)
        if nanoseconds != 0 {
            var digits = String(nanoseconds)
            digits = String(repeating: "0", count: 9 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            out += "." + digits
        }
        return out + "Z"
    }

    /// Appends `iso8601` to `out` (the common whole-second case without making a String).
    public func writeISO8601(into out: ByteBuffer) {
        let d = date
        guard nanoseconds == 0, (0...9999).contains(d.year) else { return out.append(iso8601) }
        let s = Int(floorMod(seconds, 86_400))
        out.reserve(20)
        Timestamp.writeWholeSecond(d, s, into: UnsafeMutableBufferPointer(start: out.base + out.count, count: 20))
        out.advance(by: 20)
    }

    /// YYYY-MM-DDTHH:MM:SSZ of day `d` and second of the day `s`, into 20 bytes.
    private static func writeWholeSecond(_ d: CivilDate, _ s: Int, into out: UnsafeMutableBufferPointer<UInt8>) {
        d.writeDigits(into: out)
        out[10] = UInt8(ascii: "T")
        writeTwoDigits(s / 3600, into: out, at: 11)
        out[13] = UInt8(ascii: ":")
        writeTwoDigits(s / 60 % 60, into: out, at: 14)
        out[16] = UInt8(ascii: ":")
        writeTwoDigits(s % 60, into: out, at: 17)
        out[19] = UInt8(ascii: "Z")
    }

    public var description: String { iso8601 }

    /// Parses ISO 8601 / RFC 3339: `2026-11-23`, `2026-11-23T10:00`, `2026-11-23T10:00:00.5Z`,
    /// `2026-11-23 10:00:00+02:00`, `...-0500`. A time without a zone is taken as UTC.
    public init?(iso8601 text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Timestamp.parse($0) }) else { return nil }
        self = parsed
    }

    /// Parses ISO 8601 from UTF-8 bytes; see `init?(iso8601:)`.
    public static func parse(_ b: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        var i = 0
        let n = b.count
        func digits(_ count: Int) -> Int? {
            guard i + count <= n else { return nil }
            var v = 0
            for k in 0..<count {
                let c = b[i + k]
                guard c >= 48, c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += count
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < n, b[i] == c else { return false }
            i += 1
            return true
        }
        while i < n, b[i] == 32 { i += 1 }
        var end = n
        while end > i, b[end - 1] == 32 { end -= 1 }
        guard let year = digits(4), expect(45), let month = digits(2), expect(45), let day = digits(2) else {
            return nil
        }
        guard month >= 1, month <= 12, day >= 1, day <= CivilDate.daysIn(month: month, year: year) else {
            return nil
        }
        var seconds = Int64(CivilDate(year: year, month: month, day: day).daysSinceEpoch) * 86_400
        var nanos: Int32 = 0
        if i == end { return Timestamp(seconds: seconds) }
        guard b[i] == 84 || b[i] == 116 || b[i] == 32 else { return nil }
        i += 1
        guard let hh = digits(2), hh <= 24, expect(58), let mm = digits(2), mm <= 59 else { return nil }
        var ss = 0
        if expect(58) {
            guard let s = digits(2), s <= 60 else { return nil }
            ss = min(s, 59)
            if i < end, b[i] == 46 || b[i] == 44 {
                i += 1
                var scale: Int32 = 100_000_000
                var count = 0
                while i < end, b[i] >= 48, b[i] <= 57 {
                    nanos += Int32(b[i] - 48) * scale
                    scale /= 10
                    i += 1
                    count += 1
                }
                guard count > 0 else { return nil }
            }
        }
        seconds += Int64(hh * 3600 + mm * 60 + ss)
        if i < end {
            if b[i] == 90 || b[i] == 122 {
                i += 1
            } else if b[i] == 43 || b[i] == 45 {
                let sign: Int64 = b[i] == 43 ? 1 : -1
                i += 1
                guard let oh = digits(2) else { return nil }
                _ = expect(58)
                let om = digits(2) ?? 0
                seconds -= sign * Int64(oh * 3600 + om * 60)
            } else {
                return nil
            }
        }
        guard i == end else { return nil }
        return Timestamp(seconds: seconds, nanoseconds: nanos)
    }
}

/// A calendar date in the proleptic Gregorian calendar.
public struct CivilDate: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var year: Int
    public var month: Int
    public var day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date `days` after 1970-01-01 (Howard Hinnant's civil_from_days).
    public init(daysSinceEpoch days: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }

    /// Days since 1970-01-01 (days_from_civil).
    public var daysSinceEpoch: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public var timestamp: Timestamp { Timestamp(seconds: Int64(daysSinceEpoch) * 86_400) }

    public static func < (a: CivilDate, b: CivilDate) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }

    public static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `2026-11-23`.
    public var iso8601: String {
        if (0...9999).contains(year) {
            return String(unsafeUninitializedCapacity: 10) { out in
                writeDigits(into: out)
                return 10
            }
        }
        let y = year < 0 ? "-" + pad4(-year) : pad4(year)
        return y + "-" + pad2(month) + "-" + pad2(day)
    }

    /// Writes YYYY-MM-DD into the first ten bytes (a year of 0...9999).
    func writeDigits(into out: UnsafeMutableBufferPointer<UInt8>) {
        writeTwoDigits(year / 100, into: out, at: 0)
        writeTwoDigits(year % 100, into: out, at: 2)
        out[4] = UInt8(ascii: "-")
        writeTwoDigits(month, into: out, at: 5)
        out[7] = UInt8(ascii: "-")
        writeTwoDigits(day, into: out, at: 8)
    }

    /// `20261123`, for file names.
    public var compact: String { pad4(year) + pad2(month) + pad2(day) }

    public var description: String { iso8601 }
}

/// "Today" for every date computation of a run: `--now`, else `LEAD_NOW`, else the system clock.
public struct Clock: Sendable {
    public let now: Timestamp
    /// True when the instant came from `--now` or `LEAD_NOW`, so the run reproduces.
    public let isFixed: Bool

    public init(now: Timestamp, isFixed: Bool = true) {
        self.now = now
        self.isFixed = isFixed
    }

    /// Resolves the clock from the `--now` option and the environment.
    public static func resolve(option: String?, environment: [String: String]) throws(StageError) -> Clock {
        if let text = option ?? environment["LEAD_NOW"], !text.isEmpty {
            guard let t = Timestamp(iso8601: text) else {
                let source = option != nil ? "--now" : "LEAD_NOW"
                throw .usage("\(source): '\(text)' is not an ISO 8601 date or time (e.g. 2026-11-23 or 2026-11-23T06:00:00Z)")
            }
            return Clock(now: t)
        }
        return Clock(now: systemNow(), isFixed: false)
    }

    /// The system's current time.
    public static func systemNow() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }
}

@inline(__always) func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

@inline(__always) func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

func writeTwoDigits(_ v: Int, into out: UnsafeMutableBufferPointer<UInt8>, at i: Int) {
    out[i] = UInt8(48 + v / 10)
    out[i + 1] = UInt8(48 + v % 10)
}

func pad2(_ v: Int) -> String { v < 10 ? "0" + String(v) : String(v) }

func pad4(_ v: Int) -> String {
    let s = String(v)
    return s.count >= 4 ? s : String(repeating: "0", count: 4 - s.count) + s
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
