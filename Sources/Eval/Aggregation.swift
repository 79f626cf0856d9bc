import Hashing
import Prompts

/// A metric's mean over the defined values with its 95 % percentile-bootstrap interval.
public struct MetricSummary: Codable, Equatable, Sendable {
    public var mean: Double?, low: Double?, high: Double?
    /// Values averaged, and values left out because they are undefined (both masks empty).
    public var n: Int, undefined: Int
}

/// One row of a report: a group of masks (or 3D cases) and its four metrics, averaged over the
/// masks and over the classes (each class's mean counted once).
public struct GroupResult: Codable, Equatable, Sendable {
    public var kind: String  // overall, modality, class, dataset
    public var name: String
    public var count: Int, classes: Int
    public var dice: MetricSummary, iou: MetricSummary, nsd: MetricSummary, hd95: MetricSummary
    public var classMeanDice: MetricSummary, classMeanNSD: MetricSummary

    enum CodingKeys: String, CodingKey {
        case kind, name, count, classes, dice, iou, nsd, hd95, classMeanDice = "class_mean_dice", classMeanNSD = "class_mean_nsd"
    }
}

public enum Aggregation {
    public static let kinds = ["overall", "modality", "class", "dataset"]

    /// Groups scored items overall and by modality, class and dataset. The bootstrap draws from a
    /// generator seeded by the group's name, so a report is the same every time it is made.
    public static func groups(_ items: [EvalStore.Scored], resamples: Int = 1000) -> [GroupResult] {
        var out: [GroupResult] = []
        for kind in kinds {
            let key: (EvalStore.Scored) -> String = switch kind {
            case "modality": { $0.modality }
            case "class": { $0.className }
            case "dataset": { $0.dataset }
            default: { _ in "all" }
            }
            for (name, members) in Dictionary(grouping: items, by: key).sorted(by: { $0.key < $1.key }) {
                let seed = StableHash.fnv1a(kind + "/" + name)
                let byClass = Dictionary(grouping: members, by: \.className).sorted { $0.key < $1.key }.map(\.value)
                out.append(GroupResult(
                    kind: kind, name: name, count: members.count, classes: byClass.count,
                    dice: summary(members.map(\.scores.dice), resamples, seed),
                    iou: summary(members.map(\.scores.iou), resamples, seed &+ 1),
                    nsd: summary(members.map(\.scores.nsd), resamples, seed &+ 2),
                    hd95: summary(members.map(\.scores.hd95), resamples, seed &+ 3),
                    classMeanDice: classMean(byClass.map { $0.map(\.scores.dice) }, resamples, seed &+ 4),
                    classMeanNSD: classMean(byClass.map { $0.map(\.scores.nsd) }, resamples, seed &+ 5)))
            }
        }
        return out
    }

    public static func summary(_ values: [Double?], _ resamples: Int, _ seed: UInt64) -> MetricSummary {
        let v = values.compactMap { $0 }
        return interval(of: v.isEmpty ? [] : [v], resamples: resamples, seed: seed, undefined: values.count - v.count)
    }

    /// Mean of the per-class means; the bootstrap resamples within each class (stratified).
    static func classMean(_ perClass: [[Double?]], _ resamples: Int, _ seed: UInt64) -> MetricSummary {
        let strata = perClass.map { $0.compactMap { $0 } }.filter { !$0.isEmpty }
        return interval(of: strata, resamples: resamples, seed: seed, undefined: perClass.reduce(0) { $0 + $1.filter { $0 == nil }.count })
    }

    /// Mean over strata of each stratum's mean, with the 2.5th and 97.5th percentiles of that
    /// statistic over `resamples` bootstrap draws.
    static func interval(of strata: [[Double]], resamples: Int, seed: UInt64, undefined: Int) -> MetricSummary {
        let n = strata.reduce(0) { $0 + $1.count }
        guard n > 0 else { return MetricSummary(mean: nil, low: nil, high: nil, n: 0, undefined: undefined) }
        func statistic(_ s: [[Double]]) -> Double { s.reduce(0) { $0 + $1.reduce(0, +) / Double($1.count) } / Double(s.count) }
        let mean = statistic(strata)
        guard resamples > 0 else { return MetricSummary(mean: mean, low: nil, high: nil, n: n, undefined: undefined) }
        var rng = PromptRNG(seed: seed)
        var draws = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var total = 0.0
            for s in strata {
                var sum = 0.0
                for _ in 0..<s.count { sum += s[Int(rng.next() % UInt64(s.count))] }
                total += sum / Double(s.count)
            }
            draws[r] = total / Double(strata.count)
        }
        draws.sort()
        return MetricSummary(mean: mean, low: SegmentationMetrics.percentile(draws, 2.5), high: SegmentationMetrics.percentile(draws, 97.5),
                             n: n, undefined: undefined)
    }
}
