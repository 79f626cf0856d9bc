import Foundation
import XCTest

@testable import Imaging

final class GeometryTests: XCTestCase {
    /// Voxel value = its (x, y, z) index as x + 10y + 100z.
    func indexVolume(_ size: [Int], direction: [Double]) -> Volume {
        var v: [Float] = []
        for z in 0..<size[2] { for y in 0..<size[1] { for x in 0..<size[0] { v.append(Float(x + 10 * y + 100 * z)) } } }
        return Volume(size: size, spacing: [1, 2, 3], origin: [10, 20, 30], direction: direction, voxels: v)
    }

    /// Physical LPS position of voxel (i, j, k).
    func position(_ v: Volume, _ idx: [Int]) -> [Double] {
        (0..<3).map { r -> Double in
            var p = v.origin[r]
            for a in 0..<3 { p += v.direction[r * 3 + a] * v.spacing[a] * Double(idx[a]) }
            return p
        }
    }

    func testCanonicalKeepsEveryVoxelAtItsPhysicalPosition() {
        // Stored RAS-like (x → right, y → anterior) and with axes permuted (array x is superior).
        for direction in [[-1.0, 0, 0, 0, -1, 0, 0, 0, 1], [0, 0, 1, 0, -1, 0, 1, 0, 0], [0, 1, 0, 0, 0, -1, -1, 0, 0]] {
            let v = indexVolume([4, 3, 2], direction: direction)
            let (c, r) = v.canonical()
            XCTAssertEqual(c.direction, Volume.identity, "canonical direction for \(direction)")
            for k in 0..<c.nz { for j in 0..<c.ny { for i in 0..<c.nx {
                let value = Int(c.voxels[(k * c.ny + j) * c.nx + i])
                let src = [value % 10, value / 10 % 10, value / 100]
                let p = position(c, [i, j, k]), q = position(v, src)
                for a in 0..<3 { XCTAssertEqual(p[a], q[a], accuracy: 1e-9, "\(r) voxel \(i),\(j),\(k)") }
            } } }
        }
    }

    func testIdentityIsUntouched() {
        let v = indexVolume([3, 3, 3], direction: Volume.identity)
        XCTAssertTrue(v.reorientation().isIdentity)
        XCTAssertEqual(v.canonical().0.voxels, v.voxels)
    }

    func testObliqueAxesPickTheClosestCanonicalAxis() {
        let a = 0.3
        let v = indexVolume([2, 2, 2], direction: [cos(a), -sin(a), 0, sin(a), cos(a), 0, 0, 0, -1])
        let r = v.reorientation()
        XCTAssertEqual(r.permutation, [0, 1, 2])
        XCTAssertEqual(r.flipped, [false, false, true])
    }
}
