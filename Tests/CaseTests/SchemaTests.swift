import Foundation
import Testing
import TestSupport

/// Outputs whose types never change: every file `make` writes follows its schema
/// (stages/schemas/, named by stages/schemas/files.csv), and DuckDB and polars read each
/// without losing a row or a value (scripts/check-outputs.py; scripts/deps.sh test installs
/// python3, duckdb, polars and jsonschema).
@Suite("Schemas: every output of make against its schema, read by DuckDB and polars", .serialized)
struct SchemaTests {
    typealias Tree = RunsOverTimeTests.Tree

    static func check(_ tree: Tree) throws -> Binaries.Result {
        try Binaries.run("/usr/bin/env", ["python3", Binaries.repoRoot + "/scripts/check-outputs.py", tree.root], in: tree.root)
    }

    @Test func everyFileMakeWritesFollowsItsSchemaAndTheCheckSeesDrift() throws {
        let tree = try Tree.fresh("schemas")
        #expect(try RunsOverTimeTests.make(["pipelines"], tree: tree).status == 0)
        // A second day of leads and a sale: the files of later runs too.
        #expect(try RunsOverTimeTests.make(["-B", "leads"], tree: tree).status == 0)
        let clean = try SchemaTests.check(tree)
        #expect(clean.status == 0, "\(clean.stdout.prefix(3000))")
        let checked = clean.stderr.split(separator: " ").first.flatMap { Int($0) } ?? 0
        #expect(checked >= 100, "only \(checked) files checked: \(clean.stderr)")

        // Drift of each kind the schemas rule out is caught, naming file, line and field.
        func edit(_ path: String, line: Int, _ body: (inout [String: Any]) -> Void) throws {
            var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var object = try JSONSerialization.jsonObject(with: Data(lines[line - 1].utf8)) as! [String: Any]
            body(&object)
            lines[line - 1] = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        try edit(tree.logs + "/permits/tiered.jsonl", line: 3) { $0["flags"] = "missing_owner|stale" }
        try edit(tree.logs + "/leads/leads.jsonl", line: 2) { $0.removeValue(forKey: "owner_name") }
        try edit(tree.logs + "/events/listings.jsonl", line: 1) { $0["conversion_rate"] = 0 }
        try edit(tree.logs + "/permits/scored.jsonl", line: 5) { $0["score"] = 41.5 }
        try "{\"a\":1}\n".write(toFile: tree.logs + "/permits/unknown.jsonl", atomically: true, encoding: .utf8)
        let drift = try SchemaTests.check(tree)
        #expect(drift.status == 1)
        for expected in ["permits/tiered.jsonl:3: flags is string", "leads/leads.jsonl:2: owner_name is missing",
                         "events/listings.jsonl:1: conversion_rate is integer", "permits/scored.jsonl:5: score is number",
                         "permits/unknown.jsonl: no schema names this file"] {
            #expect(drift.stdout.contains(expected), "\(expected) not in \(drift.stdout.prefix(2000))")
        }
    }
}
