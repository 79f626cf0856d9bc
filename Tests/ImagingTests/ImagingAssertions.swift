import Foundation
import XCTest

@testable import Imaging

/// Spacing, origin and direction of `a` equal `b`'s; the origin may have its own tolerance.
func assertSameGeometry(_ a: Volume, _ b: Volume, accuracy: Double, originAccuracy: Double? = nil,
                        file: StaticString = #filePath, line: UInt = #line) {
    for i in 0..<3 {
        XCTAssertEqual(a.spacing[i], b.spacing[i], accuracy: accuracy, "spacing[\(i)]", file: file, line: line)
        XCTAssertEqual(a.origin[i], b.origin[i], accuracy: originAccuracy ?? accuracy, "origin[\(i)]", file: file, line: line)
    }
    for i in 0..<9 { XCTAssertEqual(a.direction[i], b.direction[i], accuracy: accuracy, "direction[\(i)]", file: file, line: line) }
}

/// `expr` throws an ImagingError whose message contains `message`, or is it with `exact`.
func assertImagingError<T>(_ expr: @autoclosure () throws -> T, _ message: String, exact: Bool = false,
                           file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try expr()
        XCTFail("expected an error containing '\(message)'", file: file, line: line)
    } catch let e as ImagingError {
        if exact {
            XCTAssertEqual(e.message, message, file: file, line: line)
        } else {
            XCTAssertTrue(e.message.contains(message), "'\(e.message)' does not contain '\(message)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected ImagingError, got \(error)", file: file, line: line)
    }
}
