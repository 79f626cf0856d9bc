import Foundation
import Prompts

/// The statistics of the leaderboard, with the case (a patient, or the image where a dataset has no
/// patients) as the unit of resampling and of testing: masks of one case are not independent, so
/// every interval resamples whole cases and every paired test counts each case once.
public enum CaseStatistics {
    /// Fewer cases than this get a mean and a count but no interval.
    public static let minimumCases = 5

    /// One case's share of a statistic: the sum and count of its values.
    public struct Total: Equatable, Sendable {
        public var sum = 0.0, count = 0
        public init(sum: Double = 0, count: Int = 0) { self.sum = sum; self.count = count }
        mutating func add(_ v: Double) { sum += v; count += 1 }
        mutating func add(_ t: Total) { sum += t.sum; count += t.count }
    }

    /// Values grouped by case, the cases in first-seen order. `strata` separates classes when a
    /// statistic is a mean of per-class means; with one stratum it is the plain mean over values.
    public struct Cases: Sendable {
        public private(set) var ids: [Int64] = []
        public private(set) var strata: [[Total]] = []
        var index: [Int64: Int] = [:]

        public init(strataCount: Int = 1) { strata = Array(repeating: [], count: strataCount) }

        /// Cases registered up front, in this order, whether or not values follow: statistics of
        /// several runs over one list of cases see the same bootstrap draws.
        public init(caseIDs: [Int64], strataCount: Int = 1) {
            self.init(strataCount: strataCount)
            for id in caseIDs where index[id] == nil {
                index[id] = ids.count; ids.append(id)
                for s in strata.indices { strata[s].append(Total()) }
            }
        }

        public init(values: [(caseID: Int64, value: Double)]) {
            self.init()
            for v in values { add(v.value, case: v.caseID) }
        }

        public mutating func add(_ value: Double, case id: Int64, stratum: Int = 0) {
            let k: Int
            if let i = index[id] { k = i } else {
                k = ids.count; index[id] = k; ids.append(id)
                for s in strata.indices { strata[s].append(Total()) }
            }
            strata[stratum][k].add(value)
        }

        public var count: Int { ids.count }
        /// Cases with at least one value.
        public var populated: Int { ids.indices.filter { k in strata.contains { $0[k].count > 0 } }.count }
        /// Each case's mean over its values (nil for a case without values), for paired tests.
        public var caseMeans: [Double?] {
            ids.indices.map { k in
                let t = strata.reduce(Total()) { var a = $0; a.add($1[k]); return a }
                return t.count > 0 ? t.sum / Double(t.count) : nil
            }
        }
        public var values: Int { strata.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } } }

        /// The mean of each stratum's mean over the strata that have values, for case weights
        /// `weights` (how often each case was drawn; nil: each once).
        func statistic(_ weights: [Int]?) -> Double? {
            var total = 0.0, n = 0
            for s in strata {
                var sum = 0.0, count = 0
                if let weights {
                    for k in s.indices where weights[k] > 0 { sum += Double(weights[k]) * s[k].sum; count += weights[k] * s[k].count }
                } else {
                    for t in s { sum += t.sum; count += t.count }
                }
                if count > 0 { total += sum / Double(count); n += 1 }
            }
            return n > 0 ? total / Double(n) : nil
        }

        public var mean: Double? { statistic(nil) }
    }

    /// The bootstrap's draws: for each resample, how often each of `cases` cases is drawn. Draw r
    /// takes `cases` indices `next() % cases` in order from PromptRNG(seed), so every statistic
    /// computed with the same seed and case count sees the same resamples (paired across runs).
    public static func draws(cases: Int, resamples: Int, seed: UInt64, _ body: ([Int]) -> Void) {
        var rng = PromptRNG(seed: seed)
        var weights = [Int](repeating: 0, count: cases)
        for _ in 0..<resamples {
            for k in weights.indices { weights[k] = 0 }
            for _ in 0..<cases { weights[Int(rng.next() % UInt64(cases))] += 1 }
            body(weights)
        }
    }

    /// The 2.5th and 97.5th percentiles of the statistic over case resamples; nil under
    /// `minimumCases` cases. Resamples where the statistic is undefined are left out.
    public static func interval(_ cases: Cases, resamples: Int, seed: UInt64) -> (low: Double, high: Double)? {
        guard cases.populated >= minimumCases, resamples > 0 else { return nil }
        var stats: [Double] = []
        stats.reserveCapacity(resamples)
        draws(cases: cases.count, resamples: resamples, seed: seed) { w in
            if let s = cases.statistic(w) { stats.append(s) }
        }
        guard !stats.isEmpty else { return nil }
        stats.sort()
        return (SegmentationMetrics.percentile(stats, 2.5), SegmentationMetrics.percentile(stats, 97.5))
    }

    /// For runs scored on the same cases (one `Cases` each, the same case order), how often each
    /// keeps its rank (1 = highest mean) under the case bootstrap; nil under `minimumCases` cases.
    public static func rankStability(_ runs: [Cases], resamples: Int, seed: UInt64) -> [Double]? {
        guard runs.count > 1, let k = runs.first?.count, (runs.map(\.populated).min() ?? 0) >= minimumCases, resamples > 0 else { return nil }
        let observed = ranks(runs.map { $0.mean })
        var kept = [Int](repeating: 0, count: runs.count), counted = 0
        draws(cases: k, resamples: resamples, seed: seed) { w in
            let r = ranks(runs.map { $0.statistic(w) })
            counted += 1
            for i in runs.indices where r[i] == observed[i] { kept[i] += 1 }
        }
        return kept.map { Double($0) / Double(counted) }
    }

    /// Competition ranks, highest first; runs without a value rank last. Ties share the better rank.
    public static func ranks(_ means: [Double?]) -> [Int] {
        let order = means.indices.sorted { (means[$0] ?? -.infinity) > (means[$1] ?? -.infinity) }
        var out = [Int](repeating: means.count, count: means.count)
        for (position, i) in order.enumerated() where means[i] != nil {
            out[i] = position > 0 && means[order[position - 1]] == means[i] ? out[order[position - 1]] : position + 1
        }
        return out
    }

    // MARK: paired tests

    /// Two-sided p-value of the Wilcoxon signed-rank test of `d` (one difference per case), as
    /// scipy.stats.wilcoxon computes it by default: zeros dropped (Wilcoxon's method), no continuity
    /// correction; the exact null distribution when there are no ties or zeros and at most 50
    /// values, all 2ⁿ sign flips when there are ties or zeros and at most 13 values, and the normal
    /// approximation with tie correction otherwise. nil when every difference is zero.
    public static func wilcoxon(_ d: [Double]) -> Double? {
        let nonzero = d.filter { $0 != 0 }
        let n = nonzero.count
        guard n > 0 else { return nil }
        let (ranks, tieSizes) = averageRanks(nonzero.map(abs))
        let rPlus = zip(nonzero, ranks).reduce(0) { $0 + ($1.0 > 0 ? $1.1 : 0) }
        let ties = tieSizes.contains { $0 > 1 }
        let zeros = d.count - n
        if d.count <= 50 && !ties && zeros == 0 {
            let pmf = signedRankDistribution(n)
            let k = Int(rPlus.rounded())
            let cdf = pmf[0...k].reduce(0, +), sf = pmf[k...].reduce(0, +)
            return min(1, 2 * min(cdf, sf))
        }
        if d.count <= 13 {
            // Every sign pattern of the nonzero values is equally likely under the null; zeros
            // contribute nothing whatever their sign, so their patterns only repeat these.
            var less = 0, greater = 0
            let gamma = abs(rPlus) * Double.ulpOfOne * 100
            for pattern in 0..<(1 << n) {
                var s = 0.0
                for i in 0..<n where pattern & (1 << i) != 0 { s += ranks[i] }
                if s <= rPlus + gamma { less += 1 }
                if s >= rPlus - gamma { greater += 1 }
            }
            return min(1, 2 * Double(min(less, greater)) / Double(1 << n))
        }
        let nn = Double(n)
        let mean = nn * (nn + 1) / 4
        let tieCorrection = tieSizes.reduce(0.0) { $0 + Double($1 * $1 * $1 - $1) }
        let se = ((nn * (nn + 1) * (2 * nn + 1) - tieCorrection / 2) / 24).squareRoot()
        let z = (rPlus - mean) / se
        return min(1, erfc(abs(z) / 2.0.squareRoot()))
    }

    /// Ranks 1…n of `x` with ties given their average rank, and the size of each tie group.
    static func averageRanks(_ x: [Double]) -> ([Double], [Int]) {
        let order = x.indices.sorted { x[$0] < x[$1] }
        var ranks = [Double](repeating: 0, count: x.count), sizes: [Int] = []
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
            let r = Double(i + j + 2) / 2
            for k in i...j { ranks[order[k]] = r }
            sizes.append(j - i + 1)
            i = j + 1
        }
        return (ranks, sizes)
    }

    /// P(W⁺ = k) for k = 0…n(n+1)/2 under the null: the number of subsets of 1…n summing to k, over 2ⁿ.
    static func signedRankDistribution(_ n: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: n * (n + 1) / 2 + 1)
        counts[0] = 1
        for r in stride(from: 1, through: n, by: 1) {
            for k in stride(from: counts.count - 1, through: r, by: -1) { counts[k] += counts[k - r] }
        }
        let total = pow(2.0, Double(n))
        return counts.map { $0 / total }
    }

    /// Holm's step-down adjustment of a family of p-values; nil entries are not tested and stay nil.
    public static func holm(_ p: [Double?]) -> [Double?] {
        let tested = p.indices.filter { p[$0] != nil }.sorted { p[$0]! < p[$1]! }
        var out = [Double?](repeating: nil, count: p.count), running = 0.0
        for (i, k) in tested.enumerated() {
            running = max(running, min(1, Double(tested.count - i) * p[k]!))
            out[k] = running
        }
        return out
    }
}
