import Foundation
import Geometry
import XCTest
@testable import Catalog
@testable import TestSupport

final class MaskBitsTests: XCTestCase {
    /// Bit by bit, the obvious way, to check the fast paths against.
    func referencePack(_ mask: [UInt8], width: Int, box: Box2D) -> [UInt8] {
        var out: [UInt8] = []
        var bit = 0
        for y in box.y0...box.y1 {
            for x in box.x0...box.x1 {
                if bit % 8 == 0 { out.append(0) }
                if mask[y * width + x] != 0 { out[bit / 8] |= UInt8(0x80 >> (bit % 8)) }
                bit += 1
            }
        }
        return out
    }

    func randomMask(_ width: Int, _ height: Int, density: Double, _ rng: inout SeededGenerator) -> [UInt8] {
        (0..<(width * height)).map { _ in
            Double.random(in: 0..<1, using: &rng) < density ? [1, 0x80, 0xFF, 0x7F, 0x01, 0x40].randomElement(using: &rng)! : 0
        }
    }

    func testPackUnpackRoundTripOnRandomMasksAndBoxes() {
        var rng = SeededGenerator(seed: 1)
        for trial in 0..<2000 {
            let width = Int.random(in: 1...70, using: &rng), height = Int.random(in: 1...20, using: &rng)
            let mask = randomMask(width, height, density: [0, 0.05, 0.5, 0.95, 1].randomElement(using: &rng)!, &rng)
            let xs = [Int.random(in: 0..<width, using: &rng), Int.random(in: 0..<width, using: &rng)].sorted()
            let ys = [Int.random(in: 0..<height, using: &rng), Int.random(in: 0..<height, using: &rng)].sorted()
            let box = Box2D(x0: xs[0], y0: ys[0], x1: xs[1], y1: ys[1])
            let bits = mask.withUnsafeBufferPointer { MaskBits.pack($0, width: width, height: height, box: box) }
            XCTAssertEqual(bits, referencePack(mask, width: width, box: box), "trial \(trial)")
            XCTAssertEqual(bits.count, MaskBits.packedByteCount(box: box))
            let back = MaskBits.unpack(bits, width: width, height: height, box: box)
            var expected = [UInt8](repeating: 0, count: width * height)
            for y in box.y0...box.y1 { for x in box.x0...box.x1 { expected[y * width + x] = mask[y * width + x] != 0 ? 1 : 0 } }
            XCTAssertEqual(back, expected, "trial \(trial)")
            XCTAssertEqual(MaskBits.unpack(Data(bits), width: width, height: height, box: box), expected)
        }
    }

    func testBoundingBoxAndAreaOfRandomMasks() {
        var rng = SeededGenerator(seed: 2)
        for trial in 0..<1000 {
            let width = Int.random(in: 1...60, using: &rng), height = Int.random(in: 1...30, using: &rng)
            var mask = [UInt8](repeating: 0, count: width * height)
            let x0 = Int.random(in: 0..<width, using: &rng), y0 = Int.random(in: 0..<height, using: &rng)
            let x1 = Int.random(in: x0..<width, using: &rng), y1 = Int.random(in: y0..<height, using: &rng)
            var area = 0
            for y in y0...y1 {
                for x in x0...x1 where Int.random(in: 0..<3, using: &rng) == 0 || (x, y) == (x0, y0) || (x, y) == (x1, y1) {
                    mask[y * width + x] = UInt8.random(in: 1...255, using: &rng)
                    area += 1
                }
            }
            mask[y0 * width + x1] = 9; mask[y1 * width + x0] = 200 // the corners pin the box exactly
            area = mask.filter { $0 != 0 }.count
            let box = mask.withUnsafeBufferPointer { MaskBits.boundingBox($0, width: width, height: height) }
            XCTAssertEqual(box?.box.x0, x0, "trial \(trial)")
            XCTAssertEqual(box?.box.y0, y0)
            XCTAssertEqual(box?.box.x1, x1)
            XCTAssertEqual(box?.box.y1, y1)
            XCTAssertEqual(box?.area, area)
        }
    }

    func testEmptyMaskHasNoBox() {
        let zeros = [UInt8](repeating: 0, count: 64 * 48)
        XCTAssertNil(zeros.withUnsafeBufferPointer { MaskBits.boundingBox($0, width: 64, height: 48) })
        XCTAssertNil([UInt8]().withUnsafeBufferPointer { MaskBits.boundingBox($0, width: 0, height: 0) })
    }

    func testSinglePixelAndWholeImage() {
        var mask = [UInt8](repeating: 0, count: 13 * 11)
        mask[7 * 13 + 12] = 3
        let box = mask.withUnsafeBufferPointer { MaskBits.boundingBox($0, width: 13, height: 11) }
        XCTAssertEqual(box.map { [$0.box.x0, $0.box.y0, $0.box.x1, $0.box.y1, $0.area] }, [12, 7, 12, 7, 1])
        XCTAssertEqual(mask.withUnsafeBufferPointer { MaskBits.pack($0, width: 13, height: 11, box: [12, 7, 12, 7]) }, [0x80])

        let full = [UInt8](repeating: 1, count: 16 * 4)
        let bits = full.withUnsafeBufferPointer { MaskBits.pack($0, width: 16, height: 4, box: [0, 0, 15, 3]) }
        XCTAssertEqual(bits, [UInt8](repeating: 0xFF, count: 8))
        XCTAssertEqual(full.withUnsafeBufferPointer { MaskBits.boundingBox($0, width: 16, height: 4) }?.area, 64)
        XCTAssertEqual(MaskBits.unpack(bits, width: 16, height: 4, box: [0, 0, 15, 3]), full)
    }

    func testBitOrderIsMostSignificantFirstAcrossRows() {
        // A 3-wide box: row 0 = 1 0 1, row 1 = 0 1 1, row 2 = 1 1 0 → bits 10101111 0 → [0xAF, 0x00].
        let mask: [UInt8] = [1, 0, 1, 0, 1, 1, 1, 1, 0]
        XCTAssertEqual(mask.withUnsafeBufferPointer { MaskBits.pack($0, width: 3, height: 3, box: [0, 0, 2, 2]) }, [0xAF, 0x00])
    }

    func testLargeMaskRoundTrip() {
        var rng = SeededGenerator(seed: 5)
        let width = 1021, height = 767
        let mask = randomMask(width, height, density: 0.3, &rng)
        let box = mask.withUnsafeBufferPointer { MaskBits.boundingBox($0, width: width, height: height) }!
        XCTAssertEqual(box.area, mask.filter { $0 != 0 }.count)
        let b = box.box
        let bits = mask.withUnsafeBufferPointer { MaskBits.pack($0, width: width, height: height, box: b) }
        XCTAssertEqual(MaskBits.unpack(bits, width: width, height: height, box: b), mask.map { $0 != 0 ? 1 : 0 })
    }
}
