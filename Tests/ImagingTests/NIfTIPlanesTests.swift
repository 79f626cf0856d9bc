import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

/// The piecewise readers (a .nii.gz inflated piece by piece, `NIfTIPlanes`) against the one-shot
/// decoder they replace on the ingest path.
final class NIfTIPlanesTests: TemporaryDirectoryTestCase {
    func volume(_ size: [Int], _ range: ClosedRange<Int>, direction: [Double] = Volume.identity) -> Volume {
        var rng = SeededGenerator(seed: 2)
        return Volume(size: size, spacing: [0.8, 0.9, 2.5], origin: [-10, 20, 30], direction: direction,
                      voxels: rng.voxels(size.reduce(1, *), in: range))
    }

    /// The one-shot path: the whole file inflated, then decoded.
    func oneShot(_ url: URL, limit: Int = .max) throws -> [Volume] {
        try NIfTI.decode(Compression.gunzip(Data(contentsOf: url)), limit: limit)
    }

    func testStreamedReadsMatchTheOneShotDecoderForEveryDatatype() throws {
        for version in [1, 2] {
            for (type, range) in NIfTITests.datatypes {
                // Over 400 KB from int16 up: more than one of the reader's 384 KiB pieces, not a multiple of one.
                let v = volume([67, 53, 61], range)
                let url = dir.appendingPathComponent("v\(version)-\(type).nii.gz")
                try NIfTI.write(v, to: url, datatype: type, version: version)
                let streamed = try NIfTI.read(url)
                XCTAssertEqual(streamed.voxels, v.voxels, "\(type) v\(version)")
                XCTAssertEqual(streamed.voxels, try oneShot(url)[0].voxels, "\(type) v\(version)")
                XCTAssertEqual(streamed.isIntegral, type != .float32 && type != .float64)
            }
        }
    }

    func testStreamedFramesHonourTheLimit() throws {
        var data = NIfTI.encode(volume([40, 30, 20], 0...255), datatype: .uint8)
        data.withUnsafeMutableBytes {
            $0.storeBytes(of: Int16(4), toByteOffset: 40, as: Int16.self)
            $0.storeBytes(of: Int16(3), toByteOffset: 48, as: Int16.self)
        }
        data.append(contentsOf: (0..<(2 * 40 * 30 * 20)).map { UInt8($0 % 251) })
        let url = dir.appendingPathComponent("4d.nii.gz")
        try Compression.gzip(data, level: 1).write(to: url)
        let all = try NIfTI.readFrames(url), two = try NIfTI.readFrames(url, limit: 2)
        XCTAssertEqual(all.map(\.voxels), try oneShot(url).map(\.voxels))
        XCTAssertEqual(all.count, 3)
        XCTAssertEqual(two.map(\.voxels), Array(all.prefix(2)).map(\.voxels))
        XCTAssertEqual(Array(all[2].voxels.prefix(3)), (0..<3).map { Float((40 * 30 * 20 + $0) % 251) })
    }

    func testDamagedStreamsAreRejectedWithTheOneShotPathsMessages() throws {
        let url = dir.appendingPathComponent("d.nii.gz")
        try NIfTI.write(volume([64, 64, 40], -1000...1000), to: url, datatype: .int16)
        let good = try Data(contentsOf: url)
        func rejected(_ bytes: Data, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
            try bytes.write(to: url)
            XCTAssertThrowsError(try NIfTI.read(url), "expected: \(expected)", file: file, line: line) { XCTAssertTrue("\($0)".contains(expected), "\($0)", file: file, line: line) }
            XCTAssertNotNil(NIfTIPlanes(url), "the header still reads", file: file, line: line)
            XCTAssertFalse(NIfTIPlanes(url)!.forEach { _, _ in }, file: file, line: line)
        }
        // The CRC and the length in the trailer are checked: every voxel decodes, the file is still wrong.
        var crc = good
        crc[crc.count - 8] ^= 0xff
        try rejected(crc, "corrupt data")
        var length = good
        length[length.count - 4] ^= 0x01
        try rejected(length, "gzip")
        try rejected(good.prefix(good.count * 2 / 3), "truncated")
        // Bytes after the member that are not another member are ignored, as gzip does; the plane
        // reader leaves such files to the one-shot path.
        try (good + Data([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).write(to: url)
        XCTAssertEqual(try NIfTI.read(url).voxels, try NIfTI.decode(Compression.gunzip(good))[0].voxels)
        XCTAssertFalse(NIfTIPlanes(url)!.forEach { _, _ in })
    }

    func testReadingStopsAfterTheLastPlaneWantedWhenTheTrailerSaysTheFileIsWhole() throws {
        let url = dir.appendingPathComponent("s.nii.gz")
        let v = volume([40, 30, 20], -1000...1000)
        try NIfTI.write(v, to: url, datatype: .int16)
        let good = try Data(contentsOf: url)
        func planes(through last: Int?) -> (complete: Bool, seen: [Int]) {
            var seen: [Int] = []
            let complete = NIfTIPlanes(url)!.forEach(through: last) { z, _ in seen.append(z) }
            return (complete, seen)
        }
        XCTAssertTrue(planes(through: 7) == (true, Array(0...7)))
        XCTAssertTrue(planes(through: 19) == (true, Array(0..<20)))
        XCTAssertTrue(planes(through: nil) == (true, Array(0..<20)))
        // A damaged CRC goes unnoticed when reading stops early (it covers the whole file), and is
        // caught when the file is read to its end.
        var crc = good
        crc[crc.count - 8] ^= 0xff
        try crc.write(to: url)
        XCTAssertTrue(planes(through: 7).complete)
        XCTAssertFalse(planes(through: nil).complete)
        // A file cut short past the planes wanted has no trailer that gives the header's length: it is
        // read to where it ends, and rejected.
        try good.prefix(good.count * 9 / 10).write(to: url)
        XCTAssertFalse(planes(through: 7).complete)
        // Neither is a trailer whose length disagrees with the header.
        var length = good
        length[length.count - 4] ^= 0x01
        try length.write(to: url)
        XCTAssertFalse(planes(through: 7).complete)
    }

    func testMultiMemberFilesReadThroughTheOneShotPath() throws {
        // gzip(a) + gzip(b) is a valid gzip file whose content is a + b.
        let data = NIfTI.encode(volume([50, 40, 30], -500...500), datatype: .int16)
        let url = dir.appendingPathComponent("m.nii.gz")
        try (Compression.gzip(data.prefix(30_000)) + Compression.gzip(data.dropFirst(30_000))).write(to: url)
        XCTAssertEqual(try NIfTI.read(url).voxels, try NIfTI.decode(data)[0].voxels)
        XCTAssertFalse(NIfTIPlanes(url)!.forEach { _, _ in }, "a second member is left to the one-shot path")
    }

    func testPlanesAreTheVolumesPlanesCompressedOrNot() throws {
        // x and z reversed in LPS, as scanners often store them.
        let v = volume([33, 21, 9], -1024...3071, direction: [-1, 0, 0, 0, 1, 0, 0, 0, -1])
        for name in ["p.nii", "p.nii.gz"] {
            let url = dir.appendingPathComponent(name)
            try NIfTI.write(v, to: url, datatype: .int16)
            let planes = try XCTUnwrap(NIfTIPlanes(url))
            let whole = try NIfTI.read(url)
            XCTAssertEqual(planes.grid.size, whole.size)
            XCTAssertEqual(planes.grid.direction, whole.direction)
            XCTAssertTrue(planes.grid.sameGrid(as: whole.grid))
            XCTAssertTrue(planes.isIntegral)
            let n = 33 * 21
            var seen: [Int] = []
            var values = [Float](repeating: .nan, count: n)
            XCTAssertTrue(planes.forEach { z, raw in
                seen.append(z)
                values.withUnsafeMutableBufferPointer { planes.values(raw, into: $0.baseAddress!) }
                XCTAssertEqual(values, Array(whole.voxels[(z * n)..<((z + 1) * n)]), "\(name) plane \(z)")
            })
            XCTAssertEqual(seen, Array(0..<9))
        }
    }

    func testWindowingMatchesTheMappingOnTheReadVolume() throws {
        let window = Intensity.mapping(for: .ctSoftTissue)!
        let cases: [(VoxelType, ClosedRange<Int>, slope: Float?)] = [
            (.int16, -2000...2000, nil), (.int16, -1000...1000, 2), (.int16, -1000...1000, 0.5),
            (.uint8, 0...255, nil), (.uint16, 0...4000, nil), (.int32, -3000...3000, nil), (.float32, -3000...3000, nil),
        ]
        for (type, range, slope) in cases {
            var data = NIfTI.encode(volume([30, 20, 3], range), datatype: type)
            if let slope {
                data.withUnsafeMutableBytes {
                    $0.storeBytes(of: slope, toByteOffset: 112, as: Float.self)
                    $0.storeBytes(of: Float(-1024), toByteOffset: 116, as: Float.self)
                }
            }
            let url = dir.appendingPathComponent("w-\(type).nii")
            try data.write(to: url)
            let whole = try NIfTI.read(url), planes = try XCTUnwrap(NIfTIPlanes(url))
            let windowing = planes.windowing(window)
            XCTAssertEqual(windowing.table != nil, [.int16, .uint8, .uint16].contains(type), "\(type)")
            XCTAssertTrue(planes.forEach { z, raw in
                // Every row forwards, and backwards from its last voxel (a flipped axis).
                for (offset, stride) in [(0, 1), (29, -1), (5, 2)] {
                    // Written contiguously, and 8 apart (the resampler's interleaved rows).
                    for y in 0..<20 { for outStride in [1, 8] {
                        let count = stride == 2 ? 12 : 30
                        var got = [Float](repeating: .nan, count: count * outStride)
                        got.withUnsafeMutableBufferPointer {
                            planes.window(raw, offset: y * 30 + offset, stride: stride, count: count, with: windowing, into: $0.baseAddress!, outStride: outStride)
                        }
                        let expected = (0..<count).map { window.apply(whole.voxels[z * 600 + y * 30 + offset + $0 * stride]) }
                        XCTAssertEqual((0..<count).map { got[$0 * outStride] }, expected, "\(type) slope \(slope.map { "\($0)" } ?? "none")")
                        XCTAssertTrue(got.indices.filter { $0 % outStride != 0 }.allSatisfy { got[$0].isNaN }, "only every \(outStride)th value written")
                    } }
                }
            })
        }
    }

    func testOnlyScalarVolumesAreReadByPlanes() throws {
        let flat = dir.appendingPathComponent("flat.nii.gz"), rgb = dir.appendingPathComponent("rgb.nii")
        try NIfTI.write(volume([8, 8, 1], 0...255), to: flat, datatype: .uint8)
        try NIfTI.write(Volume(size: [4, 4, 2], components: 3, voxels: [Float](repeating: 7, count: 96)), to: rgb, datatype: .rgb24)
        let junk = dir.appendingPathComponent("junk.nii.gz")
        try Data("not a volume at all".utf8).write(to: junk)
        XCTAssertNil(NIfTIPlanes(flat))
        XCTAssertNil(NIfTIPlanes(rgb))
        XCTAssertNil(NIfTIPlanes(junk))
        XCTAssertNil(NIfTIPlanes(dir.appendingPathComponent("missing.nii.gz")))
    }

    func testLevelOneZlibRoundTripsCompressibleAndRandomBytes() throws {
        var rng = SeededGenerator(seed: 3)
        let random = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let ramp = (0..<65_536).map { UInt8(($0 / 256 + $0 % 7) & 0xff) }
        for bytes in [random, ramp, [UInt8](repeating: 0, count: 100_000)] {
            for level: Int32 in [1, 6] {
                let packed = bytes.withUnsafeBytes { Compression.zlibCompress($0, level: level) }
                let back = try packed.withUnsafeBytes { try Compression.zlibDecompress($0, expected: bytes.count) }
                XCTAssertEqual([UInt8](back), bytes, "level \(level), \(bytes.count) bytes")
                if bytes.count == 100_000 { XCTAssertLessThan(packed.count, 1000) }
            }
        }
    }
}
