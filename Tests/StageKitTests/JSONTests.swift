import CSimdJSON
#if canImport(Glibc)
import Glibc
#endif
import Testing
import StageKit
import TestSupport

/// Parses `text` and hands the tape to `body` (the tape borrows the padded copy).
func withTape<T>(_ text: String, _ body: (JSONTape) throws -> T) throws -> T {
    var bytes = Array(text.utf8)
    let count = bytes.count
    bytes += [UInt8](repeating: 0, count: Int(LJ_PADDING))
    let parser = JSONParser()
    return try withExtendedLifetime(parser) {
        try bytes.withUnsafeBufferPointer { buffer in
            switch parser.parse(UnsafeBufferPointer(rebasing: buffer[0..<count])) {
            case .success(let tape): return try body(tape)
            case .failure(let error): throw error
            }
        }
    }
}

func record(_ text: String) throws -> Record {
    try withTape(text) { Record(tape: $0) }
}

func syntaxError(_ text: String) -> String? {
    do {
        _ = try withTape(text) { _ in 0 }
        return nil
    } catch let error as JSONParser.SyntaxError {
        return error.message
    } catch {
        return "\(error)"
    }
}

@Suite struct JSONParserTests {
    @Test func kindsAndSpans() throws {
        try withTape(#"{"a":1,"b":-2.5e3,"c":"x\"y","d":[true,false,null],"e":{},"f":123456789012345678901234}"#) { tape in
            #expect(tape.isObject)
            #expect(tape.childCount(0) == 6)
            let kinds = tape.children(0).map { tape.kind($0) }
            #expect(kinds == [LJ_INT.rawValue, LJ_FLOAT.rawValue, LJ_STRING.rawValue, LJ_ARRAY.rawValue,
                              LJ_OBJECT.rawValue, LJ_BIGINT.rawValue])
            let keys = tape.children(0).map { tape.key($0) }
            #expect(keys == ["a", "b", "c", "d", "e", "f"])
            let c = Array(tape.children(0))[2]
            #expect(tape.valueIsEscaped(c))
            #expect(tape.string(c) == "x\"y")
            #expect(String(decoding: tape.rawValue(Array(tape.children(0))[1]), as: UTF8.self) == "-2.5e3")
            let d = Array(tape.children(0))[3]
            #expect(String(decoding: tape.rawValue(d), as: UTF8.self) == "[true,false,null]")
        }
    }

    @Test func whitespaceInsideContainersIsNotPartOfScalars() throws {
        try withTape("{ \"a\" : [ 1 , \"x\" ] ,\n \"b\" : null }") { tape in
            let a = Array(tape.children(0))[0]
            let elements = Array(tape.children(a)).map { String(decoding: tape.rawValue($0), as: UTF8.self) }
            #expect(elements == ["1", "\"x\""])
            #expect(String(decoding: tape.rawValue(a), as: UTF8.self) == "[ 1 , \"x\" ]")
        }
    }

    @Test func unicodeEscapesDecode() throws {
        try withTape(#"{"s":"\u00e9\ud83d\ude00\ud800x\n"}"#) { tape in
            #expect(tape.string(1) == "é😀\u{FFFD}x\n")
        }
    }

    @Test(arguments: [
        ("{\"a\":", "a missing or extra comma, colon, bracket or brace"),
        ("{\"a\":tru}", "unexpected 'tru' (expected a string, number, object, array, true, false or null)"),
        ("{\"a\":01}", "invalid number"),
        ("{\"a\":\"\\x\"}", "invalid escape \\x in string"),
        ("{\"a\":1} x", "unexpected text after the JSON value"),
        ("", "empty text"),
    ])
    func rejectsInvalidJSON(_ text: String, _ message: String) {
        #expect(syntaxError(text) == message)
    }

    @Test func rejectsRawControlCharactersInStrings() {
        #expect(syntaxError("{\"a\":\"x\u{1}y\"}") != nil)
        #expect(syntaxError("{\"a\":\"tab\there\"}") != nil)
    }

    @Test func scalarDocumentsPointIntoTheText() throws {
        for text in ["\"new\"", "  42 ", "null", "false", "-1.5e3"] {
            let value = try #require(JSONValue(parsing: text))
            #expect(value.json == text.trimmingSpaces)
        }
        #expect(JSONValue(parsing: "\"new\"")?.string == "new")
    }

    /// lj_parse builds the tape in one pass and leaves every text it does not accept to
    /// simdjson's On-Demand walk (`lj_parse_reference`): on valid texts and on texts damaged
    /// at random, the two must give the same nodes, and the same error where there is one.
    @Test func onePassTapeIsTheOnDemandTape() {
        let seeds = [
            #"{"id":"L1","n":-12,"x":1.5e-3,"big":123456789012345678901234,"i64":9223372036854775807,"u":9223372036854775808,"neg":-9223372036854775808,"z":-0}"#,
            #"{"s":"a\"b\\c\/d\u00e9\ud83d\ude00","t":true,"f":false,"n":null,"e":"","k\u0041":[1,[2,[3,{}]],{"a":{"b":[]}}]}"#,
            "{ \"a\" : [ 1 , \"x\" ] ,\n \"b\" : null , \"c\":\t{ } }",
            #"[1,2.0,-0.5,1E5,1e+2,2e-2,"été",{"k":"v"}]"#, #""top""#, "42", "-0", "null", "[]", "{}",
            #"{"property":{"address":"2841 PECAN AVE","zip":"30369","beds":4,"value":404792.5},"tags":[{"tag":"High Equity","at":"2026-06-19"}]}"#,
        ]
        let alphabet = Array("{}[]:,\" \\\n\t-+.eE0123456789truefalsnul/bu\u{1}é".utf8) + [0xFF, 0xC3, 0x7F, 0]
        var rng = SeededGenerator(seed: 20261204)
        let a = lj_parser_new()!, b = lj_parser_new()!
        defer { lj_parser_free(a); lj_parser_free(b) }
        var accepted = 0, mismatches: [String] = []
        func compare(_ text: [UInt8]) {
            let padded = text + [UInt8](repeating: 0, count: Int(LJ_PADDING))
            padded.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: padded.count) { p in
                    let n = lj_parse(a, p, text.count, padded.count)
                    let m = lj_parse_reference(b, p, text.count, padded.count)
                    let same = n == m && (n < 0 ? String(cString: lj_error_message(a)) == String(cString: lj_error_message(b))
                                                   && lj_error_offset(a) == lj_error_offset(b)
                                                : memcmp(lj_nodes(a), lj_nodes(b), MemoryLayout<lj_node>.stride * Int(n)) == 0)
                    if m >= 0 { accepted += 1 }
                    if !same { mismatches.append(String(decoding: text, as: UTF8.self)) }
                }
            }
        }
        for seed in seeds { compare(Array(seed.utf8)) }
        for _ in 0..<40_000 {
            var text = Array(seeds[Int(rng.next() % UInt64(seeds.count))].utf8)
            for _ in 0...(rng.next() % 3) {
                let at = Int(rng.next() % UInt64(text.count + 1))
                let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0: text.insert(byte, at: at)
                case 1: if at < text.count { text.remove(at: at) }
                default: if at < text.count { text[at] = byte }
                }
            }
            compare(text)
        }
        // Nesting past the fast path's depth goes to On-Demand, which has its own limit.
        for depth in [999, 1000, 1001, 1023, 1024, 1025, 1100] {
            compare(Array(String(repeating: "[", count: depth).utf8) + Array(String(repeating: "]", count: depth).utf8))
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
        #expect(accepted > 5_000, "enough damaged texts are still valid JSON to compare tapes: \(accepted)")
    }

    @Test func scalarsAtTopLevel() throws {
        try withTape("42") { #expect($0.kind(0) == LJ_INT.rawValue) }
        try withTape("\"s\"") { #expect($0.kind(0) == LJ_STRING.rawValue) }
        try withTape("[]") { #expect($0.kind(0) == LJ_ARRAY.rawValue && $0.childCount(0) == 0) }
    }
}

@Suite struct JSONWriterTests {
    func encode(_ value: JSONValue) -> String { value.json }

    @Test func escapesOnlyWhatJSONRequires() {
        #expect(encode("a\"b\\c\n\t\u{1}/é😀") == #""a\"b\\c\n\t\u0001/é😀""#)
    }

    @Test(arguments: [
        (1.0, "1.0"), (-0.0, "0.0"), (2.5, "2.5"), (0.1, "0.1"), (1e15, "1000000000000000.0"), (1e17, "1e+17"), (123456789.0, "123456789.0"),
        (1.0 / 3.0, "0.3333333333333333"), (Double.nan, "null"), (Double.infinity, "null"),
    ])
    func numbers(_ value: Double, _ text: String) {
        // A double keeps its decimal point when whole: a fractional field is one type in every row.
        #expect(encode(.double(value)) == text)
    }

    @Test func integersPrintWithoutDecimalPoint() {
        #expect(encode(.int(-42)) == "-42")
        #expect(encode(.int(Int.max)) == "9223372036854775807")
        #expect(encode(.int(Int.min)) == "-9223372036854775808")
    }

    @Test func rawValuesAreWrittenCompactly() throws {
        let r = try record("{ \"a\" : { \"b\" : [ 1 , 2.50 ] } , \"c\" : \"\\u00e9\\/\" }")
        #expect(r.json == #"{"a":{"b":[1,2.50]},"c":"é/"}"#)
    }
}

@Suite struct RecordTests {
    @Test func keepsOrderReplacesInPlaceAppendsNew() throws {
        var r = try record(#"{"b":1,"a":{"x":true},"c":"keep"}"#)
        r["a"] = .string("replaced")
        r["d"] = .int(4)
        r["b"] = nil
        #expect(r.keys == ["a", "c", "d"])
        #expect(r.json == #"{"a":"replaced","c":"keep","d":4}"#)
    }

    @Test func accessorsSeeThroughRaw() throws {
        let r = try record(#"{"i":7,"f":2.5,"s":"x","t":true,"n":null,"a":[1,"two"],"o":{"k":"v"},"big":1e400}"#)
        #expect(r["i"]?.int == 7)
        #expect(r["i"]?.double == 7)
        #expect(r["f"]?.double == 2.5)
        #expect(r["f"]?.int == nil)
        #expect(r["s"]?.string == "x")
        #expect(r["i"]?.string == nil)
        #expect(r["i"]?.text == "7")
        #expect(r["t"]?.bool == true)
        #expect(r["n"]?.isNull == true)
        #expect(r["a"]?.array?.count == 2)
        #expect(r["a"]?.array?[1].string == "two")
        #expect(r["o"]?.object?["k"]?.string == "v")
        #expect(r["missing"] == nil)
        #expect(r["big"]?.kind == .number)
    }

    @Test func equalityIsJSONEquality() throws {
        #expect(JSONValue.int(1) == JSONValue.double(1.0))
        #expect(try record(#"{"a":1,"b":[1,2]}"#) == record(#"{"b":[1.0,2],"a":1.0}"#))
        #expect(try record(#"{"a":1}"#) != record(#"{"a":"1"}"#))
        #expect(try record(#"{"a":[1,2]}"#) != record(#"{"a":[2,1]}"#))
    }

    @Test func keyCacheReusesStrings() throws {
        let cache = KeyCache()
        let a = try withTape(#"{"property_address_long_key":1}"#) { Record(tape: $0, keys: cache) }
        let b = try withTape(#"{"property_address_long_key":2}"#) { Record(tape: $0, keys: cache) }
        #expect(a.keys == b.keys)
        #expect(b["property_address_long_key"]?.int == 2)
    }
}

@Suite struct FlattenerTests {
    func flatten(_ text: String, separator: String = ".") throws -> String {
        try withTape(text) { tape in
            let out = ByteBuffer()
            JSONFlattener(separator: separator).write(tape, into: out)
            return out.string
        }
    }

    @Test func millerRules() throws {
        #expect(try flatten(#"{"a":{"b":1,"c":[true,{"d":null}]},"e":{},"f":[],"g":"s"}"#)
                == #"{"a.b":1,"a.c.1":true,"a.c.2.d":null,"e":"{}","f":"[]","g":"s"}"#)
        #expect(try flatten(#"{"a":{"b":1}}"#, separator: ":") == #"{"a:b":1}"#)
        #expect(try flatten("{}") == "{}")
    }

    @Test func escapedKeysAreDecodedThenReencoded() throws {
        #expect(try flatten(#"{"a\"q":{"\u00e9":1}}"#) == #"{"a\"q.é":1}"#)
    }
}

/// RecordSchema.writeFilled writes what filling the record and writing it would, and nothing
/// when the text has every field (it then goes out as read).
struct RecordSchemaFillTests {
    @Test(arguments: [
        #"{"kind":"view","b":1}"#, #"{}"#, #"{ "kind" : "x", "nested": {"a" : [1, 2]}, "s": "\u00e9\"" }"#,
        #"{"\u006bind":"escaped key","run_id":null}"#, #"{"kind":"a","kind":"dup"}"#,
        #"{"kind":"a","run_id":1,"event":2,"_origin":"o"}"#,
    ])
    func writesWhatFillingTheRecordWrites(_ text: String) throws {
        let schema = RecordSchema(name: "t", fields: ["kind", "run_id", "event", "_origin"])
        var record = try #require(JSONValue(parsing: text)?.object)
        let added = schema.fill(&record)
        let parser = JSONParser()
        let bytes = Array(text.utf8) + JSONParser.zeroPadding
        let out = ByteBuffer()
        let wrote = try bytes.withUnsafeBufferPointer { buffer in
            schema.writeFilled(try parser.parse(UnsafeBufferPointer(rebasing: buffer[..<text.utf8.count])).get(), into: out)
        }
        #expect(wrote == added)
        if added {
            #expect(String(decoding: out.bytes, as: UTF8.self) == record.json)
        } else {
            #expect(out.count == 0)
        }
    }
}
