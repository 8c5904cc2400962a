import LeadRules
import StageKit
import Testing

@Suite("Run report rules: steps from summary logs, reason classes, charts")
struct RunReportRulesTests {
    func line(_ json: String) -> Record { JSONValue(parsing: json)!.object! }

    @Test func theNewestLineOfEachStepInTheOrderTheyLastRan() {
        let steps = RunReport.latestSteps([
            line(#"{"stage":"flatten","command":"leads","in":1,"out":1,"rejected":0,"output":"a.jsonl"}"#),
            line(#"{"stage":"normalize","in":1,"out":1,"rejected":0,"output":"n.jsonl"}"#),
            line(#"{"stage":"flatten","command":"leads","in":2,"out":2,"rejected":0,"output":"a.jsonl"}"#),
            // No output: the command line tells steps apart, whatever the clock.
            line(#"{"stage":"fetch","command":"photos","in":3,"out":3,"rejected":0,"output":null,"argv":["photos","--pipeline","x","--now","2026-01-01T00:00:00Z"]}"#),
            line(#"{"stage":"fetch","command":"photos","in":4,"out":4,"rejected":0,"output":null,"argv":["photos","--pipeline","y","--now","2026-01-01T00:00:00Z"]}"#),
            line(#"{"stage":"fetch","command":"photos","in":5,"out":5,"rejected":0,"output":null,"argv":["photos","--pipeline","x","--now","2026-02-01T00:00:00Z"]}"#),
            line(#"{"no":"stage"}"#),
        ])
        #expect(steps.map(\.name) == ["normalize", "flatten leads", "fetch photos", "fetch photos"])
        #expect(steps.map(\.recordsIn) == [1, 2, 4, 5])
        #expect(steps.map(\.target) == ["n.jsonl", "a.jsonl", "y", "x"])
        let metrics = RunReport.metrics(steps)
        #expect(metrics.map(\.0) == ["normalize", "flatten leads", "fetch photos", "rejected"])
        #expect(metrics.map(\.1) == [1, 2, 9, 0])
    }

    @Test func reasonsCountTogetherWithoutTheirParticulars() {
        #expect(RunReport.reasonClass("property_address: no house number in 'RIVERSIDE DR'") == "property_address: no house number in '…'")
        #expect(RunReport.reasonClass("line 12: 3 columns, expected 17") == "line N: N columns, expected N")
        #expect(RunReport.reasonClass("value 'unterminated") == "value '…")
        // Ids and dates are particulars too: one class for every permit without an address.
        #expect(RunReport.reasonClass("permit TRE-AFF-PMT23-39002078 has no property_address") == "permit N has no property_address")
        #expect(RunReport.reasonClass("timestamp 2025-01-18T12:45:00Z is after the window end") == "timestamp N is after the window end")
    }

    @Test func histogramBinsAreRoundAndHoldEveryValue() {
        let bins = SVGChart.histogram([0, 5, 12, 99, 100], bins: 10)
        #expect(bins.first?.label == "0–10")
        #expect(bins.map(\.count).reduce(0, +) == 5)
        #expect(bins.last?.label == "100–110")
        #expect(SVGChart.histogram([7, 7]).map(\.count) == [2])
        #expect(SVGChart.histogram([]).isEmpty)
    }

    @Test func thePageEscapesWhatTheDataSaysAndLoadsNothing() {
        var step = RunReport.Step(line(#"{"stage":"normalize","in":2,"out":1,"rejected":1,"output":"<x>.jsonl"}"#))!
        step.reasons = [RunReport.Reason(text: "bad '<script>'", count: 1, example: "a.jsonl:1: bad '<script>alert(1)</script>'")]
        let page = RunReport(generatedAt: "2026-11-23T06:00:00Z",
                             pipelines: [RunReport.Pipeline(name: "leads", steps: [step], trend: [])],
                             leads: nil, permits: nil, events: nil).html()
        #expect(!page.contains("<script"))
        #expect(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(page.contains("data-in=\"2\" data-out=\"1\" data-rejected=\"1\""))
        #expect(!page.contains("http://") && !page.contains("https://") && !page.contains("@import") && !page.contains("url("))
        #expect(page.contains("default-src 'none'"))
    }
}
