import Foundation
import SAM
import Torch
import XCTest

@testable import TestSupport

/// WiSE-FT blending of a tuned model with its start: every float tensor on the line between them,
/// saved and reopened as a checkpoint.
final class BlendTests: TemporaryDirectoryTestCase {
    func testBlendIsTheWeightedMeanOfEveryTensorAndRoundTrips() throws {
        let start = try Sam(.vitDebug(imageSize: 64), seed: 1), tuned = try Sam(.vitDebug(imageSize: 64), seed: 2)
        let before = try Dictionary(uniqueKeysWithValues: tuned.parameters.entries.map { ($0.name, try $0.tensor.floats()) })
        let origin = try Dictionary(uniqueKeysWithValues: start.parameters.entries.map { ($0.name, try $0.tensor.floats()) })
        try SamCheckpoint.blend(tuned, from: start, alpha: 0.25)
        var checked = 0
        for e in tuned.parameters.entries {
            for (k, v) in try e.tensor.floats().enumerated() {
                XCTAssertEqual(v, 0.75 * origin[e.name]![k] + 0.25 * before[e.name]![k], accuracy: 1e-6, e.name)
                checked += 1
            }
        }
        XCTAssertEqual(checked, tuned.parameters.entries.reduce(0) { $0 + $1.tensor.count }, "buffers too")
        let url = dir.appendingPathComponent("blend.safetensors")
        try SamCheckpoint.save(tuned, to: url)
        let (reopened, _) = try SamCheckpoint.open(url)
        for (a, b) in zip(tuned.parameters.entries, reopened.parameters.entries) { XCTAssertEqual(try a.tensor.floats(), try b.tensor.floats(), a.name) }

        // α = 0 is the start itself.
        let again = try Sam(.vitDebug(imageSize: 64), seed: 2)
        try SamCheckpoint.blend(again, from: start, alpha: 0)
        for e in again.parameters.entries { XCTAssertEqual(try e.tensor.floats(), origin[e.name]!, e.name) }
    }

    func testModelsOfAnotherShapeAreRefusedByKey() throws {
        var config = SamConfig.vitDebug(imageSize: 64)
        if case .vit(var v) = config.encoder { v.adapterRatio = 0.25; config.encoder = .vit(v) }
        XCTAssertThrowsError(try SamCheckpoint.blend(try Sam(config, seed: 1), from: try Sam(.vitDebug(imageSize: 64), seed: 1), alpha: 0.5)) {
            XCTAssertTrue("\($0)".contains(".Adapter."), "\($0)")
        }
        XCTAssertThrowsError(try SamCheckpoint.blend(try Sam(.vitDebug(imageSize: 64), seed: 1), from: try Sam(.vitDebug(imageSize: 128), seed: 1), alpha: 0.5)) {
            XCTAssertTrue("\($0)".contains("another shape"), "\($0)")
        }
    }
}
