/// The schema of a stage file kind, `stages/schemas/<name>.json` (a JSON Schema): the fields
/// every row of the kind has, in order. With `--schema NAME` a stage fills every field of the
/// schema that a record it writes lacks with null, so the field is present in every row
/// (readers that type columns from the first rows, polars and DuckDB, see it) and the file
/// validates against its schema. Types are the stages' own business: the schema states them,
/// the tests check them.
public struct RecordSchema: Sendable {
    /// The schema's name (its file name without `.json`).
    public let name: String
    /// The fields of `properties`, in the file's order.
    public let fields: [String]

    public init(name: String, fields: [String]) {
        self.name = name
        self.fields = fields
    }

    /// Reads `path`; a file that is not a JSON Schema of an object with properties is a usage error.
    public static func load(_ path: String, name: String) throws(StageError) -> RecordSchema {
        guard let bytes = try? ByteSource.readAll(path) else {
            throw .usage("no schema \(name) (\(path) cannot be read): the names are the files of stages/schemas/")
        }
        guard let schema = JSONValue(parsing: String(decoding: bytes, as: UTF8.self))?.object,
              let properties = schema["properties"]?.object, !properties.isEmpty else {
            throw .usage("\(path): not a JSON Schema with properties")
        }
        return RecordSchema(name: name, fields: properties.keys)
    }

    /// Appends null for every field of the schema that `record` lacks; true when it added any.
    @discardableResult
    public func fill(_ record: inout Record) -> Bool {
        var added = false
        for field in fields where record.index(of: field) == nil {
            record.append(field, .null)
            added = true
        }
        return added
    }
}
