import Foundation
import Catalog
import Imaging

/// One unit of ingest: an image (one channel of it, for multi-channel sets) and its label file.
public struct WorkItem: Sendable {
    public var dataset: String
    public var caseName: String
    public var image: URL
    /// Catalog key of the unit: the image path relative to the dataset folder, plus "#N" for frame N
    /// of a 4D file.
    public var key: String
    public var mask: URL?
    public var maskKey: String?
    public var modality: String
    /// Frame of a 4D NIfTI (MSD multi-channel images).
    public var frame: Int?
    /// The split the dataset's own folders give it (`imagesTs/`, `test/`), if any.
    public var split: Split?
    /// A DICOM series and its annotations; `image` is then its first file, `mask` its first annotation.
    public var dicom: DicomUnit?
}

/// A folder recognised as one dataset.
public struct DatasetPlan: Sendable {
    public var manifest: Manifest
    public var root: URL
    public var items: [WorkItem]
    /// Files in the dataset that could not be paired or are not images, with the reason.
    public var problems: [(path: String, message: String)]
    /// When several folders of one run resolve to the same dataset, each one's path under the ingest
    /// root ("training/") prefixes its keys and case names, so they neither replace nor merge.
    public var prefix = ""
    /// Images without a label file where a dataset ships them so (test sets): counted, not ingested.
    public var unlabelled = 0
    /// Folders inside the dataset that are not read, with the reason (DRIVE's field-of-view masks).
    public var skipped: [SkippedFolder] = []
    /// The modality of images that nothing else gives one (`--modality`).
    public var fallbackModality: String?
}

/// A folder that ingest looked at and did not take, with the reason.
public struct SkippedFolder: Sendable, Equatable {
    public var path: String, reason: String
}

public struct LayoutError: Error, CustomStringConvertible {
    public var description: String
}

enum Layouts {
    // MARK: Detection

    /// Which layout a folder has, if any. The order matters: specific layouts before generic ones.
    static func detect(_ dir: URL) -> Manifest.Layout? {
        let names = Set(FS.children(dir).map { $0.lastPathComponent })
        if names.contains("dataset.json"), names.contains("imagesTr") {
            let json = (try? JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("dataset.json")))) as? [String: Any]
            return json?["channel_names"] != nil ? .nnunet : .msd
        }
        let subdirs = FS.children(dir).filter(FS.isDirectory)
        let sample = subdirs.prefix(20)
        if sample.contains(where: { FS.exists($0.appendingPathComponent("imaging.nii.gz")) || FS.exists($0.appendingPathComponent("imaging.nii")) }) { return .kits }
        if sample.contains(where: { d in FS.children(d).contains { Brats.isSeg($0.lastPathComponent) } }) { return .brats }
        let shallow = FS.files(dir, depth: 2)
        if shallow.contains(where: { $0.lastPathComponent.range(of: #"_frame\d+_gt\.nii(\.gz)?$"#, options: .regularExpression) != nil }) { return .acdc }
        if shallow.contains(where: { $0.lastPathComponent.range(of: #"_gt\.(mhd|mha|nii|nii\.gz)$"#, options: .regularExpression) != nil && $0.lastPathComponent.hasPrefix("patient") }) { return .camus }
        if shallow.contains(where: { $0.lastPathComponent.range(of: #"^ISIC_\d+_segmentation\.png$"#, options: [.regularExpression, .caseInsensitive]) != nil }) { return .isic }
        if Drive.isDrive(dir) { return .drive }
        if Paired.folders(dir) != nil {
            return dir.lastPathComponent.range(of: "(?i)kvasir", options: .regularExpression) != nil ? .kvasir : .paired
        }
        return nil
    }

    // MARK: Pairing

    /// `modality`: for images whose modality nothing else gives (the manifest, dataset.json's channel
    /// names, a DICOM series' Modality tag).
    static func plan(_ manifest: Manifest, root: URL, vocabulary: ClassVocabulary, prefix: String = "", salt: String = "", keepPaths: Bool = false,
                     modality: String? = nil) throws -> DatasetPlan {
        var plan = DatasetPlan(manifest: manifest, root: root, items: [], problems: [], prefix: prefix, fallbackModality: modality)
        let fromFiles: Set<Manifest.Layout> = [.msd, .nnunet, .dicom]
        if plan.manifest.modality == nil && manifest.channels.isEmpty && !fromFiles.contains(manifest.layout) { plan.manifest.modality = modality }
        switch manifest.layout {
        case .msd, .nnunet: try Decathlon.pair(&plan, vocabulary: vocabulary)
        case .kits: Kits.pair(&plan)
        case .brats: Brats.pair(&plan)
        case .acdc: Suffixed.pair(&plan, maskSuffix: "_gt", imagePattern: #"_frame\d+$"#, caseFromFolder: true)
        case .camus: Suffixed.pair(&plan, maskSuffix: "_gt", imagePattern: #"_(2CH|4CH)_(ED|ES)$"#, caseFromFolder: true)
        case .isic: Suffixed.pair(&plan, maskSuffix: "_segmentation", imagePattern: #"^ISIC_\d+$"#, caseFromFolder: false)
        case .drive: Drive.pair(&plan)
        case .kvasir, .paired: Paired.pair(&plan, images: Paired.imageFolders, masks: Paired.maskFolders) { $0 }
        case .dicom: DicomLayout.pair(&plan, salt: salt, keepPaths: keepPaths)
        }
        if !prefix.isEmpty { plan.problems = plan.problems.map { (prefix + $0.path, $0.message) } }
        if plan.manifest.modality == nil && manifest.channels.isEmpty && !fromFiles.contains(manifest.layout) {
            throw LayoutError(description: "\(root.lastPathComponent): the '\(manifest.name)' manifest does not say the modality; pass --modality (e.g. ct, mr_t1, ultrasound) or --manifest FILE")
        }
        plan.items.sort { $0.key < $1.key }
        return plan
    }

    static func item(_ plan: DatasetPlan, case name: String, image: URL, mask: URL?, modality: String? = nil, frame: Int? = nil) -> WorkItem {
        var caseName = name
        if let re = plan.manifest.casePattern, let r = name.range(of: re, options: .regularExpression) { caseName = String(name[r]) }
        let key = plan.prefix + FS.relative(image, to: plan.root) + (frame.map { "#\($0)" } ?? "")
        return WorkItem(dataset: plan.manifest.name, caseName: plan.prefix + caseName, image: image, key: key, mask: mask,
                        maskKey: mask.map { plan.prefix + FS.relative($0, to: plan.root) }, modality: modality ?? plan.manifest.modality ?? "unknown",
                        frame: frame, split: OfficialSplit.of(folders: key.split(separator: "/").dropLast().map(String.init)))
    }
}

/// MSD and nnU-Net v1 (4D multi-channel NIfTI, dataset.json "modality", labels {"1": "name"}) and
/// nnU-Net v2 (one file per channel with `_0000` suffixes, dataset.json "channel_names", labels
/// {"name": 1} or region lists, "file_ending"). Labelled test cases (imagesTs + labelsTs) go to the
/// test split; unlabelled ones are counted.
enum Decathlon {
    static func pair(_ plan: inout DatasetPlan, vocabulary: ClassVocabulary) throws {
        let root = plan.root
        let json: [String: Any]
        do {
            let data = try Data(contentsOf: root.appendingPathComponent("dataset.json"))
            guard let j = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw LayoutError(description: "not a JSON object") }
            json = j
        } catch {
            throw LayoutError(description: "dataset.json cannot be read: \((error as? LayoutError)?.description ?? error.localizedDescription)")
        }
        let channelNames = (json["channel_names"] ?? json["modality"]) as? [String: Any] ?? [:]
        let channels = channelNames.keys.compactMap { Int($0) }.sorted()
        func modality(_ c: Int) -> String {
            if let m = plan.manifest.channels.first(where: { $0.key == String(c) }) { return m.modality }
            return Decathlon.modality(fromChannelName: "\(channelNames[String(c)] ?? "")") ?? plan.manifest.modality ?? plan.fallbackModality ?? "unknown"
        }
        let ending = (json["file_ending"] as? String).map { $0.hasPrefix(".") ? $0 : "." + $0 }
        for (images, labels) in [("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")] {
            let labelsDir = root.appendingPathComponent(labels)
            for image in FS.children(root.appendingPathComponent(images)) where !FS.isHidden(image) && !FS.isDirectory(image) {
                let name = image.lastPathComponent
                guard ImageIO.format(of: image) != nil else { plan.problems.append((FS.relative(image, to: root), "not an image file")); continue }
                // A test image with no label file is a test case without labels, not an error.
                func missing(_ expected: String) {
                    if images == "imagesTs" { plan.unlabelled += 1 } else { plan.problems.append((FS.relative(image, to: root), "no label file \(labels)/\(expected)")) }
                }
                if plan.manifest.layout == .nnunet {
                    guard let m = name.range(of: #"_(\d{4})\.(nii\.gz|nii|nrrd|mha|png|tif|tiff|bmp|jpg)$"#, options: .regularExpression) else {
                        plan.problems.append((FS.relative(image, to: root), "nnU-Net image without a _XXXX channel suffix")); continue
                    }
                    let caseName = String(name[..<m.lowerBound]), ext = ending ?? "." + String(name[m].split(separator: ".", maxSplits: 1)[1])
                    let channel = Int(name[m].dropFirst().prefix(4))!
                    let mask = labelsDir.appendingPathComponent(caseName + ext)
                    guard FS.exists(mask) else { if channel == channels.first ?? 0 { missing(caseName + ext) }; continue }
                    plan.items.append(Layouts.item(plan, case: caseName, image: image, mask: mask, modality: modality(channel)))
                } else {
                    let mask = labelsDir.appendingPathComponent(name)
                    guard FS.exists(mask) else { missing(name); continue }
                    let caseName = FS.stem(image)
                    for c in channels.isEmpty ? [0] : channels {
                        plan.items.append(Layouts.item(plan, case: caseName, image: image, mask: mask, modality: modality(c), frame: channels.count > 1 ? c : nil))
                    }
                }
            }
        }
        // Labels from dataset.json when the manifest has none: a name classes.yaml does not know is
        // kept as an unmapped class of its own.
        if plan.manifest.labels.isEmpty, let labels = json["labels"] as? [String: Any] {
            let naming = StructureNames(manifest: plan.manifest, vocabulary: vocabulary)
            for (value, name) in labelValues(labels) {
                plan.manifest.labels[value] = naming.label(name).className
            }
        }
    }

    /// dataset.json labels as value → name. MSD and nnU-Net v1: {"1": "liver"}; nnU-Net v2:
    /// {"liver": 1}, or regions {"whole tumor": [1, 2, 3], "tumor core": [2, 3]}, where a stored
    /// value belongs to the smallest region holding it (what `regions_class_order` paints).
    static func labelValues(_ labels: [String: Any]) -> [(Int, String)] {
        var out: [Int: String] = [:], regions: [(name: String, values: [Int])] = []
        for (k, v) in labels {
            if let value = Int(k) { out[value] = "\(v)"; continue }
            if let list = v as? [Any] { regions.append((k, list.compactMap { Int("\($0)") })); continue }
            if let value = Int("\(v)") { out[value] = k }
        }
        for r in regions.sorted(by: { ($0.values.count, $0.name) > ($1.values.count, $1.name) }) { for v in r.values { out[v] = r.name } }
        return out.filter { $0.key > 0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    static func modality(fromChannelName n: String) -> String? {
        switch n.lowercased().replacingOccurrences(of: " ", with: "") {
        case "ct": "ct"
        case "flair": "mr_flair"
        case "t1", "t1w", "t1n": "mr_t1"
        case "t1gd", "t1ce", "t1c": "mr_t1ce"
        case "t2", "t2w": "mr_t2"
        case "adc": "mr_adc"
        case "dwi": "mr_dwi"
        case "mri", "mr", "cine": "mr"
        case "pet": "pet"
        case "us", "ultrasound": "ultrasound"
        default: nil
        }
    }
}

/// KiTS19/23 (`case_XXXXX/imaging.nii.gz` + `segmentation.nii.gz`) and KiTS21 (the majority-vote
/// `aggregated_MAJ_seg.nii.gz`; the per-annotator files beside it are not read). Cases without a
/// label file are the challenge's test cases: counted, not ingested.
enum Kits {
    static let labelFiles = ["segmentation.nii.gz", "segmentation.nii", "aggregated_MAJ_seg.nii.gz", "aggregated_MAJ_seg.nii"]

    static func pair(_ plan: inout DatasetPlan) {
        for dir in FS.children(plan.root).filter(FS.isDirectory) where dir.lastPathComponent.hasPrefix("case_") {
            guard let image = ["imaging.nii.gz", "imaging.nii"].map(dir.appendingPathComponent).first(where: FS.exists) else { continue }
            guard let mask = labelFiles.map(dir.appendingPathComponent).first(where: FS.exists) else { plan.unlabelled += 1; continue }
            plan.items.append(Layouts.item(plan, case: dir.lastPathComponent, image: image, mask: mask))
        }
    }
}

/// BraTS: per-case folders; every sequence is an image sharing the case's segmentation.
enum Brats {
    static func isSeg(_ name: String) -> Bool { name.range(of: #"[_-]seg\.nii(\.gz)?$"#, options: .regularExpression) != nil }

    static func pair(_ plan: inout DatasetPlan) {
        let channels = plan.manifest.channels.isEmpty
            ? [("t1", "mr_t1"), ("t1ce", "mr_t1ce"), ("t2", "mr_t2"), ("flair", "mr_flair")] : plan.manifest.channels.map { ($0.key, $0.modality) }
        for dir in FS.children(plan.root).filter(FS.isDirectory) {
            let files = FS.children(dir)
            // Validation and test cases come without a segmentation.
            guard let seg = files.first(where: { isSeg($0.lastPathComponent) }) else {
                plan.unlabelled += files.filter { ImageIO.format(of: $0) != nil }.count
                continue
            }
            for file in files where !isSeg(file.lastPathComponent) && !FS.isHidden(file) {
                let stem = FS.stem(file)
                guard let (_, modality) = channels.first(where: { stem.hasSuffix("_\($0.0)") || stem.hasSuffix("-\($0.0)") }) else {
                    plan.problems.append((FS.relative(file, to: plan.root), "not a known BraTS sequence (\(channels.map(\.0).joined(separator: ", ")))"))
                    continue
                }
                plan.items.append(Layouts.item(plan, case: dir.lastPathComponent, image: file, mask: seg, modality: modality))
            }
        }
    }
}

/// Layouts where the label file is the image's name plus a suffix (ACDC `_gt`, CAMUS `_gt`,
/// ISIC `_segmentation`), anywhere below the dataset folder.
enum Suffixed {
    static func pair(_ plan: inout DatasetPlan, maskSuffix: String, imagePattern: String, caseFromFolder: Bool) {
        let files = FS.files(plan.root, depth: 4).filter { !FS.isHidden($0) }
        // Case-insensitive suffix: ISIC 2016/2017 name masks "_Segmentation".
        func isMask(_ f: URL) -> Bool { FS.stem(f).lowercased().hasSuffix(maskSuffix) }
        var masksByStem: [String: URL] = [:]
        for f in files where isMask(f) && ImageIO.format(of: f) != nil {
            masksByStem[String(FS.stem(f).dropLast(maskSuffix.count))] = f
        }
        var unpaired: [URL] = [], pairedFolders = Set<String>()
        for f in files where !isMask(f) {
            let stem = FS.stem(f)
            guard stem.range(of: imagePattern, options: .regularExpression) != nil else { continue }
            guard ImageIO.format(of: f) != nil else { continue }
            guard let mask = masksByStem[stem] else { unpaired.append(f); continue }
            pairedFolders.insert(f.deletingLastPathComponent().path)
            let caseName = caseFromFolder ? f.deletingLastPathComponent().lastPathComponent : stem
            plan.items.append(Layouts.item(plan, case: caseName, image: f, mask: mask))
        }
        Paired.report(unpaired, pairedFolders: pairedFolders, plan: &plan) { "no label file \(FS.stem($0))\(maskSuffix).* found" }
    }
}

/// DRIVE: `images/NN_training.tif` with the first observer's vessels in `1st_manual/NN_manual1.gif`.
/// `mask/` holds field-of-view masks (where the photograph is), which are not labels, and
/// `2nd_manual/` a second observer's; neither is read. A test folder without `1st_manual/` (the
/// challenge release) is unlabelled.
enum Drive {
    static func isDrive(_ dir: URL) -> Bool {
        FS.children(dir.appendingPathComponent("images")).contains {
            $0.lastPathComponent.range(of: #"^\d+_(training|test)\.tiff?$"#, options: .regularExpression) != nil
        }
    }

    static func pair(_ plan: inout DatasetPlan) {
        for (folder, reason) in [("mask", "field-of-view masks (where the photograph is), not labels"),
                                 ("2nd_manual", "a second observer's annotations; 1st_manual is the reference")]
        where FS.isDirectory(plan.root.appendingPathComponent(folder)) {
            plan.skipped.append(SkippedFolder(path: folder, reason: reason))
        }
        guard FS.isDirectory(plan.root.appendingPathComponent("1st_manual")) else {
            plan.unlabelled += FS.children(plan.root.appendingPathComponent("images")).filter { ImageIO.format(of: $0) != nil }.count
            return
        }
        Paired.pair(&plan, images: ["images"], masks: ["1st_manual"]) { stem in
            stem.range(of: #"^\d+"#, options: .regularExpression).map { String(stem[$0]) }
        }
    }
}

/// Image and mask folders side by side, matched by file stem (optionally normalised, e.g. DRIVE's
/// "21_training" ↔ "21_manual1").
enum Paired {
    static let imageFolders = ["images", "imgs", "image", "img"]
    static let maskFolders = ["masks", "labels", "gt", "mask", "label", "groundtruth", "ground_truth"]

    static func folders(_ dir: URL, images: [String] = imageFolders, masks: [String] = maskFolders) -> (URL, URL)? {
        let subdirs = FS.children(dir).filter(FS.isDirectory)
        func find(_ names: [String]) -> URL? { subdirs.first { names.contains($0.lastPathComponent.lowercased()) } }
        guard let i = find(images), let m = find(masks) else { return nil }
        return (i, m)
    }

    static func pair(_ plan: inout DatasetPlan, images: [String], masks: [String], key: (String) -> String?) {
        guard let (imageDir, maskDir) = folders(plan.root, images: images, masks: masks) else { return }
        // Sub-folders pair with sub-folders (images/train/1.png ↔ masks/train/1.png); a bare name
        // matches only when it is unique among the masks.
        func subpath(_ f: URL, in dir: URL) -> String? {
            guard let k = key(FS.stem(f)) else { return nil }
            let folder = FS.relative(f.deletingLastPathComponent(), to: dir)
            return FS.same(f.deletingLastPathComponent(), dir) ? k : folder + "/" + k
        }
        var maskByKey: [String: URL] = [:], maskByStem: [String: [URL]] = [:]
        var unpaired: [URL] = [], pairedFolders = Set<String>()
        for m in FS.files(maskDir, depth: 3) where ImageIO.format(of: m) != nil {
            if let k = subpath(m, in: maskDir) { maskByKey[k] = m }
            if let k = key(FS.stem(m)) { maskByStem[k, default: []].append(m) }
        }
        for f in FS.files(imageDir, depth: 3) where !FS.isHidden(f) {
            let rel = FS.relative(f, to: plan.root)
            guard ImageIO.format(of: f) != nil else {
                if f.pathExtension.lowercased() != "raw" { plan.problems.append((rel, "not an image file (unknown type '.\(f.pathExtension)')")) }
                continue
            }
            guard let k = key(FS.stem(f)), let mask = subpath(f, in: imageDir).flatMap({ maskByKey[$0] })
                    ?? maskByStem[k].flatMap({ $0.count == 1 ? $0[0] : nil }) else {
                unpaired.append(f); continue
            }
            pairedFolders.insert(f.deletingLastPathComponent().path)
            plan.items.append(Layouts.item(plan, case: k, image: f, mask: mask))
        }
        report(unpaired, pairedFolders: pairedFolders, plan: &plan) { _ in "no mask with the same name in \(maskDir.lastPathComponent)/" }
    }

    /// Images without a label file: in a folder where no image has one, in a dataset that has labelled
    /// images elsewhere or in a folder named for testing (a test set shipped without labels), they
    /// are counted as unlabelled; beside labelled images, or where nothing pairs at all (names that
    /// do not match), they are rejected.
    static func report(_ unpaired: [URL], pairedFolders: Set<String>, plan: inout DatasetPlan, reason: (URL) -> String) {
        for f in unpaired {
            let folders = (plan.prefix + FS.relative(f, to: plan.root)).split(separator: "/").dropLast().map(String.init)
            let testSet = !plan.items.isEmpty || OfficialSplit.of(folders: folders) != nil
            if !testSet || pairedFolders.contains(f.deletingLastPathComponent().path) {
                plan.problems.append((FS.relative(f, to: plan.root), reason(f)))
            } else {
                plan.unlabelled += 1
            }
        }
    }
}

/// File-system helpers with deterministic (sorted) order.
enum FS {
    static func children(_ dir: URL) -> [URL] {
        // The path API follows a linked folder; names are appended to `dir` so paths stay under it.
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted().map { dir.appendingPathComponent($0) }
    }
    /// Follows symbolic links: datasets are often linked into a staging folder.
    static func isDirectory(_ u: URL) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir) && isDir.boolValue
    }
    static func exists(_ u: URL) -> Bool { FileManager.default.fileExists(atPath: u.path) }
    static func isHidden(_ u: URL) -> Bool { u.lastPathComponent.hasPrefix(".") }
    static func files(_ dir: URL, depth: Int) -> [URL] {
        var out: [URL] = []
        for c in children(dir) where !isHidden(c) {
            if isDirectory(c) { if depth > 1 { out += files(c, depth: depth - 1) } } else { out.append(c) }
        }
        return out
    }
    /// File name without its image extension (".nii.gz" counts as one).
    static func stem(_ u: URL) -> String {
        let n = u.lastPathComponent
        for ext in [".nii.gz", ".nii", ".mhd", ".mha", ".nrrd", ".nhdr", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp"]
            where n.lowercased().hasSuffix(ext) { return String(n.dropLast(ext.count)) }
        return u.deletingPathExtension().lastPathComponent
    }
    /// The same folder, however its URL is spelled (a trailing slash, "." or "..").
    static func same(_ a: URL, _ b: URL) -> Bool { a.standardizedFileURL.path == b.standardizedFileURL.path }

    static func relative(_ u: URL, to root: URL) -> String {
        let p = u.standardizedFileURL.path, r = root.standardizedFileURL.path
        return p.hasPrefix(r + "/") ? String(p.dropFirst(r.count + 1)) : u.lastPathComponent
    }
}
