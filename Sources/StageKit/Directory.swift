#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Listing files in directories.
public enum Directory {
    /// The paths of the regular files in `directory` whose names end in `suffix`, sorted;
    /// with `recursive`, in its subdirectories too. A missing directory has no files.
    public static func files(in directory: String, suffix: String = "", recursive: Bool = false) -> [String] {
        var found: [String] = []
        var pending = [directory]
        while let dir = pending.popLast() {
            guard let d = opendir(dir) else { continue }
            defer { closedir(d) }
            while let entry = readdir(d) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." || name.hasPrefix(".") { continue }
                let path = dir + "/" + name
                var info = stat()
                guard stat(path, &info) == 0 else { continue }
                if (info.st_mode & S_IFMT) == S_IFDIR {
                    if recursive { pending.append(path) }
                } else if (info.st_mode & S_IFMT) == S_IFREG, name.hasSuffix(suffix) {
                    found.append(path)
                }
            }
        }
        return found.sorted()
    }

    /// The names of the subdirectories of `directory` (not hidden ones), sorted.
    public static func subdirectories(of directory: String) -> [String] {
        guard let d = opendir(directory) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            var info = stat()
            if stat(directory + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { names.append(name) }
        }
        return names.sorted()
    }
}
