@testable import Eval
import Foundation
@testable import TestSupport
import XCTest

/// The leaderboard's statistics: the case bootstrap, ranking stability, the Wilcoxon signed-rank
/// test and Holm's correction against numpy and scipy (tools/make_leaderboard_fixtures.py), and
/// the comparison rules (intersection, small groups, paired differences) on built tables.
final class LeaderboardStatisticsTests: XCTestCase {
    struct Fixture: Decodable {
        struct Bootstrap: Decodable { var values: [[Double]]; var strata: Int; var resamples: Int; var seed: UInt64; var mean: Double; var low: Double?; var high: Double? }
        struct Stability: Decodable { var runs: [[[Double]]]; var resamples: Int; var seed: UInt64; var kept: [Double] }
        struct Wilcoxon: Decodable { var d: [Double]; var p: Double? }
        struct Holm: Decodable { var p: [Double]; var adjusted: [Double] }
        var bootstrap: [Bootstrap], stability: [Stability], wilcoxon: [Wilcoxon], holm: [Holm]
    }

    func fixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "leaderboard_statistics", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testCaseBootstrapMatchesNumpy() throws {
        let cases = try fixture().bootstrap
        XCTAssertEqual(cases.filter { $0.low == nil }.count, 1, "the fixture holds a group under five cases")
        for (i, f) in cases.enumerated() {
            var c = CaseStatistics.Cases(strataCount: f.strata)
            for v in f.values { c.add(v[2], case: Int64(v[0]), stratum: Int(v[1])) }
            XCTAssertEqual(try XCTUnwrap(c.mean), f.mean, accuracy: 1e-12, "case \(i)")
            let interval = CaseStatistics.interval(c, resamples: f.resamples, seed: f.seed)
            XCTAssertEqual(interval == nil, f.low == nil, "case \(i): interval only from five cases on")
            if let interval, let low = f.low, let high = f.high {
                XCTAssertEqual(interval.low, low, accuracy: 1e-12, "case \(i)")
                XCTAssertEqual(interval.high, high, accuracy: 1e-12, "case \(i)")
            }
        }
    }

    func testRankStabilityMatchesNumpy() throws {
        for f in try fixture().stability {
            let runs = f.runs.map { CaseStatistics.Cases(values: $0.map { (caseID: Int64($0[0]), value: $0[1]) }) }
            let kept = try XCTUnwrap(CaseStatistics.rankStability(runs, resamples: f.resamples, seed: f.seed))
            for (a, b) in zip(kept, f.kept) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        }
    }

    func testWilcoxonMatchesScipy() throws {
        for f in try fixture().wilcoxon {
            let p = CaseStatistics.wilcoxon(f.d)
            XCTAssertEqual(p == nil, f.p == nil, "\(f.d)")
            if let p, let expected = f.p { XCTAssertEqual(p, expected, accuracy: 1e-10, "n = \(f.d.count)") }
        }
    }

    func testRanksAreCompetitionRanks() {
        XCTAssertEqual(CaseStatistics.ranks([0.5, 0.9, nil, 0.5, 0.7]), [3, 1, 5, 3, 2])
        XCTAssertEqual(CaseStatistics.ranks([0.2, 0.2, 0.2]), [1, 1, 1])
        XCTAssertEqual(CaseStatistics.ranks([]), [])
    }

    func testHolmMatchesReference() throws {
        for f in try fixture().holm {
            let adjusted = CaseStatistics.holm(f.p)
            for (a, b) in zip(adjusted, f.adjusted) { XCTAssertEqual(try XCTUnwrap(a), b, accuracy: 1e-12) }
        }
        XCTAssertEqual(CaseStatistics.holm([nil, 0.02, nil, 0.01]), [nil, 0.02, nil, 0.02], "untested rows are not counted")
    }

    // MARK: tables

    static let box = EvalStore.Variant(proto: "box", step: 0, output: "first")

    func item(mask: Int64, case id: Int64, _ dice: Double?, modality: String = "ct", cls: String = "liver", dataset: String = "d",
              prompt: Int64 = 1) -> EvalStore.Scored {
        EvalStore.Scored(variant: Self.box, key: .init(id: mask, detail: prompt), caseID: id, modality: modality, className: cls, dataset: dataset,
                         scores: SegmentationScores(dice: dice, iou: dice.map { $0 / (2 - $0) }, nsd: dice, hd95: dice.map { 10 * (1 - $0) }))
    }

    func table(_ items: [[EvalStore.Scored]], grouping: ComparisonTable.Grouping = .modalityClass, resamples: Int = 500) -> ComparisonTable {
        ComparisonTable.build(variant: Self.box, level: "mask", grouping: grouping, metric: .dice, runs: items.indices.map { "run\($0)" }, baseline: 0,
                              items: items, resamples: resamples)
    }

    /// Masks of one case move together: clustered scores get a wider interval than the same
    /// scores treated as independent masks, as they should.
    func testIntervalsResampleCasesNotMasks() {
        var clustered: [EvalStore.Scored] = [], independent: [EvalStore.Scored] = []
        for c in 0..<12 {
            for m in 0..<10 {
                let dice = c % 2 == 0 ? 0.9 : 0.5
                clustered.append(item(mask: Int64(c * 10 + m), case: Int64(c), dice))
                independent.append(item(mask: Int64(c * 10 + m), case: Int64(c * 10 + m), dice))
            }
        }
        let a = Aggregation.summary(clustered, \.dice, resamples: 1000, seed: 3), b = Aggregation.summary(independent, \.dice, resamples: 1000, seed: 3)
        XCTAssertEqual(a.mean!, 0.7, accuracy: 1e-12); XCTAssertEqual(b.mean!, 0.7, accuracy: 1e-12)
        XCTAssertEqual(a.cases, 12); XCTAssertEqual(a.n, 120)
        // 12 cases: the half-width is about 1.96 · 0.2 / √12 ≈ 0.113; 120 masks as cases: ≈ 0.036.
        XCTAssertEqual((a.high! - a.low!) / 2, 1.96 * 0.2 / 12.0.squareRoot(), accuracy: 0.03)
        XCTAssertEqual((b.high! - b.low!) / 2, 1.96 * 0.2 / 120.0.squareRoot(), accuracy: 0.01)
    }

    /// The draws pick cases by id, not by the order the scores were read in.
    func testIntervalsDoNotDependOnTheOrderOfTheScores() throws {
        var rng = SeededGenerator(seed: 11)
        var items: [EvalStore.Scored] = []
        for m in 0..<60 {
            let dice = Double.random(in: 0..<1, using: &rng)
            items.append(item(mask: Int64(m), case: Int64(m % 9), dice, cls: m % 2 == 0 ? "a" : "b"))
        }
        let a = Aggregation.groups(items, resamples: 300), b = Aggregation.groups(items.shuffled(using: &rng), resamples: 300)
        for (x, y) in zip(a, b) {
            for (p, q) in [(x.dice, y.dice), (x.classMeanDice, y.classMeanDice)] {
                XCTAssertEqual(try XCTUnwrap(p.low), try XCTUnwrap(q.low), accuracy: 1e-12, "\(x.kind) \(x.name)")
                XCTAssertEqual(try XCTUnwrap(p.high), try XCTUnwrap(q.high), accuracy: 1e-12, "\(x.kind) \(x.name)")
            }
        }
    }

    func testMeansOverMasksAndOverClasses() {
        let items = [item(mask: 1, case: 1, 1, cls: "a"), item(mask: 2, case: 2, 1, cls: "a"), item(mask: 3, case: 3, 1, cls: "a"),
                     item(mask: 4, case: 4, 0, modality: "mr", cls: "a"), item(mask: 5, case: 4, 0.5, modality: "mr", cls: "b"),
                     item(mask: 6, case: 5, nil, modality: "mr", cls: "b")]
        let groups = Aggregation.groups(items, resamples: 500)
        let overall = groups.first { $0.kind == "overall" }!
        XCTAssertEqual(overall.count, 6); XCTAssertEqual(overall.classes, 2)
        XCTAssertEqual(overall.dice.mean!, 3.5 / 5, accuracy: 1e-12)
        XCTAssertEqual(overall.dice.n, 5); XCTAssertEqual(overall.dice.cases, 4); XCTAssertEqual(overall.dice.undefined, 1)
        XCTAssertNil(overall.dice.low, "four cases: no interval")
        XCTAssertEqual(overall.classMeanDice.mean!, (0.75 + 0.5) / 2, accuracy: 1e-12)
        XCTAssertEqual(overall.hd95.mean!, 15.0 / 5, accuracy: 1e-12)
        XCTAssertEqual(groups.first { $0.kind == "modality" && $0.name == "mr" }!.dice.mean!, 0.25, accuracy: 1e-12)
        XCTAssertEqual(Aggregation.groups(items, resamples: 500), groups, "the same report every time")
    }

    /// A run that scored fewer masks, or one mask with another prompt, is compared with the others
    /// only on what all of them scored alike; the row says how much was left out.
    func testRunsAreComparedOnTheirIntersection() {
        let a = (0..<10).map { item(mask: Int64($0), case: Int64($0 / 2), 0.8) }
        var b = (0..<8).map { item(mask: Int64($0), case: Int64($0 / 2), 0.6) }
        b.append(item(mask: 8, case: 4, 0.1, prompt: 2))  // mask 8 prompted differently
        let row = table([a, b]).rows[0]
        XCTAssertEqual(row.items, 8); XCTAssertEqual(row.leftOut, 2); XCTAssertEqual(row.cases, 4)
        XCTAssertEqual(row.cells[0]?.mean ?? 0, 0.8, accuracy: 1e-12)
        XCTAssertEqual(row.cells[1]?.mean ?? 0, 0.6, accuracy: 1e-12)
        XCTAssertEqual(row.cells[1]?.difference?.mean ?? 0, -0.2, accuracy: 1e-12)
        XCTAssertNil(row.cells[0]?.low, "four cases: no interval")
        XCTAssertNil(row.cells[1]?.difference?.low)
        XCTAssertEqual(row.best, 0)
        // A run alone in a row is shown, without comparison.
        let solo = table([a, []]).rows[0]
        XCTAssertNil(solo.cells[1]); XCTAssertNil(solo.best); XCTAssertNil(solo.cells[0]?.rankKept); XCTAssertEqual(solo.leftOut, 0)
    }

    func testPairedDifferencesTestsAndRanks() throws {
        // Twelve cases; run 1 is better by 0.1 on every mask, run 2 equal to the reference.
        var runs: [[EvalStore.Scored]] = [[], [], []]
        var rng = SeededGenerator(seed: 9)
        for c in 0..<12 {
            for m in 0..<3 {
                let base = 0.5 + 0.3 * Double.random(in: 0..<1, using: &rng), id = Int64(c * 3 + m)
                runs[0].append(item(mask: id, case: Int64(c), base))
                runs[1].append(item(mask: id, case: Int64(c), base + 0.1))
                runs[2].append(item(mask: id, case: Int64(c), base))
            }
        }
        let row = table(runs).rows[0]
        let better = try XCTUnwrap(row.cells[1]?.difference)
        XCTAssertEqual(better.mean!, 0.1, accuracy: 1e-12)
        XCTAssertEqual(better.low!, 0.1, accuracy: 1e-12); XCTAssertEqual(better.high!, 0.1, accuracy: 1e-12)
        XCTAssertEqual(better.cases, 12)
        // Every case better: of 2¹² sign patterns only this one and its mirror are as extreme.
        XCTAssertEqual(better.p!, 2.0 / 4096, accuracy: 1e-15)
        XCTAssertEqual(better.pHolm!, 2.0 / 4096, accuracy: 1e-15, "one row: nothing to correct")
        XCTAssertNil(row.cells[2]?.difference?.p, "no difference: nothing to test")
        XCTAssertEqual(row.best, 1)
        XCTAssertEqual(row.cells[1]?.rankKept, 1, "always first")
        XCTAssertNil(row.cells[0]?.difference)
    }

    func testHolmAcrossRows() throws {
        var runs: [[EvalStore.Scored]] = [[], []]
        var rng = SeededGenerator(seed: 4)
        for (k, cls) in ["a", "b", "c", "d"].enumerated() {
            for c in 0..<8 {
                let base = 0.4 + 0.4 * Double.random(in: 0..<1, using: &rng), id = Int64(k * 100 + c)
                runs[0].append(item(mask: id, case: Int64(c), base, cls: cls))
                runs[1].append(item(mask: id, case: Int64(c), base + 0.05 * Double(k) * (Double.random(in: 0..<1, using: &rng) - 0.2), cls: cls))
            }
        }
        let t = table(runs)
        let p = t.rows.map { $0.cells[1]?.difference?.p }, adjusted = t.rows.map { $0.cells[1]?.difference?.pHolm }
        XCTAssertEqual(adjusted, CaseStatistics.holm(p))
        for (a, b) in zip(p, adjusted) { if let a, let b { XCTAssertGreaterThanOrEqual(b, a) } }
        XCTAssertEqual(t.rows.map(\.group), [["ct", "a"], ["ct", "b"], ["ct", "c"], ["ct", "d"]], "sorted by modality, then class")
    }
}

/// Reports built from a catalog: what the reader is told about runs that did not score alike, and
/// the reference run.
final class LeaderboardReportTests: TemporaryDirectoryTestCase {
    func testRunsPromptedOtherwiseAreComparedOnTheIntersectionAndTheReportSaysSo() throws {
        // model_1 skips the first 10 masks and prompts masks 11–15 otherwise; model_2 scores all alike.
        let c = try GeneratedEvaluations.catalog(at: dir, runs: 3, classes: 4, scored: { r, m in r != 1 || m > 10 },
                                                 prompt: { r, m in r == 1 && m <= 15 ? 8 : 7 })
        let report = try LeaderboardReport.build(catalog: c, baseline: "model_2", resamples: 100, thumbnails: false)
        XCTAssertEqual(report.baseline, "model_2")
        let overall = try XCTUnwrap(report.table(.init(proto: "box", step: 0, output: "first"), .overall, .dice)?.rows.first)
        XCTAssertEqual(overall.items, 96 - 15); XCTAssertEqual(overall.leftOut, 15); XCTAssertEqual(overall.cases, 21, "CT cases 0–2 lose all their masks")
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("box · first: 15 masks scored by only some runs") }, "\(report.notes)")
        XCTAssertNil(overall.cells[2]?.difference, "the reference has no difference")
        XCTAssertNotNil(overall.cells[0]?.difference?.p)
        XCTAssertTrue(report.markdown().contains("> box · first: 15 masks"))
        let matrix = try XCTUnwrap(report.table(.init(proto: "box", step: 0, output: "first"), .modalityClass, .dice))
        XCTAssertEqual(matrix.rows.count, 16)
        // CT's masks 1–15 are the first cases' (4 classes per image): those rows keep 2 or 3 cases,
        // too few for intervals and tests; the other modalities keep 6.
        let ct = matrix.rows.filter { $0.group[0] == "ct" }, others = matrix.rows.filter { $0.group[0] != "ct" }
        XCTAssertEqual(ct.map(\.cases), [2, 2, 2, 3])
        XCTAssertTrue(ct.allSatisfy { $0.cells.allSatisfy { $0?.low == nil && $0?.difference?.p == nil } })
        XCTAssertEqual(Set(others.map(\.cases)), [6])
        XCTAssertTrue(others.allSatisfy { $0.cells.allSatisfy { $0?.low != nil } }, "six cases: intervals")

        XCTAssertThrowsError(try LeaderboardReport.build(catalog: c, baseline: "nope", resamples: 0, thumbnails: false)) { error in
            XCTAssertEqual("\(error)", "no evaluation named 'nope' in this report; it has: model_0, model_1, model_2")
        }
    }
}
