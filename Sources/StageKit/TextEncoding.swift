import ArgumentParser

/// The character encoding of a stage's input files (`--encoding`). Provider files come as
/// UTF-8, or as Windows-1252 or ISO-8859-1 (Latin-1) from spreadsheet and county-system
/// exports; those are turned into UTF-8 as they are read, so every record is UTF-8.
public enum TextEncoding: String, Sendable, CaseIterable, ExpressibleByArgument {
    case utf8, cp1252, latin1

    /// Accepts the usual spellings: utf-8, windows-1252, iso-8859-1, latin-1 (any case).
    public init?(argument: String) {
        switch argument.lowercased() {
        case "utf8", "utf-8": self = .utf8
        case "cp1252", "windows-1252", "win1252": self = .cp1252
        case "latin1", "latin-1", "iso-8859-1", "iso8859-1": self = .latin1
        default: return nil
        }
    }

    public static var allValueStrings: [String] { allCases.map(\.rawValue) }

    /// What a reject says about a text that is not valid UTF-8 in this encoding.
    public static let notUTF8Hint = "the file is read as UTF-8 (--encoding utf8); a Windows-1252 or Latin-1 export reads with --encoding cp1252 or --encoding latin1"

    /// Windows-1252's 0x80-0x9F, as code points. The five bytes it leaves undefined
    /// (81, 8D, 8F, 90, 9D) map to the C1 controls of the same value, as browsers do.
    static let cp1252High: [UInt16] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
        0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
    ]

    /// Writes `input` as UTF-8 into `output` (room for 3 bytes per input byte); returns the
    /// number of bytes written. Only for the single-byte encodings.
    func transcode(_ input: UnsafeBufferPointer<UInt8>, into output: UnsafeMutablePointer<UInt8>) -> Int {
        var n = 0
        for b in input {
            var scalar = UInt32(b)
            if b < 0x80 {
                output[n] = b
                n += 1
                continue
            }
            if self == .cp1252 && b < 0xA0 { scalar = UInt32(TextEncoding.cp1252High[Int(b) - 0x80]) }
            if scalar < 0x800 {
                output[n] = UInt8(0xC0 | (scalar >> 6))
                output[n + 1] = UInt8(0x80 | (scalar & 0x3F))
                n += 2
            } else {
                output[n] = UInt8(0xE0 | (scalar >> 12))
                output[n + 1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
                output[n + 2] = UInt8(0x80 | (scalar & 0x3F))
                n += 3
            }
        }
        return n
    }

    /// `bytes` decoded from this encoding.
    public func decode(_ bytes: [UInt8]) -> String {
        if self == .utf8 { return String(decoding: bytes, as: UTF8.self) }
        let out = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count * 3 + 1)
        defer { out.deallocate() }
        let n = bytes.withUnsafeBufferPointer { transcode($0, into: out) }
        return String(decoding: UnsafeBufferPointer(start: out, count: n), as: UTF8.self)
    }
}
