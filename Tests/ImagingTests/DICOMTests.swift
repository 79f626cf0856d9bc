import Foundation
import XCTest

@testable import Imaging

/// DICOM series geometry and contour filling, on planes and contours made by the tests.
final class DICOMTests: XCTestCase {
    // MARK: Series geometry

    func plane(z: Double, x: Double = 0, uid: String) -> DICOMPlane {
        DICOMPlane(url: URL(fileURLWithPath: "/dev/null"), frame: 0, sopInstanceUID: uid, position: [x, 0, z],
                   orientation: [1, 0, 0, 0, 1, 0], pixelSpacing: [0.5, 0.7], rows: 4, columns: 3, slope: 1, intercept: 0, sliceThickness: 2)
    }

    func testSeriesIsOrderedAlongTheNormalWithItsSpacing() throws {
        let planes = [plane(z: 5, uid: "c"), plane(z: -5, uid: "a"), plane(z: 0, uid: "b")]
        let s = try DICOMSeries(planes)
        XCTAssertEqual(s.planes.map(\.sopInstanceUID), ["a", "b", "c"])
        XCTAssertEqual(s.step, 5, accuracy: 1e-9)
        XCTAssertEqual(s.index(at: [3, 2, 0.4]), 1)
        XCTAssertNil(s.index(at: [0, 0, 2.5]), "between two planes")
        XCTAssertEqual(s.index(sop: "c"), 2)
        let p = s.pixel([1.4, 1.0, 0], plane: 1)
        XCTAssertEqual(p.x, 2, accuracy: 1e-9)   // 1.4 mm / 0.7 mm between columns
        XCTAssertEqual(p.y, 2, accuracy: 1e-9)   // 1.0 mm / 0.5 mm between rows
    }

    func testMissingSliceTiltAndDuplicatesAreReported() {
        let regular = (0..<6).map { plane(z: Double($0) * 2, uid: "\($0)") }
        var gap = regular
        gap.remove(at: 3)
        XCTAssertThrowsError(try DICOMSeries(gap)) { XCTAssertTrue("\($0)".contains("missing slice: 1 image absent between 4.00 and 8.00 mm"), "\($0)") }
        let tilted = (0..<6).map { plane(z: Double($0) * 2, x: Double($0) * 0.5, uid: "\($0)") }
        XCTAssertThrowsError(try DICOMSeries(tilted)) { XCTAssertTrue("\($0)".contains("gantry tilt of 14.0°"), "\($0)") }
        XCTAssertThrowsError(try DICOMSeries(regular + [plane(z: 4, uid: "dup")])) { XCTAssertTrue("\($0)".contains("share the position"), "\($0)") }
    }

    func testContourFillCountsPixelCentresInsideWithHoles() {
        var mask = [UInt8](repeating: 0, count: 30 * 30)
        let square: [(x: Double, y: Double)] = [(4.5, 4.5), (24.5, 4.5), (24.5, 24.5), (4.5, 24.5)]
        DICOMLabels.fill(square, into: &mask, columns: 30, rows: 30)
        XCTAssertEqual(mask.reduce(0) { $0 + Int($1) }, 400)
        XCTAssertEqual(mask[5 * 30 + 5], 1)
        XCTAssertEqual(mask[4 * 30 + 5], 0)
        let hole: [(x: Double, y: Double)] = [(9.5, 9.5), (14.5, 9.5), (14.5, 14.5), (9.5, 14.5)]
        DICOMLabels.fill(hole, into: &mask, columns: 30, rows: 30)
        XCTAssertEqual(mask.reduce(0) { $0 + Int($1) }, 400 - 25)
        // A triangle: rows 0..<10 at pixel centres, half of each row.
        var tri = [UInt8](repeating: 0, count: 20 * 20)
        DICOMLabels.fill([(0, 0), (10, 10), (0, 10)], into: &tri, columns: 20, rows: 20)
        XCTAssertEqual(tri.reduce(0) { $0 + Int($1) }, (0..<10).reduce(0) { $0 + $1 })
    }
}
