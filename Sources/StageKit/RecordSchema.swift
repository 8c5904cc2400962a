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
    /// The fields' UTF-8, for comparing with keys as read.
    let fieldBytes: [[UInt8]]

    public init(name: String, fields: [String]) {
        self.name = name
        self.fields = fields
        fieldBytes = fields.map { Array($0.utf8) }
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

extension RecordSchema {
    /// When the object of `tape` lacks a field of the schema: writes it compactly with null
    /// for each missing field after its own (the bytes `fill` and `JSONWriter.write` make of
    /// the record, without building it) and returns true. When it lacks none, writes nothing
    /// and returns false: the text goes out as it was read, as `Stage.writeLine` sends it.
    /// Keys are compared as read, and decoded when escaped.
    public func writeFilled(_ tape: JSONTape, into out: ByteBuffer) -> Bool {
        var empty = tape.childCount(0) == 0
        var missing = false
        for (field, wanted) in zip(fields, fieldBytes) {
            let found = tape.children(0).contains { child in
                tape.keyIsEscaped(child) ? tape.key(child) == field : tape.rawKey(child).elementsEqual(wanted)
            }
            guard !found else { continue }
            if !missing {
                // writeNode ends the object with `}`: the missing fields go before it.
                JSONWriter.writeNode(tape, 0, into: out)
                out.removeLast()
                missing = true
            }
            if !empty { out.append(44) }
            empty = false
            JSONWriter.writeString(field, into: out)
            out.append(":null")
        }
        if missing { out.append(125) }
        return missing
    }
}
