import Foundation
import Imaging
import XCTest

@testable import TestSupport

/// Ingest through the built binary on pydicom's test files, which tools/setup.sh fetches into
/// .deps/data/pydicom.
final class RealDataCLITests: BinaryTestCase {
    /// Real data end to end: pydicom's CT_small.dcm (a real CT slice) with an RTSTRUCT drawn on it by
    /// the test. The mask comes out exactly, and the pixels are the slice's HU through the CT window.
    func testRealCTSliceWithAStructureSetThroughTheBinary() throws {
        let ct = try PackageFiles.realData("pydicom/CT_small.dcm")
        let raw = dir.appendingPathComponent("raw")
        try FileManager.default.createDirectory(at: raw, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: ct, to: raw.appendingPathComponent("CT_small.dcm"))
        let plane = try XCTUnwrap(DICOMHeader.read(ct).planes.first)
        let (p, o, s) = (plane.position!, plane.orientation, plane.pixelSpacing)
        // Pixel centres of columns 40…59 and rows 50…69, edges half a pixel outside: 400 pixels.
        let corners = [(39.5, 49.5), (59.5, 49.5), (59.5, 69.5), (39.5, 69.5)]
        let points = corners.flatMap { c, r in (0..<3).map { p[$0] + c * s[1] * o[$0] + r * s[0] * o[3 + $0] } }
        try DICOMScene.writeStructureSet(to: raw.appendingPathComponent("rt.dcm"), series: try DICOMHeader.read(ct).seriesInstanceUID,
                                         uid: "1.2.826.0.1.3680043.10.1234.70", rois: [("Liver", [(plane.sopInstanceUID, points)])])

        try medcat(["ingest", "raw", "--size", "128", "--min-component-voxels", "1"])
        let (line, _) = try medcat(["catalog", "query"])
        let pair = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(pair["modality"] as? String, "ct")
        XCTAssertEqual(pair["class"] as? String, "liver")
        XCTAssertEqual(pair["area"] as? Int, 400)
        XCTAssertEqual(pair["bbox"] as? [Int], [40, 50, 59, 69])
        try medcat(["export", "--format", "sa-med2d", "--out", "export"])
        let images = dir.appendingPathComponent("export/images")
        let png = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: images.path).first)
        let exported = try ImageIO.read(images.appendingPathComponent(png))
        let hu = try DICOMSeries([plane]).volume()
        for (x, y) in [(20, 10), (64, 64), (50, 60)] {
            let v = Double(hu.voxels[y * 128 + x])
            XCTAssertEqual(Double(exported.voxels[y * 128 + x]), (min(max((v + 160) / 400, 0), 1) * 255).rounded(), accuracy: 1, "(\(x), \(y)) at \(v) HU")
        }
    }

    /// A file on which GDCM aborts the process (pydicom's rtdose_1frame.dcm, relabelled as CT so that
    /// it is read as an image): the run dies, leaves a crash note, and the next run rejects that unit
    /// with the reason and ingests the rest.
    func testAUnitThatCrashesALibraryIsRejectedByTheNextRun() throws {
        let raw = dir.appendingPathComponent("raw")
        try DICOMScene.write(to: raw)
        let pydicom = try PackageFiles.realData("pydicom/rtdose_1frame.dcm")
        let dose = raw.appendingPathComponent("dose/dose.dcm")
        try FileManager.default.createDirectory(at: dose.deletingLastPathComponent(), withIntermediateDirectories: true)
        var bytes = try Data(contentsOf: pydicom)
        let modality = try XCTUnwrap(bytes.range(of: Data("RTDOSE".utf8)))
        bytes.replaceSubrange(modality, with: Data("CT    ".utf8))
        try bytes.write(to: dose)
        let header = try DICOMHeader.read(dose)
        try DICOMScene.writeRTSTRUCT(to: raw.appendingPathComponent("dose/rt.dcm"), series: header.seriesInstanceUID, uid: "1.2.826.0.1.3680043.10.1234.60",
                                     roiSlices: 0...0, uidOf: { _ in header.sopInstanceUID })

        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["ingest", "raw", "--size", "64", "--workers", "1"]
        p.currentDirectoryURL = dir
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the first run dies in GDCM")
        let note = try String(contentsOf: dir.appendingPathComponent("medcat.sqlite.crashed"), encoding: .utf8)
        XCTAssertTrue(note.hasPrefix("signal 6\ndicom\tseries-"), note)

        try medcat(["ingest", "raw", "--size", "64"], expect: 2)
        let (errors, _) = try medcat(["catalog", "errors"])
        XCTAssertTrue(errors.contains("an earlier run died (signal 6) while reading this unit"), errors)
        let (pairs, _) = try medcat(["catalog", "query", "--count"])
        XCTAssertEqual(pairs.trimmingCharacters(in: .whitespacesAndNewlines), "14")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("medcat.sqlite.crashed").path), "the note is consumed")
        // Unchanged, the unit stays rejected without being read again.
        try medcat(["ingest", "raw", "--size", "64"], expect: 2)
    }
}
