import Prompts
import XCTest

final class PromptTests: XCTestCase {
    func rectangle(_ w: Int, _ h: Int, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int) -> BinaryMask {
        var m = BinaryMask(width: w, height: h, pixels: [UInt8](repeating: 0, count: w * h))
        for y in y0...y1 { for x in x0...x1 { m.pixels[y * w + x] = 1 } }
        return m
    }

    func testTightBoxAndJitter() {
        let m = rectangle(64, 48, 10, 12, 40, 30)
        var rng = PromptRNG(seed: 1)
        XCTAssertEqual(PromptSimulator.box(m, rng: &rng), [10, 12, 40, 30])
        XCTAssertNil(PromptSimulator.box(BinaryMask(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 16)), rng: &rng))
        var shifts = Set<[Int]>()
        for k in 0..<200 {
            var r = PromptRNG(seed: 3, UInt64(k))
            let b = PromptSimulator.box(m, jitter: .samMed2D(), rng: &r)!.corners
            // min(5 px, 10 % of the 19 px shorter side) = 1: a translation by at most 1 px.
            XCTAssertEqual(b[2] - b[0], 30); XCTAssertEqual(b[3] - b[1], 18)
            XCTAssertLessThanOrEqual(abs(b[0] - 10), 1); XCTAssertLessThanOrEqual(abs(b[1] - 12), 1)
            shifts.insert([b[0] - 10, b[1] - 12])
            var r2 = PromptRNG(seed: 3, UInt64(k))
            let g = PromptSimulator.box(m, jitter: .medSAM(maxShift: 4), rng: &r2)!.corners
            XCTAssertTrue((6...10).contains(g[0]) && (8...12).contains(g[1]) && (40...44).contains(g[2]) && (30...34).contains(g[3]), "\(g)")
        }
        XCTAssertEqual(shifts.count, 9, "every shift in [-1, 1]² occurs")
        // Same seed and keys, same box; another key, another stream.
        var a = PromptRNG(seed: 9, 4, 2), b = PromptRNG(seed: 9, 4, 2), c = PromptRNG(seed: 9, 2, 4)
        XCTAssertEqual(a.next(), b.next())
        XCTAssertNotEqual(b.next(), c.next())
    }

    func testInteriorPoints() {
        // Two components: a 21×11 bar and a smaller 11×11 square, equally thick. The first point is
        // the centre of the larger one; the second the square's centre, farther from the first
        // point and the boundary (6 px) than the bar's ridge ends (5 px).
        var m = rectangle(64, 48, 10, 10, 30, 20)
        for y in 28...38 { for x in 48...58 { m.pixels[y * 64 + x] = 1 } }
        let p = PromptSimulator.interiorPoints(m, count: 3)
        XCTAssertEqual(p.count, 3)
        XCTAssertEqual(p[0], Prompt.Point(x: 20, y: 15, label: 1))
        // The next points are as far as possible from the boundary and from each other; every point lies inside.
        for q in p { XCTAssertEqual(m.pixels[q.y * 64 + q.x], 1) }
        XCTAssertEqual(p[1], Prompt.Point(x: 53, y: 33, label: 1))
        XCTAssertEqual(PromptSimulator.interiorPoints(m, count: 3), p, "deterministic")
    }

    func testCorrectiveClick() {
        let truth = rectangle(40, 40, 5, 5, 24, 24)
        // Prediction misses the right part of the object: the click is positive in the missed band.
        let under = rectangle(40, 40, 5, 5, 14, 24)
        let click = PromptSimulator.correctiveClick(prediction: under, truth: truth)!
        XCTAssertEqual(click.label, 1)
        XCTAssertTrue((15...24).contains(click.x) && (5...24).contains(click.y), "\(click)")
        XCTAssertEqual(click, Prompt.Point(x: 19, y: 14, label: 1), "middle of the missed 10×20 band")
        // Prediction spills over: the click is negative, outside the truth.
        let over = rectangle(40, 40, 5, 5, 36, 24)
        let neg = PromptSimulator.correctiveClick(prediction: over, truth: truth)!
        XCTAssertEqual(neg.label, 0)
        XCTAssertTrue(neg.x > 24, "\(neg)")
        XCTAssertNil(PromptSimulator.correctiveClick(prediction: truth, truth: truth))
    }
}
