import Catalog
import Foundation
import Imaging
import XCTest

@testable import Ingest
@testable import TestSupport

/// Datasets as people download them and as medcat has never seen them: every standard layout
/// ingests without a manifest under its own name, no label is lost to the vocabulary, one bad
/// dataset stops no other, and cases that share pixels share a split.
final class DatasetsAsTheyComeTests: TemporaryDirectoryTestCase {
    func counts(_ c: Catalog) throws -> [String: (images: Int, masks: Int)] {
        Dictionary(uniqueKeysWithValues: try c.stats().byDataset.map { ($0.name, ($0.images, $0.masks)) })
    }

    func classes(_ c: Catalog, _ dataset: String) throws -> Set<String> { Set(try c.query(Selection(datasets: [dataset])).map(\.class)) }

    func testPublicLayoutsAsDownloadedWithTheirQuirks() throws {
        let raw = dir.appendingPathComponent("raw")
        try DownloadedLayouts.write(at: raw)
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        var options = IngestOptions()
        options.workers = 2
        let s = try runIngest(raw, catalog: c, options: options)
        let rejected = try c.errors().map { "\($0.path): \($0.message)" }
        XCTAssertEqual(s.filesRejected, 0, "\(rejected)")
        XCTAssertEqual(s.failures, 0)

        let got = try counts(c)
        let expected: [String: (Int, Int)] = [
            "kits19": (8, 13), "kits21": (8, 13), "kits23": (8, 13), "brats2023": (32, 52), "acdc": (16, 26), "camus": (1, 2),
            "kvasir-seg": (2, 2), "drive": (2, 2), "isic2016": (2, 2), "isic2017": (1, 1), "msd-task01-braintumour": (32, 52),
        ]
        XCTAssertEqual(Set(got.keys), Set(expected.keys))
        for (name, (images, masks)) in expected {
            XCTAssertEqual(got[name]?.images, images, "\(name) images")
            XCTAssertEqual(got[name]?.masks, masks, "\(name) masks")
        }
        // KiTS19 stores the slice axis first: its axial masks are those of the usual orientation.
        for r in try c.query(Selection(classes: ["kidney"], datasets: ["kits19"])) {
            XCTAssertEqual(r.area, 80 * 80)
            XCTAssertEqual(r.bbox, [40, 40, 119, 119])
        }
        XCTAssertEqual(try classes(c, "kits21"), ["kidney", "kidney_cyst"])
        XCTAssertEqual(try classes(c, "kits23"), ["kidney_tumor", "kidney_cyst"])
        XCTAssertEqual(try classes(c, "brats2023"), ["brain_tumor_non_enhancing", "brain_tumor_enhancing"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["brats2023"])).map(\.modality)), ["mr_t1", "mr_t1ce", "mr_t2", "mr_flair"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["msd-task01-braintumour"])).map(\.modality)), ["mr_t1", "mr_t1ce", "mr_t2", "mr_flair"])
        XCTAssertEqual(try classes(c, "kvasir-seg"), ["polyp"])

        // Official test folders are the test split; their cases keep it through a re-split.
        func splits(_ dataset: String) throws -> [String: String] {
            Dictionary(try c.query(Selection(datasets: [dataset])).map { ($0.case, $0.split) }, uniquingKeysWith: { a, _ in a })
        }
        XCTAssertEqual(try splits("acdc")["database/testing/patient101"], "test")
        XCTAssertEqual(try splits("drive")["test/01"], "test")
        XCTAssertEqual(try splits("isic2016")["ISIC_0000003"], "test")
        try c.resplit(SplitPolicy(train: 1, val: 0, test: 0, seed: 9))
        XCTAssertEqual(try splits("acdc"), ["database/training/patient001": "train", "database/testing/patient101": "test"])
        XCTAssertEqual(try splits("isic2016"), ["ISIC_0000000": "train", "ISIC_0000003": "test"])

        // What was counted and not taken.
        let rows = Dictionary(uniqueKeysWithValues: s.rows.map { ($0.name, $0) })
        XCTAssertEqual(rows["kits19"]?.unlabelled, 1, "case_00210 is a test case without labels")
        XCTAssertEqual(rows["isic2017"]?.unlabelled, 1)
        XCTAssertEqual(rows["msd-task01-braintumour"]?.unlabelled, 1)
        let skipped = Dictionary(uniqueKeysWithValues: s.skippedFolders.map { ($0.path, $0.reason) })
        XCTAssertTrue(skipped["DRIVE/training/mask"]?.contains("field-of-view") == true, "\(skipped)")
        XCTAssertTrue(skipped["DRIVE/test/mask"]?.contains("field-of-view") == true, "\(skipped)")
        XCTAssertNotNil(skipped["DRIVE/test/2nd_manual"], "\(skipped)")
        XCTAssertEqual(skipped["glioma_validation"], "no known layout (4 .nii.gz)", "\(skipped)")

        let again = try runIngest(raw, catalog: c, options: options)
        XCTAssertEqual(again.filesDone, 0)
        XCTAssertEqual(try c.stats().images, s.images)
    }

    func testUnseenDatasetsIngestUnderTheirOwnNamesAndOneBadDatasetStopsNoOther() throws {
        let root = dir.appendingPathComponent("incoming")
        try DownloadedLayouts.writeUnseen(at: root)
        try DICOMScene.write(to: root.appendingPathComponent("rt_export"), clinical: true)
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        var options = IngestOptions()
        options.modality = "ultrasound"
        options.size = 64
        options.minComponentVoxels = 100   // the RT structures are drawn on three slices
        let log = RecordingLog()
        let s = try runIngest(root, catalog: c, options: options, log: log)

        let got = try counts(c)
        XCTAssertEqual(Set(got.keys), ["dataset501_liverlesions", "task11_kidneys", "sitea-dataset002_prostate", "siteb-dataset002_prostate",
                                       "thyroid_us", "kvasir-seg", "dicom"])
        XCTAssertEqual(got["dataset501_liverlesions"]?.images, 16)
        XCTAssertEqual(try classes(c, "dataset501_liverlesions"), ["liver", "lesion"])
        XCTAssertEqual(try classes(c, "task11_kidneys"), ["kidney_left", "kidney_cyst"])
        XCTAssertEqual(try classes(c, "sitea-dataset002_prostate"), ["whole_gland", "prostate_transition_zone"])
        XCTAssertTrue(s.notes.contains { $0.contains("two folders are named 'dataset002_prostate'") }, "\(s.notes)")
        // nnU-Net's labelled test cases are the test split; the unlabelled one is counted.
        let lesionSplits = Dictionary(try c.query(Selection(datasets: ["dataset501_liverlesions"])).map { ($0.case, $0.split) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(lesionSplits["lesions_002"], "test")
        XCTAssertEqual(s.rows.first { $0.name == "dataset501_liverlesions" }?.unlabelled, 1)
        // --modality is for datasets that do not say theirs: Kvasir-SEG stays endoscopy.
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["kvasir-seg"])).map(\.modality)), ["endoscopy"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["thyroid_us"])).map(\.modality)), ["ultrasound"])
        XCTAssertEqual(Set(try c.query(Selection(datasets: ["dataset501_liverlesions"])).map(\.modality)), ["ct"])
        let recorded = try c.datasets()
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: recorded.map { ($0.name, $0.modality) })["dataset501_liverlesions"], .some(nil),
                       "dataset.json's channels say CT: --modality is not the dataset's")
        // Binary masks, 0/255 and 0/1 alike, are one class named after the folder.
        XCTAssertEqual(got["thyroid_us"]?.masks, 2)
        XCTAssertEqual(try classes(c, "thyroid_us"), ["thyroid_us"])

        // The DICOM export: coded SEG segments and clinical RTSTRUCT names.
        let dicom = try c.query(Selection(datasets: ["dicom"]))
        XCTAssertEqual(Set(dicom.map(\.class)), ["tumor", "lung_left", "lymph_node", "tumor_bed"], "\(log.lines)")
        XCTAssertEqual(Set(dicom.filter { $0.class == "tumor" }.map(\.slice)), Set(DICOMScene.liver.slices).union(8...10),
                       "SEG 'Neoplasm, Primary' and RT GTVp_1 are both the tumour class")
        XCTAssertEqual(Set(dicom.filter { $0.class == "lung_left" }.map(\.slice)), Set(DICOMScene.kidney.slices).union(8...10),
                       "SEG Lung + Left and RT 'Lt Lung'")
        let dicomRow = try XCTUnwrap(s.rows.first { $0.name == "dicom" })
        XCTAssertEqual(dicomRow.structuresSkipped, ["body outline": 1, "equipment": 1, "planning helper": 2])
        XCTAssertEqual(dicomRow.unmapped, ["tumor_bed"])

        // Unmapped classes are listed with their counts and datasets.
        let unmapped = Dictionary(uniqueKeysWithValues: try c.stats().unmapped.map { ($0.name, $0) })
        XCTAssertEqual(Set(unmapped.keys), ["lesion", "whole_gland", "tumor_bed", "thyroid_us"])
        XCTAssertEqual(unmapped["lesion"]?.masks, 2 * 5)
        XCTAssertEqual(unmapped["whole_gland"]?.datasets, ["sitea-dataset002_prostate", "siteb-dataset002_prostate"])

        // Everything bad is in the errors, each named; the broken dataset is an error row of its own.
        let errors = try c.errors()
        let byPath = Dictionary(errors.map { ("\($0.dataset ?? "")/\($0.path)", "\($0.stage): \($0.message)") }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(s.failures, 1)
        XCTAssertTrue(byPath["dataset777_broken/Dataset777_Broken"]?.contains("dataset: dataset.json cannot be read") == true, "\(byPath)")
        XCTAssertTrue(byPath["thyroid_us/images/0003.png"] != nil, "\(byPath)")
        XCTAssertGreaterThan(s.rejectedTotal, 0)

        // A re-run adds nothing: no unit, no error row.
        let again = try runIngest(root, catalog: c, options: options)
        XCTAssertEqual(again.filesDone, 0)
        XCTAssertEqual(again.failures, 1)
        XCTAssertEqual(try c.errors().count, errors.count)
        XCTAssertEqual(try counts(c).mapValues { [$0.images, $0.masks] }, got.mapValues { [$0.images, $0.masks] })
    }

    func testUnmappedClassesAreMappedInTheCatalogAndLaterRunsRememberIt() throws {
        let root = dir.appendingPathComponent("one")
        try DownloadedLayouts.writeUnseen(at: root)
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        _ = try runIngest(root.appendingPathComponent("nnUNet_raw"), catalog: c)
        XCTAssertEqual(try c.stats().unmapped.map(\.name), ["lesion"])
        XCTAssertEqual(try c.mapClass("lesion", to: "liver_tumor", targetIsKnown: true), .renamed)
        XCTAssertEqual(try c.stats().unmapped, [])
        XCTAssertEqual(try c.count(Selection(classes: ["liver_tumor"])), 2 * 5)
        // Onto a class that exists: the masks join it, counts and selections follow.
        XCTAssertEqual(try c.mapClass("liver_tumor", to: "liver", targetIsKnown: true), .merged(masks: 10))
        XCTAssertEqual(try c.count(Selection(classes: ["liver"])), 2 * 8 + 2 * 5)
        XCTAssertThrowsError(try c.count(Selection(classes: ["lesion"])))
        // A later dataset with the same label name lands in the mapped class.
        let second = dir.appendingPathComponent("two/Dataset601_More")
        try FileManager.default.createDirectory(at: second.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: root.appendingPathComponent("nnUNet_raw/Dataset501_LiverLesions"), to: second)
        let reopened = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        _ = try runIngest(second.deletingLastPathComponent(), catalog: reopened)
        XCTAssertEqual(try reopened.stats().unmapped, [])
        XCTAssertEqual(try reopened.count(Selection(classes: ["liver"], datasets: ["dataset601_more"])), 2 * 8 + 2 * 5)
    }

    /// The same pixels in two datasets (a later edition holding an earlier one): their cases are one
    /// split group, in the strictest official split of the group, and stats say where they are.
    func testCasesThatShareImagesShareASplit() throws {
        let root = dir.appendingPathComponent("editions")
        let volume = DatasetFactory.ct(seed: 7), labels = DatasetFactory.labels()
        // An nnU-Net dataset whose test case is a KiTS case of another dataset.
        try DatasetFactory.write(volume, root.appendingPathComponent("KiTS19/case_00000/imaging.nii.gz"))
        try DatasetFactory.write(labels, root.appendingPathComponent("KiTS19/case_00000/segmentation.nii.gz"), type: .uint8)
        let d = root.appendingPathComponent("Dataset700_Kidney")
        try DatasetFactory.writeData(Data(#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "kidney": 1, "kidney tumor": 2}, "file_ending": ".nii.gz"}"#.utf8),
                                     d.appendingPathComponent("dataset.json"))
        try DatasetFactory.write(DatasetFactory.ct(seed: 8), d.appendingPathComponent("imagesTr/k_001_0000.nii.gz"))
        try DatasetFactory.write(labels, d.appendingPathComponent("labelsTr/k_001.nii.gz"), type: .uint8)
        try DatasetFactory.write(volume, d.appendingPathComponent("imagesTs/k_900_0000.nii.gz"))
        try DatasetFactory.write(labels, d.appendingPathComponent("labelsTs/k_900.nii.gz"), type: .uint8)
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        try c.resplit(SplitPolicy(train: 1, val: 0, test: 0))
        let s = try runIngest(root, catalog: c)
        XCTAssertEqual(s.deduplicated, 8)
        let split = Dictionary(try c.query(Selection()).map { ("\($0.dataset)/\($0.case)", $0.split) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(split, ["kits19/case_00000": "test", "dataset700_kidney/k_900": "test", "dataset700_kidney/k_001": "train"])
        // Counts and selections follow the moved case.
        XCTAssertEqual(try c.count(Selection(datasets: ["kits19"], splits: [.test])), 13)
        XCTAssertEqual(try c.count(Selection(datasets: ["kits19"], splits: [.train])), 0)
        let dup = try XCTUnwrap(try c.stats().duplicates)
        XCTAssertEqual(dup.sharedImages, 8)
        XCTAssertEqual(dup.crossDataset, [DuplicateReport.Pair(datasets: ["dataset700_kidney", "kits19"], images: 8)])
        // For the leaderboard's statistics the two cases are one unit, named by the first of them.
        let groups = try c.caseGroups()
        XCTAssertEqual(groups.count, 2); XCTAssertEqual(Set(groups.values).count, 1)
        XCTAssertEqual(groups.values.first, groups.keys.min())
        // A re-split keeps the group together.
        try c.resplit(SplitPolicy(train: 1, val: 0, test: 0, seed: 3))
        XCTAssertEqual(try c.count(Selection(datasets: ["kits19"], splits: [.test])), 13)
    }

    func testNamesAreMatchedTheWayCliniciansWriteThem() throws {
        let library = try ManifestLibrary.builtin()
        let v = library.vocabulary
        for name in ["Lung_L", "Lt Lung", "Left Lung", "LUNG LEFT", "lung (left)", "LUNG-L", "left_lungs"] { XCTAssertEqual(v.match(name), "lung_left", name) }
        for name in ["Kidney_R", "Rt Kidney", "KIDNEY RIGHT"] { XCTAssertEqual(v.match(name), "kidney_right", name) }
        let expected = ["Lungs": "lung", "Kidneys": "kidney", "Nodes": "lymph_node", "SpinalCord": "spinal_cord", "Spinal-Cord": "spinal_cord",
                        "BrainStem": "brainstem", "Bowel_Small": "small_bowel", "Glnd_Submand_L": "submandibular_gland_left",
                        "OpticNrv_L": "optic_nerve_left", "Femur_Head_R": "femur_head_right", "A_Aorta": "aorta", "Breast": "breast",
                        "Heart": "heart", "Esophagus": "esophagus", "Parotid_R": "parotid_gland_right", "OpticChiasm": "optic_chiasm"]
        for (name, cls) in expected { XCTAssertEqual(v.match(name), cls, name) }
        XCTAssertNil(v.match("Tumor Bed"))
        XCTAssertEqual(ClassVocabulary.normalise("Tumor Bed"), "tumor_bed")
        XCTAssertEqual(ClassVocabulary.normalise("SpinalCord_PRV05"), "spinal_cord_prv05")

        let names = StructureNames(manifest: try XCTUnwrap(library.manifest(named: "dicom")), vocabulary: v)
        func roi(_ n: String) -> ClassChoice { names.structure(DICOMSegment(names: [n], planes: [:])) }
        let choices: [String: ClassChoice] = [
            "GTVp_1": .mapped("tumor"), "GTV-2": .mapped("tumor"), "GTVn": .mapped("tumor_nodal"), "GTV_LN": .mapped("tumor_nodal"),
            "CTV_High": .mapped("clinical_target_volume"), "PTV_5400": .mapped("planning_target_volume"), "Lt Lung": .mapped("lung_left"),
            "OpticNrv_L": .mapped("optic_nerve_left"), "Tumor Bed": .unmapped("tumor_bed"), "Scar": .unmapped("scar"),
            "Body": .skipped("body outline"), "BODY_CONTOUR": .skipped("body outline"), "Couch Interior": .skipped("equipment"),
            "CouchSurface": .skipped("equipment"), "Head Rest": .unmapped("head_rest"), "zPTV_opt": .skipped("planning helper"),
            "PTVopt": .skipped("planning helper"), "SpinalCord_PRV05": .skipped("planning helper"), "Ring_3cm": .skipped("planning helper"),
            "BB marker": .skipped("marker"), "Iso": .skipped("marker"), "Isocenter 1": .skipped("marker"), "patient": .skipped("body outline"), "_dose": .skipped("planning helper"), "Bolus 5mm": .skipped("equipment"),
        ]
        for (name, choice) in choices { XCTAssertEqual(roi(name), choice, name) }
        // SEG segments: the coded type first, with its laterality; the label when no code is known.
        func seg(_ label: String, _ code: (String, String)?, side: String? = nil) -> ClassChoice {
            names.structure(DICOMSegment(names: [label], type: code.map { .init(scheme: $0.0, value: $0.1, meaning: "") },
                                         modifier: side.map { .init(scheme: "SCT", value: $0, meaning: "") }, planes: [:]))
        }
        XCTAssertEqual(seg("Segment_1", ("SCT", "86049000")), .mapped("tumor"))
        XCTAssertEqual(seg("Segment_1", ("SRT", "10200004")), .mapped("liver"), "SRT is read as SCT")
        XCTAssertEqual(seg("Kidney seg", ("SCT", "64033007"), side: "24028007"), .mapped("kidney_right"))
        XCTAssertEqual(seg("Liver", ("SCT", "999999")), .mapped("liver"))
        XCTAssertEqual(seg("Spleen", nil), .mapped("spleen"))
        // dataset.json labels are data: never skipped, unknown ones kept.
        XCTAssertEqual(names.label("body"), .unmapped("body"))
        XCTAssertEqual(names.label("vertebrae_L2"), .unmapped("vertebrae_l2"))
        XCTAssertEqual(names.label("kidney_right"), .mapped("kidney_right"))
    }

    func testNnUNetLabelsAndRegions() {
        XCTAssertEqual(Decathlon.labelValues(["background": 0, "liver": 1, "lesion": 2]).map { "\($0.0)=\($0.1)" }, ["1=liver", "2=lesion"])
        XCTAssertEqual(Decathlon.labelValues(["0": "background", "1": "edema"]).map { "\($0.0)=\($0.1)" }, ["1=edema"])
        let regions: [String: Any] = ["background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]]
        XCTAssertEqual(Decathlon.labelValues(regions).map { "\($0.0)=\($0.1)" }, ["1=whole tumor", "2=tumor core", "3=enhancing tumor"])
    }

    /// A folder where nothing pairs is named wrongly, not a test set: its images are rejected.
    func testImagesWhoseMasksAreNamedOtherwiseAreRejectedNotCountedAsUnlabelled() throws {
        let root = dir.appendingPathComponent("scans")
        try DatasetFactory.writeData(try Raster.encodePNG(DownloadedLayouts.photo(rgb: false, seed: 3)), root.appendingPathComponent("images/a.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.binaryMask()), root.appendingPathComponent("masks/a_mask.png"))
        var options = IngestOptions()
        options.modality = "x_ray"
        let s = try runIngest(root, catalog: try Catalog(path: ":memory:"), options: options)
        XCTAssertEqual(s.rows.first?.unlabelled, 0)
        XCTAssertEqual(s.filesRejected, 1)
    }

    func testMasksOfADatasetNoManifestDescribesKeepTheirValues() throws {
        let root = dir.appendingPathComponent("organs_us")
        var multi = DatasetFactory.binaryMask(on: 1)
        multi.voxels = multi.voxels.enumerated().map { $0.element > 0 && $0.offset % 64 >= 35 ? 2 : $0.element }
        try DatasetFactory.writeData(try Raster.encodePNG(DownloadedLayouts.photo(rgb: false, seed: 1)), root.appendingPathComponent("images/a.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(multi), root.appendingPathComponent("masks/a.png"))
        try DatasetFactory.writeData(try Raster.encodeJPEG(DownloadedLayouts.photo(rgb: true, seed: 2), quality: 90), root.appendingPathComponent("images/b.jpg"))
        try DatasetFactory.writeData(try Raster.encodeJPEG(DatasetFactory.binaryMask(), quality: 80), root.appendingPathComponent("masks/b.jpg"))
        let c = try Catalog(path: ":memory:")
        var options = IngestOptions()
        options.modality = "ultrasound"
        options.className = "thyroid"
        let s = try runIngest(root, catalog: c, options: options)
        XCTAssertEqual(s.filesRejected, 0)
        let masks = try c.query(Selection())
        XCTAssertEqual(Dictionary(masks.map { ($0.class, $0.area) }, uniquingKeysWith: +), ["thyroid": 30 * 20 * 16 - 15 * 20 * 16 + 30 * 20 * 16, "thyroid_2": 15 * 20 * 16])
        XCTAssertEqual(try c.stats().unmapped.map(\.name).sorted(), ["thyroid", "thyroid_2"], "'thyroid' is named by the user, not by classes.yaml")
    }
}
