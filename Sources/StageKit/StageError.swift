/// Why a stage stopped early. Each case maps to the exit status of the stage contract:
/// 1 data failure, 2 usage or rules error, 3 I/O or network failure.
public enum StageError: Error, CustomStringConvertible, Equatable {
    /// The command line asks for something impossible (exit 2).
    case usage(String)
    /// A rules file is missing or malformed (exit 2).
    case rules(file: String, line: Int?, message: String)
    /// The data is unusable as a whole, e.g. more rejects than `--max-rejects` (exit 1).
    case data(String)
    /// Reading, writing or fetching failed (exit 3).
    case io(String)
    /// stdout was closed by the reader (`| head`): not a failure (exit 0).
    case brokenPipe

    public var exitCode: Int32 {
        switch self {
        case .data: return 1
        case .usage, .rules: return 2
        case .io: return 3
        case .brokenPipe: return 0
        }
    }

    public var description: String {
        switch self {
        case .usage(let message), .data(let message), .io(let message):
            return message
        case .rules(let file, let line, let message):
            if let line { return "\(file):\(line): \(message)" }
            return "\(file): \(message)"
        case .brokenPipe:
            return "broken pipe"
        }
    }
}

/// Thrown by per-record code to send the record being processed to the rejects file.
/// The reader that produced the record catches it and records source, line and raw text.
public struct RecordRejected: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
