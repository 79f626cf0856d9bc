@testable import Eval
import XCTest

final class AggregationTests: XCTestCase {
    func item(_ cls: String, _ modality: String, _ dice: Double?) -> EvalStore.Scored {
        EvalStore.Scored(variant: .init(proto: "box", step: 0, output: "first"), id: 0, modality: modality, className: cls, dataset: "d",
                         scores: SegmentationScores(dice: dice, iou: dice.map { $0 / (2 - $0) }, nsd: dice, hd95: dice.map { 10 * (1 - $0) }))
    }

    func testMeansOverMasksAndOverClasses() {
        let items = [item("a", "ct", 1), item("a", "ct", 1), item("a", "ct", 1), item("a", "mr", 0), item("b", "mr", 0.5), item("b", "mr", nil)]
        let groups = Aggregation.groups(items, resamples: 500)
        let overall = groups.first { $0.kind == "overall" }!
        XCTAssertEqual(overall.count, 6)
        XCTAssertEqual(overall.classes, 2)
        XCTAssertEqual(overall.dice.mean!, 3.5 / 5, accuracy: 1e-12)
        XCTAssertEqual(overall.dice.n, 5)
        XCTAssertEqual(overall.dice.undefined, 1)
        XCTAssertEqual(overall.classMeanDice.mean!, (0.75 + 0.5) / 2, accuracy: 1e-12)
        XCTAssertEqual(overall.hd95.mean!, 15.0 / 5, accuracy: 1e-12)
        let mr = groups.first { $0.kind == "modality" && $0.name == "mr" }!
        XCTAssertEqual(mr.dice.mean!, 0.25, accuracy: 1e-12)
        XCTAssertEqual(Set(groups.filter { $0.kind == "class" }.map(\.name)), ["a", "b"])

        // The interval brackets the mean, is reproducible, and narrows with more data.
        let lo = overall.dice.low!, hi = overall.dice.high!
        XCTAssertLessThan(lo, overall.dice.mean!); XCTAssertGreaterThan(hi, overall.dice.mean!)
        XCTAssertEqual(Aggregation.groups(items, resamples: 500), groups)
        let many = (0..<400).map { item("a", "ct", $0 % 4 == 0 ? 0 : 1) }
        let wide = Aggregation.summary(many.prefix(20).map(\.scores.dice), 1000, 1), narrow = Aggregation.summary(many.map(\.scores.dice), 1000, 1)
        XCTAssertLessThan(narrow.high! - narrow.low!, wide.high! - wide.low!)
        // 400 Bernoulli(0.75) draws: the 95 % interval is about ±1.96·√(0.75·0.25/400) ≈ ±0.042.
        XCTAssertEqual(narrow.high! - narrow.low!, 2 * 1.96 * (0.75 * 0.25 / 400).squareRoot(), accuracy: 0.015)
    }

    func testAllUndefined() {
        let s = Aggregation.summary([nil, nil], 100, 0)
        XCTAssertNil(s.mean); XCTAssertEqual(s.undefined, 2); XCTAssertEqual(s.n, 0)
    }
}
