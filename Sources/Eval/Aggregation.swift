import Hashing

/// A metric's mean over the defined values with its 95 % case-bootstrap interval (none under
/// `CaseStatistics.minimumCases` cases).
public struct MetricSummary: Codable, Equatable, Sendable {
    public var mean: Double?, low: Double?, high: Double?
    /// Values averaged, the cases they come from, and values left out because they are undefined
    /// (both masks empty).
    public var n: Int, cases: Int, undefined: Int
}

/// One row of a run's report: a group of masks (or 3D volumes) and its four metrics, averaged over
/// the masks and over the classes (each class's mean counted once).
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

    /// Groups one run's scored items overall and by modality, class and dataset. The bootstrap
    /// draws from a generator seeded by the group's name, so a report is the same every time.
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
                func metric(_ m: KeyPath<SegmentationScores, Double?>, _ offset: UInt64, byClass: Bool = false) -> MetricSummary {
                    summary(members, m, byClass: byClass, resamples: resamples, seed: seed &+ offset)
                }
                out.append(GroupResult(
                    kind: kind, name: name, count: members.count, classes: Set(members.map(\.className)).count,
                    dice: metric(\.dice, 0), iou: metric(\.iou, 1), nsd: metric(\.nsd, 2), hd95: metric(\.hd95, 3),
                    classMeanDice: metric(\.dice, 4, byClass: true), classMeanNSD: metric(\.nsd, 5, byClass: true)))
            }
        }
        return out
    }

    /// The mean of one metric over `items` (or of its per-class means) with the case-bootstrap interval.
    public static func summary(_ items: [EvalStore.Scored], _ metric: KeyPath<SegmentationScores, Double?>, byClass: Bool = false,
                               resamples: Int, seed: UInt64) -> MetricSummary {
        let classes = byClass ? Dictionary(uniqueKeysWithValues: Set(items.map(\.className)).sorted().enumerated().map { ($1, $0) }) : [:]
        // Cases in id order: the draws pick the same cases whatever order the scores were read in.
        var cases = CaseStatistics.Cases(caseIDs: Set(items.map(\.caseID)).sorted(), strataCount: max(1, classes.count))
        var undefined = 0
        for item in items {
            guard let v = item.scores[keyPath: metric] else { undefined += 1; continue }
            cases.add(v, case: item.caseID, stratum: classes[item.className] ?? 0)
        }
        let interval = CaseStatistics.interval(cases, resamples: resamples, seed: seed)
        return MetricSummary(mean: cases.mean, low: interval?.low, high: interval?.high, n: cases.values, cases: cases.populated, undefined: undefined)
    }
}
