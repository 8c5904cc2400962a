import CZlib
import Foundation
import Testing
import TestSupport

/// The run report as a user sees it: `make`, another run, `make report`, and the page opened
/// in headless Chromium (Debian's chromium; scripts/deps.sh test installs it).
@Suite("Run report: make report opened in headless Chromium", .serialized)
struct RunReportTests {
    typealias Tree = RunsOverTimeTests.Tree

    static var chromium: String? {
        if let path = ProcessInfo.processInfo.environment["LEAD_CHROMIUM"], !path.isEmpty { return path }
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        where FileManager.default.isExecutableFile(atPath: path) { return path }
        return nil
    }

    /// Chromium on `page` with `arguments`, in a profile of its own.
    static func chromium(_ arguments: [String], page: String, tree: Tree) throws -> Binaries.Result {
        guard let browser = chromium else {
            Issue.record("no chromium: install it with scripts/deps.sh test (apt-get install chromium), or set LEAD_CHROMIUM")
            return Binaries.Result(status: -1, stdout: "", stderr: "")
        }
        let profile = tree.root + "/chromium-profile"
        return try Binaries.run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                                          "--user-data-dir=\(profile)", "--enable-logging=stderr", "--log-level=0"] + arguments
                                          + ["file://" + page], in: tree.root)
    }

    @Test func theReportShowsTheRunsAsTheirSummariesSayAndRendersOffline() throws {
        let tree = try Tree.fresh("report")
        #expect(try RunsOverTimeTests.make(["pipelines"], tree: tree).status == 0)
        // Another run of the leads, kept as an earlier run: the page compares the two.
        #expect(try RunsOverTimeTests.make(["-B", "leads"], tree: tree).status == 0)
        #expect(try RunsOverTimeTests.make(["pipelines"], tree: tree).status == 0)
        let made = try RunsOverTimeTests.make(["report"], tree: tree)
        #expect(made.status == 0, "\(made.stdout.suffix(1500))")
        let page = tree.logs + "/report.html"
        let attributes = try FileManager.default.attributesOfItem(atPath: page)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "the report holds owners' names: 0600")

        // The funnel rows on the page are the newest summary line of each step, number for number.
        let dom = try RunReportTests.chromium(["--dump-dom"], page: page, tree: tree)
        #expect(dom.status == 0, "\(dom.stderr.suffix(1000))")
        for pipeline in ["listings", "leads", "permits", "events"] {
            let expected = try RunReportTests.newestSteps(tree.logs + "/" + pipeline + "/summaries.jsonl")
            #expect(!expected.isEmpty, "\(pipeline): no summary log")
            let shown = RunReportTests.funnelRows(dom.stdout, pipeline: pipeline)
            #expect(shown == expected, "\(pipeline): the page shows \(shown.count) steps, the summary log has \(expected.count): \(Set(shown).symmetricDifference(expected).prefix(3))")
        }
        #expect(dom.stdout.contains("Against the kept earlier runs"), "the leads run before is compared with")
        #expect(dom.stdout.contains("Tiers per trade group / category") && dom.stdout.contains("Score histogram"))
        #expect(dom.stdout.contains("views and leads per hour") && dom.stdout.contains("Conversion per listing"))
        #expect(dom.stdout.contains("no house number"), "a top reject reason of the leads, with its example")
        // No console message at all: no script error, and nothing the page's policy had to
        // block (it allows no network, script or font: the page renders offline).
        let console = dom.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }
        #expect(console.isEmpty, "console: \(console.prefix(3))")

        // A screenshot that is not blank: charts in several colours on a white page.
        let shot = tree.root + "/report.png"
        let screenshot = try RunReportTests.chromium(["--window-size=1100,3000", "--screenshot=\(shot)"], page: page, tree: tree)
        #expect(screenshot.status == 0, "\(screenshot.stderr.suffix(1000))")
        let image = try PNG(path: shot)
        let (inked, colours) = image.inkAndColours()
        #expect(image.width == 1100 && image.height == 3000)
        #expect(inked > image.width * image.height / 50, "only \(inked) pixels are not white")
        #expect(colours >= 6, "only \(colours) colours: the charts are missing")
    }

    /// The console check can fail: a page with a script error and a blocked image is caught.
    @Test func theConsoleCheckSeesAnError() throws {
        let tree = try Tree.fresh("console")
        let page = tree.root + "/bad.html"
        try "<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"></head><body><img src=\"http://127.0.0.2:9/x.png\"></body></html>"
            .write(toFile: page, atomically: true, encoding: .utf8)
        let dom = try RunReportTests.chromium(["--dump-dom"], page: page, tree: tree)
        #expect(dom.stderr.contains(":CONSOLE"), "a blocked request shows on the console")
    }

    /// (stage, command, in, out, rejected) of the newest line of each step of a summary log;
    /// a step is a stage command and its output, or its command line without --now.
    static func newestSteps(_ path: String) throws -> [String] {
        var order: [String] = []
        var newest: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let command = object["command"] as? String ?? ""
            var argv = object["argv"] as? [String] ?? []
            if let i = argv.firstIndex(of: "--now") { argv.removeSubrange(i...min(i + 1, argv.count - 1)) }
            let key = "\(object["stage"]!) \(command) " + ((object["output"] as? String) ?? argv.joined(separator: " "))
            order.removeAll { $0 == key }
            order.append(key)
            newest[key] = "\(object["stage"]!)|\(command)|\(object["in"]!)|\(object["out"]!)|\(object["rejected"]!)"
        }
        return order.map { newest[$0]! }
    }

    /// The same of the funnel rows of a pipeline's section of the page, from the numbers shown
    /// in the cells (checked against the row's data attributes).
    static func funnelRows(_ html: String, pipeline: String) -> [String] {
        guard let start = html.range(of: "<section id=\"\(pipeline)\""),
              let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return [] }
        let section = String(html[start.upperBound..<end.lowerBound])
        let row = try! Regex(#"<tr class="step[^"]*" data-stage="([^"]*)" data-command="([^"]*)" data-output="[^"]*" data-in="(\d+)" data-out="(\d+)" data-rejected="(\d+)"><td>[^<]*</td><td>.*?</td><td class="n">(\d+)</td><td class="n">(\d+)</td><td class="n">(\d+)</td>"#)
        return section.matches(of: row).map { m in
            let v = (1...8).map { String(m.output[$0].substring ?? "") }
            let shown = v[5] == v[2] && v[6] == v[3] && v[7] == v[4] ? "" : " (cells \(v[5]) \(v[6]) \(v[7]))"
            return "\(v[0])|\(v[1])|\(v[2])|\(v[3])|\(v[4])" + shown
        }
    }
}

/// An 8-bit RGB or RGBA PNG, decoded (enough for Chromium's screenshots).
struct PNG {
    let width: Int, height: Int, channels: Int
    var pixels: [UInt8]

    init(path: String) throws {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard data.count > 8, Array(data[0..<8]) == [137, 80, 78, 71, 13, 10, 26, 10] else { throw PNGError("not a PNG") }
        var at = 8, idat: [UInt8] = []
        var w = 0, h = 0, colourType = 0, depth = 0
        func be32(_ i: Int) -> Int { Int(data[i]) << 24 | Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3]) }
        while at + 8 <= data.count {
            let length = be32(at), type = String(decoding: data[(at + 4)..<(at + 8)], as: UTF8.self)
            let body = (at + 8)..<(at + 8 + length)
            if type == "IHDR" { w = be32(body.lowerBound); h = be32(body.lowerBound + 4); depth = Int(data[body.lowerBound + 8]); colourType = Int(data[body.lowerBound + 9]) }
            if type == "IDAT" { idat += data[body] }
            at = body.upperBound + 4
        }
        guard depth == 8, colourType == 2 || colourType == 6 else { throw PNGError("bit depth \(depth), colour type \(colourType)") }
        width = w; height = h; channels = colourType == 6 ? 4 : 3
        let stride = w * channels
        var raw = [UInt8](repeating: 0, count: h * (stride + 1))
        var size = uLongf(raw.count)
        let rc = raw.withUnsafeMutableBufferPointer { out in idat.withUnsafeBufferPointer { uncompress(out.baseAddress, &size, $0.baseAddress, uLong($0.count)) } }
        guard rc == Z_OK, Int(size) == raw.count else { throw PNGError("inflate: \(rc)") }
        pixels = [UInt8](repeating: 0, count: h * stride)
        for y in 0..<h {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let v = raw[y * (stride + 1) + 1 + x]
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = x >= channels && y > 0 ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predicted: Int
                switch filter {
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: predicted = 0
                }
                pixels[y * stride + x] = UInt8(truncatingIfNeeded: Int(v) + predicted)
            }
        }
    }

    /// How many pixels are not white, and how many distinct colours (to 4 bits a channel).
    func inkAndColours() -> (inked: Int, colours: Int) {
        var inked = 0
        var colours = Set<Int>()
        for i in stride(from: 0, to: pixels.count, by: channels) {
            let r = Int(pixels[i]), g = Int(pixels[i + 1]), b = Int(pixels[i + 2])
            if r < 240 || g < 240 || b < 240 { inked += 1 }
            colours.insert((r >> 4) << 8 | (g >> 4) << 4 | (b >> 4))
        }
        return (inked, colours.count)
    }
}

struct PNGError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
