import Catalog
import Foundation
@testable import Imaging
import XCTest

@testable import Ingest
@testable import TestSupport

final class DICOMIngestTests: TemporaryDirectoryTestCase {
    func testSeriesWithSEGAndRTSTRUCTBecomeExactMasksAndNothingIdentifyingIsStored() throws {
        let raw = dir.appendingPathComponent("raw")
        try DICOMScene.write(to: raw)
        let catalog = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        var options = IngestOptions()
        options.size = 64   // the source size: masks keep their exact pixels
        options.workers = 2
        let log = RecordingLog()
        let summary = try runIngest(raw, catalog: catalog, options: options, log: log)
        XCTAssertEqual(summary.datasets, ["dicom"])

        // Slices 2…10 carry structures; the overlapping liver and kidney both keep their full masks.
        let pairs = try catalog.query(Selection())
        XCTAssertEqual(Set(pairs.map(\.slice)), Set(2...10))
        XCTAssertEqual(Set(pairs.map(\.modality)), ["ct"])
        func masks(_ cls: String) -> [Int: PairRecord] { Dictionary(uniqueKeysWithValues: pairs.filter { $0.class == cls }.map { ($0.slice, $0) }) }
        let liver = masks("liver"), kidney = masks("kidney"), spleen = masks("spleen")
        XCTAssertEqual(Set(liver.keys), Set(DICOMScene.liver.slices))
        XCTAssertEqual(Set(kidney.keys), Set(DICOMScene.kidney.slices), "the frame placed by position alone lands on slice 10")
        XCTAssertEqual(Set(spleen.keys), Set(DICOMScene.spleen.slices))
        XCTAssertTrue(liver.values.allSatisfy { $0.area == 300 && $0.bbox == [10, 20, 29, 34] })
        XCTAssertTrue(kidney.values.allSatisfy { $0.area == 144 && $0.bbox == [25, 25, 36, 36] })
        XCTAssertEqual(spleen.mapValues(\.area), [8: 400, 9: 375, 10: 400])
        XCTAssertEqual(spleen[8]?.bbox, [40, 40, 59, 59])
        XCTAssertEqual(pairs.count, 4 + 7 + 3, "External is ignored; 'Mystery Blob' is kept, but its one contour is under the 3D minimum")

        // Pixels: the CT window (W400/L40) of HU = stored − 1024, at the source size.
        let image = try XCTUnwrap(liver[3])
        let loc = try catalog.locations(imageID: image.imageID)
        let pixels = try ShardReader(url: catalog.shardDirectory.appendingPathComponent(loc.image.shard)).record(at: loc.image)
        for (x, y) in [(0, 0), (13, 40), (63, 63)] {
            let hu = Double(DICOMScene.stored(x, y, 3) - 1024)
            let expected = UInt8(min(max((hu - (40 - 200)) / 400 * 255, 0), 255).rounded())
            XCTAssertEqual(Int(pixels.bytes[y * 64 + x]), Int(expected), accuracy: 1, "pixel (\(x), \(y))")
        }
        XCTAssertEqual(try catalog.storedImages(ids: [image.imageID]).map(\.spacing), [[0.8, 0.8, 2.5]])

        // Rejected, each with its reason; everything else ingested.
        let errors = try catalog.errors()
        let messages = errors.map { "\($0.stage): \($0.message)" }
        XCTAssertEqual(errors.count, 3, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("read series: missing slice: 1 image absent between -5.00 and 0.00 mm") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("unreadable DICOM file") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("not a DICOM file") }, "\(messages)")
        XCTAssertTrue(log.lines.contains { $0.contains("structure 'Mystery Blob' is not in classes.yaml; kept as unmapped class 'mystery_blob'") }, "\(log.lines)")

        // No patient identifier, name, UID or path in the catalog's bytes or the log.
        try catalog.checkpoint()
        let bytes = try Data(contentsOf: dir.appendingPathComponent("c.sqlite"))
        let text = String(decoding: bytes, as: UTF8.self) + log.lines.joined(separator: "\n")
        for secret in [DICOMScene.patientID, "DOE", "JANE", DICOMScene.folder, DICOMScene.ctSeriesUID, DICOMScene.studyUID, "IM0", "structures.dcm", "notes.txt"] {
            XCTAssertFalse(text.contains(secret), "'\(secret)' reached the catalog or the log")
        }
        let cases = try catalog.caseNames()
        XCTAssertEqual(cases.count, 1)
        XCTAssertTrue(cases[0].hasPrefix("patient-"), cases[0])

        // A second run reads nothing again and adds nothing.
        let again = try runIngest(raw, catalog: catalog, options: options)
        XCTAssertEqual(again.images, 0)
        XCTAssertEqual(again.filesDone, 0)
        XCTAssertEqual(try catalog.query(Selection()).count, pairs.count)
    }

    func testAnnotationsOnNoImageOfTheSeriesAreAnError() throws {
        let raw = dir.appendingPathComponent("raw")
        try DICOMScene.write(to: raw)
        let ct = raw.appendingPathComponent("\(DICOMScene.folder)/ct")
        let planes = try FileManager.default.contentsOfDirectory(atPath: ct.path).filter { $0.hasPrefix("IM") }
            .flatMap { try DICOMHeader.read(ct.appendingPathComponent($0)).planes }
        let elsewhere = try DICOMSeries(planes.map { p in
            var q = p
            q.sopInstanceUID += ".9"
            q.position![2] += 1000
            return q
        })
        XCTAssertThrowsError(try DICOMLabels.segmentation(raw.appendingPathComponent("\(DICOMScene.folder)/seg/segmentation.dcm"), on: elsewhere)) {
            XCTAssertEqual("\($0)", "none of the 12 segmentation frames matches an image of the series, by reference or position")
        }
        XCTAssertThrowsError(try DICOMLabels.structureSet(raw.appendingPathComponent("\(DICOMScene.folder)/rt/structures.dcm"), on: elsewhere)) {
            XCTAssertEqual("\($0)", "none of the 6 contours lies on an image of the series, by reference or position")
        }
        // On the right series, the same objects place every frame but the one on another series.
        let segments = try DICOMLabels.segmentation(raw.appendingPathComponent("\(DICOMScene.folder)/seg/segmentation.dcm"), on: try DICOMSeries(planes))
        XCTAssertEqual(segments.map { $0.planes.keys.sorted() }, [Array(DICOMScene.liver.slices), Array(DICOMScene.kidney.slices)])
    }

    func testStructureSetFoundThroughItsContourImagesAndABrokenOneCostsOnlyItself() throws {
        let raw = dir.appendingPathComponent("raw")
        try DICOMScene.write(to: raw)
        let rt = raw.appendingPathComponent("\(DICOMScene.folder)/rt/structures.dcm")
        var options = IngestOptions()
        options.size = 64
        // No series reference: the contours' image references find the CT series.
        try DICOMScene.writeRTSTRUCT(to: rt, referencesSeries: false)
        let c1 = try Catalog(path: dir.appendingPathComponent("c1.sqlite").path)
        _ = try runIngest(raw, catalog: c1, options: options)
        XCTAssertEqual(try c1.query(Selection(classes: ["spleen"])).map(\.area).sorted(), [375, 400, 400])
        // A contour that is not triplets: the RTSTRUCT is skipped with a note, the SEG's masks stay.
        try DICOMScene.writeRTSTRUCT(to: rt, brokenContour: true)
        let c2 = try Catalog(path: dir.appendingPathComponent("c2.sqlite").path)
        let log = RecordingLog()
        _ = try runIngest(raw, catalog: c2, options: options, log: log)
        XCTAssertEqual(try c2.query(Selection()).count, 4 + 7)
        XCTAssertTrue(log.lines.contains { $0.contains("annotation skipped, RTSTRUCT 2 of 2: ROI 'Spleen': a contour's Contour Data is not x\\y\\z triplets") }, "\(log.lines)")
    }

    /// 12 bits stored in 16, signed, with junk in the unused high bits (old overlay planes): the
    /// values are the 12-bit two's complement numbers.
    func testBitsStoredBelowBitsAllocatedAreMaskedAndSignExtended() throws {
        let url = dir.appendingPathComponent("12bit.dcm")
        let values = [-5, 7, -2048, 2047]
        let stored = values.map { 0xA000 | ($0 & 0x0FFF) }
        try DICOMWriter.write([
            DICOMWriter.text(0x0008, 0x0060, "CS", "CT"), DICOMWriter.text(0x0020, 0x000E, "UI", "1.2.3.7"),
            DICOMWriter.us(0x0028, 0x0002, 1), DICOMWriter.text(0x0028, 0x0004, "CS", "MONOCHROME2"),
            DICOMWriter.us(0x0028, 0x0010, 2), DICOMWriter.us(0x0028, 0x0011, 2),
            DICOMWriter.us(0x0028, 0x0100, 16), DICOMWriter.us(0x0028, 0x0101, 12), DICOMWriter.us(0x0028, 0x0102, 11),
            DICOMWriter.us(0x0028, 0x0103, 1),
            DICOMWriter.Element(0x7fe0, 0x0010, .bytes("OW", stored.flatMap { DICOMWriter.le16($0) })),
        ], sopClass: DICOMScene.ctClass, sopInstance: "1.2.3.7.1", to: url)
        XCTAssertEqual(try DICOMFile(url).frames().frames[0], values.map(Float.init))
    }

    func testOutlandishNumbersInHeadersAreErrorsNotCrashes() throws {
        let url = dir.appendingPathComponent("odd.dcm")
        try DICOMWriter.write(DICOMScene.image(modality: "CT", series: "1.2.3", number: 1, uid: "1.2.3.1", position: [0, 0, 0], pixels: Array(repeating: 0, count: 64 * 64))
            .filter { $0.group != 0x0020 || $0.element != 0x0032 } + [
                DICOMWriter.text(0x0020, 0x0032, "DS", "nan\\0\\1e400"), DICOMWriter.text(0x0020, 0x0013, "IS", "99999999999999999999"),
            ], sopClass: DICOMScene.ctClass, sopInstance: "1.2.3.1", to: url)
        let header = try DICOMHeader.read(url)
        XCTAssertNil(header.planes[0].position, "a position with NaN is no position")
        XCTAssertNil(try DICOMFile(url, headerOnly: true).root.int(.instanceNumber))
        let series = try DICOMSeries(header.planes)
        XCTAssertNil(series.index(at: [0, 0, .infinity]))
        var mask = [UInt8](repeating: 0, count: 16)
        DICOMLabels.fill([(-1e300, -1e300), (1e300, 0), (0, 1e300)], into: &mask, columns: 4, rows: 4)
        XCTAssertEqual(mask.reduce(0) { $0 + Int($1) }, 16)
    }

    func testFractionalSegmentationCountsPixelsAtHalfTheMaximum() throws {
        let raw = dir.appendingPathComponent("raw")
        try DICOMScene.write(to: raw)
        try DICOMScene.writeSEG(to: raw.appendingPathComponent("\(DICOMScene.folder)/seg/segmentation.dcm"), fractional: true)
        let catalog = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        var options = IngestOptions()
        options.size = 64
        _ = try runIngest(raw, catalog: catalog, options: options)
        let pairs = try catalog.query(Selection())
        XCTAssertEqual(pairs.filter { $0.class == "liver" }.map(\.area), [300, 300, 300, 300])
        XCTAssertEqual(pairs.filter { $0.class == "kidney" }.map(\.area), Array(repeating: 144, count: 7))
    }

    /// An enhanced (multi-frame) CT: positions and rescale per frame in functional groups, frames
    /// stored out of order, one frame with its own slope.
    func testEnhancedMultiFrameCTIsOrderedAndRescaledPerFrame() throws {
        let url = dir.appendingPathComponent("enhanced.dcm")
        let zs: [Double] = [5, 0, 10, 15], slopes: [Double] = [1, 1, 2, 1]
        let n = 8
        let stored = (0..<4).flatMap { f in (0..<n * n).map { 1000 + f * 10 + $0 % n } }
        let perFrame: [[DICOMWriter.Element]] = (0..<4).map { f in [
            DICOMWriter.seq(0x0020, 0x9113, [[DICOMWriter.text(0x0020, 0x0032, "DS", DICOMWriter.ds([0, 0, zs[f]]))]]),
            DICOMWriter.seq(0x0028, 0x9145, [[DICOMWriter.text(0x0028, 0x1052, "DS", "-1024"), DICOMWriter.text(0x0028, 0x1053, "DS", DICOMWriter.ds([slopes[f]]))]]),
        ] }
        try DICOMWriter.write(DICOMScene.common(modality: "CT", series: "1.2.3.4.5", number: 1) + [
            DICOMWriter.us(0x0028, 0x0002, 1), DICOMWriter.text(0x0028, 0x0004, "CS", "MONOCHROME2"),
            DICOMWriter.text(0x0028, 0x0008, "IS", "4"), DICOMWriter.us(0x0028, 0x0010, n), DICOMWriter.us(0x0028, 0x0011, n),
            DICOMWriter.us(0x0028, 0x0100, 16), DICOMWriter.us(0x0028, 0x0101, 16), DICOMWriter.us(0x0028, 0x0102, 15), DICOMWriter.us(0x0028, 0x0103, 0),
            DICOMWriter.seq(0x5200, 0x9229, [[
                DICOMWriter.seq(0x0020, 0x9116, [[DICOMWriter.text(0x0020, 0x0037, "DS", DICOMWriter.ds([1, 0, 0, 0, 1, 0]))]]),
                DICOMWriter.seq(0x0028, 0x9110, [[DICOMWriter.text(0x0028, 0x0030, "DS", DICOMWriter.ds([0.5, 0.5]))]]),
            ]]),
            DICOMWriter.seq(0x5200, 0x9230, perFrame),
            DICOMWriter.Element(0x7fe0, 0x0010, .bytes("OW", stored.flatMap { DICOMWriter.le16($0) })),
        ], sopClass: "1.2.840.10008.5.1.4.1.1.2.1", sopInstance: "1.2.3.4.5.1", to: url)

        let header = try DICOMHeader.read(url)
        XCTAssertEqual(header.planes.map { $0.position?[2] }, zs)
        let series = try DICOMSeries(header.planes)
        XCTAssertEqual(series.planes.map(\.frame), [1, 0, 2, 3])
        XCTAssertEqual(series.step, 5)
        let volume = try series.volume()
        XCTAssertEqual(volume.size, [n, n, 4])
        XCTAssertEqual(volume.spacing, [0.5, 0.5, 5])
        for (z, f) in [1, 0, 2, 3].enumerated() {
            let expected = Float(Double(1000 + f * 10 + 3) * slopes[f] - 1024)
            XCTAssertEqual(volume.voxels[z * n * n + 3], expected, "slice \(z) is frame \(f)")
        }
    }

    /// DICOM folders beside other datasets are datasets of their own; folder names (which often
    /// name patients) are hashed when two DICOM folders share the manifest.
    func testDICOMFoldersBesideOtherDatasets() throws {
        let raw = dir.appendingPathComponent("raw")
        try DatasetFactory.write(DatasetFactory.ct(), raw.appendingPathComponent("KiTS19/case_00000/imaging.nii.gz"))
        try DatasetFactory.write(DatasetFactory.labels(), raw.appendingPathComponent("KiTS19/case_00000/segmentation.nii.gz"), type: .uint8)
        try DICOMScene.write(to: raw.appendingPathComponent("SMITH_JOHN"))
        try DICOMScene.write(to: raw.appendingPathComponent("site-b/DOE_EXPORT"))
        let catalog = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        let summary = try runIngest(raw, catalog: catalog, options: IngestOptions())
        XCTAssertEqual(summary.datasets.sorted(), ["dicom", "dicom", "kits19"])
        let cases = try catalog.caseNames(dataset: "dicom")
        XCTAssertEqual(cases.count, 2)
        XCTAssertTrue(cases.allSatisfy { $0.hasPrefix("folder-") && !$0.contains("SMITH") && !$0.contains("DOE") }, "\(cases)")
        XCTAssertEqual(try catalog.query(Selection(datasets: ["dicom"])).count, 2 * 14)
    }

    func testCaseHashesAreStableWithinACatalogAndDifferAcrossCatalogs() throws {
        let raw = dir.appendingPathComponent("raw")
        try DICOMScene.write(to: raw)
        var options = IngestOptions()
        options.workers = 1
        var names: [String] = []
        for n in 0..<2 {
            let c = try Catalog(path: dir.appendingPathComponent("c\(n).sqlite").path)
            _ = try runIngest(raw, catalog: c, options: options)
            names += try c.caseNames()
            XCTAssertEqual(try c.identifierSalt(), try c.identifierSalt())
        }
        XCTAssertEqual(names.count, 2)
        XCTAssertNotEqual(names[0], names[1], "each catalog salts with its own secret")
    }
}
