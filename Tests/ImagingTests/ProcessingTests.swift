import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

final class ProcessingTests: XCTestCase {
    func testCTWindow() {
        var v = Volume(size: [5, 1, 1], voxels: [-1000, -160, 40, 240, 3000])
        Intensity.normalise(&v, policy: .ctSoftTissue)
        XCTAssertEqual(v.voxels, [0, 0, 128, 255, 255])  // 200/400·255 = 127.5 → 128
    }

    func testBatchMappingGivesTheScalarMappingsNumbers() {
        // Every mapping kind, over integers, values that land on .5 exactly, and non-finite inputs.
        var values: [Float] = (-1300...1300).map { Float($0) } + (0..<4000).map { Float($0) * 0.37 - 700 }
        values += [.nan, .infinity, -.infinity, -0.0, 0, -160, 240, 1e30, -1e30]
        let mappings = [
            Intensity.Mapping(low: -160, high: 240, background: nil),
            Intensity.Mapping(low: 3, high: 883, background: -1),
            Intensity.Mapping(low: 5, high: 5, background: nil),
        ]
        for m in mappings {
            for stride in [1, -1, 3] {
                let count = values.count / abs(stride)
                var out = [Float](repeating: -1, count: count)
                values.withUnsafeBufferPointer { v in
                    let start = stride > 0 ? v.baseAddress! : v.baseAddress! + (v.count - 1)
                    out.withUnsafeMutableBufferPointer { m.apply(start, stride: stride, count: count, into: $0.baseAddress!) }
                }
                for i in 0..<count {
                    let x = values[stride > 0 ? i * stride : values.count - 1 - i]
                    XCTAssertEqual(out[i], m.apply(x), "\(x) with \(m), stride \(stride)")
                }
            }
        }
    }

    func testByteClampsAndRoundsHalfUp() {
        for x in stride(from: Float(-3), through: 260, by: 0.125) + [0.49999997, 254.5, 255.49, .infinity, -.infinity] {
            XCTAssertEqual(Intensity.byte(x), UInt8(min(max(x, 0), 255).rounded()), "\(x)")
        }
    }

    func testPercentilesMatchNumpyLinearInterpolation() {
        // numpy.percentile([1..10], [0.5, 25, 99.5]) = [1.045, 3.25, 9.955]
        let values = (1...10).map(Float.init)
        for integral in [true, false] {
            let p = Intensity.percentiles(values, of: [0.5, 25, 99.5], integral: integral)
            XCTAssertEqual(p[0], 1.045, accuracy: 1e-9)
            XCTAssertEqual(p[1], 3.25, accuracy: 1e-9)
            XCTAssertEqual(p[2], 9.955, accuracy: 1e-9)
        }
    }

    func testPercentilePolicyIgnoresBackgroundAndKeepsItZero() {
        var voxels = [Float](repeating: 0, count: 1000)
        for i in 0..<800 { voxels[i] = Float(100 + i) }  // foreground 100…899
        var v = Volume(size: [1000, 1, 1], voxels: voxels)
        let m = Intensity.normalise(&v, policy: .percentile(lower: 0.5, upper: 99.5))
        XCTAssertEqual(Double(m.low), 100 + 0.005 * 799, accuracy: 1e-3)
        XCTAssertEqual(Double(m.high), 100 + 0.995 * 799, accuracy: 1e-3)
        XCTAssertEqual(v.voxels[900], 0)
        XCTAssertEqual(v.voxels[0], 0)
        XCTAssertEqual(v.voxels[799], 255)
        XCTAssertEqual(v.voxels[400], ((500 - m.low) * 255 / (m.high - m.low)).rounded())
    }

    func testResizeOfConstantAndRampPlanes() {
        let constant = [Float](repeating: 7, count: 64 * 48)
        let c = constant.withUnsafeBufferPointer { Resize.bilinear($0, width: 64, height: 48, channels: 1, toWidth: 21, toHeight: 37) }
        XCTAssertTrue(c.allSatisfy { abs($0 - 7) < 1e-4 })
        // Halving a ramp averages pairs: (2k + 2k+1)/2 with the widened triangle filter is symmetric.
        let ramp = (0..<8).map(Float.init)
        let r = ramp.withUnsafeBufferPointer { Resize.bilinear($0, width: 8, height: 1, channels: 1, toWidth: 4, toHeight: 1) }
        for (i, x) in r.enumerated() where i > 0 && i < 3 { XCTAssertEqual(x, Float(2 * i) + 0.5, accuracy: 1e-4) }
        // Upsampling ×2 with half-pixel centres: interior samples at k/2 − 0.25.
        let up = ramp.withUnsafeBufferPointer { Resize.bilinear($0, width: 8, height: 1, channels: 1, toWidth: 16, toHeight: 1) }
        XCTAssertEqual(up[5], 2.25, accuracy: 1e-5)
        XCTAssertEqual(up[0], 0, accuracy: 1e-5)
    }

    func testBoundingBoxMatchesAVoxelByVoxelScan() {
        var rng = SeededGenerator(seed: 4)
        let size = [37, 23, 11]
        for density in [0, 1, 30] {
            var l = [Int32](repeating: 0, count: size.reduce(1, *))
            for i in l.indices where Int.random(in: 0..<1000, using: &rng) < density { l[i] = Int32.random(in: 1...3, using: &rng) }
            var lo = [Int.max, Int.max, Int.max], hi = [-1, -1, -1]
            for i in l.indices where l[i] != 0 {
                let p = [i % size[0], i / size[0] % size[1], i / (size[0] * size[1])]
                for k in 0..<3 { lo[k] = min(lo[k], p[k]); hi[k] = max(hi[k], p[k]) }
            }
            let box = Components.boundingBox(l, size: size)
            if density == 0 { XCTAssertNil(box); continue }
            XCTAssertEqual(box.map { [$0.lo.x, $0.lo.y, $0.lo.z] }, lo)
            XCTAssertEqual(box.map { [$0.hi.x, $0.hi.y, $0.hi.z] }, hi)
        }
    }

    func testNearestKeepsLabelsExact() {
        let src: [Int32] = [1, 2, 3, 4]
        let out = src.withUnsafeBufferPointer { Resize.nearest($0, width: 2, height: 2, toWidth: 4, toHeight: 4, zero: 0) }
        XCTAssertEqual(out, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    func testComponents2DUseEightConnectivity() {
        // Two diagonal pixels touch (8-conn); a separate blob of another label next to them does not merge.
        let l: [Int32] = [
            1, 0, 0, 2,
            0, 1, 0, 2,
            0, 0, 0, 0,
            1, 1, 0, 1,
        ]
        let (ids, sizes) = l.withUnsafeBufferPointer { Components.label($0, size: [4, 4, 1]) }
        XCTAssertEqual(sizes.count - 1, 4)
        XCTAssertEqual(ids[0], ids[5])
        XCTAssertNotEqual(ids[0], ids[12])
        XCTAssertEqual(ids[3], ids[7])
        XCTAssertEqual(sizes.dropFirst().sorted(), [1, 2, 2, 2])
    }

    func testComponents3DUseTwentySixConnectivityAndRemoveSmall() {
        // Corner-touching voxels in consecutive slices connect in 3D.
        var l = [Int32](repeating: 0, count: 125)
        func at(_ x: Int, _ y: Int, _ z: Int) -> Int { x + 5 * y + 25 * z }
        for i in 0..<3 { l[at(i, i, i)] = 5 }  // a diagonal chain
        l[at(4, 0, 0)] = 5  // isolated
        let (_, sizes) = l.withUnsafeBufferPointer { Components.label($0, size: [5, 5, 5]) }
        XCTAssertEqual(sizes.dropFirst().sorted(), [1, 3])
        let removed = Components.removeSmall(&l, size: [5, 5, 5], minSize: 2)
        XCTAssertEqual(removed, 1)
        XCTAssertEqual(l[at(4, 0, 0)], 0)
        XCTAssertEqual(l[at(2, 2, 2)], 5)
    }

    func testComponentsOnALargeRandomVolumeMatchAFloodFill() {
        var rng = SeededGenerator(seed: 5)
        // Dense, and sparse: long runs of background, which the labelling passes over in blocks.
        for percent in [30, 1] {
            let l: [Int32] = (0..<(40 * 30 * 20)).map { _ in Int.random(in: 0..<100, using: &rng) < percent ? Int32.random(in: 1...2, using: &rng) : 0 }
            assertComponentsMatchAFloodFill(l)
        }
    }

    func assertComponentsMatchAFloodFill(_ l: [Int32], file: StaticString = #filePath, line: UInt = #line) {
        let size = [40, 30, 20], n = 40 * 30 * 20
        let (ids, sizes) = l.withUnsafeBufferPointer { Components.label($0, size: size) }
        // Reference: breadth-first flood fill with 26 neighbours.
        var ref = [Int](repeating: 0, count: n), count = 0
        for s in 0..<n where l[s] != 0 && ref[s] == 0 {
            count += 1; ref[s] = count
            var queue = [s], head = 0
            while head < queue.count {
                let p = queue[head]; head += 1
                let x = p % 40, y = p / 40 % 30, z = p / 1200
                for dz in -1...1 { for dy in -1...1 { for dx in -1...1 {
                    let X = x + dx, Y = y + dy, Z = z + dz
                    guard X >= 0, X < 40, Y >= 0, Y < 30, Z >= 0, Z < 20 else { continue }
                    let q = X + 40 * Y + 1200 * Z
                    if l[q] == l[p] && ref[q] == 0 { ref[q] = count; queue.append(q) }
                } } }
            }
        }
        XCTAssertEqual(sizes.count - 1, count, file: file, line: line)
        // Same partition: a bijection between ids, and each id's size.
        var map: [Int32: Int] = [:], refSizes = [Int](repeating: 0, count: count + 1)
        for i in 0..<n where l[i] != 0 {
            if let m = map[ids[i]] { XCTAssertEqual(m, ref[i], file: file, line: line) } else { map[ids[i]] = ref[i] }
            refSizes[ref[i]] += 1
        }
        XCTAssertEqual(ids.enumerated().filter { l[$0.offset] == 0 }.allSatisfy { $0.element == 0 }, true, file: file, line: line)
        for (id, r) in map { XCTAssertEqual(sizes[Int(id)], refSizes[r], file: file, line: line) }
        // Numbered as the flood fill numbers them: by each component's first voxel in raster order.
        XCTAssertEqual(ids.map(Int.init), ref, file: file, line: line)
        // Removal zeroes exactly the voxels of components under the threshold.
        var cleaned = l
        let removed = Components.removeSmall(&cleaned, size: size, minSize: 3)
        XCTAssertEqual(removed, (0..<n).filter { l[$0] != 0 && refSizes[ref[$0]] < 3 }.count, file: file, line: line)
        XCTAssertEqual(cleaned, (0..<n).map { l[$0] != 0 && refSizes[ref[$0]] >= 3 ? l[$0] : 0 }, file: file, line: line)
    }

    func testResizeMatchesATapByTapSum() {
        // The reference: each output the plain sum over its own taps, rows then columns, as Pillow does.
        func reference(_ src: [Float], _ w: Int, _ h: Int, _ ow: Int, _ oh: Int) -> [Float] {
            let tx = Resize.taps(from: w, to: ow), ty = Resize.taps(from: h, to: oh)
            var tmp = [Float](repeating: 0, count: ow * h), out = [Float](repeating: 0, count: ow * oh)
            for y in 0..<h { for x in 0..<ow {
                var acc: Float = 0
                for k in 0..<tx.count[x] { acc += src[y * w + tx.start[x] + k] * tx.weights[x * tx.width + k] }
                tmp[y * ow + x] = acc
            } }
            for y in 0..<oh { for k in 0..<ty.count[y] { for x in 0..<ow {
                out[y * ow + x] += tmp[(ty.start[y] + k) * ow + x] * ty.weights[y * ty.width + k]
            } } }
            return out
        }
        var rng = SeededGenerator(seed: 6)
        for (w, h, ow, oh) in [(512, 512, 256, 256), (300, 200, 256, 171), (100, 80, 256, 205), (97, 61, 33, 20)] {
            let src = rng.voxels(w * h, in: 0...255)
            let got = src.withUnsafeBufferPointer { Resize.bilinear($0, width: w, height: h, channels: 1, toWidth: ow, toHeight: oh) }
            XCTAssertEqual(got, reference(src, w, h, ow, oh), "\(w)×\(h) → \(ow)×\(oh)")
        }
    }
}
