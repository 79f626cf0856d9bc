import Foundation
import Imaging
import XCTest

@testable import TestSupport

/// The first run a new user makes, through the binary: a root of datasets medcat has never seen,
/// one of them broken, a DICOM export with coded and clinical names.
final class IngestAsTheyComeCLITests: BinaryTestCase {
    func testOneRunIngestsEveryGoodDatasetAndSaysWhatToDoNext() throws {
        let root = dir.appendingPathComponent("raw")
        try DownloadedLayouts.writeUnseen(at: root)
        try DICOMScene.write(to: root.appendingPathComponent("rt_export"), clinical: true)
        let args = ["ingest", "raw", "--size", "64", "--modality", "ultrasound", "--min-component-voxels", "100"]
        let (out, err) = try medcat(args, expect: 2)
        // One row per dataset, under its own name; the broken one says why.
        for name in ["dataset501_liverlesions", "task11_kidneys", "sitea-dataset002_prostate", "siteb-dataset002_prostate", "thyroid_us", "kvasir-seg", "dicom"] {
            XCTAssertTrue(out.split(separator: "\n").contains { $0.hasPrefix(name + " ") }, "no row for \(name) in\n\(out)")
        }
        XCTAssertTrue(out.contains("dataset777_broken (Dataset777_Broken) not ingested: dataset.json cannot be read"), out)
        XCTAssertTrue(out.contains("unmapped classes: lesion, thyroid_us, tumor_bed, whole_gland"), out)
        XCTAssertTrue(out.contains("dicom: not anatomy, not ingested: 1 body outline, 1 equipment, 2 planning helper"), out)
        XCTAssertTrue(out.contains("medcat catalog map-class lesion --to CLASS"), out)
        XCTAssertTrue(out.contains("note: two folders are named 'dataset002_prostate'"), out)
        // Nothing identifying from the DICOM headers or folders in what a user sees.
        for secret in [DICOMScene.patientID, "DOE", DICOMScene.folder] {
            XCTAssertFalse((out + err).contains(secret), "'\(secret)' was printed")
        }

        let (errors, _) = try medcat(["catalog", "errors"])
        XCTAssertTrue(errors.contains("dataset777_broken/Dataset777_Broken: dataset: dataset.json cannot be read"), errors)
        XCTAssertTrue(errors.contains("thyroid_us/images/0003.png"), errors)

        let (stats, _) = try medcat(["catalog", "stats"])
        XCTAssertTrue(stats.contains("unmapped class"), stats)
        XCTAssertTrue(stats.range(of: #"lesion\s+10\s+dataset501_liverlesions"#, options: .regularExpression) != nil, stats)

        let (mapped, _) = try medcat(["catalog", "map-class", "lesion", "--to", "liver tumour"])
        XCTAssertEqual(mapped.trimmingCharacters(in: .whitespacesAndNewlines), "'lesion' is now called 'liver_tumor'")
        let (count, _) = try medcat(["catalog", "query", "--class", "liver_tumor", "--count"])
        XCTAssertEqual(count.trimmingCharacters(in: .whitespacesAndNewlines), "10")
        let (_, unknown) = try medcat(["catalog", "map-class", "nothing_here", "--to", "liver"], expect: 1)
        XCTAssertTrue(unknown.contains("no class 'nothing_here' in the catalog"), unknown)

        // A re-run adds nothing and still says the broken dataset is broken.
        let (again, _) = try medcat(args, expect: 2)
        XCTAssertTrue(again.contains("0 files done"), again)
        let (errorsAgain, _) = try medcat(["catalog", "errors"])
        XCTAssertEqual(errorsAgain.split(separator: "\n").sorted(), errors.split(separator: "\n").sorted())
        let (help, _) = try medcat(["ingest", "--help"])
        XCTAssertTrue(help.contains("--class <class>"), help)
    }

    /// A selection of grey (CT) and colour (endoscopy) images trains and evaluates in one run.
    func testGreyAndColourImagesTrainAndEvaluateTogether() throws {
        try Self.kits(2, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        for n in 0..<8 {
            let photo = DownloadedLayouts.photo(rgb: true, seed: n)
            try DatasetFactory.writeData(try Raster.encodePNG(photo), dir.appendingPathComponent("raw/Kvasir-SEG/images/p\(n).png"))
            try DatasetFactory.writeData(try Raster.encodePNG(DownloadedLayouts.rgbMask()), dir.appendingPathComponent("raw/Kvasir-SEG/masks/p\(n).png"))
        }
        try medcat(["ingest", "raw", "--size", "64"])
        try medcat(["catalog", "split", "--ratios", "0.7,0.3,0", "--seed", "1"])
        let (out, err) = try medcat(["train", "--out", "mixed", "--preset", "vit_debug", "--steps", "3", "--batch-size", "4", "--masks-per-image", "1",
                                     "--click-passes", "0", "--val-images", "4"])
        XCTAssertTrue(out.contains("best: mixed/model-best.safetensors"), out + err)
        try medcat(["eval", "--checkpoint", "mixed/model-000003.safetensors", "--split", "val", "--protocol", "box", "--name", "mixed"])
        let (stats, _) = try medcat(["catalog", "stats", "--json"])
        let modalities = (try JSONSerialization.jsonObject(with: Data(stats.utf8)) as! [String: Any])["by_modality"] as! [[String: Any]]
        XCTAssertEqual(Set(modalities.map { $0["name"] as! String }), ["ct", "endoscopy"])
    }
}
