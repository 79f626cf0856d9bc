import Catalog
import Foundation
import Imaging
import XCTest

@testable import Ingest
@testable import TestSupport

/// Real labelled data from PyPI packages (tools/setup.sh), arranged in the layouts people use and
/// ingested without a manifest: TotalSegmentator's CT and MR label maps with up to 117 named
/// structures, TPTBox's spine CT and MR, and VascX's colour fundus photographs.
extension RealDataIngestTests {
    /// An nnU-Net v2 dataset of one case: `labels` value → name.
    func nnUNet(_ folder: URL, channel: String, image: URL, labels: URL, names: [Int: String]) throws {
        try link(image, folder.appendingPathComponent("imagesTr/case_0000.nii.gz"))
        try link(labels, folder.appendingPathComponent("labelsTr/case.nii.gz"))
        var json: [String: Any] = ["channel_names": ["0": channel], "file_ending": ".nii.gz", "numTraining": 1]
        json["labels"] = Dictionary(uniqueKeysWithValues: names.map { ($0.value, $0.key) }).merging(["background": 0]) { a, _ in a }
        try JSONSerialization.data(withJSONObject: json, options: .sortedKeys).write(to: folder.appendingPathComponent("dataset.json"))
    }

    /// The classes the labels present in `map` should become: classes.yaml's where it knows the
    /// name, the name itself (normalised) where it does not.
    func expectedClasses(_ map: URL, names: [Int: String], vocabulary: ClassVocabulary) throws -> (all: Set<String>, unmapped: Set<String>) {
        let present = Set(try NIfTI.read(map).voxels.map { Int($0) }).subtracting([0])
        var all = Set<String>(), unmapped = Set<String>()
        for v in present {
            let name = try XCTUnwrap(names[v], "label \(v) has no name")
            if let c = vocabulary.match(name) { all.insert(c) } else { all.insert(ClassVocabulary.normalise(name)); unmapped.insert(ClassVocabulary.normalise(name)) }
        }
        return (all, unmapped)
    }

    func testTotalSegmentatorLabelMapsKeepEveryNamedStructure() throws {
        let tables = try JSONSerialization.jsonObject(with: Data(contentsOf: try data("totalseg/class_map.json"))) as! [String: [String: String]]
        func names(_ task: String) -> [Int: String] { Dictionary(uniqueKeysWithValues: tables[task]!.map { (Int($0.key)!, $0.value) }) }
        let raw = dir.appendingPathComponent("nnUNet_raw")
        let ct = raw.appendingPathComponent("Dataset601_TotalSegmentatorCT"), mr = raw.appendingPathComponent("Dataset602_TotalSegmentatorMR")
        try nnUNet(ct, channel: "CT", image: try data("totalseg/example_ct_sm.nii.gz"), labels: try data("totalseg/example_seg.nii.gz"), names: names("total"))
        try nnUNet(mr, channel: "MRI", image: try data("totalseg/example_mr_sm.nii.gz"), labels: try data("totalseg/example_seg_mr.nii.gz"), names: names("total_mr"))
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        // Every structure, however small, so that none is lost to the size thresholds either.
        let (_, s) = try ingest(raw, into: c) { $0.minComponentVoxels = 1; $0.minMaskPixels = 1 }
        XCTAssertEqual(s.filesRejected, 0)
        XCTAssertEqual(Set(s.datasets), ["dataset601_totalsegmentatorct", "dataset602_totalsegmentatormr"])
        let vocabulary = try ManifestLibrary.builtin().vocabulary
        for (dataset, map, task, modality) in [("dataset601_totalsegmentatorct", "totalseg/example_seg.nii.gz", "total", "ct"),
                                               ("dataset602_totalsegmentatormr", "totalseg/example_seg_mr.nii.gz", "total_mr", "mr")] {
            let expected = try expectedClasses(try data(map), names: names(task), vocabulary: vocabulary)
            let pairs = try c.query(Selection(datasets: [dataset]))
            XCTAssertEqual(Set(pairs.map(\.class)), expected.all, dataset)
            XCTAssertEqual(Set(pairs.map(\.modality)), [modality])
            let row = try XCTUnwrap(s.rows.first { $0.name == dataset })
            XCTAssertEqual(row.unmapped, expected.unmapped, dataset)
            XCTAssertEqual(row.mapped.count + row.unmapped.count, expected.all.count)
        }
        let ctClasses = Set(try c.query(Selection(datasets: ["dataset601_totalsegmentatorct"])).map(\.class))
        XCTAssertTrue(ctClasses.isSuperset(of: ["liver", "spleen", "kidney_left", "kidney_right", "aorta", "inferior_vena_cava",
                                                "portal_and_splenic_vein", "lung_upper_lobe_left", "small_bowel", "spinal_cord"]), "\(ctClasses)")
        XCTAssertTrue(ctClasses.isSuperset(of: ["vertebrae_l1", "rib_left_7", "costal_cartilages"]), "kept under their own names: \(ctClasses)")
        XCTAssertGreaterThanOrEqual(ctClasses.count, 40)
    }

    func testSpineCTAndMRFromTPTBoxWithVertebraDiscAndEndplateLabels() throws {
        // TPTBox's label scheme: 1–7 C1–C7, 8–19 T1–T12, 20–25 L1–L6, 26 S1; +100 the disc below, +200 the endplate.
        let levels = (1...7).map { "C\($0)" } + (1...12).map { "T\($0)" } + (1...6).map { "L\($0)" } + ["S1"]
        var names: [Int: String] = [:]
        for (i, level) in levels.enumerated() {
            names[i + 1] = "vertebra \(level)"
            names[i + 101] = "intervertebral disc \(level)"
            names[i + 201] = "endplate \(level)"
        }
        let raw = dir.appendingPathComponent("spine")
        try nnUNet(raw.appendingPathComponent("Dataset610_SpineCT"), channel: "CT", image: try data("tptbox/sample_ct/sub-ct_label-22_ct.nii.gz"),
                   labels: try data("tptbox/sample_ct/sub-ct_seg-vert_label-22_msk.nii.gz"), names: names)
        try nnUNet(raw.appendingPathComponent("Dataset611_SpineMR"), channel: "T2", image: try data("tptbox/sample_mri/sub-mri_label-6_T2w.nii.gz"),
                   labels: try data("tptbox/sample_mri/sub-mri_seg-vert_label-6_msk.nii.gz"), names: names)
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        let (_, s) = try ingest(raw, into: c) { $0.minComponentVoxels = 1; $0.minMaskPixels = 1 }
        XCTAssertEqual(s.filesRejected, 0)
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["dataset610_spinect"])).map(\.class)), ["vertebra_l2", "vertebra_l3", "vertebra_l4"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["dataset610_spinect"])).map(\.modality)), ["ct"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["dataset611_spinemr"])).map(\.class)),
                       ["vertebra_c5", "vertebra_c6", "vertebra_c7", "intervertebral_disc_c5", "intervertebral_disc_c6",
                        "endplate_c5", "endplate_c6", "endplate_c7"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["dataset611_spinemr"])).map(\.modality)), ["mr_t2"])
        // PIR-oriented volumes: axial slices come out along the patient's long axis.
        let slices = try c.query(Selection(datasets: ["dataset610_spinect"])).map(\.slice)
        XCTAssertGreaterThan(Set(slices).count, 10)
    }

    func testColourFundusPhotographsWithVesselAndDiscMasks() throws {
        let fundus = try data("vascx")
        let names = try FileManager.default.contentsOfDirectory(atPath: fundus.appendingPathComponent("rgb").path).filter { $0.hasSuffix(".png") }.sorted()
        XCTAssertEqual(names.count, 6)
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        // The same photographs with two mask sets: two generic datasets, each class named on the command line.
        for (folder, masks, cls) in [("fundus_vessels", "vessels", "retinal_vessel"), ("fundus_discs", "discs", "optic_disc")] {
            let root = dir.appendingPathComponent(folder)
            for n in names {
                try link(fundus.appendingPathComponent("rgb/\(n)"), root.appendingPathComponent("images/\(n)"))
                try link(fundus.appendingPathComponent("\(masks)/\(n)"), root.appendingPathComponent("masks/\(n)"))
            }
            let (_, s) = try ingest(root, into: c) { $0.modality = "fundus"; $0.className = cls; $0.size = 512 }
            XCTAssertEqual(s.filesRejected, 0)
            XCTAssertEqual(s.images, 6)
            XCTAssertEqual(s.rows.first?.mapped, [cls])
        }
        let vessels = try c.query(Selection(classes: ["retinal_vessel"]))
        XCTAssertEqual(vessels.count, 6)
        XCTAssertTrue(vessels.allSatisfy { $0.modality == "fundus" && $0.width == 512 })
        // Vessels cover a few per cent of a photograph, discs less: real masks, not boxes.
        for v in vessels { XCTAssertTrue((512 * 512 / 100)...(512 * 512 / 5) ~= v.area, "\(v.case): \(v.area)") }
        XCTAssertEqual(Set(try c.storedImages().map(\.channels)), [3])
        // The same pictures in two datasets: stored once, and each pair of cases in one split.
        let stats = try c.stats()
        XCTAssertEqual(stats.blobs, 6)
        XCTAssertEqual(stats.duplicates?.crossDataset, [DuplicateReport.Pair(datasets: ["fundus_vessels", "fundus_discs"], images: 6)])
        let split = Dictionary(try c.query(Selection()).map { ("\($0.dataset)/\($0.case)", $0.split) }, uniquingKeysWith: { a, _ in a })
        for n in names {
            let stem = String(n.dropLast(4))
            XCTAssertEqual(split["fundus_vessels/\(stem)"], split["fundus_discs/\(stem)"], stem)
        }
    }
}
