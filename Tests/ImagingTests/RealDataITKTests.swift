import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

/// The format readers on Debian's insighttoolkit5-examples, which tools/setup.sh unpacks into
/// .deps/data/itk: PNG, MetaImage and NRRD files written by ITK itself.
final class RealDataITKTests: XCTestCase {
    func itk(_ name: String) throws -> URL { try PackageFiles.realData("itk/\(name)") }

    // MARK: PNG

    func testITKPalettePNGBecomesGrey() throws {
        let url = try itk("BrainProtonDensitySlice.png")
        let v = try ImageIO.read(url)
        XCTAssertEqual(v.size, [181, 217, 1])
        XCTAssertEqual(v.components, 1)  // 8-bit palette whose entries are all grey
        XCTAssertEqual(v.voxels.min(), 0)
        XCTAssertEqual(v.voxels.max(), 251)
        XCTAssertEqual(v.voxels.reduce(0, +), 4_860_107)
        XCTAssertEqual(Array(v.voxels.prefix(4)), [1, 10, 17, 10])
    }

    func testITKColourAnd16BitPNGs() throws {
        let eye = try itk("VisibleWomanEyeSlice.png"), point = try itk("Point.png"), mask = try itk("BrainProtonDensitySliceBorder20Mask.png")
        let e = try ImageIO.read(eye)  // colour palette stays RGB
        XCTAssertEqual(e.size, [127, 162, 1])
        XCTAssertEqual(e.components, 3)
        XCTAssertEqual(Array(e.voxels.prefix(6)), [120, 89, 67, 121, 101, 71])  // palette entries 120 and 123
        let p = try ImageIO.read(point)  // 16-bit RGB
        XCTAssertEqual(p.size, [50, 50, 1])
        XCTAssertEqual(p.components, 3)
        XCTAssertGreaterThan(p.voxels.max()!, 255)
        let m = try ImageIO.read(mask)  // 1-bit grey expands to 0/255
        XCTAssertEqual(m.size, [221, 257, 1])
        XCTAssertEqual(Set(m.voxels), [0, 255])
    }

    func testITKPNGMatchesRawData() throws {
        let png = try itk("BrainProtonDensitySliceBorder20.png"), raw = try itk("BrainProtonDensitySliceBorder20.raw")
        let v = try ImageIO.read(png)
        XCTAssertEqual(v.size, [221, 257, 1])
        XCTAssertEqual(v.voxels, try Data(contentsOf: raw).map(Float.init))
        // And survives our own encoders.
        XCTAssertEqual(try Raster.decode(try Raster.encodeTIFF(v), format: .tiff).voxels, v.voxels)
        XCTAssertEqual(try Raster.decode(try Raster.encodeBMP(v), format: .bmp).voxels, v.voxels)
    }

    // MARK: MetaImage

    func testITKRatLungSliceWithSeparateRaw() throws {
        let url = try itk("RatLungSlice1.mha")
        let v = try ImageIO.read(url)
        XCTAssertEqual(v.size, [128, 128, 1])
        XCTAssertEqual(v.spacing, [1, 1, 1])
        XCTAssertEqual(v.voxels.min(), 0)
        XCTAssertEqual(v.voxels.max(), 255)
        XCTAssertEqual(v.voxels.reduce(0, +), 857_357)
        XCTAssertEqual(Array(v.voxels.prefix(4)), [4, 8, 4, 2])
    }

    func testITK3DVolume() throws {
        let url = try itk("BrainProtonDensity3Slices.mha")
        let v = try ImageIO.read(url)
        XCTAssertEqual(v.size, [181, 217, 3])
        XCTAssertEqual(v.components, 1)
        XCTAssertEqual(v.voxels.reduce(0, +), 14_725_708)
        XCTAssertEqual(v.voxels.max(), 250)
        XCTAssertEqual(Array(v.voxels.prefix(4)), [7, 20, 8, 8])
    }

    func testITKCompressedLocalFloat() throws {
        let url = try itk("CorpusCallosumMeanShape.mha")
        let v = try ImageIO.read(url)
        XCTAssertEqual(v.size, [58, 31, 1])
        XCTAssertEqual(v.spacing, [2, 2, 1])
        XCTAssertEqual(v.origin, [-57.5, -30.5, 0])
        XCTAssertFalse(v.isIntegral)
        XCTAssertEqual(v.voxels.min(), -3.8260929584503174)
        XCTAssertEqual(v.voxels.max(), 38.650211334228516)
        XCTAssertEqual(v.voxels[0], 38.650211334228516)
        XCTAssertEqual(v.voxels[58 * 15 + 29], 3.258277177810669)
    }

    func testITKUncompressedLocalFloatAndPosition() throws {
        let mag = try itk("itkBrainSliceComplexMagnitude.mha"), moved = try itk("ResampleImageFilterInput2x3b.mha"),
            bayes = try itk("BayesianClassifierInitializerMemberships.mhd"), complex = try itk("itkBrainSliceComplex.mha")
        let m = try ImageIO.read(mag)
        XCTAssertEqual(m.size, [181, 217, 1])
        XCTAssertEqual(m.voxels.min(), 1)
        XCTAssertEqual(m.voxels.max(), 300.5611267089844)
        XCTAssertEqual(m.voxels[0], 3.1622776985168457)
        XCTAssertEqual(m.voxels[181 * 100 + 90], 229.39266967773438)
        let r = try ImageIO.read(moved)
        XCTAssertEqual(r.size, [280, 240, 1])
        XCTAssertEqual(r.spacing, [0.5, 0.75, 1])
        XCTAssertEqual(r.origin, [60, 70, 0])
        XCTAssertEqual(r.voxels.reduce(0, +), 8_112_115)
        assertImagingError(try ImageIO.read(bayes), "MetaImage: 4 channels per element are not supported (only 1 or 3)", exact: true)
        assertImagingError(try ImageIO.read(complex), "MetaImage: 2 channels per element are not supported (only 1 or 3)", exact: true)
    }

    func testITKMinus30IsTheInverseRotation() throws {
        let plus = try itk("BrainProtonDensitySliceBorder20DirectionPlus30.mhd"), minus = try itk("BrainProtonDensitySliceBorder20DirectionMinus30.mhd"),
            raw = try itk("BrainProtonDensitySliceBorder20.raw")
        let p = try MetaImage.read(plus), m = try MetaImage.read(minus)
        let c = NRRDTests.c30, s = NRRDTests.s30
        for (i, e) in [c, s, 0, -s, c, 0, 0, 0, 1].enumerated() { XCTAssertEqual(m.direction[i], e, accuracy: 1e-6, "direction[\(i)]") }
        // P·M = I: the two rotations undo each other.
        for r in 0..<3 {
            for k in 0..<3 {
                let prod = (0..<3).map { p.direction[r * 3 + $0] * m.direction[$0 * 3 + k] }.reduce(0, +)
                XCTAssertEqual(prod, r == k ? 1 : 0, accuracy: 1e-6)
            }
        }
        XCTAssertEqual(p.voxels, try Data(contentsOf: raw).map(Float.init))  // the shared .zraw
        XCTAssertEqual(m.voxels, p.voxels)
    }

    // MARK: NRRD

    func testITKDetachedHeaderMatchesMetaImageAndPNG() throws {
        let nhdr = try itk("BrainProtonDensitySliceBorder20.nhdr"), mhd = try itk("BrainProtonDensitySliceBorder20.mhd"),
            png = try itk("BrainProtonDensitySliceBorder20.png")
        let a = try ImageIO.read(nhdr), b = try ImageIO.read(mhd), c = try ImageIO.read(png)
        XCTAssertEqual(a.size, [221, 257, 1])
        XCTAssertEqual(a.spacing, [1, 1, 1])
        XCTAssertEqual(a.origin, [0, 0, 0])
        XCTAssertEqual(a.direction, Volume.identity)
        XCTAssertEqual(a.voxels.count, 56_797)
        XCTAssertEqual(a.voxels.reduce(0, +), 4_861_905)
        XCTAssertEqual(a.voxels, b.voxels)
        XCTAssertEqual(a.voxels, c.voxels)
        XCTAssertTrue(a.sameGrid(as: b))
    }

    func testITKPlus30DirectionAgreesBetweenNRRDAndMetaImage() throws {
        for name in ["BrainProtonDensitySliceBorder20DirectionPlus30", "BrainT1SliceBorder20DirectionPlus30",
                     "BrainProtonDensitySliceShifted13x17yDirectionPlus30"] {
            let nhdr = try itk(name + ".nhdr"), mhd = try itk(name + ".mhd")
            let a = try NRRD.read(nhdr), b = try MetaImage.read(mhd)  // the .mhd reads the zlib .zraw
            XCTAssertEqual(a.size, [221, 257, 1])
            for (i, e) in NRRDTests.rotated.enumerated() {
                XCTAssertEqual(a.direction[i], e, accuracy: 1e-6, "\(name) nrrd direction[\(i)]")
                XCTAssertEqual(b.direction[i], e, accuracy: 1e-6, "\(name) mhd direction[\(i)]")
            }
            XCTAssertEqual(a.spacing[0], 1, accuracy: 1e-6)
            XCTAssertEqual(a.voxels, b.voxels, name)
            XCTAssertTrue(a.sameGrid(as: b), name)
        }
    }
}
