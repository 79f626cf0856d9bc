import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

final class RasterTests: TemporaryDirectoryTestCase {
    func picture(_ w: Int, _ h: Int, components: Int = 1, max: Int = 255, seed: UInt64 = 7) -> Volume {
        var rng = SeededGenerator(seed: seed)
        return Volume(size: [w, h, 1], components: components, voxels: rng.voxels(w * h * components, in: 0...max))
    }

    /// A smooth picture (at most 233, no wrap-around edges): JPEG's error on it is small.
    func gradient(_ w: Int, _ h: Int, components: Int) -> Volume {
        var v = [Float]()
        for y in 0..<h { for x in 0..<w { for c in 0..<components { v.append(Float(x * 2 + y + c * 30)) } } }
        return Volume(size: [w, h, 1], components: components, voxels: v)
    }

    func assertPicture(_ v: Volume, equals ref: Volume, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(v.size, ref.size, file: file, line: line)
        XCTAssertEqual(v.components, ref.components, file: file, line: line)
        XCTAssertEqual(v.voxels, ref.voxels, file: file, line: line)
        XCTAssertEqual(v.spacing, [1, 1, 1], file: file, line: line)
        XCTAssertEqual(v.origin, [0, 0, 0], file: file, line: line)
        XCTAssertEqual(v.direction, Volume.identity, file: file, line: line)
        XCTAssertTrue(v.isIntegral, file: file, line: line)
    }

    // MARK: Round trips

    func testPNG8BitGreyRoundTrip() throws {
        let v = picture(37, 23)
        assertPicture(try Raster.decode(try Raster.encodePNG(v), format: .png), equals: v)
    }

    func testPNG16BitGreyKeepsFullRange() throws {
        var v = picture(19, 11, max: 65535)
        v.voxels[0] = 65535; v.voxels[1] = 0; v.voxels[2] = 256
        let back = try Raster.decode(try Raster.encodePNG(v, bits: 16), format: .png)
        assertPicture(back, equals: v)
        XCTAssertEqual(back.voxels[0], 65535)
    }

    func testPNGRGBRoundTrip() throws {
        let v = picture(16, 9, components: 3)
        assertPicture(try Raster.decode(try Raster.encodePNG(v), format: .png), equals: v)
    }

    func testPNGFastPathsMatchVolumeEncoder() throws {
        let grey = picture(8, 5), rgb = picture(8, 5, components: 3)
        let g = try Raster.decode(try Raster.encodePNG(gray8: grey.voxels.map { UInt8($0) }, width: 8, height: 5), format: .png)
        let c = try Raster.decode(try Raster.encodePNG(rgb8: rgb.voxels.map { UInt8($0) }, width: 8, height: 5), format: .png)
        assertPicture(g, equals: grey)
        assertPicture(c, equals: rgb)
        assertImagingError(try Raster.encodePNG(gray8: [1, 2, 3], width: 2, height: 2), "PNG: 3 bytes do not make a 2×2 picture")
    }

    func testEncodersRoundAndClamp() throws {
        let v = Volume(size: [5, 1, 1], voxels: [-5, 300, 12.6, 12.4, .nan])
        XCTAssertEqual(try Raster.decode(try Raster.encodePNG(v), format: .png).voxels, [0, 255, 13, 12, 0])
        let w = Volume(size: [3, 1, 1], voxels: [-1, 70000, 1234.5])
        XCTAssertEqual(try Raster.decode(try Raster.encodePNG(w, bits: 16), format: .png).voxels, [0, 65535, 1235])
    }

    func testTopRowIsYZero() throws {
        // 2×2: top row 10 20, bottom row 30 40, through every codec.
        let v = Volume(size: [2, 2, 1], voxels: [10, 20, 30, 40])
        for (fmt, data) in [(ImageFormat.png, try Raster.encodePNG(v)), (.tiff, try Raster.encodeTIFF(v)),
                            (.gif, try Raster.encodeGIF(v)), (.bmp, try Raster.encodeBMP(v))] {
            XCTAssertEqual(try Raster.decode(data, format: fmt).voxels, [10, 20, 30, 40], "\(fmt)")
        }
    }

    func testJPEGGreyAndRGBWithinTolerance() throws {
        for components in [1, 3] {
            let v = gradient(64, 48, components: components)
            let data = try Raster.encodeJPEG(v, quality: 95)
            XCTAssertEqual(Array(data.prefix(2)), [0xFF, 0xD8])
            let back = try Raster.decode(data, format: .jpeg)
            XCTAssertEqual(back.size, [64, 48, 1])
            XCTAssertEqual(back.components, components)
            let errors = zip(back.voxels, v.voxels).map { abs($0 - $1) }
            let mean = errors.reduce(0, +) / Float(errors.count)
            XCTAssertLessThan(mean, 2.5, "components \(components)")
            XCTAssertLessThan(errors.max()!, 16, "components \(components)")
        }
    }

    func testTIFFRoundTrips() throws {
        let grey8 = picture(33, 17), grey16 = picture(33, 17, max: 65535), rgb = picture(33, 17, components: 3)
        assertPicture(try Raster.decode(try Raster.encodeTIFF(grey8), format: .tiff), equals: grey8)
        assertPicture(try Raster.decode(try Raster.encodeTIFF(grey16, bits: 16), format: .tiff), equals: grey16)
        assertPicture(try Raster.decode(try Raster.encodeTIFF(rgb), format: .tiff), equals: rgb)
        XCTAssertGreaterThan(grey16.voxels.max()!, 60000)
    }

    func testGIFRoundTripAndRGBRefused() throws {
        let v = picture(31, 20)
        let data = try Raster.encodeGIF(v)
        XCTAssertEqual(String(decoding: data.prefix(3), as: UTF8.self), "GIF")
        assertPicture(try Raster.decode(data, format: .gif), equals: v)
        assertImagingError(try Raster.encodeGIF(picture(4, 4, components: 3)), "GIF: only grey pictures can be encoded", exact: true)
    }

    func testBMPGreyAndRGBRoundTrips() throws {
        let grey = picture(13, 7), rgb = picture(13, 7, components: 3)  // odd width: rows need padding
        let g = try Raster.encodeBMP(grey), c = try Raster.encodeBMP(rgb)
        XCTAssertEqual(g[28], 8)  // bits per pixel
        XCTAssertEqual(c[28], 24)
        XCTAssertEqual(g.count, 54 + 1024 + 16 * 7)
        XCTAssertEqual(c.count, 54 + 40 * 7)
        assertPicture(try Raster.decode(g, format: .bmp), equals: grey)
        assertPicture(try Raster.decode(c, format: .bmp), equals: rgb)
    }

    func testEncodersRefuseVolumes() {
        let v = Volume(size: [2, 2, 2], voxels: [Float](repeating: 0, count: 8))
        assertImagingError(try Raster.encodePNG(v), "PNG: cannot encode a volume of 2 slices as a picture", exact: true)
        assertImagingError(try Raster.encodeBMP(v), "BMP: cannot encode a volume of 2 slices", exact: false)
        assertImagingError(try Raster.encodePNG(Volume(size: [1, 1, 1], voxels: [0]), bits: 12), "PNG: only 8 or 16 bits per sample")
    }

    // MARK: BMP variants written by hand

    /// A BMP with a 40-byte info header (plus `extra` bytes such as bit-field masks) and the
    /// given rows in file order.
    func bmp(width: Int, height: Int, bpp: Int, compression: UInt32 = 0, extra: [UInt8] = [], palette: [[UInt8]] = [], rows: [[UInt8]]) -> Data {
        func le32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, Array.init) }
        func le16(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(v).littleEndian, Array.init) }
        let stride = (abs(width) * bpp + 31) / 32 * 4
        var pal: [UInt8] = []
        for c in palette { pal += [c[2], c[1], c[0], 0] }
        let offset = 54 + extra.count + pal.count
        var d: [UInt8] = [0x42, 0x4D]
        d += le32(offset + stride * rows.count)
        d += [0, 0, 0, 0]
        d += le32(offset)
        d += le32(40); d += le32(width); d += le32(height); d += le16(1); d += le16(bpp)
        d += le32(Int(compression)); d += le32(stride * rows.count)
        d += le32(2835); d += le32(2835); d += le32(palette.count); d += le32(0)
        d += extra; d += pal
        for r in rows { d += r + [UInt8](repeating: 0, count: stride - r.count) }
        return Data(d)
    }

    func testBMPBottomUpTopDownAndPalettes() throws {
        let grey = (0..<256).map { [UInt8($0), UInt8($0), UInt8($0)] }
        // 8-bit bottom-up: the first row in the file is the bottom of the picture.
        let bottomUp = bmp(width: 3, height: 2, bpp: 8, palette: grey, rows: [[4, 5, 6], [1, 2, 3]])
        XCTAssertEqual(try Raster.decode(bottomUp, format: .bmp).voxels, [1, 2, 3, 4, 5, 6])
        // Negative height: top-down.
        let topDown = bmp(width: 3, height: -2, bpp: 8, palette: grey, rows: [[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(try Raster.decode(topDown, format: .bmp).voxels, [1, 2, 3, 4, 5, 6])
        // 1-bit with a black/white palette → grey 0/255.
        let bits = bmp(width: 10, height: 1, bpp: 1, palette: [[0, 0, 0], [255, 255, 255]], rows: [[0b1010_0000, 0b0100_0000]])
        XCTAssertEqual(try Raster.decode(bits, format: .bmp).voxels, [255, 0, 255, 0, 0, 0, 0, 0, 0, 255])
        // 4-bit with a colour palette → RGB.
        let colours: [[UInt8]] = [[0, 0, 0], [255, 0, 0], [0, 128, 255]]
        let nibbles = bmp(width: 3, height: 1, bpp: 4, palette: colours, rows: [[0x12, 0x00]])
        let c = try Raster.decode(nibbles, format: .bmp)
        XCTAssertEqual(c.components, 3)
        XCTAssertEqual(c.voxels, [255, 0, 0, 0, 128, 255, 0, 0, 0])
    }

    func testBMP32BitBitfieldsAndRGB() throws {
        func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        // BI_BITFIELDS with R in the low byte (RGBA byte order), top-down 2×1.
        let masks = le32(0x0000_00FF) + le32(0x0000_FF00) + le32(0x00FF_0000)
        let bf = bmp(width: 2, height: -1, bpp: 32, compression: 3, extra: masks, rows: [[10, 20, 30, 255, 40, 50, 60, 255]])
        XCTAssertEqual(try Raster.decode(bf, format: .bmp).voxels, [10, 20, 30, 40, 50, 60])
        // BI_RGB 32-bit is BGRx.
        let plain = bmp(width: 1, height: 1, bpp: 32, rows: [[30, 20, 10, 0]])
        XCTAssertEqual(try Raster.decode(plain, format: .bmp).voxels, [10, 20, 30])
        // 16-bit 5-6-5 bit fields: full-scale red, half-scale green, zero blue.
        let m565 = le32(0xF800) + le32(0x07E0) + le32(0x001F)
        let px = UInt16(31 << 11 | 32 << 5)
        let sixteen = bmp(width: 1, height: 1, bpp: 16, compression: 3, extra: m565, rows: [[UInt8(px & 0xFF), UInt8(px >> 8)]])
        XCTAssertEqual(try Raster.decode(sixteen, format: .bmp).voxels, [255, 130, 0])
    }

    // MARK: Bad input

    func testBadInputThrowsMeaningfulErrors() throws {
        let png = try Raster.encodePNG(picture(40, 40))
        for fmt in [ImageFormat.png, .jpeg, .tiff, .gif, .bmp] {
            assertImagingError(try Raster.decode(Data(), format: fmt), "file is empty", exact: true)
        }
        assertImagingError(try Raster.decode(png.prefix(png.count / 2), format: .png), "PNG: unexpected end of PNG data", exact: true)
        assertImagingError(try Raster.decode(png, format: .jpeg), "not a JPEG file", exact: true)
        assertImagingError(try Raster.decode(Data("hello world".utf8), format: .png), "not a PNG file", exact: true)
        assertImagingError(try Raster.decode(png, format: .tiff), "not a TIFF file", exact: true)
        assertImagingError(try Raster.decode(png, format: .gif), "not a GIF file", exact: true)
        assertImagingError(try Raster.decode(png, format: .bmp), "not a BMP file", exact: true)
        assertImagingError(try Raster.decode(png, format: .nrrd), "nrrd is not a 2D picture format", exact: true)

        let jpeg = try Raster.encodeJPEG(gradient(32, 32, components: 1))
        assertImagingError(try Raster.decode(jpeg.prefix(200), format: .jpeg), "JPEG: ")
        let rle = bmp(width: 2, height: 1, bpp: 8, compression: 1, palette: [[0, 0, 0]], rows: [[0, 0]])
        assertImagingError(try Raster.decode(rle, format: .bmp), "BMP: RLE compression is not supported", exact: true)
        let bmpData = try Raster.encodeBMP(picture(10, 10))
        assertImagingError(try Raster.decode(bmpData.prefix(bmpData.count - 5), format: .bmp),
                            "BMP: data is truncated (expected \(bmpData.count) bytes, found \(bmpData.count - 5))", exact: true)
    }

    func testImageIOReadsFilesByExtension() throws {
        let v = picture(12, 8, components: 3)
        let url = dir.appendingPathComponent("x.png")
        try Raster.encodePNG(v).write(to: url)
        assertPicture(try ImageIO.read(url), equals: v)
        let empty = dir.appendingPathComponent("empty.bmp")
        try Data().write(to: empty)
        assertImagingError(try ImageIO.read(empty), "file is empty", exact: true)
    }
}
