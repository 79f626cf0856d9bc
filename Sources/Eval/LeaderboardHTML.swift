import Foundation

/// The leaderboard as one self-contained HTML page: sortable tables, SVG charts per modality and
/// per class, the click curve, and overlay thumbnails of each run's best and worst masks (inline
/// PNG data), with no script or style fetched from anywhere.
extension LeaderboardReport {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    public func html() -> String {
        let runNames = runs.map(\.name)
        func color(_ run: String) -> String { Self.palette[(runNames.firstIndex(of: run) ?? 0) % Self.palette.count] }
        var body = "<h1>medcat leaderboard</h1>\n<p>Means over masks with 95&nbsp;% bootstrap intervals; NSD at \(Self.escape(tolerance)); HD95 in mm. "
        body += "<i>first</i> is SAM's single-mask output, <i>oracle</i> the best of its three multimask outputs. Click a column to sort.</p>\n"
        body += "<p>" + runNames.map { "<span class=key style=\"background:\(color($0))\"></span>\(Self.escape($0))" }.joined(separator: " &nbsp; ") + "</p>\n"

        body += "<h2>Runs</h2>\n" + table(["run", "model", "checkpoint", "data", "images", "masks", "protocols", "seconds"], runs.map { r in
            [.text(r.name), .text(r.model), .text(String(r.checkpointHash.prefix(12))), .text(r.settings.dataDescription), .number(Double(r.images), "\(r.images)"),
             .number(Double(r.masks), "\(r.masks)"), .text(r.settings.protocols.map(\.rawValue).joined(separator: ", ")),
             .number(r.seconds ?? 0, Self.number(r.seconds, 1))]
        })
        body += "<h2>Overall</h2>\n" + table(["protocol", "run", "Dice", "IoU", "NSD", "HD95", "class-mean Dice", "masks"],
                                             ranked(level: "mask", kind: "overall").map { e, g in
            [.text(e.variant.label), .text(e.run), metric(g.dice), metric(g.iou), metric(g.nsd), metric(g.hd95, 2), metric(g.classMeanDice),
             .number(Double(g.count), "\(g.count)")]
        })
        if let p = primaryVariant {
            for kind in ["modality", "class", "dataset"] {
                let rows = ranked(level: "mask", kind: kind).filter { $0.0.variant == p }
                body += "<h2>By \(kind) <small>(\(Self.escape(p.label)))</small></h2>\n"
                if kind != "dataset" { body += barChart(rows.map { ($0.1.name, $0.0.run, $0.1.dice) }, color: color) }
                body += table([kind, "run", "Dice", "IoU", "NSD", "HD95", "masks"], rows.map { e, g in
                    [.text(g.name), .text(e.run), metric(g.dice), metric(g.iou), metric(g.nsd), metric(g.hd95, 2), .number(Double(g.count), "\(g.count)")]
                })
            }
        }
        let cases = ranked(level: "case", kind: "class").filter { $0.0.variant.output == "first" }
        if !cases.isEmpty {
            body += "<h2>3D cases by class <small>(slices stacked per volume)</small></h2>\n"
            body += table(["protocol", "class", "run", "Dice", "NSD", "HD95", "cases"], cases.map { e, g in
                [.text(e.variant.label), .text(g.name), .text(e.run), metric(g.dice), metric(g.nsd), metric(g.hd95, 2), .number(Double(g.count), "\(g.count)")]
            })
        }
        if !clicks.isEmpty { body += "<h2>Dice after each click</h2>\n" + clickChart(color: color) }
        if !thumbnails.isEmpty {
            body += "<h2>Best and worst masks <small>(prediction red, truth outlined yellow)</small></h2>\n"
            for run in runNames {
                let mine = thumbnails.filter { $0.run == run }
                guard !mine.isEmpty else { continue }
                body += "<h3>\(Self.escape(run)) · \(Self.escape(mine[0].variant.label))</h3>\n<div class=thumbs>\n"
                for t in mine.sorted(by: { ($0.kind, -$0.dice) < ($1.kind, -$1.dice) }) {
                    body += "<figure><img alt=\"mask \(t.maskID)\" src=\"data:image/png;base64,\(t.png.base64EncodedString())\">"
                    body += "<figcaption>\(t.kind) · Dice \(Self.number(t.dice)) · \(Self.escape(t.label)) · mask \(t.maskID)</figcaption></figure>\n"
                }
                body += "</div>\n"
            }
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>medcat leaderboard</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
            table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
            th{cursor:pointer;background:#f4f4f4;user-select:none}th:hover{background:#e8e8e8}td:nth-child(-n+2){text-align:left}
            .ci{color:#888;font-size:85%}.key{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
            .thumbs{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:200px}figure img{width:200px;image-rendering:pixelated}
            figcaption{font-size:12px;color:#555}small{color:#777;font-weight:normal}
            </style></head><body>
            \(body)
            <script>
            document.querySelectorAll('table.sortable th').forEach(function (th, _) {
              th.addEventListener('click', function () {
                var table = th.closest('table'), tbody = table.tBodies[0], col = Array.prototype.indexOf.call(th.parentNode.children, th);
                var down = th.dataset.dir !== 'down'; th.dataset.dir = down ? 'down' : 'up';
                var rows = Array.prototype.slice.call(tbody.rows);
                rows.sort(function (a, b) {
                  var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
                  var nx = parseFloat(x), ny = parseFloat(y), r;
                  if (!isNaN(nx) && !isNaN(ny)) r = nx - ny; else r = String(x).localeCompare(String(y));
                  return down ? -r : r;
                });
                rows.forEach(function (r) { tbody.appendChild(r); });
              });
            });
            </script>
            </body></html>

            """
    }

    enum Cell { case text(String), number(Double, String), html(Double?, String) }

    func metric(_ m: MetricSummary, _ digits: Int = 3) -> Cell {
        guard let mean = m.mean else { return .html(nil, "–") }
        let ci = m.low.map { "<span class=ci> [\(Self.number($0, digits))–\(Self.number(m.high, digits))]</span>" } ?? ""
        return .html(mean, Self.number(mean, digits) + ci)
    }

    func table(_ header: [String], _ rows: [[Cell]]) -> String {
        var t = "<table class=sortable><thead><tr>" + header.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for row in rows {
            t += "<tr>" + row.map { cell in
                switch cell {
                case let .text(s): "<td data-v=\"\(Self.escape(s))\">\(Self.escape(s))</td>"
                case let .number(v, s): "<td data-v=\"\(v)\">\(Self.escape(s))</td>"
                case let .html(v, s): "<td data-v=\"\(v.map { "\($0)" } ?? "")\">\(s)</td>"
                }
            }.joined() + "</tr>\n"
        }
        return t + "</tbody></table>\n"
    }

    /// Horizontal Dice bars per group and run, with the bootstrap interval as a whisker.
    func barChart(_ rows: [(group: String, run: String, dice: MetricSummary)], color: (String) -> String) -> String {
        let groups = rows.map(\.group).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let runsPerGroup = max(1, Set(rows.map(\.run)).count), bar = 12, gap = 8, left = 170, width = 420
        let height = groups.count * (runsPerGroup * bar + gap) + 24
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + width + 60)\" height=\"\(height)\" font-size=\"11\">\n"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            let x = left + Int(tick * Double(width))
            svg += "<line x1=\"\(x)\" y1=\"0\" x2=\"\(x)\" y2=\"\(height - 16)\" stroke=\"#ddd\"/><text x=\"\(x)\" y=\"\(height - 4)\" text-anchor=\"middle\">\(tick)</text>\n"
        }
        var y = 0
        for g in groups {
            let mine = rows.filter { $0.group == g }
            svg += "<text x=\"\(left - 6)\" y=\"\(y + mine.count * bar / 2 + 4)\" text-anchor=\"end\">\(Self.escape(g))</text>\n"
            for r in mine {
                let w = Int((r.dice.mean ?? 0) * Double(width))
                svg += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(w)\" height=\"\(bar - 2)\" fill=\"\(color(r.run))\"><title>\(Self.escape(r.run)): Dice \(Self.number(r.dice.mean))</title></rect>\n"
                if let lo = r.dice.low, let hi = r.dice.high {
                    let (a, b) = (left + Int(lo * Double(width)), left + Int(hi * Double(width)))
                    svg += "<line x1=\"\(a)\" y1=\"\(y + bar / 2 - 1)\" x2=\"\(b)\" y2=\"\(y + bar / 2 - 1)\" stroke=\"#333\"/>\n"
                }
                y += bar
            }
            y += gap
        }
        return svg + "</svg>\n"
    }

    /// Mean Dice against the number of clicks, one line per run.
    func clickChart(color: (String) -> String) -> String {
        let n = clicks.map(\.dice.count).max() ?? 1, (w, h, left, bottom) = (420, 200, 40, 24)
        func x(_ k: Int) -> Int { left + (n == 1 ? 0 : (k - 1) * w / (n - 1)) }
        func y(_ d: Double) -> Int { Int(Double(h) * (1 - d)) + 6 }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(left + w + 20)\" height=\"\(h + bottom + 10)\" font-size=\"11\">\n"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            svg += "<line x1=\"\(left)\" y1=\"\(y(tick))\" x2=\"\(left + w)\" y2=\"\(y(tick))\" stroke=\"#ddd\"/><text x=\"\(left - 4)\" y=\"\(y(tick) + 4)\" text-anchor=\"end\">\(tick)</text>\n"
        }
        for k in 1...n { svg += "<text x=\"\(x(k))\" y=\"\(h + bottom)\" text-anchor=\"middle\">\(k)</text>\n" }
        for c in clicks {
            let pts = c.dice.enumerated().compactMap { k, d in d.map { "\(x(k + 1)),\(y($0))" } }
            svg += "<polyline fill=\"none\" stroke=\"\(color(c.run))\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"><title>\(Self.escape(c.run))</title></polyline>\n"
        }
        return svg + "</svg>\n"
    }
}
