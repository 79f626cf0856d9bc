import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

final class NIfTITests: TemporaryDirectoryTestCase {
    /// A 30° rotation about z, as a direction matrix (columns = axis directions, LPS).
    static let rotated: [Double] = [cos(0.5236), -sin(0.5236), 0, sin(0.5236), cos(0.5236), 0, 0, 0, 1]

    /// Every datatype, with whole values that it stores exactly.
    static let datatypes: [(VoxelType, ClosedRange<Int>)] = [
        (.uint8, 0...255), (.int8, -128...127), (.int16, -32768...32767), (.uint16, 0...65535),
        (.int32, -1_000_000...1_000_000), (.uint32, 0...2_000_000), (.int64, -5_000_000...5_000_000),
        (.uint64, 0...9_000_000), (.float32, -3000...3000), (.float64, -3000...3000),
    ]

    func sample(_ size: [Int] = [5, 4, 3], range: ClosedRange<Int> = -1000...3000) -> Volume {
        var rng = SeededGenerator(seed: 1)
        return Volume(size: size, spacing: [0.7, 0.8, 2.5], origin: [-120.5, 33.25, 7], direction: Self.rotated,
                      voxels: rng.voxels(size.reduce(1, *), in: range))
    }

    func testRoundTripEveryDatatypeBothVersions() throws {
        for version in [1, 2] {
            for (type, range) in Self.datatypes {
                let v = sample(range: range)
                let url = dir.appendingPathComponent("v\(version)-\(type).nii\(type == .int16 ? ".gz" : "")")
                try NIfTI.write(v, to: url, datatype: type, version: version)
                let back = try NIfTI.read(url)
                XCTAssertEqual(back.size, v.size)
                XCTAssertEqual(back.voxels, v.voxels, "\(type) v\(version)")
                XCTAssertEqual(back.isIntegral, type != .float32 && type != .float64)
                assertSameGeometry(back, v, accuracy: 1e-5, originAccuracy: 1e-4)
            }
        }
    }

    func testQformOnlyGivesTheSameGeometry() throws {
        let v = sample()
        var data = NIfTI.encode(v, datatype: .int16)
        data.withUnsafeMutableBytes { $0.storeBytes(of: Int16(0), toByteOffset: 254, as: Int16.self) }  // sform_code = 0
        let back = try NIfTI.decode(data)[0]
        assertSameGeometry(back, v, accuracy: 1e-5, originAccuracy: 1e-4)
    }

    func testQformWithNegativeQfac() throws {
        // A left-handed grid: z axis pointing inferior.
        var v = sample()
        v.direction = [1, 0, 0, 0, 1, 0, 0, 0, -1]
        var data = NIfTI.encode(v, datatype: .int16)
        data.withUnsafeMutableBytes { $0.storeBytes(of: Int16(0), toByteOffset: 254, as: Int16.self) }
        let back = try NIfTI.decode(data)[0]
        assertSameGeometry(back, v, accuracy: 1e-5, originAccuracy: 1e-4)
    }

    func testNoTransformFallsBackToPixdim() throws {
        let v = sample()
        var data = NIfTI.encode(v, datatype: .int16)
        data.withUnsafeMutableBytes {
            $0.storeBytes(of: Int16(0), toByteOffset: 252, as: Int16.self)
            $0.storeBytes(of: Int16(0), toByteOffset: 254, as: Int16.self)
        }
        let back = try NIfTI.decode(data)[0]
        XCTAssertEqual(back.spacing[0], 0.7, accuracy: 1e-6)
        XCTAssertEqual(back.spacing[2], 2.5, accuracy: 1e-6)
        // RAS identity seen in LPS: x and y flip.
        XCTAssertEqual(back.direction, [-1, 0, 0, 0, -1, 0, 0, 0, 1])
    }

    func testSlopeAndInterceptAreApplied() throws {
        let v = Volume(size: [2, 2, 1], voxels: [0, 1, 2, 100])
        var data = NIfTI.encode(v, datatype: .int16)
        data.withUnsafeMutableBytes {
            $0.storeBytes(of: Float(2), toByteOffset: 112, as: Float.self)
            $0.storeBytes(of: Float(-1024), toByteOffset: 116, as: Float.self)
        }
        let back = try NIfTI.decode(data)[0]
        XCTAssertEqual(back.voxels, [-1024, -1022, -1020, -824])
        XCTAssertTrue(back.isIntegral)
        data.withUnsafeMutableBytes { $0.storeBytes(of: Float(0.5), toByteOffset: 112, as: Float.self) }
        XCTAssertEqual(try NIfTI.decode(data)[0].voxels, [-1024, -1023.5, -1023, -974])
        XCTAssertFalse(try NIfTI.decode(data)[0].isIntegral)
    }

    func testBigEndianFile() throws {
        // Hand-made big-endian NIfTI-1 header: int16 2×2×1, values 1, -2, 300, -32768.
        var h = Data(count: 352)
        func be16(_ o: Int, _ x: Int16) { h.withUnsafeMutableBytes { $0.storeBytes(of: x.bigEndian, toByteOffset: o, as: Int16.self) } }
        func beF(_ o: Int, _ x: Float) { h.withUnsafeMutableBytes { $0.storeBytes(of: x.bitPattern.bigEndian, toByteOffset: o, as: UInt32.self) } }
        h.withUnsafeMutableBytes { $0.storeBytes(of: Int32(348).bigEndian, toByteOffset: 0, as: Int32.self) }
        for (i, d) in [3, 2, 2, 1, 1, 1, 1, 1].enumerated() { be16(40 + 2 * i, Int16(d)) }
        be16(70, 4); be16(72, 16)
        for (i, d) in [1, 1.5, 2, 3, 1, 1, 1, 1].enumerated() { beF(76 + 4 * i, Float(d)) }
        beF(108, 352)
        h.replaceSubrange(344..<348, with: Array("n+1\0".utf8))
        for x: Int16 in [1, -2, 300, -32768] { withUnsafeBytes(of: x.bigEndian) { h.append(contentsOf: $0) } }
        let v = try NIfTI.decode(h)[0]
        XCTAssertEqual(v.voxels, [1, -2, 300, -32768])
        XCTAssertEqual(v.spacing, [1.5, 2, 3])
    }

    func testFramesOf4DFile() throws {
        var data = NIfTI.encode(Volume(size: [2, 1, 1], voxels: [1, 2, 3, 4, 5, 6].prefix(2).map { $0 }), datatype: .uint8)
        // Turn it into 2×1×1×3 by patching dim and appending two frames.
        data.withUnsafeMutableBytes {
            $0.storeBytes(of: Int16(4), toByteOffset: 40, as: Int16.self)
            $0.storeBytes(of: Int16(3), toByteOffset: 48, as: Int16.self)
        }
        data.append(contentsOf: [3, 4, 5, 6] as [UInt8])
        let frames = try NIfTI.decode(data)
        XCTAssertEqual(frames.map(\.voxels), [[1, 2], [3, 4], [5, 6]])
    }

    func testTruncatedGzipIsAClearError() throws {
        let url = dir.appendingPathComponent("t.nii.gz")
        try NIfTI.write(sample([64, 64, 8]), to: url, datatype: .int16)
        let full = try Data(contentsOf: url)
        try full.prefix(full.count / 2).write(to: url)
        XCTAssertThrowsError(try NIfTI.read(url)) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }

    func testTruncatedDataAndBadHeaders() throws {
        let data = NIfTI.encode(sample(), datatype: .int16)
        XCTAssertThrowsError(try NIfTI.decode(data.prefix(400))) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        XCTAssertThrowsError(try NIfTI.decode(Data(count: 100))) { XCTAssertTrue("\($0)".contains("too short"), "\($0)") }
        XCTAssertThrowsError(try NIfTI.decode(Data(count: 400))) { XCTAssertTrue("\($0)".contains("not a NIfTI"), "\($0)") }
        var bad = data
        bad.withUnsafeMutableBytes { $0.storeBytes(of: Int16(1536), toByteOffset: 70, as: Int16.self) }  // float128
        XCTAssertThrowsError(try NIfTI.decode(bad)) { XCTAssertTrue("\($0)".contains("datatype 1536"), "\($0)") }
        let url = dir.appendingPathComponent("empty.nii")
        FileManager.default.createFile(atPath: url.path, contents: Data())
        XCTAssertThrowsError(try NIfTI.read(url)) { XCTAssertEqual("\($0)", "file is empty") }
    }
}
