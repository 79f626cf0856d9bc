import Foundation

/// The report's charts as standalone SVG files (the Markdown links them, the HTML page shows them):
/// Dice per modality · class with intervals, the protocol curves per modality, and box against
/// points per class. One colour per run throughout.
extension LeaderboardReport {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]

    func color(_ run: String) -> String { Self.palette[(runs.firstIndex { $0.name == run } ?? 0) % Self.palette.count] }

    static func barChartPath(_ v: EvalStore.Variant) -> String { "charts/dice-\(slug(v.label)).svg" }
    static func curvePath(_ modality: String) -> String { "charts/curves-\(slug(modality)).svg" }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func charts() -> [(path: String, svg: String)] {
        var out: [(String, String)] = []
        if let p = primaryVariant, let t = table(p, .modalityClass, .dice) { out.append((Self.barChartPath(p), barChart(t))) }
        for modality in Set(curves.map(\.modality)).sorted() { out.append((Self.curvePath(modality), curveChart(modality))) }
        if let chart = boxVersusPointsChart() { out.append(("charts/box-vs-points.svg", chart)) }
        return out
    }

    static func svgOpen(width: Int, height: Int, title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" "
            + "font-family=\"sans-serif\" font-size=\"11\"><title>\(escape(title))</title><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
    }

    /// A legend row of run colours at the top of a chart.
    func legend(x: Int, y: Int, runs names: [String]) -> String {
        var svg = "", cx = x
        for name in names {
            svg += "<rect x=\"\(cx)\" y=\"\(y - 9)\" width=\"10\" height=\"10\" fill=\"\(color(name))\"/>"
            svg += "<text x=\"\(cx + 14)\" y=\"\(y)\">\(Self.escape(name))</text>\n"
            cx += 24 + 7 * name.count
        }
        return svg
    }

    /// Horizontal Dice bars per row and run, the case-bootstrap interval as a whisker.
    func barChart(_ t: ComparisonTable) -> String {
        let present = t.runs.indices.filter { r in t.rows.contains { $0.cells[r]?.mean != nil } }
        let bar = 12, gap = 8, left = 220, width = 420, top = 24
        let height = top + t.rows.count * (present.count * bar + gap) + 24
        var svg = Self.svgOpen(width: left + width + 40, height: height, title: "\(t.variant.label): Dice by modality and class")
        svg += legend(x: left, y: 14, runs: present.map { t.runs[$0] })
        let bottom = height - 18
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            let x = left + Int(tick * Double(width))
            svg += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(bottom)\" stroke=\"#ddd\"/><text x=\"\(x)\" y=\"\(height - 4)\" text-anchor=\"middle\">\(tick)</text>\n"
        }
        var y = top
        for row in t.rows {
            svg += "<text x=\"\(left - 6)\" y=\"\(y + present.count * bar / 2 + 4)\" text-anchor=\"end\">\(Self.escape(row.group.joined(separator: " · ")))</text>\n"
            for r in present {
                if let c = row.cells[r], let mean = c.mean {
                    let w = Int(mean * Double(width))
                    svg += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(w)\" height=\"\(bar - 2)\" fill=\"\(color(t.runs[r]))\">"
                        + "<title>\(Self.escape(t.runs[r])): \(Self.cellText(c))</title></rect>\n"
                    if let lo = c.low, let hi = c.high {
                        let (a, b) = (left + Int(lo * Double(width)), left + Int(hi * Double(width)))
                        svg += "<line x1=\"\(a)\" y1=\"\(y + bar / 2 - 1)\" x2=\"\(b)\" y2=\"\(y + bar / 2 - 1)\" stroke=\"#333\"/>\n"
                    }
                }
                y += bar
            }
            y += gap
        }
        return svg + "</svg>\n"
    }

    /// Two panels for one modality: Dice against points (1, 3, 5) and against clicks, a line per run.
    func curveChart(_ modality: String) -> String {
        let mine = curves.filter { $0.modality == modality }
        let panels = ["points", "clicks"].filter { k in mine.contains { $0.kind == k } }
        let (w, h, left, top, gap) = (300, 200, 40, 30, 50)
        var svg = Self.svgOpen(width: left + panels.count * (w + gap), height: top + h + 44, title: "\(modality): Dice against prompts")
        svg += legend(x: left, y: 14, runs: runs.map(\.name).filter { r in mine.contains { $0.run == r } })
        func y(_ d: Double) -> Int { top + Int(Double(h) * (1 - d)) }
        for (i, kind) in panels.enumerated() {
            let x0 = left + i * (w + gap)
            let xs = Array(Set(mine.filter { $0.kind == kind }.flatMap(\.x))).sorted()
            func x(_ v: Int) -> Int { xs.count == 1 ? x0 + w / 2 : x0 + (xs.firstIndex(of: v) ?? 0) * w / (xs.count - 1) }
            for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
                svg += "<line x1=\"\(x0)\" y1=\"\(y(tick))\" x2=\"\(x0 + w)\" y2=\"\(y(tick))\" stroke=\"#ddd\"/>"
                svg += "<text x=\"\(x0 - 4)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(tick)</text>\n"
            }
            for v in xs { svg += "<text x=\"\(x(v))\" y=\"\(top + h + 16)\" text-anchor=\"middle\">\(v)</text>\n" }
            svg += "<text x=\"\(x0 + w / 2)\" y=\"\(top + h + 34)\" text-anchor=\"middle\">\(kind == "points" ? "points" : "clicks") · \(Self.escape(modality))</text>\n"
            for c in mine where c.kind == kind {
                let pts = zip(c.x, c.dice).compactMap { v, d in d.map { "\(x(v)),\(y($0))" } }
                svg += "<polyline fill=\"none\" stroke=\"\(color(c.run))\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"><title>\(Self.escape(c.run))</title></polyline>\n"
                for p in pts {
                    let xy = p.split(separator: ",")
                    svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color(c.run))\"/>"
                }
                svg += "\n"
            }
        }
        return svg + "</svg>\n"
    }

    /// A dot per run and prompt on each modality · class row: square for the box, circles growing
    /// with the number of points.
    func boxVersusPointsChart() -> String? {
        guard let tabs = promptTables else { return nil }
        let groups = Set(tabs.flatMap { $0.rows.map(\.group) }).sorted { $0.lexicographicallyPrecedes($1) }
        let (left, width, rowH, top) = (220, 420, 18, 40)
        let height = top + groups.count * rowH + 30
        var svg = Self.svgOpen(width: left + width + 40, height: height, title: "Box versus points: first-output Dice by class")
        svg += legend(x: left, y: 14, runs: runs.map(\.name))
        svg += "<text x=\"\(left)\" y=\"32\">■ box · ● 1 point · larger ● 3 and 5 points</text>\n"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            let x = left + Int(tick * Double(width))
            svg += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(height - 24)\" stroke=\"#ddd\"/><text x=\"\(x)\" y=\"\(height - 10)\" text-anchor=\"middle\">\(tick)</text>\n"
        }
        for (i, g) in groups.enumerated() {
            let y = top + i * rowH + rowH / 2
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(Self.escape(g.joined(separator: " · ")))</text>\n"
            for t in tabs {
                guard let row = t.rows.first(where: { $0.group == g }) else { continue }
                for (r, cell) in row.cells.enumerated() {
                    guard let mean = cell?.mean else { continue }
                    let x = left + Int(mean * Double(width)), c = color(t.runs[r])
                    let tip = "<title>\(Self.escape(t.runs[r])) · \(t.variant.proto): \(Self.number(mean))</title>"
                    if t.variant.proto == "box" {
                        svg += "<rect x=\"\(x - 4)\" y=\"\(y - 4)\" width=\"8\" height=\"8\" fill=\"\(c)\">\(tip)</rect>"
                    } else {
                        let radius = 2 + (Int(t.variant.proto.dropFirst("points".count)) ?? 1) / 2
                        svg += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"\(radius + 1)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"1.5\">\(tip)</circle>"
                    }
                }
            }
            svg += "\n"
        }
        return svg + "</svg>\n"
    }
}
