import ArgumentParser

/// The options every stage takes, per the stage contract: output, rejects, the clock, the
/// rules directory and quiet mode. Each command adds `@OptionGroup var common: CommonOptions`.
public struct CommonOptions: ParsableArguments {
    /// Where the output goes. Written beside the target and renamed into place only on
    /// success; gzip-compressed when the path ends in `.gz`. `-` or none means stdout.
    @Option(name: .shortAndLong,
            help: ArgumentHelp("Write the output to this file (atomically; gzip when it ends in .gz) instead of stdout.",
                               valueName: "path"))
    public var output: String?

    /// Where rejected records go. Default: the output path with `.rejects.jsonl` in place of
    /// its extension, or `lead-<stage>.rejects.jsonl` in the current directory when writing to stdout.
    @Option(help: ArgumentHelp("Write rejected records here (default: <output>.rejects.jsonl, or lead-<stage>.rejects.jsonl for stdout).",
                               valueName: "path"))
    public var rejects: String?

    /// Turns too many rejects into a failure (exit 1, no output written).
    @Option(help: ArgumentHelp("Fail with exit status 1 when more than N records are rejected.", valueName: "N"))
    public var maxRejects: Int?

    /// "Today" for every date computation, so that runs reproduce. `LEAD_NOW` works too.
    @Option(help: ArgumentHelp("Fix the current time (ISO 8601, e.g. 2026-11-23T06:00:00Z); default $LEAD_NOW, else the clock.",
                               valueName: "time"))
    public var now: String?

    /// The directory of rules files to use instead of `stages/<stage>/`.
    @Option(help: ArgumentHelp("Read rules from this directory instead of stages/<stage>/.", valueName: "dir"))
    public var rules: String?

    /// The character encoding of the input files (records are UTF-8 whatever it is).
    @Option(help: ArgumentHelp("The input files' encoding: utf8 (default), cp1252 (Windows-1252) or latin1 (ISO-8859-1); read into UTF-8.",
                               valueName: "name"))
    public var encoding: TextEncoding = .utf8

    /// One of n processes running side by side: every side file gets a path of its own.
    @Option(help: ArgumentHelp("This is shard i of n processes running side by side (also $LEAD_SHARD): rejects and other side files get <name>.shard-<i>-of-<n>.<ext>.",
                               valueName: "i/n"))
    public var shard: String?

    /// Headerless chunks of a CSV split by lines: the header comes from this file.
    @Option(help: ArgumentHelp("CSV inputs are headerless chunks (a CSV split by lines): their columns are named by this file's first row.",
                               valueName: "file"))
    public var headerFrom: String?

    /// The line of the whole file a chunk starts on.
    @Option(help: ArgumentHelp("The line of the whole file the input starts on (a chunk of it), so rejects and origins name the original line.",
                               valueName: "N"))
    public var firstLine: Int?

    /// The file the input is a part of.
    @Option(help: ArgumentHelp("The input is a part of this file (a chunk, a partition on stdin): its records are named after it in rejects and _origin (with --first-line, from that line).",
                               valueName: "path"))
    public var inputName: String?

    /// A pipeline's summary log: the summary line is added to it as well (for the run report).
    @Option(help: ArgumentHelp("Also add the summary line, with the time and the output, to this JSONL file (also $LEAD_SUMMARIES); the run report reads it.",
                               valueName: "path"))
    public var summaries: String?

    /// The schema of the main output's kind: the fields every record written has.
    @Option(help: ArgumentHelp("The main output's kind, stages/schemas/NAME.json: every field it names that a record lacks is written as null, so every row has every field.",
                               valueName: "name"))
    public var schema: String?

    /// Fail instead of waiting when another run holds a store this stage needs.
    @Flag(help: "When another run holds a store this stage writes (its .lock), exit 2 naming it instead of waiting; LEAD_NO_WAIT=1 too.")
    public var noWait = false

    /// No progress display and no summary line on stderr.
    @Flag(name: .shortAndLong, help: "Print no progress and no summary line on stderr.")
    public var quiet = false

    public init() {}
}

extension ParsableCommand {
    /// Runs a stage command with the contract's exit statuses: usage errors exit 2 (not
    /// ArgumentParser's 64), `--help` exits 0. Use as `static func main() { stageMain() }`.
    public static func stageMain(_ arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Glibc.exit(0)
        } catch let error as StageError {
            Stage.fail(error, program: _commandName)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                Glibc.exit(0)
            }
            if !message.isEmpty { standardError(message + "\n") }
            Glibc.exit(2)
        }
    }

    static var _commandName: String {
        configuration.commandName ?? String(describing: Self.self)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes text to stderr, unbuffered.
public func standardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}

/// The byte of a one-character delimiter option (`\t` or `tab` for a tab).
public func delimiterByte(_ text: String) throws -> UInt8 {
    switch text {
    case "\\t", "tab", "\t": return 9
    default:
        guard text.utf8.count == 1, let b = text.utf8.first, b != 34, b != 10, b != 13 else {
            throw ValidationError("--delimiter must be one ASCII character other than a quote or line break (got '\(text)')")
        }
        return b
    }
}
