import Torch
import XCTest

/// `a` and `b` have one shape and differ nowhere by more than `tolerance`; the reference `b` is
/// not all zeros (which would make any small output pass).
func assertClose(_ a: Tensor, _ b: Tensor, _ tolerance: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
    guard a.shape == b.shape else { return }
    let x = try a.floats(), y = try b.floats()
    var worst: Float = 0
    for k in x.indices { worst = max(worst, Swift.abs(x[k] - y[k])) }
    XCTAssertLessThanOrEqual(worst, tolerance, "\(what): max |error| \(worst)", file: file, line: line)
    XCTAssertGreaterThan(y.map(Swift.abs).max() ?? 0, 0, "\(what): reference is all zeros", file: file, line: line)
}
