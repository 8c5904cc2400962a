import StageKit

/// Charts for the run report, drawn as inline SVG: no script, no font or file from anywhere,
/// so the page renders offline in any browser. Every chart is a pure function of its numbers.
public enum SVGChart {
    /// The series colours, in order (colour-blind safe, Okabe and Ito).
    public static let palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

    /// Horizontal bars, one per row, each split into the series' segments, with the row's
    /// total at its end and a legend when there is more than one series.
    public static func stackedBars(_ rows: [(label: String, values: [Double])], series: [String],
                                   title: String, width: Int = 720) -> String {
        guard !rows.isEmpty else { return empty(title) }
        let labelWidth = min(260, 12 + 7 * (rows.map(\.label.count).max() ?? 0))
        let barHeight = 18, gap = 6, top = series.count > 1 ? 44 : 28
        let height = top + rows.count * (barHeight + gap) + 8
        let plot = Double(width - labelWidth - 70)
        let maxTotal = max(1, rows.map { $0.values.reduce(0, +) }.max() ?? 1)
        var svg = open(title, width: width, height: height)
        if series.count > 1 { svg += legend(series, x: labelWidth, y: 30) }
        for (i, row) in rows.enumerated() {
            let y = top + i * (barHeight + gap)
            svg += text(truncate(row.label, to: (labelWidth - 12) / 7), x: labelWidth - 6, y: y + 13, anchor: "end")
            var x = Double(labelWidth)
            for (s, value) in row.values.enumerated() where value > 0 {
                let w = plot * value / maxTotal
                svg += "<rect x=\"\(fmt(x))\" y=\"\(y)\" width=\"\(fmt(max(w, 0.5)))\" height=\"\(barHeight)\" fill=\"\(color(s))\">"
                svg += "<title>\(escape(row.label)): \(escape(series[safe: s] ?? "")) \(number(value))</title></rect>"
                x += w
            }
            svg += text(number(row.values.reduce(0, +)), x: Int(x) + 6, y: y + 13, anchor: "start")
        }
        return svg + "</svg>"
    }

    /// Vertical bars over labelled bins (a histogram, or counts per category).
    public static func columns(_ bins: [(label: String, count: Double)], title: String, width: Int = 720,
                               height: Int = 220) -> String {
        guard !bins.isEmpty else { return empty(title) }
        let left = 48, bottom = 40, top = 28
        let plotW = Double(width - left - 10), plotH = Double(height - top - bottom)
        let maxCount = max(1, bins.map(\.count).max() ?? 1)
        let slot = plotW / Double(bins.count)
        var svg = open(title, width: width, height: height)
        svg += axis(left: left, top: top, plotH: plotH, maxValue: maxCount, width: width)
        let every = max(1, Int((Double(bins.count) * 48 / plotW).rounded(.up)))
        for (i, bin) in bins.enumerated() {
            let h = plotH * bin.count / maxCount
            let x = Double(left) + Double(i) * slot
            svg += "<rect x=\"\(fmt(x + slot * 0.1))\" y=\"\(fmt(Double(top) + plotH - h))\" width=\"\(fmt(slot * 0.8))\" height=\"\(fmt(h))\" fill=\"\(color(0))\">"
            svg += "<title>\(escape(bin.label)): \(number(bin.count))</title></rect>"
            if i % every == 0 {
                svg += text(truncate(bin.label, to: 10), x: Int(x + slot / 2), y: height - bottom + 16, anchor: "middle", size: 10)
            }
        }
        return svg + "</svg>"
    }

    /// Lines over shared x labels, one per series; nil values leave a gap.
    public static func lines(x labels: [String], series: [(name: String, values: [Double?])], title: String,
                             width: Int = 720, height: Int = 240) -> String {
        guard !labels.isEmpty, !series.isEmpty else { return empty(title) }
        let left = 48, bottom = 40, top = 44
        let plotW = Double(width - left - 16), plotH = Double(height - top - bottom)
        let maxValue = max(1, series.flatMap { $0.values.compactMap { $0 } }.max() ?? 1)
        let step = labels.count > 1 ? plotW / Double(labels.count - 1) : 0
        func px(_ i: Int) -> Double { Double(left) + (labels.count > 1 ? Double(i) * step : plotW / 2) }
        func py(_ v: Double) -> Double { Double(top) + plotH - plotH * v / maxValue }
        var svg = open(title, width: width, height: height)
        svg += legend(series.map(\.name), x: left, y: 30)
        svg += axis(left: left, top: top, plotH: plotH, maxValue: maxValue, width: width)
        let every = max(1, Int((Double(labels.count) * 64 / plotW).rounded(.up)))
        for (i, label) in labels.enumerated() where i % every == 0 {
            svg += text(truncate(label, to: 12), x: Int(px(i)), y: height - bottom + 16, anchor: "middle", size: 10)
        }
        for (s, line) in series.enumerated() {
            var path = "", pen = false
            for (i, value) in line.values.enumerated() {
                guard let value else { pen = false; continue }
                path += (pen ? "L" : "M") + fmt(px(i)) + "," + fmt(py(value))
                pen = true
            }
            if !path.isEmpty {
                svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(color(s))\" stroke-width=\"2\"/>"
            }
            for (i, value) in line.values.enumerated() {
                guard let value else { continue }
                svg += "<circle cx=\"\(fmt(px(i)))\" cy=\"\(fmt(py(value)))\" r=\"3\" fill=\"\(color(s))\">"
                svg += "<title>\(escape(line.name)) \(escape(labels[safe: i] ?? "")): \(number(value))</title></circle>"
            }
        }
        return svg + "</svg>"
    }

    /// Bins for a histogram of `values`: `count` bins of a round width from a round start.
    public static func histogram(_ values: [Double], bins count: Int = 10) -> [(label: String, count: Double)] {
        guard let low = values.min(), let high = values.max() else { return [] }
        if low == high { return [(number(low), Double(values.count))] }
        let width = roundWidth((high - low) / Double(count))
        let start = (low / width).rounded(.down) * width
        let n = Int(((high - start) / width).rounded(.down)) + 1
        var counts = [Double](repeating: 0, count: n)
        for v in values { counts[min(n - 1, Int(((v - start) / width).rounded(.down)))] += 1 }
        return counts.enumerated().map { i, c in
            let from = start + Double(i) * width
            return ("\(number(from))–\(number(from + width))", c)
        }
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func roundWidth(_ raw: Double) -> Double {
        var power = 1.0
        while power * 10 <= raw { power *= 10 }
        while power > raw && power > 1e-9 { power /= 10 }
        for m in [1.0, 2, 5, 10] where power * m >= raw { return power * m }
        return power * 10
    }

    // MARK: Pieces

    static func open(_ title: String, width: Int, height: Int) -> String {
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\">"
            + "<title>\(escape(title))</title>"
            + text(title, x: 4, y: 16, anchor: "start", size: 13, weight: "bold")
    }

    static func empty(_ title: String) -> String {
        open(title, width: 360, height: 44) + text("nothing to show", x: 4, y: 36, anchor: "start", size: 11) + "</svg>"
    }

    static func legend(_ names: [String], x: Int, y: Int) -> String {
        var svg = "", at = x
        for (i, name) in names.enumerated() {
            svg += "<rect x=\"\(at)\" y=\"\(y - 9)\" width=\"10\" height=\"10\" fill=\"\(color(i))\"/>"
            svg += text(name, x: at + 14, y: y, anchor: "start", size: 11)
            at += 24 + 7 * name.count
        }
        return svg
    }

    static func axis(left: Int, top: Int, plotH: Double, maxValue: Double, width: Int) -> String {
        var svg = ""
        for k in 0...4 {
            let value = maxValue * Double(k) / 4
            let y = Double(top) + plotH - plotH * Double(k) / 4
            svg += "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(fmt(y))\" y2=\"\(fmt(y))\" stroke=\"#ddd\"/>"
            svg += text(number(value), x: left - 4, y: Int(y) + 4, anchor: "end", size: 10)
        }
        return svg
    }

    static func text(_ s: String, x: Int, y: Int, anchor: String, size: Int = 12, weight: String = "normal") -> String {
        "<text x=\"\(x)\" y=\"\(y)\" text-anchor=\"\(anchor)\" font-size=\"\(size)\" font-weight=\"\(weight)\">\(escape(s))</text>"
    }

    static func color(_ i: Int) -> String { palette[i % palette.count] }

    static func truncate(_ s: String, to n: Int) -> String {
        s.count <= n ? s : String(s.prefix(max(1, n - 1))) + "…"
    }

    static func fmt(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    /// A number as people read it: whole numbers without a point, others to two places.
    public static func number(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        if r == r.rounded() && abs(r) < 1e15 { return String(Int(r)) }
        return String(r)
    }

    /// Text made safe inside HTML and SVG, in content and in attribute values.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
