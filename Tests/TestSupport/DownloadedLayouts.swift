import Foundation
import Imaging

/// Datasets laid out as their public downloads are, with the names and quirks of the real ones:
/// KiTS19's slice axis first and its unlabelled test cases, KiTS21's majority-vote label file four
/// folders down, KiTS23's `dataset/` folder, BraTS 2023's `-t1n … -seg` naming under a folder named
/// otherwise, ACDC's `_4d` sequence and `Info.cfg` beside the frames with training/testing folders,
/// CAMUS's half sequences beside ED/ES, Kvasir-SEG's colour JPEG masks and `kavsir_bboxes.json`,
/// DRIVE's field-of-view `mask/` and `2nd_manual/`, ISIC 2016's `_Segmentation` and 2017's
/// superpixels and label-less test folder, and MSD's 4D multi-channel images.
/// Volumes are DatasetFactory's: 8 images and 13 masks per labelled volume.
enum DownloadedLayouts {
    typealias F = DatasetFactory

    /// The volume with its array axes reversed (z, y, x), as KiTS19 stores it: the same anatomy.
    static func sliceAxisFirst(_ v: Volume) -> Volume {
        let (nx, ny, nz) = (v.size[0], v.size[1], v.size[2])
        var out = [Float](repeating: 0, count: v.voxelCount)
        for k in 0..<nz { for j in 0..<ny { for i in 0..<nx { out[(i * ny + j) * nz + k] = v.voxels[(k * ny + j) * nx + i] } } }
        return Volume(size: [nz, ny, nx], spacing: [v.spacing[2], v.spacing[1], v.spacing[0]], origin: v.origin,
                      direction: [0, 0, 1, 0, 1, 0, 1, 0, 0], voxels: out)
    }

    /// A 2D photograph with its own pixels (identical pictures would join one split group).
    static func photo(rgb: Bool, seed: Int) -> Volume {
        var v = F.photo(rgb: rgb)
        v.voxels = v.voxels.enumerated().map { Float((Int($0.element) + seed * 17 + $0.offset % 7) % 256) }
        return v
    }

    static func rgbMask() -> Volume {
        let m = F.binaryMask()
        return Volume(size: m.size, components: 3, voxels: m.voxels.flatMap { [$0, $0, $0] })
    }

    /// Four frames, as MSD stores multi-channel images: int16, one 3D frame after another.
    static func writeFourFrames(_ frames: [Volume], to url: URL) throws {
        var data = NIfTI.encode(frames[0], datatype: .int16)
        data.withUnsafeMutableBytes {
            $0.storeBytes(of: Int16(4), toByteOffset: 40, as: Int16.self)
            $0.storeBytes(of: Int16(frames.count), toByteOffset: 48, as: Int16.self)
        }
        for f in frames.dropFirst() { for v in f.voxels { withUnsafeBytes(of: Int16(v).littleEndian) { data.append(contentsOf: $0) } } }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Compression.gzip(data, level: 1).write(to: url)
    }

    /// Writes files under one folder: volumes as NIfTI (labels as uint8), anything else as bytes.
    struct Files {
        let root: URL
        func nii(_ v: Volume, _ path: String, labels: Bool = false) throws {
            try F.write(v, root.appendingPathComponent(path), type: labels ? .uint8 : .int16)
        }
        func data(_ d: Data, _ path: String) throws { try F.writeData(d, root.appendingPathComponent(path)) }
    }

    static func write(at root: URL) throws {
        let files = Files(root: root)

        try files.nii(sliceAxisFirst(F.ct(seed: 1)), "KiTS19/case_00000/imaging.nii.gz")
        try files.nii(sliceAxisFirst(F.labels()), "KiTS19/case_00000/segmentation.nii.gz", labels: true)
        try files.nii(sliceAxisFirst(F.ct(seed: 2)), "KiTS19/case_00210/imaging.nii.gz")

        let k21 = "downloads/kits21-master/kits21/data/case_00000/"
        try files.nii(F.ct(seed: 3), k21 + "imaging.nii.gz")
        try files.nii(F.labels(a: 1, b: 3), k21 + "aggregated_MAJ_seg.nii.gz", labels: true)
        try files.nii(F.labels(a: 1, b: 0), k21 + "aggregated_AND_seg.nii.gz", labels: true)
        try files.nii(F.labels(a: 1, b: 3), k21 + "aggregated_OR_seg.nii.gz", labels: true)
        try files.nii(F.labels(a: 1, b: 0), k21 + "segmentations/kidney_instance-1_annotation-1.nii.gz", labels: true)

        try files.nii(F.ct(seed: 4), "kits23/dataset/case_00000/imaging.nii.gz")
        try files.nii(F.labels(a: 2, b: 3), "kits23/dataset/case_00000/segmentation.nii.gz", labels: true)
        try files.nii(F.labels(a: 1, b: 0), "kits23/dataset/case_00000/instances/kidney_instance-1_annotation-1.nii.gz", labels: true)

        for (i, s) in ["t1n", "t1c", "t2w", "t2f"].enumerated() {
            try files.nii(F.mr(seed: 10 + i), "glioma_training/BraTS-GLI-00000-000/BraTS-GLI-00000-000-\(s).nii.gz")
            try files.nii(F.mr(seed: 20 + i), "glioma_validation/BraTS-GLI-00001-000/BraTS-GLI-00001-000-\(s).nii.gz")
        }
        try files.nii(F.labels(a: 1, b: 3), "glioma_training/BraTS-GLI-00000-000/BraTS-GLI-00000-000-seg.nii.gz", labels: true)

        for (part, patient, seed) in [("training", "patient001", 30), ("testing", "patient101", 31)] {
            let p = "ACDC/database/\(part)/\(patient)/\(patient)"
            try files.nii(F.mr(seed: seed), p + "_4d.nii.gz")
            try files.nii(F.mr(seed: seed + 5), p + "_frame01.nii.gz")
            try files.nii(F.labels(a: 3, b: 1), p + "_frame01_gt.nii.gz", labels: true)
            try files.data(Data("ED: 1\nES: 12\nGroup: NOR\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n".utf8), "ACDC/database/\(part)/\(patient)/Info.cfg")
        }

        let cm = "CAMUS_public/database_nifti/patient0001/patient0001_2CH_"
        try files.nii(photo(rgb: false, seed: 40), cm + "ED.nii.gz")
        var gt = F.binaryMask(on: 1)
        gt.voxels = gt.voxels.enumerated().map { $0.element > 0 && $0.offset % 64 >= 35 ? 2 : $0.element }
        try files.nii(gt, cm + "ED_gt.nii.gz", labels: true)
        var sequence = F.mr(seed: 41)
        sequence.size = [64, 64, 3]
        sequence.voxels = Array(sequence.voxels.prefix(64 * 64 * 3))
        try files.nii(sequence, cm + "half_sequence.nii.gz")
        try files.data(Data("ED: 1\nES: 13\nNbFrame: 15\nSex: F\nAge: 55\nImageQuality: Good\n".utf8), "CAMUS_public/database_nifti/patient0001/Info_2CH.cfg")

        for (n, name) in ["cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4"].enumerated() {
            try files.data(try Raster.encodeJPEG(photo(rgb: true, seed: 50 + n), quality: 90), "kvasir-seg/Kvasir-SEG/images/\(name).jpg")
            try files.data(try Raster.encodeJPEG(rgbMask(), quality: 90), "kvasir-seg/Kvasir-SEG/masks/\(name).jpg")
        }
        try files.data(Data(#"{"cju0qkwl35piu0993l0dewei2": {"height": 48, "width": 64, "bbox": []}}"#.utf8), "kvasir-seg/Kvasir-SEG/kavsir_bboxes.json")

        for (part, n, seed) in [("training", "21", 60), ("test", "01", 61)] {
            try files.data(try Raster.encodeTIFF(photo(rgb: true, seed: seed), bits: 8), "DRIVE/\(part)/images/\(n)_\(part).tif")
            try files.data(try Raster.encodeGIF(F.binaryMask()), "DRIVE/\(part)/1st_manual/\(n)_manual1.gif")
            try files.data(try Raster.encodeGIF(F.binaryMask()), "DRIVE/\(part)/mask/\(n)_\(part)_mask.gif")
        }
        try files.data(try Raster.encodeGIF(F.binaryMask()), "DRIVE/test/2nd_manual/01_manual2.gif")

        for (part, n, seed) in [("Training", "0000000", 70), ("Test", "0000003", 71)] {
            try files.data(try Raster.encodeJPEG(photo(rgb: true, seed: seed), quality: 95), "isic-2016/ISBI2016_ISIC_Part1_\(part)_Data/ISIC_\(n).jpg")
            try files.data(try Raster.encodePNG(F.binaryMask()), "isic-2016/ISBI2016_ISIC_Part1_\(part)_GroundTruth/ISIC_\(n)_Segmentation.png")
        }
        try files.data(try Raster.encodeJPEG(photo(rgb: true, seed: 72), quality: 95), "ISIC2017/ISIC-2017_Training_Data/ISIC_0000001.jpg")
        try files.data(try Raster.encodePNG(photo(rgb: true, seed: 73)), "ISIC2017/ISIC-2017_Training_Data/ISIC_0000001_superpixels.png")
        try files.data(Data("image_id,age_approximate,sex\nISIC_0000001,55,female\n".utf8), "ISIC2017/ISIC-2017_Training_Data/ISIC-2017_Training_Data_metadata.csv")
        try files.data(try Raster.encodePNG(F.binaryMask()), "ISIC2017/ISIC-2017_Training_Part1_GroundTruth/ISIC_0000001_segmentation.png")
        try files.data(try Raster.encodeJPEG(photo(rgb: true, seed: 74), quality: 95), "ISIC2017/ISIC-2017_Test_v2_Data/ISIC_0000002.jpg")

        let t1 = "Task01_BrainTumour/"
        try writeFourFrames((0..<4).map { F.mr(seed: 80 + $0) }, to: root.appendingPathComponent(t1 + "imagesTr/BRATS_001.nii.gz"))
        try files.nii(F.labels(a: 1, b: 3), t1 + "labelsTr/BRATS_001.nii.gz", labels: true)
        try writeFourFrames((0..<4).map { F.mr(seed: 90 + $0) }, to: root.appendingPathComponent(t1 + "imagesTs/BRATS_485.nii.gz"))
        try files.data(Data(#"""
            {"name": "BRATS", "tensorImageSize": "4D", "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
             "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
             "numTraining": 1, "numTest": 1, "training": [{"image": "./imagesTr/BRATS_001.nii.gz", "label": "./labelsTr/BRATS_001.nii.gz"}],
             "test": ["./imagesTs/BRATS_485.nii.gz"]}
            """#.utf8), t1 + "dataset.json")
    }

    /// Datasets medcat has never seen, side by side: nnU-Net v2 and MSD-style ones under their own
    /// names (one with a label outside classes.yaml, labelled and unlabelled test cases), two folders
    /// of the same name in different places, one whose dataset.json is broken, a generic folder of
    /// binary masks with a planted bad file, Kvasir-SEG, and a DICOM export whose SEG and RTSTRUCT
    /// use coded and clinical names (DICOMScene, written by the caller).
    static func writeUnseen(at root: URL) throws {
        let files = Files(root: root)

        let lesions = "nnUNet_raw/Dataset501_LiverLesions/"
        try files.data(Data(#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "lesion": 2}, "numTraining": 1, "file_ending": ".nii.gz"}"#.utf8),
                 lesions + "dataset.json")
        try files.nii(F.ct(seed: 100), lesions + "imagesTr/lesions_001_0000.nii.gz")
        try files.nii(F.labels(), lesions + "labelsTr/lesions_001.nii.gz", labels: true)
        try files.nii(F.ct(seed: 101), lesions + "imagesTs/lesions_002_0000.nii.gz")
        try files.nii(F.labels(), lesions + "labelsTs/lesions_002.nii.gz", labels: true)
        try files.nii(F.ct(seed: 102), lesions + "imagesTs/lesions_003_0000.nii.gz")

        try files.data(Data(#"{"name": "Kidneys", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "Kidney-Left", "2": "renal cyst"}, "numTraining": 1}"#.utf8),
                 "Task11_Kidneys/dataset.json")
        try files.nii(F.ct(seed: 110), "Task11_Kidneys/imagesTr/kidneys_001.nii.gz")
        try files.nii(F.labels(), "Task11_Kidneys/labelsTr/kidneys_001.nii.gz", labels: true)

        for (site, seed) in [("siteA", 120), ("siteB", 121)] {
            let d = "\(site)/Dataset002_Prostate/"
            try files.data(Data(#"{"channel_names": {"0": "T2"}, "labels": {"background": 0, "whole gland": [1, 2], "transition zone": [2]}, "file_ending": ".nii.gz"}"#.utf8),
                     d + "dataset.json")
            try files.nii(F.mr(seed: seed), d + "imagesTr/prostate_001_0000.nii.gz")
            try files.nii(F.labels(), d + "labelsTr/prostate_001.nii.gz", labels: true)
        }

        try files.data(Data("{\"channel_names\": {\"0\": \"CT\"".utf8), "Dataset777_Broken/dataset.json")
        try files.nii(F.ct(seed: 130), "Dataset777_Broken/imagesTr/broken_001_0000.nii.gz")
        try files.nii(F.labels(), "Dataset777_Broken/labelsTr/broken_001.nii.gz", labels: true)

        try files.data(try Raster.encodePNG(photo(rgb: false, seed: 140)), "thyroid_us/images/0001.png")
        try files.data(try Raster.encodePNG(F.binaryMask(on: 255)), "thyroid_us/masks/0001.png")
        try files.data(try Raster.encodePNG(photo(rgb: false, seed: 141)), "thyroid_us/images/0002.png")
        try files.data(try Raster.encodePNG(F.binaryMask(on: 1)), "thyroid_us/masks/0002.png")
        try files.data(Data("not a picture".utf8), "thyroid_us/images/0003.png")
        try files.data(try Raster.encodePNG(F.binaryMask(on: 1)), "thyroid_us/masks/0003.png")

        try files.data(try Raster.encodeJPEG(photo(rgb: true, seed: 150), quality: 90), "Kvasir-SEG/images/cju0roawvklrq0799vmjorwfv.jpg")
        try files.data(try Raster.encodeJPEG(rgbMask(), quality: 90), "Kvasir-SEG/masks/cju0roawvklrq0799vmjorwfv.jpg")
    }
}
