import LeadRules
import LeadStores
import StageKit
import Testing

/// The events store's state: windows from the watermark, reruns, refusals, the round trip.
@Suite struct EventStateTests {
    func at(_ text: String) -> Timestamp { Timestamp(iso8601: text)! }

    @Test func windowsRunFromTheWatermarkAndRerunsKeepTheirs() throws {
        var state = EventState()
        let first = try state.window(now: at("2025-01-16T12:30:00Z"), lookbackDays: 365, source: "files")
        #expect(first.from == at("2024-01-17T12:30:00Z") && first.runID == "2025-01-16T12:30:00Z")
        #expect(first.contains(at("2025-01-16T12:30:00Z")) && !first.contains(first.from), "(from, to]")
        try state.apply(.init(run: first, events: 1, leads: 1, appliedAt: first.to))
        let second = try state.window(now: at("2025-01-18T00:00:00Z"), lookbackDays: 365, source: "files")
        #expect(second.from == first.to)
        #expect(try state.window(now: first.to, lookbackDays: 365, source: "files") == first, "a window applied is asked again")
        #expect(throws: StageError.self) { try state.window(now: at("2025-01-10T00:00:00Z"), lookbackDays: 365, source: "files") }
        let stale = EventRun(source: "files", from: at("2025-01-16T00:00:00Z"), to: at("2025-01-19T00:00:00Z"))
        #expect(throws: StageError.self, "a run that does not start at the watermark would overlap") { try state.apply(.init(run: stale, events: 0, leads: 0, appliedAt: stale.to)) }
        let reread = try EventState(json: .object(state.record), path: "state.json")
        #expect(reread.record.json == state.record.json && reread.watermark == first.to)
    }
}
