import Imaging
import XCTest

@testable import TestSupport

final class DistanceTransformTests: XCTestCase {
    /// Against brute force over every seed, on random seeds in 2D and 3D with anisotropic spacing.
    func testEqualsBruteForce() {
        var rng = SeededGenerator(seed: 7)
        for (size, spacing) in [([17, 11, 1], [0.5, 1.25, 1.0]), ([9, 7, 6], [0.75, 1.0, 2.5]), ([1, 12, 1], [1.0, 0.5, 1.0])] {
            let n = size.reduce(1, *)
            let seeds = (0..<n).map { _ in Double.random(in: 0..<1, using: &rng) < 0.08 }
            let d = DistanceTransform.distances(size: size, spacing: spacing) { seeds[$0] }
            func coords(_ i: Int) -> [Double] { [Double(i % size[0]), Double((i / size[0]) % size[1]), Double(i / (size[0] * size[1]))] }
            for i in 0..<n {
                var best = Double.infinity
                for j in 0..<n where seeds[j] {
                    let a = coords(i), b = coords(j)
                    best = min(best, (0..<3).reduce(0.0) { $0 + pow((a[$1] - b[$1]) * spacing[$1], 2) }.squareRoot())
                }
                XCTAssertEqual(d[i], best, accuracy: 1e-12, "voxel \(i) of \(size)")
            }
        }
    }

    func testNoSeedIsInfinite() {
        let d = DistanceTransform.distances(size: [4, 3, 1], spacing: [1, 1, 1]) { _ in false }
        XCTAssertTrue(d.allSatisfy { $0 == .infinity })
    }
}
