import CSimdJSON
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Where a stage finds its rules.
extension Stage {
    // MARK: Rules

    /// The directory holding a stage's rules: for this stage `--rules` when given; else
    /// `$LEAD_STAGES/<stage>`, else `stages/<stage>` in the current directory, else the
    /// install prefix's `share/leadetl/stages/<stage>` (`make install`) or `stages/<stage>`
    /// beside the executable, else the checkout the executable was built in. Rules this stage shares with another (the
    /// pipeline list in stages/fetch/) come from that stage's directory.
    public func rulesDirectory(stage: String? = nil) -> String {
        let stageName = stage ?? name
        if stageName == name, let dir = options.rules { return dir }
        if let root = environment["LEAD_STAGES"], !root.isEmpty { return root + "/" + stageName }
        let local = "stages/" + stageName
        if Stage.isDirectory(local) { return local }
        if let exe = Stage.executableDirectory() {
            // Installed: PREFIX/bin/lead-x -> PREFIX/share/leadetl/stages; or stages/ beside the binary.
            let prefix = AtomicFiles.splitPath(exe).dir
            for candidate in [prefix + "/share/leadetl/stages/" + stageName, exe + "/stages/" + stageName] where Stage.isDirectory(candidate) {
                return candidate
            }
            // .build/<config>/lead-x -> checkout root
            var root = exe
            for _ in 0..<2 { root = AtomicFiles.splitPath(root).dir }
            let candidate = root + "/stages/" + stageName
            if Stage.isDirectory(candidate) { return candidate }
            root = AtomicFiles.splitPath(root).dir
            let deeper = root + "/stages/" + stageName
            if Stage.isDirectory(deeper) { return deeper }
        }
        return local
    }

    /// The path of rules file `file` of this stage (or of `stage`).
    public func rulesFile(_ file: String, stage: String? = nil) -> String {
        rulesDirectory(stage: stage) + "/" + file
    }

    /// True when `path` is a directory.
    public static func isDirectoryPath(_ path: String) -> Bool { isDirectory(path) }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func executableDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return AtomicFiles.splitPath(path).dir
    }
}
