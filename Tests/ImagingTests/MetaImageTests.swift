import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

final class MetaImageTests: TemporaryDirectoryTestCase {
    func sample(_ size: [Int] = [7, 5, 3], range: ClosedRange<Int> = -1000...3000, components: Int = 1) -> Volume {
        var rng = SeededGenerator(seed: 42)
        return Volume(size: size, components: components, spacing: [0.7, 0.8, 2.5], origin: [-120.5, 33.25, 7],
                      direction: NRRDTests.rotated, voxels: rng.voxels(size.reduce(1, *) * components, in: range))
    }

    /// An .mha with `header` lines, `ElementDataFile = LOCAL` and `payload`.
    func local(_ header: String, _ payload: Data, name: String = "t.mha") throws -> URL {
        let url = dir.appendingPathComponent(name)
        var d = Data((header + "\nElementDataFile = LOCAL\n").utf8)
        d.append(payload)
        try d.write(to: url)
        return url
    }

    // MARK: Round trips

    func testRoundTripMhaMhdCompressedInt16UInt8() throws {
        for (type, range) in [(VoxelType.int16, -1000...3000), (.uint8, 0...255)] {
            let v = sample(range: range)
            for ext in ["mha", "mhd"] {
                for compressed in [false, true] {
                    let url = dir.appendingPathComponent("\(type)-\(compressed).\(ext)")
                    try MetaImage.write(v, to: url, compressed: compressed, type: type)
                    let header = String(decoding: try Data(contentsOf: url).prefix(500), as: UTF8.self)
                    XCTAssertTrue(header.contains("ElementType = \(type == .int16 ? "MET_SHORT" : "MET_UCHAR")"), header)
                    XCTAssertTrue(header.contains("CompressedData = \(compressed ? "True" : "False")"))
                    XCTAssertTrue(header.contains("ElementDataFile = " + (ext == "mha" ? "LOCAL" : "\(type)-\(compressed).\(compressed ? "zraw" : "raw")")), header)
                    let back = try ImageIO.read(url)
                    XCTAssertEqual(back.size, v.size)
                    XCTAssertEqual(back.voxels, v.voxels, "\(type) \(ext) compressed=\(compressed)")
                    XCTAssertTrue(back.isIntegral)
                    assertSameGeometry(back, v, accuracy: 1e-9)
                }
            }
        }
    }

    func testRoundTripFloatAndRGB() throws {
        var f = sample()
        f.voxels = f.voxels.map { $0 / 3 }
        f.isIntegral = false
        let url = dir.appendingPathComponent("f.mha")
        try MetaImage.write(f, to: url)
        let back = try MetaImage.read(url)
        XCTAssertEqual(back.voxels, f.voxels)
        XCTAssertFalse(back.isIntegral)
        XCTAssertTrue(String(decoding: try Data(contentsOf: url).prefix(500), as: UTF8.self).contains("MET_FLOAT"))

        let rgb = sample([3, 2, 1], range: 0...255, components: 3)
        try MetaImage.write(rgb, to: url, compressed: false)
        let c = try MetaImage.read(url)
        XCTAssertEqual(c.components, 3)
        XCTAssertEqual(c.voxels, rgb.voxels)
    }

    // MARK: Header variants

    func testTransformMatrixListsAxisDirections() throws {
        // Axis 0 along +y, axis 1 along -x, axis 2 along +z: the file lists axis vectors in turn.
        let url = try local("""
            ObjectType = Image
            NDims = 3
            DimSize = 2 1 1
            ElementType = MET_UCHAR
            ElementSpacing = 0.5 2 3
            Offset = 1 2 3
            TransformMatrix = 0 1 0  -1 0 0  0 0 1
            """, Data([9, 8]))
        let v = try MetaImage.read(url)
        XCTAssertEqual(v.direction, [0, -1, 0, 1, 0, 0, 0, 0, 1])
        XCTAssertEqual(v.spacing, [0.5, 2, 3])
        XCTAssertEqual(v.origin, [1, 2, 3])
        XCTAssertEqual(v.voxels, [9, 8])
        // Our writer uses the same convention.
        let out = dir.appendingPathComponent("w.mha")
        try MetaImage.write(v, to: out, compressed: false)
        XCTAssertTrue(String(decoding: try Data(contentsOf: out).prefix(400), as: UTF8.self).contains("TransformMatrix = 0 1 0 -1 0 0 0 0 1"))
    }

    func testAlternativeKeysBigEndianAndTypes() throws {
        let be = try local("""
            NDims = 2
            DimSize = 3 1
            ElementType = MET_SHORT
            ElementSize = 0.3 0.4
            Position = 5 6
            Orientation = 1 0 0 1
            ElementByteOrderMSB = True
            """, Data([0xFF, 0xFE, 0x01, 0x00, 0x7F, 0xFF]), name: "be.mha")
        let v = try MetaImage.read(be)
        XCTAssertEqual(v.size, [3, 1, 1])
        XCTAssertEqual(v.voxels, [-2, 256, 32767])
        XCTAssertEqual(v.spacing, [0.3, 0.4, 1])
        XCTAssertEqual(v.origin, [5, 6, 0])
        let cases: [(String, [UInt8], [Float])] = [
            ("MET_CHAR", [0x80, 0x01], [-128, 1]),
            ("MET_USHORT", [0xFF, 0xFF, 0x02, 0x00], [65535, 2]),
            ("MET_UINT", [0, 0, 0, 1, 5, 0, 0, 0], [16_777_216, 5]),
            ("MET_LONG", [0xFF, 0xFF, 0xFF, 0xFF, 3, 0, 0, 0], [-1, 3]),  // 32-bit in MetaIO
            ("MET_ULONG", [1, 0, 0, 0, 2, 0, 0, 0], [1, 2]),
            ("MET_LONG_LONG", [0xFE] + [UInt8](repeating: 0xFF, count: 7) + [4, 0, 0, 0, 0, 0, 0, 0], [-2, 4]),
            ("MET_ULONG_LONG", [7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], [7, 256]),
            ("MET_DOUBLE", Array(withUnsafeBytes(of: (0.25).bitPattern.littleEndian, Array.init) + withUnsafeBytes(of: (-8.0).bitPattern.littleEndian, Array.init)), [0.25, -8]),
        ]
        for (type, bytes, expected) in cases {
            let url = try local("ObjectType = Image\nNDims = 2\nDimSize = 2 1\nElementType = \(type)", Data(bytes), name: "\(type).mha")
            XCTAssertEqual(try MetaImage.read(url).voxels, expected, type)
        }
    }

    func testHeaderSizeAndASCII() throws {
        try Data([1, 2, 3, 4, 5, 6, 10, 20, 30]).write(to: dir.appendingPathComponent("d.raw"))
        let mhd = dir.appendingPathComponent("h.mhd")
        try Data("NDims = 2\nDimSize = 3 1\nElementType = MET_UCHAR\nHeaderSize = 2\nElementDataFile = d.raw\n".utf8).write(to: mhd)
        XCTAssertEqual(try MetaImage.read(mhd).voxels, [3, 4, 5])
        try Data("NDims = 2\nDimSize = 3 1\nElementType = MET_UCHAR\nHeaderSize = -1\nElementDataFile = d.raw\n".utf8).write(to: mhd)
        XCTAssertEqual(try MetaImage.read(mhd).voxels, [10, 20, 30])
        let ascii = try local("NDims = 2\nDimSize = 2 2\nBinaryData = False\nElementType = MET_FLOAT", Data("1.5 -2\n3 4\n".utf8), name: "a.mha")
        XCTAssertEqual(try MetaImage.read(ascii).voxels, [1.5, -2, 3, 4])
    }

    // MARK: Bad input

    func testBadInputThrowsMeaningfulErrors() throws {
        let v = sample()
        let raw = dir.appendingPathComponent("raw.mha"), z = dir.appendingPathComponent("z.mha")
        try MetaImage.write(v, to: raw, compressed: false, type: .int16)
        try MetaImage.write(v, to: z, compressed: true, type: .int16)
        var d = try Data(contentsOf: raw)
        try d.prefix(d.count - 4).write(to: raw)
        assertImagingError(try MetaImage.read(raw), "MetaImage: data is truncated (expected 210 bytes, found 206)", exact: true)
        d = try Data(contentsOf: z)
        try d.prefix(d.count - 20).write(to: z)
        assertImagingError(try MetaImage.read(z), "MetaImage: zlib: corrupt or truncated data (expected 210 bytes)", exact: true)

        let empty = dir.appendingPathComponent("e.mha")
        try Data().write(to: empty)
        assertImagingError(try ImageIO.read(empty), "file is empty", exact: true)
        let png = dir.appendingPathComponent("p.mha")
        try Raster.encodePNG(Volume(size: [2, 2, 1], voxels: [0, 1, 2, 3])).write(to: png)
        assertImagingError(try MetaImage.read(png), "MetaImage: not a MetaImage header", exact: true)
        let noFile = try local("NDims = 2\nDimSize = 1 1", Data([0]), name: "nf.mha")
        assertImagingError(try MetaImage.read(noFile), "MetaImage: header has no ElementType field", exact: true)
        let headerOnly = dir.appendingPathComponent("ho.mha")
        try Data("NDims = 2\nDimSize = 1 1\nElementType = MET_UCHAR\n".utf8).write(to: headerOnly)
        assertImagingError(try MetaImage.read(headerOnly), "MetaImage: header has no ElementDataFile field", exact: true)
        let badType = try local("NDims = 2\nDimSize = 1 1\nElementType = MET_FLOAT_MATRIX", Data([0]), name: "bt.mha")
        assertImagingError(try MetaImage.read(badType), "MetaImage: ElementType 'MET_FLOAT_MATRIX' is not supported", exact: true)
        let missing = dir.appendingPathComponent("m.mhd")
        try Data("NDims = 2\nDimSize = 1 1\nElementType = MET_UCHAR\nElementDataFile = gone.raw\n".utf8).write(to: missing)
        assertImagingError(try MetaImage.read(missing), "MetaImage: cannot read 'gone.raw' (no such file)", exact: true)
    }
}
