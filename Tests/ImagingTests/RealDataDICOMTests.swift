import Foundation
import XCTest

@testable import Imaging
@testable import TestSupport

/// DICOM decoding through GDCM on pydicom's own test files, which tools/setup.sh fetches into
/// .deps/data/pydicom, checked against pydicom's values for them (Fixtures/dicom-reference.json,
/// made by tools/make_dicom_fixtures.py).
final class RealDataDICOMTests: TemporaryDirectoryTestCase {
    static let reference: [String: [String: Any]] = {
        let url = Bundle.module.url(forResource: "Fixtures/dicom-reference", withExtension: "json")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Any]]
    }()

    func file(_ name: String) throws -> URL { try PackageFiles.realData("pydicom/\(name)") }

    func frames(_ name: String) throws -> (columns: Int, rows: Int, samples: Int, frames: [[Float]]) {
        let f = try DICOMFile(try file(name))
        let root = f.root
        return try f.frames(slope: root.double(.rescaleSlope) ?? 1, intercept: root.double(.rescaleIntercept) ?? 0)
    }

    func testCTSmallMatchesPydicomInHounsfieldUnits() throws {
        let ref = Self.reference["CT_small"]!
        let header = try DICOMHeader.read(try file("CT_small.dcm"))
        XCTAssertEqual(header.modality, "CT")
        let plane = try XCTUnwrap(header.planes.first)
        XCTAssertEqual(plane.rows, ref["rows"] as? Int)
        XCTAssertEqual(plane.pixelSpacing, ref["pixel_spacing"] as? [Double])
        XCTAssertEqual(plane.position, ref["position"] as? [Double])
        let volume = try DICOMSeries([plane]).volume()
        XCTAssertEqual(volume.size, [128, 128, 1])
        let hu = volume.voxels
        XCTAssertEqual(Double(hu.min()!), ref["hu_min"] as! Double)
        XCTAssertEqual(Double(hu.max()!), ref["hu_max"] as! Double)
        XCTAssertEqual(hu.reduce(0.0) { $0 + Double($1) }, ref["hu_sum"] as! Double)
        XCTAssertEqual(Double(hu[10 * 128 + 20]), ref["hu_at_row10_col20"] as! Double)
        XCTAssertEqual(volume.spacing[0], 0.661468, accuracy: 1e-9)
    }

    func testEveryLosslessTransferSyntaxDecodesToTheSamePixels() throws {
        let ref = Self.reference["MR_small"]!
        let base = try frames("MR_small.dcm").frames[0]
        XCTAssertEqual(base.reduce(0.0) { $0 + Double($1) }, ref["sum"] as! Double)
        XCTAssertEqual(Double(base[5 * 64 + 40]), ref["at_row5_col40"] as! Double)
        for variant in ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm", "MR_small_implicit.dcm",
                        "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_padded.dcm"] {
            let f = try frames(variant)
            XCTAssertEqual(f.frames.count, 1, variant)
            XCTAssertEqual(f.frames[0], base, "\(variant) differs from the uncompressed file")
        }
        // RGB: RLE, JPEG lossless (process 14) and JPEG 2000 lossless give identical pixels.
        let rgb = try frames("SC_rgb_rle.dcm")
        XCTAssertEqual(rgb.samples, 3)
        let sums = (0..<3).map { c in stride(from: c, to: rgb.frames[0].count, by: 3).reduce(0.0) { $0 + Double(rgb.frames[0][$1]) } }
        XCTAssertEqual(sums, Self.reference["SC_rgb_rle"]!["channel_sums"] as! [Double])
        XCTAssertEqual(try frames("SC_rgb_jpeg_gdcm.dcm").frames[0], rgb.frames[0])
        XCTAssertEqual(try frames("SC_rgb_gdcm_KY.dcm").frames[0], rgb.frames[0])
    }

    func testLossyJPEGAndYBRComeBackAsRGBCloseToTheOriginal() throws {
        let original = try frames("SC_rgb_rle.dcm").frames[0]
        for variant in ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_dcmtk_+eb+cr.dcm", "SC_ybr_full_422_uncompressed.dcm"] {
            let f = try frames(variant)
            XCTAssertEqual(f.samples, 3, variant)
            let meanError = zip(f.frames[0], original).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / Double(original.count)
            XCTAssertLessThan(meanError, 3, "\(variant): mean error \(meanError) against the lossless original")
        }
    }

    func testCompressedMultiFrameAndJPEG2000Decode() throws {
        let cine = try frames("examples_ybr_color.dcm")
        XCTAssertEqual([cine.columns, cine.rows, cine.samples, cine.frames.count], [320, 240, 3, 30])
        XCTAssertNotEqual(cine.frames[0], cine.frames[15], "frames of a cine loop differ")
        let ct = try DICOMFile(try file("693_J2KI.dcm"))
        let f = try ct.frames(slope: ct.root.double(.rescaleSlope) ?? 1, intercept: ct.root.double(.rescaleIntercept) ?? 0)
        XCTAssertEqual([f.columns, f.rows], [512, 512])
        // A CT slice: air around the body and dense tissue inside.
        XCTAssertLessThan(f.frames[0].min()!, -500)
        XCTAssertGreaterThan(f.frames[0].max()!, 100)
    }

    func testSegmentationFrameMatchesPydicom() throws {
        let ref = Self.reference["liver_1frame"]!
        for name in ["liver_1frame.dcm", "liver_expb_1frame.dcm"] {
            let header = try DICOMHeader.read(try file(name))
            XCTAssertTrue(header.isSegmentation)
            let f = try DICOMFile(try file(name))
            XCTAssertEqual(f.root.items(.segmentSequence).compactMap { $0.string(.segmentLabel) }, ref["segment_labels"] as? [String])
            let mask = try f.frames().frames[0]
            XCTAssertEqual(Int(mask.reduce(0, +)), ref["ones"] as? Int, name)
            var box = [Int.max, Int.max, -1, -1]
            for i in mask.indices where mask[i] != 0 {
                let (x, y) = (i % 512, i / 512)
                box = [min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y)]
            }
            XCTAssertEqual(box, ref["box"] as? [Int], name)
            XCTAssertEqual(header.planes.first?.position, ref["frame_position"] as? [Double])
        }
    }

    func testStructureSetWithoutPreambleParses() throws {
        let ref = Self.reference["rtstruct"]!
        let f = try DICOMFile(try file("rtstruct.dcm"))
        let d = f.root
        XCTAssertEqual(d.items(.structureSetROISequence).compactMap { $0.string(.roiName) }, ref["roi_names"] as? [String])
        let contours = d.items(.roiContourSequence)
        XCTAssertEqual(contours.map { $0.items(.contourSequence).count }, ref["contours_per_roi"] as? [Int])
        XCTAssertEqual(contours.first?.items(.contourSequence).first?.doubles(.contourData)?.prefix(3).map { $0 }, ref["first_point"] as? [Double])
        XCTAssertTrue(try DICOMHeader.read(try file("rtstruct.dcm")).isStructureSet)
    }

    func testNonDICOMAndTruncatedFilesAreErrors() throws {
        let text = dir.appendingPathComponent("notes.txt")
        try Data("hello".utf8).write(to: text)
        XCTAssertThrowsError(try DICOMHeader.read(text))
        let whole = try Data(contentsOf: try file("CT_small.dcm"))
        let cut = dir.appendingPathComponent("cut.dcm")
        try whole.prefix(whole.count / 2).write(to: cut)
        // Cut inside Pixel Data, and inside an element header (where GDCM itself would abort).
        XCTAssertThrowsError(try DICOMFile(cut)) { XCTAssertEqual("\($0)", "file is truncated or malformed at byte 6300") }
        try whole.prefix(301).write(to: cut)
        XCTAssertThrowsError(try DICOMHeader.read(cut)) { XCTAssertTrue("\($0)".hasPrefix("file is truncated"), "\($0)") }
        XCTAssertThrowsError(try DICOMFile(try file("MR_truncated.dcm")))
    }
}
