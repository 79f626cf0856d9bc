import Hashing

/// Runs side by side for one protocol output, level, grouping and metric: a row per group, a column
/// per run, and for each run against the reference run the paired difference with its case-bootstrap
/// interval and a Wilcoxon signed-rank test over cases, Holm-corrected across the rows. Rows under
/// `CaseStatistics.minimumCases` cases get means and counts only: no interval and no test.
///
/// Within a row, runs are compared only on the items every run present there scored with the same
/// first prompt (their intersection); `leftOut` says how much a run had beyond it.
public struct ComparisonTable: Codable, Sendable {
    public enum Grouping: String, Codable, CaseIterable, Sendable {
        case overall, modality, modalityClass = "modality · class", dataset

        public var columns: [String] {
            switch self {
            case .overall: []
            case .modality: ["modality"]
            case .modalityClass: ["modality", "class"]
            case .dataset: ["dataset"]
            }
        }

        func key(_ s: EvalStore.Scored) -> [String] {
            switch self {
            case .overall: []
            case .modality: [s.modality]
            case .modalityClass: [s.modality, s.className]
            case .dataset: [s.dataset]
            }
        }
    }

    public enum Metric: String, Codable, CaseIterable, Sendable {
        case dice, nsd
        var path: KeyPath<SegmentationScores, Double?> { self == .dice ? \.dice : \.nsd }
        public var label: String { self == .dice ? "Dice" : "NSD" }
    }

    public struct Row: Codable, Sendable {
        public var group: [String]
        /// Cases and items the row compares (the intersection), and the most items any run has outside it.
        public var cases: Int, items: Int, leftOut: Int
        /// One per run; nil where the run scored nothing in this group.
        public var cells: [Cell?]
        /// The run with the highest mean, where two or more runs are present.
        public var best: Int?
        enum CodingKeys: String, CodingKey { case group, cases, items, leftOut = "left_out", cells, best }
    }

    public struct Cell: Codable, Sendable {
        public var mean: Double?, low: Double?, high: Double?
        /// Values averaged (undefined scores are left out).
        public var n: Int
        /// How often the run keeps its rank in this row under the case bootstrap.
        public var rankKept: Double?
        /// Against the reference run; nil for the reference itself.
        public var difference: Difference?
        enum CodingKeys: String, CodingKey { case mean, low, high, n, rankKept = "rank_kept", difference }
    }

    public struct Difference: Codable, Sendable {
        public var mean: Double?, low: Double?, high: Double?
        /// Cases with a defined difference: the Wilcoxon test's sample size.
        public var cases: Int
        public var p: Double?, pHolm: Double?
        enum CodingKeys: String, CodingKey { case mean, low, high, cases, p, pHolm = "p_holm" }
    }

    public var variant: EvalStore.Variant
    public var level: String
    public var grouping: Grouping
    public var metric: Metric
    public var runs: [String]
    public var baseline: Int
    public var rows: [Row]

    /// `items[r]` are run r's scores of this variant and level.
    public static func build(variant: EvalStore.Variant, level: String, grouping: Grouping, metric: Metric, runs: [String], baseline: Int,
                             items: [[EvalStore.Scored]], resamples: Int) -> ComparisonTable {
        var byRow: [[String]: [[EvalStore.Scored]]] = [:]
        for (r, list) in items.enumerated() {
            for item in list { byRow[grouping.key(item), default: Array(repeating: [], count: runs.count)][r].append(item) }
        }
        var rows = byRow.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { key in
            row(key, byRow[key]!, seedName: "\(variant.label)/\(level)/\(grouping.rawValue)/\(key.joined(separator: "/"))/\(metric.rawValue)",
                metric: metric, baseline: baseline, resamples: resamples)
        }
        for r in runs.indices where r != baseline {
            let adjusted = CaseStatistics.holm(rows.map { $0.cells[r]?.difference?.p })
            for i in rows.indices where adjusted[i] != nil { rows[i].cells[r]?.difference?.pHolm = adjusted[i] }
        }
        return ComparisonTable(variant: variant, level: level, grouping: grouping, metric: metric, runs: runs, baseline: baseline, rows: rows)
    }

    static func row(_ key: [String], _ perRun: [[EvalStore.Scored]], seedName: String, metric: Metric, baseline: Int, resamples: Int) -> Row {
        let seed = StableHash.fnv1a(seedName)
        let present = perRun.indices.filter { !perRun[$0].isEmpty }
        let keySets = present.map { Set(perRun[$0].map(\.key)) }
        let common = keySets.dropFirst().reduce(keySets[0]) { $0.intersection($1) }
        // In the runs' own item order (the store's key order), never a dictionary's: sums, and so
        // the report's last digits, come out the same every time.
        var values: [Int: [(key: EvalStore.ItemKey, caseID: Int64, value: Double?)]] = [:]
        for r in present {
            values[r] = perRun[r].filter { common.contains($0.key) }.map { ($0.key, $0.caseID, $0.scores[keyPath: metric.path]) }
        }
        let caseIDs = Set(values.values.flatMap { $0.map(\.caseID) }).sorted()
        func series(_ pairs: [(caseID: Int64, value: Double?)]) -> CaseStatistics.Cases {
            var c = CaseStatistics.Cases(caseIDs: caseIDs)
            for (id, v) in pairs { if let v { c.add(v, case: id) } }
            return c
        }
        let runSeries = Dictionary(uniqueKeysWithValues: present.map { r in (r, series(values[r, default: []].map { ($0.caseID, $0.value) })) })
        let kept = CaseStatistics.rankStability(present.map { runSeries[$0]! }, resamples: resamples, seed: seed)
        var cells = [Cell?](repeating: nil, count: perRun.count)
        for (i, r) in present.enumerated() {
            let s = runSeries[r]!
            let interval = CaseStatistics.interval(s, resamples: resamples, seed: seed)
            var cell = Cell(mean: s.mean, low: interval?.low, high: interval?.high, n: s.values, rankKept: kept?[i])
            if r != baseline, let reference = values[baseline], let mine = values[r] {
                let base = Dictionary(uniqueKeysWithValues: reference.map { ($0.key, $0.value) })
                let d = series(mine.compactMap { v in
                    guard let a = v.value, let b = base[v.key] ?? nil else { return nil }
                    return (v.caseID, a - b)
                })
                let dInterval = CaseStatistics.interval(d, resamples: resamples, seed: seed)
                let perCase = d.caseMeans.compactMap { $0 }
                cell.difference = Difference(mean: d.mean, low: dInterval?.low, high: dInterval?.high, cases: perCase.count,
                                             p: perCase.count >= CaseStatistics.minimumCases ? CaseStatistics.wilcoxon(perCase) : nil)
            }
            cells[r] = cell
        }
        let ranked = present.filter { cells[$0]?.mean != nil }
        let best = ranked.count > 1 ? ranked.max { (cells[$0]!.mean!, -$0) < (cells[$1]!.mean!, -$1) } : nil
        return Row(group: key, cases: caseIDs.count, items: common.count, leftOut: keySets.map { $0.count - common.count }.max() ?? 0,
                   cells: cells, best: best)
    }
}
