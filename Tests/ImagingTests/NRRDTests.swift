import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

final class NRRDTests: TemporaryDirectoryTestCase {
    static let c30 = cos(Double.pi / 6), s30 = sin(Double.pi / 6)
    /// 30° about z (columns are axis directions, LPS).
    static let rotated: [Double] = [c30, -s30, 0, s30, c30, 0, 0, 0, 1]

    func sample(_ size: [Int] = [6, 5, 4], range: ClosedRange<Int> = -1000...3000, components: Int = 1, fractional: Bool = false) -> Volume {
        var rng = SeededGenerator(seed: 42)
        var values = rng.voxels(size.reduce(1, *) * components, in: range)
        if fractional { values = values.map { $0 / 8 } }
        return Volume(size: size, components: components, spacing: [0.7, 0.8, 2.5], origin: [-120.5, 33.25, 7],
                      direction: Self.rotated, voxels: values, isIntegral: !fractional)
    }

    /// Writes `header` + blank line + `payload` as an attached NRRD.
    func attached(_ header: String, _ payload: Data, name: String = "t.nrrd") throws -> URL {
        let url = dir.appendingPathComponent(name)
        var d = Data(("NRRD0004\n" + header + "\n\n").utf8)
        d.append(payload)
        try d.write(to: url)
        return url
    }

    func bytes<T: FixedWidthInteger>(_ values: [T], bigEndian: Bool = false) -> Data {
        var d = Data()
        for v in values { withUnsafeBytes(of: bigEndian ? v.bigEndian : v.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    // MARK: Round trips

    func testRoundTripRawGzipAttachedDetachedInt16Float32() throws {
        for type in [VoxelType.int16, .float32] {
            let v = sample(fractional: type == .float32)
            for encoding in [NRRD.Encoding.raw, .gzip] {
                for detached in [false, true] {
                    let url = dir.appendingPathComponent("\(type)-\(encoding)-\(detached).\(detached ? "nhdr" : "nrrd")")
                    try NRRD.write(v, to: url, encoding: encoding, detached: detached, type: type)
                    let header = String(decoding: try Data(contentsOf: url).prefix(400), as: UTF8.self)
                    XCTAssertTrue(header.contains("type: \(type == .int16 ? "short" : "float")"))
                    XCTAssertTrue(header.contains("encoding: \(encoding.rawValue)"))
                    XCTAssertEqual(header.contains("data file: "), detached)
                    let back = try ImageIO.read(url)
                    XCTAssertEqual(back.size, v.size)
                    XCTAssertEqual(back.voxels, v.voxels, "\(type) \(encoding) detached=\(detached)")
                    XCTAssertEqual(back.isIntegral, type == .int16)
                    assertSameGeometry(back, v, accuracy: 1e-9)
                }
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertTrue(files.contains("int16-gzip-true.raw.gz") && files.contains("float32-raw-true.raw"), "\(files)")
    }

    func testRoundTripRGBAndAutomaticType() throws {
        let rgb = sample([4, 3, 2], range: 0...255, components: 3)
        let url = dir.appendingPathComponent("rgb.nrrd")
        try NRRD.write(rgb, to: url)
        let text = String(decoding: try Data(contentsOf: url).prefix(400), as: UTF8.self)
        XCTAssertTrue(text.contains("type: unsigned char") && text.contains("kinds: RGB-color domain domain domain"), text)
        let back = try NRRD.read(url)
        XCTAssertEqual(back.components, 3)
        XCTAssertEqual(back.voxels, rgb.voxels)
        assertSameGeometry(back, rgb, accuracy: 1e-9)

        let wide = sample(range: 0...60000)
        try NRRD.write(wide, to: url)
        XCTAssertTrue(String(decoding: try Data(contentsOf: url).prefix(300), as: UTF8.self).contains("type: unsigned short"))
        XCTAssertEqual(try NRRD.read(url).voxels, wide.voxels)
    }

    // MARK: Geometry

    func testRASAndLPSDescribeTheSameGrid() throws {
        let payload = bytes([Int16](1...24))
        let lps = try attached("""
            type: short
            dimension: 3
            space: left-posterior-superior
            sizes: 4 3 2
            space directions: (-0.5,0,0) (0,0.6,0) (0,0,-2)
            endian: little
            encoding: raw
            space origin: (10,-20,30)
            """, payload, name: "lps.nrrd")
        let ras = try attached("""
            type: int16
            dimension: 3
            space: RAS
            sizes: 4 3 2
            space directions: (0.5,0,0) (0,-0.6,0) (0,0,-2)
            endian: little
            encoding: raw
            space origin: (-10,20,30)
            """, payload, name: "ras.nrrd")
        let a = try NRRD.read(lps), b = try NRRD.read(ras)
        XCTAssertEqual(a.spacing, [0.5, 0.6, 2])
        XCTAssertEqual(a.origin, [10, -20, 30])
        XCTAssertEqual(a.direction, [-1, 0, 0, 0, 1, 0, 0, 0, -1])
        assertSameGeometry(b, a, accuracy: 1e-9)
        XCTAssertEqual(a.voxels, (1...24).map(Float.init))
        XCTAssertEqual(b.voxels, a.voxels)
    }

    func testObliqueDirectionsAreNormalised() throws {
        let url = try attached("""
            type: uchar
            dimension: 3
            space: right-anterior-superior
            sizes: 2 2 1
            space directions: (1.5,1.5,0) (-2,2,0) (0,0,3)
            encoding: raw
            """, Data([1, 2, 3, 4]))
        let v = try NRRD.read(url)
        let r = 1 / 2.0.squareRoot()
        XCTAssertEqual(v.spacing[0], 1.5 * 2.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(v.spacing[1], 2 * 2.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(v.spacing[2], 3)
        // RAS → LPS negates x and y of every axis vector.
        for (i, e) in [-r, r, 0, -r, -r, 0, 0, 0, 1].enumerated() { XCTAssertEqual(v.direction[i], e, accuracy: 1e-12) }
        XCTAssertEqual(v.origin, [0, 0, 0])
    }

    func testSpacingsWithoutSpaceAnd2DImages() throws {
        let url = try attached("""
            type: unsigned short
            dimension: 2
            sizes: 3 2
            spacings: 0.25 NaN
            endian: big
            encoding: raw
            """, bytes([UInt16](arrayLiteral: 1, 2, 300, 4, 65535, 6), bigEndian: true))
        let v = try NRRD.read(url)
        XCTAssertEqual(v.size, [3, 2, 1])
        XCTAssertEqual(v.spacing, [0.25, 1, 1])
        XCTAssertEqual(v.direction, Volume.identity)
        XCTAssertEqual(v.voxels, [1, 2, 300, 4, 65535, 6])
    }

    func testSliceIn3DSpaceGetsANormal() throws {
        let url = try attached("""
            type: float
            dimension: 2
            space: left-posterior-superior
            sizes: 2 1
            space directions: (0,1,0) (0,0,1)
            space origin: (5,6,7)
            encoding: raw
            """, bytes([Float(1.5).bitPattern, Float(-2).bitPattern]))
        let v = try NRRD.read(url)
        XCTAssertEqual(v.size, [2, 1, 1])
        XCTAssertEqual(v.voxels, [1.5, -2])
        XCTAssertFalse(v.isIntegral)
        XCTAssertEqual(v.direction, [0, 0, 1, 1, 0, 0, 0, 1, 0])  // z column = x × y
        XCTAssertEqual(v.origin, [5, 6, 7])
    }

    // MARK: Header variants

    func testTypeAliasesCommentsAndKeyValues() throws {
        let cases: [(String, Data, [Float])] = [
            ("signed char", Data([0xFF, 0x7F]), [-1, 127]),
            ("uint8", Data([0, 255]), [0, 255]),
            ("int16_t", bytes([Int16(-300), 5]), [-300, 5]),
            ("ushort", bytes([UInt16(65535), 1]), [65535, 1]),
            ("int", bytes([Int32(-70000), 70000]), [-70000, 70000]),
            ("unsigned int", bytes([UInt32(4_000_000), 0]), [4_000_000, 0]),
            ("long long", bytes([Int64(-5), 1 << 40]), [-5, Float(1 << 40)]),
            ("ulonglong", bytes([UInt64(7), 9]), [7, 9]),
            ("double", bytes([(-0.5).bitPattern, (2.25).bitPattern]), [-0.5, 2.25]),
        ]
        for (type, payload, expected) in cases {
            let url = try attached("""
                # a comment
                type: \(type)
                dimension: 2
                sizes: 2 1
                endian: little
                encoding: raw
                note:=some: value
                """, payload, name: "\(type).nrrd")
            XCTAssertEqual(try NRRD.read(url).voxels, expected, type)
        }
    }

    func testASCIIEncodingLineSkipAndByteSkip() throws {
        let ascii = try attached("type: short\ndimension: 2\nsizes: 3 1\nencoding: ascii", Data("-1 2\n3\n".utf8), name: "a.nrrd")
        XCTAssertEqual(try NRRD.read(ascii).voxels, [-1, 2, 3])
        // Detached raw file with a 2-line text preamble, then 3 junk bytes.
        try Data(Array("junk line\nmore\nXYZ".utf8) + [7, 8, 9]).write(to: dir.appendingPathComponent("skip.bin"))
        let nhdr = dir.appendingPathComponent("skip.nhdr")
        try Data("NRRD0005\ntype: uchar\ndimension: 2\nsizes: 3 1\nencoding: raw\nline skip: 2\nbyte skip: 3\ndata file: skip.bin\n".utf8).write(to: nhdr)
        XCTAssertEqual(try NRRD.read(nhdr).voxels, [7, 8, 9])
        // byte skip -1: the data is at the end of the file.
        try Data("NRRD0005\ntype: uchar\ndimension: 2\nsizes: 2 1\nencoding: raw\nbyte skip: -1\ndata file: ./skip.bin\n".utf8).write(to: nhdr)
        XCTAssertEqual(try NRRD.read(nhdr).voxels, [8, 9])
    }

    func testListAndPatternDataFiles() throws {
        let sub = dir.appendingPathComponent("slices")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        for z in 1...3 { try Data([UInt8(z), UInt8(10 * z)]).write(to: sub.appendingPathComponent(String(format: "s%02d.raw", z))) }
        let header = "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 1 3\nencoding: raw\n"
        let list = dir.appendingPathComponent("list.nhdr")
        try Data((header + "data file: LIST\nslices/s01.raw\nslices/s02.raw\nslices/s03.raw\n").utf8).write(to: list)
        XCTAssertEqual(try NRRD.read(list).voxels, [1, 10, 2, 20, 3, 30])
        let pattern = dir.appendingPathComponent("pattern.nhdr")
        try Data((header + "data file: slices/s%02d.raw 3 1 -1\n").utf8).write(to: pattern)
        XCTAssertEqual(try NRRD.read(pattern).voxels, [3, 30, 2, 20, 1, 10])
    }

    func testComponentAxes() throws {
        let rgb = try attached("type: uchar\ndimension: 3\nsizes: 3 2 1\nkinds: RGB-color domain domain\nencoding: raw", Data([1, 2, 3, 4, 5, 6]), name: "rgb.nrrd")
        let v = try NRRD.read(rgb)
        XCTAssertEqual(v.size, [2, 1, 1])
        XCTAssertEqual(v.components, 3)
        XCTAssertEqual(v.voxels, [1, 2, 3, 4, 5, 6])
        let rgba = try attached("type: uchar\ndimension: 3\nsizes: 4 2 1\nkinds: RGBA-color domain domain\nencoding: raw", Data([1, 2, 3, 255, 4, 5, 6, 255]), name: "rgba.nrrd")
        XCTAssertEqual(try NRRD.read(rgba).voxels, [1, 2, 3, 4, 5, 6])
        let list = try attached("type: uchar\ndimension: 4\nsizes: 5 2 1 1\nkinds: list domain domain domain\nencoding: raw", Data(repeating: 0, count: 10), name: "list.nrrd")
        assertImagingError(try NRRD.read(list), "NRRD: a 5-component axis (kind list) is not supported; only 1 or 3 components (or RGBA)", exact: true)
        let fourD = try attached("type: uchar\ndimension: 4\nsizes: 2 2 2 2\nencoding: raw", Data(repeating: 0, count: 16), name: "4d.nrrd")
        assertImagingError(try NRRD.read(fourD), "NRRD: 4-dimensional images are not supported (only 2D and 3D)", exact: true)
    }

    // MARK: Bad input

    func testBadInputThrowsMeaningfulErrors() throws {
        let v = sample()
        let raw = dir.appendingPathComponent("raw.nrrd"), gz = dir.appendingPathComponent("gz.nrrd")
        try NRRD.write(v, to: raw, encoding: .raw, type: .int16)
        try NRRD.write(v, to: gz, encoding: .gzip, type: .int16)
        var d = try Data(contentsOf: raw)
        try d.prefix(d.count - 10).write(to: raw)
        assertImagingError(try NRRD.read(raw), "NRRD: data is truncated (expected 240 bytes, found 230)", exact: true)
        d = try Data(contentsOf: gz)
        try d.prefix(d.count - 40).write(to: gz)
        assertImagingError(try NRRD.read(gz), "NRRD: gzip: data is truncated")

        let empty = dir.appendingPathComponent("empty.nrrd")
        try Data().write(to: empty)
        assertImagingError(try NRRD.read(empty), "file is empty", exact: true)
        let png = dir.appendingPathComponent("fake.nrrd")
        try Raster.encodePNG(Volume(size: [2, 2, 1], voxels: [0, 1, 2, 3])).write(to: png)
        assertImagingError(try NRRD.read(png), "NRRD: not a NRRD file (no NRRD000x magic)", exact: true)
        let bz = try attached("type: uchar\ndimension: 2\nsizes: 1 1\nencoding: bzip2", Data([0]), name: "bz.nrrd")
        assertImagingError(try NRRD.read(bz), "NRRD: encoding 'bzip2' is not supported (only raw, gzip and ascii)", exact: true)
        let noType = try attached("dimension: 2\nsizes: 1 1\nencoding: raw", Data([0]), name: "nt.nrrd")
        assertImagingError(try NRRD.read(noType), "NRRD: header has no 'type' field", exact: true)
        let block = try attached("type: block\ndimension: 2\nsizes: 1 1\nencoding: raw", Data([0]), name: "bl.nrrd")
        assertImagingError(try NRRD.read(block), "NRRD: type 'block' is not supported", exact: true)
        let missing = dir.appendingPathComponent("missing.nhdr")
        try Data("NRRD0004\ntype: uchar\ndimension: 2\nsizes: 1 1\nencoding: raw\ndata file: nowhere.raw\n".utf8).write(to: missing)
        assertImagingError(try NRRD.read(missing), "NRRD: cannot read 'nowhere.raw' (no such file)", exact: true)
    }
}
