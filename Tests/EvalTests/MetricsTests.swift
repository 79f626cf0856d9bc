import Eval
import Foundation
import XCTest

/// medcat's metrics against MONAI 1.4 on the cases tools/make_metric_fixtures.py generates.
final class MetricsTests: XCTestCase {
    struct Fixture: Decodable {
        struct Reference: Decodable {
            var dice: Double?, iou: Double?, nsd: Double?, hd95: Double?, hd95Float32: Double?
            enum CodingKeys: String, CodingKey { case dice, iou, nsd, hd95, hd95Float32 = "hd95_float32" }
        }
        struct Case: Decodable {
            var name: String, size: [Int], spacing: [Double], tolerance: Double
            var prediction: [Int], truth: [Int], monai: Reference
        }
        var cases: [Case]
    }

    func load() throws -> [Fixture.Case] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "metric_cases", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url)).cases
    }

    func mask(_ indices: [Int], _ size: [Int]) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: size.reduce(1, *))
        for i in indices { m[i] = 1 }
        return m
    }

    func testEqualsMONAI() throws {
        let cases = try load()
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        var compared = 0
        for c in cases {
            let s = SegmentationMetrics.score(prediction: mask(c.prediction, c.size), truth: mask(c.truth, c.size),
                                              size: c.size, spacing: c.spacing, tolerance: c.tolerance)
            // MONAI scores in float32; 1e-6 relative is what float32 resolves.
            func check(_ mine: Double?, _ ref: Double?, _ what: String, tolerance: Double = 1e-6) {
                guard let ref else { return }  // MONAI leaves it undefined: see testEmptyMasks
                guard let mine else { return XCTFail("\(c.name): \(what) undefined, MONAI gives \(ref)") }
                XCTAssertEqual(mine, ref, accuracy: tolerance * max(1, abs(ref)), "\(c.name): \(what)")
                compared += 1
            }
            let oneEmpty = c.prediction.isEmpty != c.truth.isEmpty
            check(s.dice, c.monai.dice, "Dice")
            check(s.iou, c.monai.iou, "IoU")
            if !oneEmpty {
                check(s.nsd, c.monai.nsd, "NSD")
                check(s.hd95, c.monai.hd95, "HD95")
                // MONAI's own HD95 takes the percentile in float32 (torch.quantile): rank rounding.
                check(s.hd95, c.monai.hd95Float32, "HD95 (float32 percentile)", tolerance: 2e-5)
            }
        }
        XCTAssertGreaterThan(compared, 100)
    }

    /// The documented rules for empty masks: never a free 1, a missed object is the worst case.
    func testEmptyMasks() {
        let size = [8, 6, 1], spacing = [0.5, 2.0, 1.0]
        var object = [UInt8](repeating: 0, count: 48)
        object[19] = 1; object[20] = 1
        let empty = [UInt8](repeating: 0, count: 48)
        let diagonal = (4.0 * 4 + 12 * 12).squareRoot()

        let both = SegmentationMetrics.score(prediction: empty, truth: empty, size: size, spacing: spacing)
        XCTAssertEqual(both, SegmentationScores(dice: nil, iou: nil, nsd: nil, hd95: nil))
        let missed = SegmentationMetrics.score(prediction: empty, truth: object, size: size, spacing: spacing)
        XCTAssertEqual(missed, SegmentationScores(dice: 0, iou: 0, nsd: 0, hd95: diagonal))
        let spurious = SegmentationMetrics.score(prediction: object, truth: empty, size: size, spacing: spacing)
        XCTAssertEqual(spurious, SegmentationScores(dice: 0, iou: 0, nsd: 0, hd95: diagonal))
    }

    /// A case small enough to work out by hand: truth a 2×1 bar, prediction one of its pixels.
    func testHandWorked() {
        var truth = [UInt8](repeating: 0, count: 12), pred = truth
        truth[5] = 1; truth[6] = 1; pred[5] = 1  // 4×3 grid, row 1
        let s = SegmentationMetrics.score(prediction: pred, truth: truth, size: [4, 3, 1], spacing: [3, 1, 1], tolerance: 2)
        XCTAssertEqual(s.dice!, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(s.iou!, 0.5, accuracy: 1e-12)
        // Surfaces: pred {5}, truth {5, 6}. pred→truth: 0; truth→pred: 0 and 3 mm (one column at 3 mm).
        XCTAssertEqual(s.nsd!, 2.0 / 3.0, accuracy: 1e-12)
        // Directed 95th percentiles: 0 and 0 + 0.95 × 3.
        XCTAssertEqual(s.hd95!, 2.85, accuracy: 1e-12)
    }
}
