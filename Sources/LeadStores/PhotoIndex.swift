import StageKit

/// A listing pipeline's photo skip index, `<logs>/<kind>/photo-logs/<mls>/skip_index.json`:
/// ListingKey -> {url, sha256, bytes, fetched_at, file}, so an unchanged photo is not fetched
/// again and cleanup knows which file to remove. One JSON object, keys sorted, so it diffs
/// cleanly. The photo-logs folder is the store (`lead-fetch photos` and `lead-cleanup` lock it).
public enum PhotoIndex {
    /// Reads a skip index; a missing or unreadable one is empty.
    public static func load(_ path: String) -> [String: Record] {
        guard let bytes = try? ByteSource.readAll(path), !bytes.isEmpty,
              let object = JSONValue(parsing: String(decoding: bytes, as: UTF8.self))?.object else { return [:] }
        var out: [String: Record] = [:]
        for field in object.fields { if let entry = field.value.object { out[field.key] = entry } }
        return out
    }

    /// The index as one JSON object, keys sorted.
    public static func record(_ index: [String: Record]) -> Record {
        Record(index.keys.sorted().map { Record.Field(key: $0, value: .object(index[$0]!)) })
    }
}
