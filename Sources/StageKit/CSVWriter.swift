/// Writes CSV as RFC 4180 describes: a field holding the delimiter, a quote, CR or LF is
/// quoted and its quotes doubled. Rows end in `\n` (or `\r\n` with `crlf`).
/// With `spreadsheetSafe`, a cell that a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`; plain numbers such as `-12.5` and
/// phone numbers such as `+1 512-555-0100` (digits, spaces, `-`, `.`, `(`, `)` after the sign:
/// nothing a spreadsheet could run) are left alone, so dialers and skip-trace uploads read them.
public struct CSVWriter {
    public let out: ByteBuffer
    public var delimiter: UInt8
    public var spreadsheetSafe: Bool
    public var crlf: Bool
    private var fieldsInRow = 0

    public init(out: ByteBuffer, delimiter: UInt8 = 44, spreadsheetSafe: Bool = false, crlf: Bool = false) {
        self.out = out
        self.delimiter = delimiter
        self.spreadsheetSafe = spreadsheetSafe
        self.crlf = crlf
    }

    /// Writes one whole row.
    public mutating func writeRow<S: Sequence>(_ fields: S) where S.Element == String {
        for f in fields { writeField(f) }
        endRow()
    }

    public mutating func writeField(_ text: String) {
        var text = text
        text.withUTF8 { writeField(bytes: $0) }
    }

    /// Writes one field of the current row.
    public mutating func writeField(bytes: UnsafeBufferPointer<UInt8>) {
        if fieldsInRow > 0 { out.append(delimiter) }
        fieldsInRow += 1
        let guarded = spreadsheetSafe && CSVWriter.looksLikeFormula(bytes)
        var needsQuotes = false
        for b in bytes where b == delimiter || b == 34 || b == 10 || b == 13 {
            needsQuotes = true
            break
        }
        if !needsQuotes {
            if guarded { out.append(39) }
            out.append(bytes)
            return
        }
        out.append(34)
        if guarded { out.append(39) }
        var runStart = 0
        for (i, b) in bytes.enumerated() where b == 34 {
            out.append(UnsafeRawPointer(bytes.baseAddress! + runStart), count: i + 1 - runStart)
            out.append(34)
            runStart = i + 1
        }
        if bytes.count > runStart {
            out.append(UnsafeRawPointer(bytes.baseAddress! + runStart), count: bytes.count - runStart)
        }
        out.append(34)
    }

    /// Ends the current row.
    public mutating func endRow() {
        if crlf { out.append(13) }
        out.append(10)
        fieldsInRow = 0
    }

    /// True when a spreadsheet would treat the cell as a formula.
    public static func looksLikeFormula(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first else { return false }
        switch first {
        case 61, 64, 9, 13: return true
        case 43, 45: return !isPlainNumber(bytes) && !isPhoneNumber(bytes)
        default: return false
        }
    }

    /// A sign, then only digits, spaces, `-`, `.`, `(` and `)`, with at least 7 digits:
    /// `+1 512-555-0100`, `+44 (20) 7946 0958`.
    public static func isPhoneNumber(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = 0
        for (i, c) in b.enumerated() {
            switch c {
            case 48...57: digits += 1
            case 32, 40, 41, 45, 46: continue
            case 43 where i == 0: continue
            default: return false
            }
        }
        return digits >= 7
    }

    /// `[+-]digits[.digits][e[+-]digits]`.
    public static func isPlainNumber(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        if i < n, b[i] == 43 || b[i] == 45 { i += 1 }
        var digits = 0
        while i < n, b[i] >= 48, b[i] <= 57 { i += 1; digits += 1 }
        if i < n, b[i] == 46 {
            i += 1
            while i < n, b[i] >= 48, b[i] <= 57 { i += 1; digits += 1 }
        }
        guard digits > 0 else { return false }
        if i < n, b[i] == 101 || b[i] == 69 {
            i += 1
            if i < n, b[i] == 43 || b[i] == 45 { i += 1 }
            var exp = 0
            while i < n, b[i] >= 48, b[i] <= 57 { i += 1; exp += 1 }
            guard exp > 0 else { return false }
        }
        return i == n
    }
}
