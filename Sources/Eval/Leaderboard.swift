import Catalog
import Foundation
import Imaging

/// The numbers behind `medcat leaderboard`: for each evaluation run and each protocol's final
/// output, the per-mask and per-3D-case results grouped overall, by modality, class and dataset.
public struct LeaderboardReport: Codable {
    public struct Entry: Codable {
        public var run: String, model: String, variant: EvalStore.Variant
        public var level: String  // "mask" (2D) or "case" (3D, slices stacked)
        public var groups: [GroupResult]
    }
    /// Mean Dice of the first output after each click of the `clicks` protocol.
    public struct ClickCurve: Codable { public var run: String, dice: [Double?] }
    public struct Thumbnail {
        public var run: String, variant: EvalStore.Variant, kind: String, dice: Double, maskID: Int64, label: String, png: Data
    }

    public var runs: [EvalStore.Run]
    public var entries: [Entry]
    public var clicks: [ClickCurve]
    public var thumbnails: [Thumbnail] = []

    enum CodingKeys: String, CodingKey { case runs, entries, clicks }

    public static func build(catalog: Catalog, runs names: [String] = [], resamples: Int = 1000, thumbnails: Bool = true) throws -> LeaderboardReport {
        let store = try EvalStore(catalog: catalog)
        let runs = try store.runs(names: names).filter { names.isEmpty ? $0.status == "finished" : true }
        guard !runs.isEmpty else { throw EvalError("no finished evaluation in the catalog: run medcat eval first") }
        var entries: [Entry] = [], curves: [ClickCurve] = [], thumbs: [Thumbnail] = []
        let reader = SampleReader(catalog: catalog)
        for run in runs {
            func isFinal(_ v: EvalStore.Variant) -> Bool { v.proto != EvalProtocol.clicks.rawValue || v.step == run.settings.clicks }
            let masks = try store.maskScores(run: run.id)
            for (variant, items) in Dictionary(grouping: masks, by: \.variant).sorted(by: { $0.key < $1.key }) where isFinal(variant) {
                entries.append(Entry(run: run.name, model: run.model, variant: variant, level: "mask", groups: Aggregation.groups(items, resamples: resamples)))
            }
            for (variant, items) in Dictionary(grouping: try store.caseScores(run: run.id), by: \.variant).sorted(by: { $0.key < $1.key }) {
                entries.append(Entry(run: run.name, model: run.model, variant: variant, level: "case", groups: Aggregation.groups(items, resamples: resamples)))
            }
            let clickItems = masks.filter { $0.variant.proto == EvalProtocol.clicks.rawValue && $0.variant.output == "first" }
            if !clickItems.isEmpty {
                let bySteps = Dictionary(grouping: clickItems, by: \.variant.step)
                curves.append(ClickCurve(run: run.name, dice: (1...run.settings.clicks).map { step in
                    Aggregation.summary((bySteps[step] ?? []).map(\.scores.dice), 0, 0).mean
                }))
            }
            if thumbnails {
                for e in try store.examples(run: run.id) where e.variant == primary(entries.filter { $0.run == run.name }.map(\.variant)) {
                    let (image, mask) = try reader.sample(maskID: e.maskID)
                    let (w, h) = (e.width, e.height)
                    let rgb = Overlay.draw(pixels: try reader.contentPixels(image).map(Float.init), channels: image.channels, width: w, height: h,
                                           mask: e.prediction, truth: try reader.contentMask(mask, of: image))
                    thumbs.append(Thumbnail(run: run.name, variant: e.variant, kind: e.kind, dice: e.dice, maskID: e.maskID,
                                            label: "\(image.modality) · \(mask.className) · \(image.dataset)",
                                            png: try Raster.encodePNG(rgb8: rgb, width: w, height: h)))
                }
            }
        }
        return LeaderboardReport(runs: runs, entries: entries, clicks: curves, thumbnails: thumbs)
    }

    /// The variant reports lead with: the box protocol's first output when evaluated, else the first one.
    static func primary(_ variants: [EvalStore.Variant]) -> EvalStore.Variant? {
        variants.first { $0.proto == "box" && $0.output == "first" } ?? variants.filter { $0.output == "first" }.min() ?? variants.min()
    }

    var primaryVariant: EvalStore.Variant? { Self.primary(entries.filter { $0.level == "mask" }.map(\.variant)) }

    /// Entries of one level, best Dice first within each variant.
    func ranked(level: String, kind: String) -> [(Entry, GroupResult)] {
        entries.filter { $0.level == level }.flatMap { e in e.groups.filter { $0.kind == kind }.map { (e, $0) } }
            .sorted { a, b in
                (a.0.variant, a.1.name) == (b.0.variant, b.1.name) ? (a.1.dice.mean ?? -1) > (b.1.dice.mean ?? -1)
                    : (a.0.variant, a.1.name) < (b.0.variant, b.1.name)
            }
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

    var tolerance: String {
        let t = Set(runs.map(\.settings.tolerance))
        return t.count == 1 ? "\(Self.number(t.first!, 1)) mm" : "per run"
    }

    public func markdown() -> String {
        var md = "# medcat leaderboard\n\n"
        md += "Means over masks with 95 % bootstrap intervals; NSD at \(tolerance); HD95 in mm. "
        md += "‘first’ is SAM's single-mask output, ‘oracle’ the best of its three multimask outputs. "
        md += "Undefined scores (both masks empty) are left out and counted.\n\n"
        md += "## Runs\n\n| run | model | checkpoint | data | images | masks | protocols | seconds |\n|---|---|---|---|---|---|---|---|\n"
        for r in runs {
            md += "| \(r.name) | \(r.model) | \(r.checkpointHash.prefix(12)) | \(r.settings.dataDescription) | \(r.images) | \(r.masks) | "
                + "\(r.settings.protocols.map(\.rawValue).joined(separator: ", ")) | \(Self.number(r.seconds, 1)) |\n"
        }
        md += "\n## Overall\n\n| protocol | run | Dice | IoU | NSD | HD95 | class-mean Dice | masks |\n|---|---|---|---|---|---|---|---|\n"
        for (e, g) in ranked(level: "mask", kind: "overall") {
            md += "| \(e.variant.label) | \(e.run) | \(Self.withCI(g.dice)) | \(Self.withCI(g.iou)) | \(Self.withCI(g.nsd)) | \(Self.withCI(g.hd95, 2)) | \(Self.withCI(g.classMeanDice)) | \(g.count) |\n"
        }
        if let p = primaryVariant {
            for kind in ["modality", "class", "dataset"] {
                md += "\n## By \(kind) (\(p.label))\n\n| \(kind) | run | Dice | IoU | NSD | HD95 | masks |\n|---|---|---|---|---|---|---|\n"
                for (e, g) in ranked(level: "mask", kind: kind) where e.variant == p {
                    md += "| \(g.name) | \(e.run) | \(Self.withCI(g.dice)) | \(Self.withCI(g.iou)) | \(Self.withCI(g.nsd)) | \(Self.withCI(g.hd95, 2)) | \(g.count) |\n"
                }
            }
        }
        let cases = ranked(level: "case", kind: "class")
        if !cases.isEmpty {
            md += "\n## 3D cases by class (slices stacked per volume)\n\n| protocol | class | run | Dice | NSD | HD95 | cases |\n|---|---|---|---|---|---|---|\n"
            for (e, g) in cases where e.variant.output == "first" {
                md += "| \(e.variant.label) | \(g.name) | \(e.run) | \(Self.withCI(g.dice)) | \(Self.withCI(g.nsd)) | \(Self.withCI(g.hd95, 2)) | \(g.count) |\n"
            }
        }
        if !clicks.isEmpty {
            let n = clicks.map(\.dice.count).max()!
            md += "\n## Dice after each click (first output)\n\n| run | " + (1...n).map { "\($0)" }.joined(separator: " | ") + " |\n|---|"
            md += String(repeating: "---|", count: n) + "\n"
            for c in clicks { md += "| \(c.run) | " + c.dice.map { Self.number($0) }.joined(separator: " | ") + " |\n" }
        }
        return md
    }

    public func csv() -> String {
        var out = "run,model,protocol,step,output,level,group_kind,group,count,metric,mean,ci_low,ci_high,n,undefined\n"
        func field(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        for e in entries {
            for g in e.groups {
                for (metric, m) in [("dice", g.dice), ("iou", g.iou), ("nsd", g.nsd), ("hd95", g.hd95), ("class_mean_dice", g.classMeanDice), ("class_mean_nsd", g.classMeanNSD)] {
                    let cells = [e.run, e.model, e.variant.proto, "\(e.variant.step)", e.variant.output, e.level, g.kind, g.name, "\(g.count)", metric,
                                 m.mean.map { "\($0)" } ?? "", m.low.map { "\($0)" } ?? "", m.high.map { "\($0)" } ?? "", "\(m.n)", "\(m.undefined)"]
                    out += cells.map(field).joined(separator: ",") + "\n"
                }
            }
        }
        return out
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
