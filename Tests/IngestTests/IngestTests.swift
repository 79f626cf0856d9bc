import Catalog
import Foundation
import Hashing
import Imaging
import XCTest

@testable import Ingest
@testable import TestSupport

final class IngestTests: TemporaryDirectoryTestCase {
    /// An ingest into `catalog`, or into a new catalog in the test's folder.
    func ingest(_ root: URL, catalog: Catalog? = nil, options: IngestOptions = IngestOptions(), manifest: Manifest? = nil) throws -> (Catalog, IngestSummary) {
        let c = try catalog ?? Catalog(path: dir.appendingPathComponent("catalog.sqlite").path)
        return (c, try runIngest(root, catalog: c, options: options, manifest: manifest))
    }

    func perDataset(_ c: Catalog) throws -> [String: (Int, Int)] {
        Dictionary(uniqueKeysWithValues: try c.stats().byDataset.map { ($0.name, ($0.images, $0.masks)) })
    }

    func testEveryLayoutIsRecognisedWithExactCounts() throws {
        let raw = dir.appendingPathComponent("raw")
        let expected = try DatasetFactory.allLayouts(at: raw)
        var options = IngestOptions()
        options.workers = 2
        let (c, s) = try ingest(raw, options: options)
        let rejected = try c.errors().map { "\($0.path): \($0.message)" }
        XCTAssertEqual(s.filesRejected, 0, "\(rejected)")
        XCTAssertEqual(Set(s.datasets), Set(expected.keys))
        let got = try perDataset(c)
        for (name, (images, masks)) in expected {
            XCTAssertEqual(got[name]?.0, images, "\(name) images")
            XCTAssertEqual(got[name]?.1, masks, "\(name) masks")
        }
        let stats = try c.stats()
        let modalities = Set(stats.byModality.map(\.name))
        XCTAssertEqual(modalities, ["ct", "mr_t1", "mr_t1ce", "mr_t2", "mr_flair", "mr", "ultrasound", "dermoscopy", "endoscopy", "fundus"])
        let classes = Dictionary(uniqueKeysWithValues: stats.byClass.map { ($0.name, $0.masks) })
        XCTAssertEqual(classes["kidney"], 2 * 8 + 2 * 5)  // KiTS A (8 per case) + nnU-Net kidney (B, 5 per channel)
        XCTAssertEqual(classes["kidney_tumor"], 2 * 5)
        XCTAssertEqual(classes["spleen"], 8)
        XCTAssertEqual(classes["skin_lesion"], 2)
        XCTAssertEqual(classes["polyp"], 1)
        XCTAssertEqual(classes["retinal_vessel"], 1)
        // Identical ISIC pictures are stored once.
        XCTAssertEqual(stats.blobs, stats.images - 1)
        // Every image's masks have the expected geometry: the 20×20 box at 4× scale.
        let kidney = try c.query(Selection(classes: ["kidney"], datasets: ["kits19"]))
        XCTAssertEqual(kidney.count, 16)
        for r in kidney {
            XCTAssertEqual(r.area, 80 * 80)
            XCTAssertEqual(r.bbox, [40, 40, 119, 119])
            XCTAssertEqual(r.width, 256)
        }
    }

    func testRerunAddsNothingAndChangedFilesAreReplaced() throws {
        let raw = dir.appendingPathComponent("raw")
        let d = raw.appendingPathComponent("KiTS19/case_00000")
        try DatasetFactory.write(DatasetFactory.ct(), d.appendingPathComponent("imaging.nii.gz"))
        try DatasetFactory.write(DatasetFactory.labels(), d.appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        let (c, first) = try ingest(raw)
        XCTAssertEqual(first.images, 8)
        let recorded = try c.sourceRecords().first?.contentHash
        XCTAssertEqual(recorded, ContentHash.hex(try Data(contentsOf: d.appendingPathComponent("imaging.nii.gz"))))
        let (_, second) = try ingest(raw, catalog: c)
        XCTAssertEqual(second.filesDone, 0)
        XCTAssertEqual(second.filesSkipped, 1)
        XCTAssertEqual(try c.stats().images, 8)
        // A changed label file replaces the unit's rows (here: only label A remains).
        var onlyA = DatasetFactory.labels()
        onlyA.voxels = onlyA.voxels.map { $0 == 2 ? 0 : $0 }
        Thread.sleep(forTimeInterval: 0.01)
        try DatasetFactory.write(onlyA, d.appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        let (_, third) = try ingest(raw, catalog: c)
        XCTAssertEqual(third.filesDone, 1)
        let stats = try c.stats()
        XCTAssertEqual(stats.images, 8)
        XCTAssertEqual(stats.masks, 8)
        XCTAssertEqual(stats.byClass.map(\.name), ["kidney"])
    }

    func testBadInputsAreRecordedAndEverythingElseIngested() throws {
        let raw = dir.appendingPathComponent("raw/KiTS19")
        func kase(_ n: Int) -> URL { raw.appendingPathComponent("case_0000\(n)") }
        for n in 0..<5 {
            try DatasetFactory.write(DatasetFactory.ct(), kase(n).appendingPathComponent("imaging.nii.gz"))
            try DatasetFactory.write(DatasetFactory.labels(), kase(n).appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        }
        // 1: truncated image; 2: mask on another grid; 3: a label value the manifest lacks; 4: empty file.
        let img1 = kase(1).appendingPathComponent("imaging.nii.gz")
        let bytes = try Data(contentsOf: img1)
        try bytes.prefix(bytes.count / 3).write(to: img1)
        var small = DatasetFactory.labels()
        small.size = [64, 64, 8]; small.voxels = Array(small.voxels.prefix(64 * 64 * 8))
        try DatasetFactory.write(small, kase(2).appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        try DatasetFactory.write(DatasetFactory.labels(a: 1, b: 7), kase(3).appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        try Data().write(to: kase(4).appendingPathComponent("imaging.nii.gz"))

        let (c, s) = try ingest(raw)
        XCTAssertEqual(s.filesDone, 1)
        XCTAssertEqual(s.filesRejected, 4)
        XCTAssertEqual(s.rejectedTotal, 4)
        XCTAssertEqual(try c.stats().images, 8)
        let errors = Dictionary(uniqueKeysWithValues: try c.errors().map { ($0.path, "\($0.stage): \($0.message)") })
        XCTAssertEqual(errors.count, 4)
        XCTAssertTrue(errors["case_00001/imaging.nii.gz"]?.contains("truncated") == true, "\(errors)")
        XCTAssertTrue(errors["case_00002/imaging.nii.gz"]?.contains("mask grid 64×64×8 differs from image grid 64×64×16") == true, "\(errors)")
        XCTAssertTrue(errors["case_00003/imaging.nii.gz"]?.contains("label value 7 not in the 'kits19' manifest") == true, "\(errors)")
        XCTAssertTrue(errors["case_00004/imaging.nii.gz"]?.contains("file is empty") == true, "\(errors)")
        // A second run does not record them again, and still reports them.
        let (_, again) = try ingest(raw, catalog: c)
        XCTAssertEqual(again.filesRejected, 0)
        XCTAssertEqual(again.rejectedTotal, 4)
        XCTAssertEqual(try c.errors().count, 4)
    }

    /// Axial slices of a compressed NIfTI are cut from its planes as they are inflated; any other
    /// cut reads the volume whole. Both must give the same samples, whatever the file's orientation.
    func testPlaneByPlaneSlicesEqualThoseOfTheWholeVolume() throws {
        let library = try ManifestLibrary.builtin()
        let raw = dir.appendingPathComponent("KiTS19/case_00000")
        // Stored with x and z reversed: canonical axial order runs against the file's planes.
        let flip = [-1.0, 0, 0, 0, 1, 0, 0, 0, -1]
        var ct = DatasetFactory.ct(), labels = DatasetFactory.labels()
        ct.direction = flip
        labels.direction = flip
        for (name, type) in [("imaging.nii.gz", VoxelType.int16), ("imaging.nii", .int16)] {
            try DatasetFactory.write(ct, raw.appendingPathComponent(name), type: type)
        }
        try DatasetFactory.write(labels, raw.appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        // Label values stored as int16 go through the general (Float) label path.
        try DatasetFactory.write(labels, raw.appendingPathComponent("segmentation16.nii.gz"), type: .int16)
        let manifest = try XCTUnwrap(library.manifest(named: "kits19"))
        func samples(_ image: String, _ mask: String, axes: [SliceAxis]) throws -> [PreparedImage] {
            var o = IngestOptions()
            o.axes = axes
            let item = WorkItem(dataset: "kits19", caseName: "case_00000", image: raw.appendingPathComponent(image), key: image,
                                mask: raw.appendingPathComponent(mask), maskKey: mask, modality: "ct", frame: nil, dicom: nil)
            return try SampleBuilder(manifest: manifest, vocabulary: library.vocabulary, options: o).build(item).images.filter { $0.axis == .axial }
        }
        let whole = try samples("imaging.nii.gz", "segmentation.nii.gz", axes: [.axial, .sagittal])
        XCTAssertEqual(whole.count, DatasetFactory.expectedImages)
        XCTAssertEqual(whole.map(\.slice), Array(6...13), "slices 2…9 counted from the other end")
        for (image, mask) in [("imaging.nii.gz", "segmentation.nii.gz"), ("imaging.nii", "segmentation.nii.gz"), ("imaging.nii.gz", "segmentation16.nii.gz")] {
            let planes = try samples(image, mask, axes: [.axial])
            XCTAssertEqual(planes.map(\.slice), whole.map(\.slice), image)
            XCTAssertEqual(planes.map(\.pixels), whole.map(\.pixels), image)
            XCTAssertEqual(planes.map(\.hash), whole.map(\.hash), image)
            XCTAssertEqual(planes.map(\.transform), whole.map(\.transform), image)
            for (p, w) in zip(planes, whole) {
                XCTAssertEqual(p.masks.map(\.className), w.masks.map(\.className))
                XCTAssertEqual(p.masks.map(\.area), w.masks.map(\.area))
                XCTAssertEqual(p.masks.map(\.pixels), w.masks.map(\.pixels))
                XCTAssertEqual(p.masks.map { [$0.box.x0, $0.box.y0, $0.box.x1, $0.box.y1] }, w.masks.map { [$0.box.x0, $0.box.y0, $0.box.x1, $0.box.y1] })
            }
        }
        // A mask that turns out truncated while its planes are read is rejected with the reader's message.
        let seg = try Data(contentsOf: raw.appendingPathComponent("segmentation16.nii.gz"))
        try seg.prefix(seg.count / 2).write(to: raw.appendingPathComponent("segmentation16.nii.gz"))
        XCTAssertThrowsError(try samples("imaging.nii.gz", "segmentation16.nii.gz", axes: [.axial])) { e in
            XCTAssertTrue("\(e)".contains("truncated") && "\(e)".contains("read mask"), "\(e)")
        }
    }

    /// Images are inflated as far as their last labelled slice; a file cut short past it is still
    /// rejected, and --verify-crc also checks the CRC of what is left.
    func testImagesAreReadToTheirLastLabelledSliceUnlessTheCRCIsVerified() throws {
        let library = try ManifestLibrary.builtin()
        let raw = dir.appendingPathComponent("KiTS19/case_00000"), image = raw.appendingPathComponent("imaging.nii.gz")
        var labels = DatasetFactory.labels()
        // Labels in slices 2…9 of 16 only.
        for i in labels.voxels.indices where i / (64 * 64) >= 10 { labels.voxels[i] = 0 }
        try DatasetFactory.write(DatasetFactory.ct(), image)
        try DatasetFactory.write(labels, raw.appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        let manifest = try XCTUnwrap(library.manifest(named: "kits19"))
        func samples(verifyCRC: Bool) throws -> [PreparedImage] {
            var o = IngestOptions()
            o.verifyCRC = verifyCRC
            let item = WorkItem(dataset: "kits19", caseName: "case_00000", image: image, key: "imaging.nii.gz",
                                mask: raw.appendingPathComponent("segmentation.nii.gz"), maskKey: "segmentation.nii.gz", modality: "ct", frame: nil, dicom: nil)
            return try SampleBuilder(manifest: manifest, vocabulary: library.vocabulary, options: o).build(item).images
        }
        let whole = try samples(verifyCRC: true)
        XCTAssertEqual(whole.map(\.slice), Array(2...9))
        XCTAssertEqual(try samples(verifyCRC: false).map(\.hash), whole.map(\.hash))
        let good = try Data(contentsOf: image)
        var crc = good
        crc[crc.count - 8] ^= 0xff
        try crc.write(to: image)
        XCTAssertEqual(try samples(verifyCRC: false).map(\.hash), whole.map(\.hash), "the slices read are intact")
        XCTAssertThrowsError(try samples(verifyCRC: true)) { XCTAssertTrue("\($0)".contains("read image"), "\($0)") }
        // Cut in slice 14 or so: past the last labelled slice, and still rejected.
        try good.prefix(good.count * 9 / 10).write(to: image)
        for verify in [false, true] {
            XCTAssertThrowsError(try samples(verifyCRC: verify)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
        }
    }

    func testFloatLabelMapsAreCheckedAtEveryVoxel() throws {
        // Float label maps: -0 is background; a fraction, NaN or a negative value anywhere (here in the
        // middle of a background run, at an odd offset) rejects the file.
        let raw = dir.appendingPathComponent("raw/KiTS19")
        let odd = (64 * 64 * 15) + 64 * 7 + 37  // slice 15, row 7, column 37: background
        for (n, value) in [Float(-0.0), 0.5, .nan, -1].enumerated() {
            var labels = DatasetFactory.labels()
            XCTAssertEqual(labels.voxels[odd], 0)
            labels.voxels[odd] = value
            labels.voxels[odd + 1] = -0.0
            let kase = raw.appendingPathComponent("case_0000\(n)")
            try DatasetFactory.write(DatasetFactory.ct(), kase.appendingPathComponent("imaging.nii.gz"))
            try DatasetFactory.write(labels, kase.appendingPathComponent("segmentation.nii.gz"), type: .float32)
        }
        let (c, s) = try ingest(raw)
        XCTAssertEqual(s.filesDone, 1)
        XCTAssertEqual(s.filesRejected, 3)
        XCTAssertEqual(try c.stats().images, DatasetFactory.expectedImages)
        XCTAssertEqual(try c.stats().masks, DatasetFactory.expectedMasks)
        let errors = Dictionary(uniqueKeysWithValues: try c.errors().map { ($0.path, $0.message) })
        for (n, shown) in [(1, "0.5"), (2, "nan"), (3, "-1.0")] {
            XCTAssertTrue(errors["case_0000\(n)/imaging.nii.gz"]?.contains("non-integer or negative value (\(shown))") == true, "\(errors)")
        }
    }

    func testNonImageFilesAndUnpairedImagesInAPairedFolder() throws {
        let raw = dir.appendingPathComponent("Kvasir-SEG")
        try DatasetFactory.writeData(try Raster.encodeJPEG(DatasetFactory.photo(rgb: true), quality: 90), raw.appendingPathComponent("images/a.jpg"))
        try DatasetFactory.writeData(try Raster.encodeJPEG(DatasetFactory.binaryMask(), quality: 90), raw.appendingPathComponent("masks/a.jpg"))
        try DatasetFactory.writeData(try Raster.encodeJPEG(DatasetFactory.photo(rgb: true), quality: 90), raw.appendingPathComponent("images/b.jpg"))
        try DatasetFactory.writeData(Data("not an image".utf8), raw.appendingPathComponent("images/notes.txt"))
        try DatasetFactory.writeData(Data("garbage".utf8), raw.appendingPathComponent("images/c.jpg"))
        try DatasetFactory.writeData(Data("garbage".utf8), raw.appendingPathComponent("masks/c.jpg"))
        let (c, s) = try ingest(raw)
        XCTAssertEqual(s.filesDone, 1)
        let errors = Dictionary(uniqueKeysWithValues: try c.errors().map { ($0.path, $0.message) })
        XCTAssertEqual(Set(errors.keys), ["images/b.jpg", "images/notes.txt", "images/c.jpg"])
        XCTAssertTrue(errors["images/b.jpg"]!.contains("no mask"))
        XCTAssertTrue(errors["images/notes.txt"]!.contains("not an image"))
        XCTAssertTrue(errors["images/c.jpg"]!.contains("JPEG"), errors["images/c.jpg"]!)
    }

    func testUnknownLayoutSaysWhatWasFoundAndHowToWriteAManifest() throws {
        let raw = dir.appendingPathComponent("mystery")
        try DatasetFactory.write(DatasetFactory.ct(), raw.appendingPathComponent("scans/a.nii.gz"))
        XCTAssertThrowsError(try ingest(raw)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("no known dataset layout in 'mystery'"), m)
            XCTAssertTrue(m.contains("1 .nii.gz"), m)
            XCTAssertTrue(m.contains("--manifest"), m)
        }
    }

    func testGenericPairsWithoutAModalityAreADatasetErrorOfTheirOwn() throws {
        let library = try ManifestLibrary.builtin()
        let raw = dir.appendingPathComponent("pairs")
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.photo(rgb: false)), raw.appendingPathComponent("imgs/x1.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.binaryMask(on: 1)), raw.appendingPathComponent("gt/x1.png"))
        let (failed, s0) = try ingest(raw)
        XCTAssertEqual(s0.failures, 1)
        XCTAssertEqual(s0.images, 0)
        let error = try XCTUnwrap(try failed.errors().first)
        XCTAssertEqual(error.stage, "dataset")
        XCTAssertTrue(error.message.contains("--modality"), error.message)
        var options = IngestOptions()
        options.modality = "x_ray"
        let (named, s1) = try ingest(raw, catalog: try Catalog(path: ":memory:"), options: options)
        XCTAssertEqual(s1.images, 1)
        XCTAssertEqual(try named.query(Selection()).first?.class, "pairs", "the foreground is named after the folder")
        let yaml = "name: my-us\nlayout: paired\nmodality: ultrasound\nlabels: {1: left_ventricle}\n"
        let m = try Manifest.parse(yaml, file: "my-us.yaml", vocabulary: library.vocabulary)
        let (c, s) = try ingest(raw, manifest: m)
        XCTAssertEqual(s.images, 1)
        XCTAssertEqual(try c.query(Selection()).first?.class, "left_ventricle")
        XCTAssertEqual(try c.query(Selection()).first?.modality, "ultrasound")
    }

    func testOptionsChangeTheOutput() throws {
        let raw = dir.appendingPathComponent("KiTS19")
        try DatasetFactory.write(DatasetFactory.ct(), raw.appendingPathComponent("case_00000/imaging.nii.gz"))
        try DatasetFactory.write(DatasetFactory.labels(), raw.appendingPathComponent("case_00000/segmentation.nii.gz"), type: .uint8)
        var o = IngestOptions()
        o.keepEmpty = true
        o.size = 1024
        o.minComponentVoxels = 1
        o.minMaskPixels = 1
        let (c, s) = try ingest(raw, options: o)
        XCTAssertEqual(s.images, 16)
        // Without thresholds: the column (16 slices), the speck (3 slices) survive too.
        XCTAssertEqual(s.masks, 8 + 5 + 16 + 3 - 8)  // the column shares class A with the box on slices 2…9
        let r = try c.query(Selection(classes: ["kidney_tumor"])).first!
        XCTAssertEqual(r.width, 1024)
        // xyz slicing: coronal and sagittal planes too, with physical aspect (16 × 2.5 mm = 40 mm high vs 64 mm wide).
        var o2 = IngestOptions()
        o2.axes = [.axial, .coronal, .sagittal]
        let (c2, s2) = try ingest(raw, catalog: try Catalog(path: ":memory:"), options: o2)
        XCTAssertGreaterThan(s2.images, 8)
        let coronal = try c2.query(Selection(classes: ["kidney"])).filter { $0.axis == "y" }
        XCTAssertEqual(coronal.count, 20 + 8)  // rows 10…29 of the box, 40…47 of the column (8×16 px per plane)
        // Box spans z 2…9 (8 slices × 2.5 mm = 20 mm) and x 10…29 (20 mm): square at 4 px/mm.
        let b = coronal[0].bbox
        XCTAssertEqual(b.x1 - b.x0 + 1, 80)
        XCTAssertEqual(b.y1 - b.y0 + 1, 80)
    }

    func testInstancesSplitComponents() throws {
        let raw = dir.appendingPathComponent("Kvasir-SEG")
        var mask = DatasetFactory.binaryMask(on: 0)
        for j in 5..<20 { for i in 5..<20 { mask.voxels[j * 64 + i] = 255 } }
        for j in 25..<45 { for i in 30..<60 { mask.voxels[j * 64 + i] = 255 } }
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.photo(rgb: true)), raw.appendingPathComponent("images/p.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(mask), raw.appendingPathComponent("masks/p.png"))
        var o = IngestOptions()
        o.instances = true
        let (c, _) = try ingest(raw, options: o)
        let rows = try c.query(Selection())
        XCTAssertEqual(rows.map(\.instance), [1, 2])
        XCTAssertEqual(rows.map(\.area).reduce(0, +), rows.count == 2 ? rows[0].area + rows[1].area : -1)
    }

    func testSplitsAreCaseLevelDeterministicAndResplittable() throws {
        let raw = dir.appendingPathComponent("BraTS2021")
        for n in 0..<12 {
            let d = raw.appendingPathComponent("BraTS2021_000\(String(format: "%02d", n))")
            for s in ["t1", "flair"] { try DatasetFactory.write(DatasetFactory.mr(seed: n), d.appendingPathComponent("\(d.lastPathComponent)_\(s).nii.gz")) }
            try DatasetFactory.write(DatasetFactory.labels(a: 2, b: 1), d.appendingPathComponent("\(d.lastPathComponent)_seg.nii.gz"), type: .uint8)
        }
        let (c, _) = try ingest(raw)
        func splitsPerCase() throws -> [String: Set<String>] {
            var m: [String: Set<String>] = [:]
            for r in try c.query(Selection()) { m[r.case, default: []].insert(r.split) }
            return m
        }
        let before = try splitsPerCase()
        XCTAssertEqual(before.count, 12)
        XCTAssertTrue(before.values.allSatisfy { $0.count == 1 }, "a case in two splits")
        let policy = SplitPolicy()
        for (k, v) in before { XCTAssertEqual(v.first, policy.split(dataset: "brats2021", case: k).name) }
        try c.resplit(SplitPolicy(train: 0, val: 0, test: 1, seed: 3))
        XCTAssertTrue(try splitsPerCase().values.allSatisfy { $0 == ["test"] })
        XCTAssertEqual(try c.stats().bySplit.first { $0.name == "test" }?.images, try c.stats().images)
    }

    func testExportSAMed2DAndWebDataset() throws {
        let raw = dir.appendingPathComponent("KiTS19")
        try DatasetFactory.write(DatasetFactory.ct(), raw.appendingPathComponent("case_00000/imaging.nii.gz"))
        try DatasetFactory.write(DatasetFactory.labels(), raw.appendingPathComponent("case_00000/segmentation.nii.gz"), type: .uint8)
        let (c, _) = try ingest(raw)
        let out = dir.appendingPathComponent("sa")
        let (images, masks) = try Exporter(catalog: c).export(.saMed2d, selection: Selection(), to: out)
        XCTAssertEqual(images, 8)
        XCTAssertEqual(masks, 13)
        let split = try c.query(Selection()).first!.split
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("image2label_\(split).json"))) as! [String: [String]]
        XCTAssertEqual(index.count, 8)
        let (image, maskPaths) = index.sorted { $0.key < $1.key }[3]
        XCTAssertTrue(image.hasPrefix("images/ct--kits19--case_00000--z_0005"), image)
        let picture = try ImageIO.read(out.appendingPathComponent(image))
        XCTAssertEqual(picture.size, [256, 256, 1])
        let tumour = try ImageIO.read(out.appendingPathComponent(maskPaths.first { $0.contains("kidney_tumor") }!))
        XCTAssertEqual(tumour.voxels.filter { $0 == 255 }.count, 64 * 64)
        XCTAssertEqual(Set(tumour.voxels), [0, 255])
        // The exported image is the CT window of source slice 5, resized ×4: resizing keeps the mean.
        let source = DatasetFactory.ct()
        let window = (0..<64 * 64).map { i -> Float in
            let hu = source.voxels[5 * 64 * 64 + i]
            return ((min(max(hu, -160), 240) + 160) * 255 / 400).rounded()
        }
        let mean = { (v: [Float]) in v.reduce(0, +) / Float(v.count) }
        XCTAssertEqual(mean(picture.voxels), mean(window), accuracy: 0.5)

        let wds = dir.appendingPathComponent("wds")
        let (wi, wm) = try Exporter(catalog: c).export(.webdataset, selection: Selection(classes: ["kidney_tumor"]), to: wds, samplesPerShard: 2)
        XCTAssertEqual(wi, 5)
        XCTAssertEqual(wm, 5)
        let tars = try FileManager.default.contentsOfDirectory(atPath: wds.path).sorted()
        XCTAssertEqual(tars.count, 3)  // 2 + 2 + 1
        let tar = try Data(contentsOf: wds.appendingPathComponent(tars[0]))
        let names = stride(from: 0, to: tar.count - 1024, by: 512).compactMap { o -> String? in
            let h = tar[o..<o + 100]
            guard h.first != 0, tar[o + 257..<o + 262] == Data("ustar".utf8) else { return nil }
            return String(decoding: h.prefix { $0 != 0 }, as: UTF8.self)
        }
        XCTAssertEqual(names.count, 6)
        XCTAssertTrue(names.contains { $0.hasSuffix(".mask_000.png") })
        XCTAssertTrue(names.contains { $0.hasSuffix(".json") })
    }

    func testNaNVoxelsAreBackgroundNotACrash() throws {
        let raw = dir.appendingPathComponent("KiTS19/case_00000")
        var ct = DatasetFactory.ct()
        for i in stride(from: 0, to: ct.voxels.count, by: 7) { ct.voxels[i] = .nan }
        ct.voxels[1] = .infinity
        try DatasetFactory.write(ct, raw.appendingPathComponent("imaging.nii.gz"), type: .float32)
        try DatasetFactory.write(DatasetFactory.labels(), raw.appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        var o = IngestOptions()
        o.intensity = .percentile(lower: 0.5, upper: 99.5)
        let (_, s) = try ingest(raw.deletingLastPathComponent(), options: o)
        XCTAssertEqual(s.images, 8)
        XCTAssertEqual(s.filesRejected, 0)
    }

    func testTwoFoldersOfOneDatasetKeepTheirOwnCasesAndKeys() throws {
        // DRIVE ships training/ and test/ with the same layout: both resolve to the 'drive' manifest.
        let root = dir.appendingPathComponent("DRIVE")
        for (split, n) in [("training", 21), ("test", 1)] {
            try DatasetFactory.writeData(try Raster.encodeTIFF(DatasetFactory.photo(rgb: true), bits: 8),
                                         root.appendingPathComponent("\(split)/images/\(String(format: "%02d", n))_\(split).tif"))
            try DatasetFactory.writeData(try Raster.encodeGIF(DatasetFactory.binaryMask()),
                                         root.appendingPathComponent("\(split)/1st_manual/\(String(format: "%02d", n))_manual1.gif"))
        }
        let (c, s) = try ingest(root)
        XCTAssertEqual(s.datasets, ["drive", "drive"])
        XCTAssertEqual(s.images, 2)
        XCTAssertEqual(Set(try c.query(Selection()).map(\.case)), ["test/01", "training/21"])
        let (_, again) = try ingest(root, catalog: c)
        XCTAssertEqual(again.filesDone, 0, "a re-run must not replace one folder's units with the other's")
        XCTAssertEqual(try c.stats().images, 2)
    }

    func testPairedSubfoldersPairWithTheirOwnMasks() throws {
        let library = try ManifestLibrary.builtin()
        let root = dir.appendingPathComponent("pairs")
        var small = DatasetFactory.binaryMask(on: 0)
        for j in 0..<12 { for i in 0..<12 { small.voxels[j * 64 + i] = 1 } }
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.photo(rgb: false)), root.appendingPathComponent("images/train/0001.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.photo(rgb: false)), root.appendingPathComponent("images/val/0001.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(DatasetFactory.binaryMask(on: 1)), root.appendingPathComponent("masks/train/0001.png"))
        try DatasetFactory.writeData(try Raster.encodePNG(small), root.appendingPathComponent("masks/val/0001.png"))
        let m = try Manifest.parse("name: pairs\nlayout: paired\nmodality: x_ray\nlabels: {1: lung}\n", file: "pairs.yaml", vocabulary: library.vocabulary)
        let (c, _) = try ingest(root, manifest: m)
        let paths = Dictionary(uniqueKeysWithValues: try c.storedImages().map { ($0.id, $0.sourcePath) })
        let areas = Dictionary(uniqueKeysWithValues: try c.query(Selection()).map { (paths[$0.imageID] ?? "?", $0.area) })
        // 64×48 px → 256×192: ×4 per side.
        XCTAssertEqual(areas["images/train/0001.png"], 30 * 20 * 16)
        XCTAssertEqual(areas["images/val/0001.png"], 12 * 12 * 16)
    }

    func testChangedOutputSettingsReingest() throws {
        let raw = dir.appendingPathComponent("KiTS19")
        try DatasetFactory.write(DatasetFactory.ct(), raw.appendingPathComponent("case_00000/imaging.nii.gz"))
        try DatasetFactory.write(DatasetFactory.labels(), raw.appendingPathComponent("case_00000/segmentation.nii.gz"), type: .uint8)
        let (c, _) = try ingest(raw)
        var o = IngestOptions()
        o.size = 512
        let (_, s) = try ingest(raw, catalog: c, options: o)
        XCTAssertEqual(s.filesDone, 1)
        XCTAssertEqual(try c.stats().images, 8)
        XCTAssertEqual(Set(try c.query(Selection()).map(\.width)), [512])
    }

    func testEmbeddedManifestsMatchTheManifestsFolder() throws {
        let library = try ManifestLibrary.builtin()
        let folder = PackageFiles.root.appendingPathComponent("manifests")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertEqual(Set(files), Set(BuiltinManifests.files.keys), "run `make manifests`")
        for f in files {
            var text = try String(contentsOf: folder.appendingPathComponent(f), encoding: .utf8)
            if !text.hasSuffix("\n") { text += "\n" }
            XCTAssertEqual(BuiltinManifests.files[f], text, "\(f) is stale: run `make manifests`")
        }
        XCTAssertGreaterThanOrEqual(library.manifests.count, 20)
    }
}
