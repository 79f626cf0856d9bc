import Catalog
import Foundation
import Imaging

/// The numbers behind `medcat leaderboard`: each run's results per group, the runs side by side
/// (`ComparisonTable`) for every protocol output, the protocol curves, and thumbnails.
public struct LeaderboardReport: Codable {
    /// One run's results for one protocol output, grouped overall, by modality, class and dataset.
    public struct Entry: Codable {
        public var run: String, model: String, variant: EvalStore.Variant
        public var level: String  // "mask" (2D) or "case" (3D, slices stacked)
        public var groups: [GroupResult]
    }

    /// Mean first-output Dice of one run in one modality against the number of points (`points`:
    /// the points1/3/5 protocols) or of clicks (`clicks`).
    public struct Curve: Codable {
        public var modality: String, run: String, kind: String, x: [Int], dice: [Double?]
    }

    /// A mask drawn with its prediction: the best, median or worst of a run's modality · class group.
    public struct Thumbnail {
        public var run: String, group: String, kind: String, dice: Double, maskID: Int64, png: Data
    }

    public var runs: [EvalStore.Run]
    public var baseline: String
    public var entries: [Entry]
    public var tables: [ComparisonTable]
    public var curves: [Curve]
    /// What the reader must know to read the comparisons right (intersections, mixed settings).
    public var notes: [String]
    public var thumbnails: [Thumbnail] = []

    enum CodingKeys: String, CodingKey { case runs, baseline, entries, tables, curves, notes }

    public static func build(catalog: Catalog, runs names: [String] = [], baseline: String? = nil, resamples: Int = 1000,
                             thumbnails: Bool = true) throws -> LeaderboardReport {
        let store = try EvalStore(catalog: catalog)
        let runs = try store.runs(names: names).filter { names.isEmpty ? $0.status == "finished" : true }
        guard !runs.isEmpty else { throw EvalError("no finished evaluation in the catalog: run medcat eval first") }
        let reference = try baseline.map { name in
            guard let i = runs.firstIndex(where: { $0.name == name }) else {
                throw EvalError("no evaluation named '\(name)' in this report; it has: \(runs.map(\.name).joined(separator: ", "))")
            }
            return i
        } ?? 0
        var masks = try runs.map { try store.maskScores(run: $0.id) }
        var cases = try runs.map { try store.caseScores(run: $0.id) }
        // Cases joined by a shared image (the same photograph in two datasets) are one unit.
        let joined = try catalog.caseGroups()
        for r in runs.indices {
            for i in masks[r].indices { masks[r][i].caseID = joined[masks[r][i].caseID] ?? masks[r][i].caseID }
            for i in cases[r].indices { cases[r][i].caseID = joined[cases[r][i].caseID] ?? cases[r][i].caseID }
        }
        var notes: [String] = []
        if masks.contains(where: { $0.contains { $0.key.detail == 0 } }) {
            // Runs recorded before prompts were keyed: masks are matched by id alone.
            for r in masks.indices { for i in masks[r].indices { masks[r][i].key.detail = 0 } }
            notes.append("Some runs predate recorded prompt keys: their masks are matched by mask alone, not by first prompt.")
        }
        if Set(runs.map(\.settings.tolerance)).count > 1 { notes.append("The runs use different NSD tolerances; NSD columns are not comparable.") }
        let finals = zip(runs, masks).map { run, items in items.filter { run.settings.isFinal($0.variant) } }
        let entries = zip(runs, zip(finals, cases)).flatMap { run, scores in
            Self.entries(run: run, masks: scores.0, cases: scores.1, resamples: resamples)
        }

        let names = runs.map(\.name)
        func tables(_ items: [[EvalStore.Scored]], level: String, groupings: [ComparisonTable.Grouping], metrics: [ComparisonTable.Metric],
                    resamples: Int) -> [ComparisonTable] {
            let byVariant = items.map { Dictionary(grouping: $0, by: \.variant) }
            let variants = Set(byVariant.flatMap(\.keys)).sorted()
            return variants.flatMap { v in
                groupings.flatMap { g in
                    metrics.map { m in
                        ComparisonTable.build(variant: v, level: level, grouping: g, metric: m, runs: names, baseline: reference,
                                              items: byVariant.map { $0[v] ?? [] }, resamples: resamples)
                    }
                }
            }
        }
        var all = tables(finals, level: "mask", groupings: ComparisonTable.Grouping.allCases, metrics: ComparisonTable.Metric.allCases,
                         resamples: resamples)
        all += tables(cases, level: "case", groupings: [.overall, .modalityClass], metrics: ComparisonTable.Metric.allCases, resamples: resamples)
        for t in all where t.grouping == .overall && t.metric == .dice {
            let left = t.rows.first?.leftOut ?? 0
            if left > 0 {
                notes.append("\(t.variant.label)\(t.level == "case" ? " (3D)" : ""): \(left) \(t.level == "case" ? "volumes" : "masks") scored by only "
                             + "some runs, or with other first prompts, are left out of the comparison (\(t.rows.first?.items ?? 0) compared).")
            }
        }

        // Curves: means only, on each modality's intersection, first output.
        let curveItems = masks.map { $0.filter { $0.variant.output == "first" && ($0.variant.proto.hasPrefix("points") || $0.variant.proto == "clicks") } }
        var curves: [Curve] = []
        let curveTables = tables(curveItems, level: "mask", groupings: [.modality], metrics: [.dice], resamples: 0)
        let modalities = Set(curveTables.flatMap { $0.rows.map { $0.group[0] } }).sorted()
        for kind in ["points", "clicks"] {
            let mine = curveTables.filter { kind == "clicks" ? $0.variant.proto == "clicks" : $0.variant.proto.hasPrefix("points") }
                .map { t in (x: kind == "clicks" ? t.variant.step : Int(t.variant.proto.dropFirst("points".count)) ?? 0, table: t) }
                .sorted { $0.x < $1.x }
            guard !mine.isEmpty else { continue }
            for modality in modalities {
                for (r, run) in names.enumerated() {
                    let dice = mine.map { $0.table.rows.first { $0.group == [modality] }?.cells[r]?.mean }
                    if dice.contains(where: { $0 != nil }) { curves.append(Curve(modality: modality, run: run, kind: kind, x: mine.map(\.x), dice: dice)) }
                }
            }
        }

        var thumbs: [Thumbnail] = []
        if thumbnails {
            let reader = SampleReader(catalog: catalog)
            for run in runs {
                let examples = try store.examples(run: run.id)
                let groups = try catalog.reportGroups(maskIDs: examples.map(\.maskID))
                for e in examples {
                    guard let g = groups[e.maskID] else { continue }
                    let (image, mask) = try reader.sample(maskID: e.maskID)
                    let rgb = Overlay.draw(pixels: try reader.contentPixels(image).map(Float.init), channels: image.channels, width: e.width,
                                           height: e.height, mask: e.prediction, truth: try reader.contentMask(mask, of: image))
                    thumbs.append(Thumbnail(run: run.name, group: g.modality + " · " + g.className, kind: e.kind, dice: e.dice, maskID: e.maskID,
                                            png: try Raster.encodePNG(rgb8: rgb, width: e.width, height: e.height)))
                }
            }
        }
        return LeaderboardReport(runs: runs, baseline: names[reference], entries: entries, tables: all, curves: curves, notes: notes,
                                 thumbnails: thumbs)
    }

    /// One run's results per protocol output and group, from its final-step mask scores and its 3D scores.
    static func entries(run: EvalStore.Run, masks: [EvalStore.Scored], cases: [EvalStore.Scored], resamples: Int) -> [Entry] {
        [("mask", masks), ("case", cases)].flatMap { level, items in
            Dictionary(grouping: items, by: \.variant).sorted { $0.key < $1.key }.map { variant, group in
                Entry(run: run.name, model: run.model, variant: variant, level: level, groups: Aggregation.groups(group, resamples: resamples))
            }
        }
    }

    /// The overall means of one run per protocol output, without intervals or comparisons: what
    /// `medcat eval` prints when it finishes.
    public static func overview(catalog: Catalog, run name: String) throws -> [Entry] {
        let store = try EvalStore(catalog: catalog)
        guard let run = try store.runs(names: [name]).first else { return [] }
        let masks = try store.maskScores(run: run.id).filter { run.settings.isFinal($0.variant) }
        return entries(run: run, masks: masks, cases: [], resamples: 0)
    }

    /// The output reports lead with: the box protocol's first output when evaluated, else the first one.
    public var primaryVariant: EvalStore.Variant? {
        let variants = Set(tables.filter { $0.level == "mask" }.map(\.variant))
        return variants.first { $0.proto == "box" && $0.output == "first" } ?? variants.filter { $0.output == "first" }.min() ?? variants.min()
    }

    public func table(_ variant: EvalStore.Variant, level: String = "mask", _ grouping: ComparisonTable.Grouping,
                      _ metric: ComparisonTable.Metric) -> ComparisonTable? {
        tables.first { $0.variant == variant && $0.level == level && $0.grouping == grouping && $0.metric == metric }
    }

    var tolerance: String {
        let t = Set(runs.map(\.settings.tolerance))
        return t.count == 1 ? "\(Self.number(t.first!, 1)) mm" : "per run"
    }

    /// File and folder names from group and run names: lower case, other characters as '-'.
    static func slug(_ s: String) -> String {
        String(s.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }).split(separator: "-").joined(separator: "-")
    }

    func thumbnailPath(_ t: Thumbnail) -> String {
        let r = runs.firstIndex { $0.name == t.run } ?? 0
        return "thumbs/\(r + 1)-\(Self.slug(t.run))/\(Self.slug(t.group))-\(t.kind)-\(t.maskID).png"
    }

    /// Writes every file of the report under `folder`; returns their paths inside it.
    @discardableResult
    public func write(to folder: URL) throws -> [String] {
        let all = try files()
        for (path, data) in all {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        return all.keys.sorted()
    }

    /// Every file of the report by path inside its folder: Markdown, HTML, CSV, JSON, the charts
    /// as SVG and the thumbnails as PNG.
    public func files() throws -> [String: Data] {
        var out: [String: Data] = [:]
        for (path, svg) in charts() { out[path] = Data(svg.utf8) }
        for t in thumbnails { out[thumbnailPath(t)] = t.png }
        out["leaderboard.md"] = Data(markdown().utf8)
        out["leaderboard.html"] = Data(try html().utf8)
        out["leaderboard.csv"] = Data(csv().utf8)
        out["comparison.csv"] = Data(comparisonCSV().utf8)
        out["leaderboard.json"] = try json()
        return out
    }
}

// MARK: text formats

extension LeaderboardReport {
    public static func number(_ v: Double?, _ digits: Int = 3) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "–" }

    static func withCI(_ m: MetricSummary, _ digits: Int = 3) -> String {
        guard let mean = m.mean else { return "–" }
        guard let lo = m.low, let hi = m.high else { return number(mean, digits) }
        return "\(number(mean, digits)) [\(number(lo, digits))–\(number(hi, digits))]"
    }

    static func signed(_ v: Double?) -> String { v.map { ($0 >= 0 ? "+" : "−") + String(format: "%.3f", abs($0)) } ?? "–" }

    static func pValue(_ p: Double?) -> String {
        guard let p else { return "–" }
        return p < 0.001 ? "<0.001" : String(format: "%.3f", p)
    }

    /// "0.812 [0.781–0.840]", or the mean alone where there are too few cases for an interval.
    static func cellText(_ c: ComparisonTable.Cell?) -> String {
        guard let c, let mean = c.mean else { return "" }
        guard let lo = c.low, let hi = c.high else { return number(mean) }
        return "\(number(mean)) [\(number(lo))–\(number(hi))]"
    }

    static func differenceText(_ d: ComparisonTable.Difference?) -> String {
        guard let d, d.mean != nil else { return "" }
        guard let lo = d.low, let hi = d.high else { return signed(d.mean) }
        return "\(signed(d.mean)) [\(signed(lo)), \(signed(hi))]"
    }

    static let intro = """
        Means over masks (3D: over volumes). Intervals are 95 % percentile bootstraps that resample cases \
        (a patient or volume; the image where a dataset has no patients), all masks of a case together; \
        groups with fewer than \(CaseStatistics.minimumCases) cases show the mean and counts without an interval or a test. \
        Δ is the paired difference from the reference run, masks matched one to one; p is a two-sided Wilcoxon \
        signed-rank test over the cases' mean differences, Holm-corrected across the rows of its table. Within \
        each row, runs are compared only on the masks all of them scored with the same first prompt. \
        ‘first’ is SAM's single-mask output, ‘oracle’ the best of its three multimask outputs.
        """

    /// Markdown of one comparison: group columns, counts, a column per run (the best in bold) and
    /// the difference and p-value of each run against the reference.
    func markdownTable(_ t: ComparisonTable) -> String {
        let others = t.runs.indices.filter { $0 != t.baseline }
        let present = t.runs.indices.filter { r in t.rows.contains { $0.cells[r] != nil } }
        let compared = others.filter { present.contains($0) }
        var header = t.grouping.columns + ["cases", t.level == "case" ? "volumes" : "masks"] + present.map { t.runs[$0] }
        if present.contains(t.baseline) { header += compared.flatMap { ["Δ \(t.runs[$0])", "p"] } }
        var md = "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for row in t.rows {
            let few = row.cases < CaseStatistics.minimumCases
            var cells = row.group + ["\(row.cases)\(few ? "†" : "")", "\(row.items)"]
            cells += present.map { r in
                let text = Self.cellText(row.cells[r])
                return r == row.best && !text.isEmpty ? "**\(text)**" : text
            }
            if present.contains(t.baseline) {
                cells += compared.flatMap { r in [Self.differenceText(row.cells[r]?.difference), Self.pValue(row.cells[r]?.difference?.pHolm)] }
            }
            md += "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
        }
        if t.rows.contains(where: { $0.cases < CaseStatistics.minimumCases }) {
            md += "\n† fewer than \(CaseStatistics.minimumCases) cases: too few for an interval or a test.\n"
        }
        return md
    }

    func stabilityTable(_ t: ComparisonTable) -> String? {
        let rows = t.rows.filter { $0.cells.contains { $0?.rankKept != nil } }
        guard !rows.isEmpty else { return nil }
        let present = t.runs.indices.filter { r in rows.contains { $0.cells[r] != nil } }
        let header = t.grouping.columns + present.map { t.runs[$0] }
        var md = "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for row in rows {
            let ranks = CaseStatistics.ranks(row.cells.map { $0?.mean })
            md += "| " + (row.group + present.map { r in
                row.cells[r].map { c in "\(ranks[r]) (\(c.rankKept.map { String(format: "%.0f %%", 100 * $0) } ?? "–"))" } ?? ""
            }).joined(separator: " | ") + " |\n"
        }
        return md
    }

    public func markdown() -> String {
        var md = "# medcat leaderboard\n\n" + Self.intro + " NSD at \(tolerance); HD95 in mm. Reference run: **\(baseline)**.\n\n"
        md += "## Runs\n\n| run | model | checkpoint | data | images | masks | protocols | seconds |\n|---|---|---|---|---|---|---|---|\n"
        for r in runs {
            md += "| \(r.name) | \(r.model) | \(r.shortHashes) | \(r.settings.dataDescription) | \(r.images) | \(r.masks) | "
                + "\(r.settings.protocols.map(\.rawValue).joined(separator: ", ")) | \(Self.number(r.seconds, 1)) |\n"
        }
        if !notes.isEmpty { md += "\n" + notes.map { "> " + $0 }.joined(separator: "\n>\n") + "\n" }
        guard let p = primaryVariant else { return md }
        md += "\n## \(p.label): modality × class\n\n"
        md += "![Dice by modality and class](\(Self.barChartPath(p)))\n\n"
        for m in ComparisonTable.Metric.allCases {
            if let t = table(p, .overall, m) { md += "### \(m.label), overall\n\n" + markdownTable(t) + "\n" }
            if let t = table(p, .modalityClass, m) { md += "### \(m.label) by modality and class\n\n" + markdownTable(t) + "\n" }
        }
        for m in ComparisonTable.Metric.allCases {
            if let t = table(p, .dataset, m) { md += "### \(m.label) by dataset\n\n" + markdownTable(t) + "\n" }
        }
        if let t = table(p, .modalityClass, .dice), let s = stabilityTable(t) {
            md += "### Ranking stability (Dice)\n\nRank in the row, and how often the run keeps it over the case bootstrap's resamples.\n\n" + s + "\n"
        }
        if !curves.isEmpty {
            md += "## Protocol curves\n\nMean first-output Dice after 1, 3 and 5 points, and after each corrective click, per modality.\n\n"
            for modality in Set(curves.map(\.modality)).sorted() { md += "![\(modality)](\(Self.curvePath(modality)))\n" }
            md += "\n"
        }
        if let bvp = boxVersusPoints() {
            md += "## Box versus points by class\n\nMean first-output Dice per prompt.\n\n![box versus points](charts/box-vs-points.svg)\n\n" + bvp + "\n"
        }
        let volumeTables = tables.filter { $0.level == "case" && $0.grouping == .modalityClass && $0.variant.output == "first" }
        if !volumeTables.isEmpty {
            md += "## 3D volumes (slices stacked per volume)\n\n"
            for t in volumeTables { md += "### \(t.variant.label), \(t.metric.label)\n\n" + markdownTable(t) + "\n" }
        }
        let others = Set(tables.filter { $0.level == "mask" }.map(\.variant)).subtracting([p]).sorted()
        if !others.isEmpty {
            md += "## Other protocols and outputs\n\n"
            for v in others {
                md += "<details><summary>\(v.label)</summary>\n\n"
                for m in ComparisonTable.Metric.allCases {
                    if let t = table(v, .modalityClass, m) { md += "#### \(m.label) by modality and class\n\n" + markdownTable(t) + "\n" }
                }
                md += "</details>\n\n"
            }
        }
        if !thumbnails.isEmpty {
            md += "## Best, median and worst masks\n\nPrediction in red, truth outlined in yellow; the caption gives the mask's Dice.\n\n"
            let groups = Set(thumbnails.map(\.group)).sorted()
            let runNames = runs.map(\.name).filter { r in thumbnails.contains { $0.run == r } }
            md += "| group | run | best | median | worst |\n|---|---|---|---|---|\n"
            for g in groups {
                for r in runNames {
                    let mine = thumbnails.filter { $0.group == g && $0.run == r }
                    guard !mine.isEmpty else { continue }
                    md += "| \(g) | \(r) | " + ["best", "median", "worst"].map { kind in
                        mine.first { $0.kind == kind }.map { "![\(kind)](\(thumbnailPath($0)))<br>\(Self.number($0.dice))" } ?? ""
                    }.joined(separator: " | ") + " |\n"
                }
            }
            md += "\n"
        }
        md += "## Each run\n\n| protocol | run | Dice | IoU | NSD | HD95 | class-mean Dice | masks |\n|---|---|---|---|---|---|---|---|\n"
        for e in entries where e.level == "mask" {
            guard let g = e.groups.first(where: { $0.kind == "overall" }) else { continue }
            md += "| \(e.variant.label) | \(e.run) | \(Self.withCI(g.dice)) | \(Self.withCI(g.iou)) | \(Self.withCI(g.nsd)) | \(Self.withCI(g.hd95, 2)) | "
                + "\(Self.withCI(g.classMeanDice)) | \(g.count) |\n"
        }
        return md
    }

    /// The first-output Dice tables by modality · class of the box and points protocols evaluated,
    /// in that order; nil unless there are two or more to set side by side.
    var promptTables: [ComparisonTable]? {
        let tabs = ["box", "points1", "points3", "points5"].compactMap { p in
            tables.first { $0.level == "mask" && $0.variant.proto == p && $0.variant.output == "first" && $0.grouping == .modalityClass && $0.metric == .dice }
        }
        return tabs.count > 1 ? tabs : nil
    }

    /// Rows of modality · class with, per run, the mean first-output Dice of the box and each points protocol.
    func boxVersusPoints() -> String? {
        guard let tabs = promptTables else { return nil }
        let protocols = tabs.map(\.variant.proto)
        let groups = Set(tabs.flatMap { $0.rows.map(\.group) }).sorted { $0.lexicographicallyPrecedes($1) }
        let names = runs.map(\.name)
        let header = ["modality", "class"] + names.flatMap { r in protocols.map { "\(r) · \($0)" } }
        var md = "| " + header.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: header.count) + "\n"
        for g in groups {
            md += "| " + (g + names.indices.flatMap { r in
                tabs.map { t in Self.number(t.rows.first { $0.group == g }?.cells[r]?.mean).replacingOccurrences(of: "–", with: "") }
            }).joined(separator: " | ") + " |\n"
        }
        return md
    }

    public func csv() -> String {
        var out = "run,model,protocol,step,output,level,group_kind,group,count,metric,mean,ci_low,ci_high,n,cases,undefined\n"
        for e in entries {
            for g in e.groups {
                for (metric, m) in [("dice", g.dice), ("iou", g.iou), ("nsd", g.nsd), ("hd95", g.hd95), ("class_mean_dice", g.classMeanDice), ("class_mean_nsd", g.classMeanNSD)] {
                    out += Self.csvLine([e.run, e.model, e.variant.proto, "\(e.variant.step)", e.variant.output, e.level, g.kind, g.name, "\(g.count)", metric,
                                         Self.csvNumber(m.mean), Self.csvNumber(m.low), Self.csvNumber(m.high), "\(m.n)", "\(m.cases)", "\(m.undefined)"])
                }
            }
        }
        return out
    }

    /// The comparisons in long form: one line per table row and run.
    public func comparisonCSV() -> String {
        var out = "level,protocol,step,output,grouping,group,metric,run,reference,cases,items,left_out,mean,ci_low,ci_high,n,best,rank_kept,"
            + "diff,diff_low,diff_high,diff_cases,p,p_holm\n"
        for t in tables {
            for row in t.rows {
                for (r, cell) in row.cells.enumerated() {
                    guard let c = cell else { continue }
                    let d = c.difference
                    out += Self.csvLine([t.level, t.variant.proto, "\(t.variant.step)", t.variant.output, t.grouping.rawValue, row.group.joined(separator: " · "),
                                         t.metric.rawValue, t.runs[r], t.runs[t.baseline], "\(row.cases)", "\(row.items)", "\(row.leftOut)",
                                         Self.csvNumber(c.mean), Self.csvNumber(c.low), Self.csvNumber(c.high), "\(c.n)", row.best == r ? "1" : "0",
                                         Self.csvNumber(c.rankKept), Self.csvNumber(d?.mean), Self.csvNumber(d?.low), Self.csvNumber(d?.high),
                                         d.map { "\($0.cases)" } ?? "", Self.csvNumber(d?.p), Self.csvNumber(d?.pHolm)])
                }
            }
        }
        return out
    }

    static func csvNumber(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }

    static func csvLine(_ cells: [String]) -> String {
        cells.map { s in s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
            .joined(separator: ",") + "\n"
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
