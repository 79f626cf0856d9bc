import Foundation
import Imaging

/// Writes small datasets in every public layout medcat recognises. Volumes are built so that the
/// expected catalog is known exactly:
///
/// - 64×64×16 grid, spacing 1×1×2.5 mm;
/// - label A: a 20×20 box on slices 2…9 (8 slices, 400 px each) → kept;
/// - label B: a 16×16 box on slices 4…8 (5 slices, 256 px, 1280 voxels) → kept;
/// - label B speck: 3×3×3 voxels → dropped (under 1000 voxels in 3D);
/// - label A column: 8×8 px on every slice (1024 voxels, kept in 3D) → dropped in 2D (64 px < 100).
///
/// So each volume yields 8 images (slices 2…9) and 13 masks (8 of A, 5 of B).
enum DatasetFactory {
    static let size = [64, 64, 16]
    static let expectedImages = 8, expectedMasks = 13

    static func labels(a: Float = 1, b: Float = 2) -> Volume {
        var v = [Float](repeating: 0, count: 64 * 64 * 16)
        func box(_ x: Range<Int>, _ y: Range<Int>, _ z: Range<Int>, _ value: Float) {
            for k in z { for j in y { for i in x { v[(k * 64 + j) * 64 + i] = value } } }
        }
        box(10..<30, 10..<30, 2..<10, a)
        box(40..<56, 10..<26, 4..<9, b)
        box(50..<53, 50..<53, 12..<15, b)
        box(40..<48, 40..<48, 0..<16, a)
        return Volume(size: size, spacing: [1, 1, 2.5], origin: [-32, -32, 0], voxels: v)
    }

    /// CT-like intensities (HU) with some structure, on the same grid.
    static func ct(seed: Int = 0) -> Volume {
        var v = [Float](repeating: 0, count: 64 * 64 * 16)
        for k in 0..<16 { for j in 0..<64 { for i in 0..<64 {
            v[(k * 64 + j) * 64 + i] = Float(-1000 + ((i * 37 + j * 11 + k * 5 + seed * 13) % 1400))
        } } }
        return Volume(size: size, spacing: [1, 1, 2.5], origin: [-32, -32, 0], voxels: v)
    }

    static func mr(seed: Int = 0) -> Volume {
        var v = ct(seed: seed)
        v.voxels = v.voxels.map { max(0, $0 + 1000) }
        return v
    }

    static func write(_ v: Volume, _ url: URL, type: VoxelType = .int16) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try NIfTI.write(v, to: url, datatype: type, gzipLevel: 1)
    }

    static func writeData(_ d: Data, _ url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try d.write(to: url)
    }

    // MARK: 2D pictures: 64×48 with a 30×20 foreground box (600 px → 2D masks kept).

    static func photo(rgb: Bool) -> Volume {
        var v: [Float] = []
        for j in 0..<48 { for i in 0..<64 {
            if rgb { v += [Float((i * 4) % 256), Float((j * 5) % 256), 128] } else { v.append(Float((i + j) % 256)) }
        } }
        return Volume(size: [64, 48, 1], components: rgb ? 3 : 1, voxels: v)
    }

    static func binaryMask(on: Float = 255) -> Volume {
        var v = [Float](repeating: 0, count: 64 * 48)
        for j in 10..<30 { for i in 20..<50 { v[j * 64 + i] = on } }
        return Volume(size: [64, 48, 1], voxels: v)
    }

    /// Every layout side by side under `root`. Returns dataset name → (images, masks) expected.
    @discardableResult
    static func allLayouts(at root: URL) throws -> [String: (Int, Int)] {
        var expected: [String: (Int, Int)] = [:]
        let img = expectedImages, msk = expectedMasks
        // KiTS19: two cases.
        for c in 0..<2 {
            let d = root.appendingPathComponent("KiTS19/case_0000\(c)")
            try write(ct(seed: c), d.appendingPathComponent("imaging.nii.gz"))
            try write(labels(), d.appendingPathComponent("segmentation.nii.gz"), type: .uint8)
        }
        expected["kits19"] = (2 * img, 2 * msk)
        // BraTS 2021: labels 1, 2, 4; four sequences share the segmentation.
        let b = root.appendingPathComponent("BraTS2021/BraTS2021_00000")
        for (i, s) in ["t1", "t1ce", "t2", "flair"].enumerated() { try write(mr(seed: 10 + i), b.appendingPathComponent("BraTS2021_00000_\(s).nii.gz")) }
        try write(labels(a: 2, b: 4), b.appendingPathComponent("BraTS2021_00000_seg.nii.gz"), type: .uint8)
        expected["brats2021"] = (4 * img, 4 * msk)
        // ACDC: one patient, one frame.
        let a = root.appendingPathComponent("ACDC/patient001")
        try write(mr(seed: 20), a.appendingPathComponent("patient001_frame01.nii.gz"))
        try write(labels(a: 3, b: 1), a.appendingPathComponent("patient001_frame01_gt.nii.gz"), type: .uint8)
        expected["acdc"] = (img, msk)
        // CAMUS: 2D MetaImage.
        let cm = root.appendingPathComponent("CAMUS/patient0001")
        try FileManager.default.createDirectory(at: cm, withIntermediateDirectories: true)
        try MetaImage.write(photo(rgb: false), to: cm.appendingPathComponent("patient0001_2CH_ED.mhd"), compressed: false)
        var gt = binaryMask(on: 1)
        gt.voxels = gt.voxels.enumerated().map { $0.element > 0 && $0.offset % 64 >= 35 ? 2 : $0.element }
        try MetaImage.write(gt, to: cm.appendingPathComponent("patient0001_2CH_ED_gt.mhd"), compressed: true)
        // The 2019 release keeps the whole unlabelled cycle beside ED/ES: not a pair, not ingested.
        try MetaImage.write(photo(rgb: false), to: cm.appendingPathComponent("patient0001_2CH_sequence.mhd"), compressed: false)
        expected["camus"] = (1, 2)
        // ISIC 2018: JPEG + PNG segmentation in separate folders.
        for n in 0..<2 {
            try writeData(try Raster.encodeJPEG(photo(rgb: true), quality: 95), root.appendingPathComponent("ISIC2018/ISIC2018_Task1-2_Training_Input/ISIC_000000\(n).jpg"))
            try writeData(try Raster.encodePNG(binaryMask()), root.appendingPathComponent("ISIC2018/ISIC2018_Task1_Training_GroundTruth/ISIC_000000\(n)_segmentation.png"))
        }
        expected["isic2018"] = (2, 2)  // two identical pictures: stored once, cataloged twice
        // Kvasir-SEG: JPEG images and JPEG masks.
        try writeData(try Raster.encodeJPEG(photo(rgb: true), quality: 90), root.appendingPathComponent("Kvasir-SEG/images/cju0qkwl35piu0993l0dewei2.jpg"))
        try writeData(try Raster.encodeJPEG(binaryMask(), quality: 90), root.appendingPathComponent("Kvasir-SEG/masks/cju0qkwl35piu0993l0dewei2.jpg"))
        expected["kvasir-seg"] = (1, 1)
        // DRIVE: TIFF + GIF.
        try writeData(try Raster.encodeTIFF(photo(rgb: true), bits: 8), root.appendingPathComponent("DRIVE/training/images/21_training.tif"))
        try writeData(try Raster.encodeGIF(binaryMask()), root.appendingPathComponent("DRIVE/training/1st_manual/21_manual1.gif"))
        expected["drive"] = (1, 1)
        // MSD Task09 Spleen.
        let s = root.appendingPathComponent("Task09_Spleen")
        try write(ct(seed: 30), s.appendingPathComponent("imagesTr/spleen_2.nii.gz"))
        var sp = labels(); sp.voxels = sp.voxels.map { $0 > 0 ? 1 : 0 }
        try write(sp, s.appendingPathComponent("labelsTr/spleen_2.nii.gz"), type: .uint8)
        try writeData(Data(#"{"name": "Spleen", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "spleen"}, "numTraining": 1}"#.utf8),
                      s.appendingPathComponent("dataset.json"))
        expected["msd-task09-spleen"] = (img, img)  // one class: A and B merged → one mask per slice
        // nnU-Net v2 raw dataset, two channels.
        let n = root.appendingPathComponent("Dataset003_Liver")
        try write(ct(seed: 40), n.appendingPathComponent("imagesTr/liver_001_0000.nii.gz"))
        try write(ct(seed: 41), n.appendingPathComponent("imagesTr/liver_001_0001.nii.gz"))
        try write(labels(), n.appendingPathComponent("labelsTr/liver_001.nii.gz"), type: .uint8)
        try writeData(Data(#"{"channel_names": {"0": "CT", "1": "CT"}, "labels": {"background": 0, "liver": 1, "kidney": 2}, "file_ending": ".nii.gz"}"#.utf8),
                      n.appendingPathComponent("dataset.json"))
        expected["dataset003_liver"] = (2 * img, 2 * msk)
        return expected
    }
}
