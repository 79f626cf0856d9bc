import Catalog
import Foundation
import Imaging

/// A dataset folder found under the ingest root, with the manifest that describes it.
struct FoundDataset {
    var manifest: Manifest
    var dir: URL
    /// The folder whose name names the dataset: the dataset folder, the one above a split folder
    /// (`ACDC/training`), or the one a built-in manifest recognised.
    var namingDir: URL
    /// Set when several folders make one dataset (its training and test folders): their paths
    /// under `namingDir` prefix keys and case names.
    var prefix = ""
}

/// What discovery found under an ingest root: datasets, datasets that could not be described,
/// folders it did not take, and what it renamed.
struct Discovery {
    var datasets: [FoundDataset] = []
    var failures: [DatasetFailure] = []
    var skipped: [SkippedFolder] = []
    var notes: [String] = []
}

/// The split a dataset's own folders give its files: a folder named for testing (`test/`,
/// `testing/`, `imagesTs/`, `ISIC-2017_Test_v2_Data/`) puts them in the test split, one named for
/// validation in val. Training folders leave the split to the catalog's policy.
enum OfficialSplit {
    static func of(folders: [String]) -> Split? {
        var found: Split?
        for f in folders {
            let words = Set(ClassVocabulary.words(f))
            if !words.isDisjoint(with: ["test", "testing", "ts"]) { return .test }
            if !words.isDisjoint(with: ["val", "validation", "valid"]) { found = .val }
        }
        return found
    }

    /// Folder names that say only which part of a dataset they hold.
    static func isSplitFolder(_ name: String) -> Bool {
        name.range(of: #"^(?i)(train|training|val|valid|validation|test|testing)([ _-]?(set|data))?([ _-]?\d+)?$"#, options: .regularExpression) != nil
    }
}

extension Layouts {
    /// How deep below the root datasets are looked for (real downloads nest them in
    /// `downloads/site/collection/version/`).
    static let searchDepth = 5

    /// Finds datasets at `root` or below it and chooses each one's manifest and name.
    static func discover(_ root: URL, library: ManifestLibrary, options: IngestOptions) throws -> Discovery {
        var out = Discovery()
        let (found, skipped) = visit(root, root: root, level: 0)
        out.skipped = skipped
        if found.isEmpty { throw LayoutError(description: diagnose(root)) }
        var named: [FoundDataset] = []
        for (dir, layout) in found {
            do { named.append(try describe(dir, layout: layout, root: root, library: library, options: options)) } catch {
                out.failures.append(DatasetFailure(dataset: datasetName(namingFolder(dir, root: root).lastPathComponent), folder: relative(dir, root),
                                                   message: "\(error)"))
            }
        }
        // Folders that name one dataset the same way are its parts (training and test folders) when
        // the same folder names them; otherwise they are different datasets and get distinct names.
        for (name, members) in Dictionary(grouping: named, by: \.manifest.name).sorted(by: { $0.key < $1.key }) {
            let byNamer = Dictionary(grouping: members, by: { $0.namingDir.standardizedFileURL.path }).sorted { $0.key < $1.key }
            for (_, parts) in byNamer {
                var parts = parts
                if parts.count > 1 {
                    for i in parts.indices {
                        let rel = FS.relative(parts[i].dir, to: parts[i].namingDir)
                        parts[i].prefix = FS.same(parts[i].dir, parts[i].namingDir) ? "" : rel + "/"
                    }
                }
                if byNamer.count > 1 {
                    let namer = parts[0].namingDir
                    let distinct = datasetName(relative(namer, root).replacingOccurrences(of: "/", with: "-"))
                    let newName = distinct == name || distinct.isEmpty ? "\(name)-\(datasetName(namer.deletingLastPathComponent().lastPathComponent))" : distinct
                    out.notes.append("two folders are named '\(name)': \(relative(namer, root)) is ingested as '\(newName)'")
                    for i in parts.indices { parts[i].manifest.name = newName }
                }
                out.datasets += parts
            }
        }
        out.datasets.sort { ($0.manifest.name, $0.prefix) < ($1.manifest.name, $1.prefix) }
        return out
    }

    /// Datasets in `dir` or below, and the highest folders below it that hold none. A tree that holds
    /// DICOM and no other layout is one DICOM dataset at its highest folder (trees nest by patient,
    /// study and series).
    private static func visit(_ dir: URL, root: URL, level: Int) -> (found: [(URL, Manifest.Layout)], skipped: [SkippedFolder]) {
        if let layout = detect(dir) { return ([(dir, layout)], []) }
        var found: [(URL, Manifest.Layout)] = [], skipped: [SkippedFolder] = []
        if level < searchDepth {
            for child in FS.children(dir) where FS.isDirectory(child) && !FS.isHidden(child) {
                let r = visit(child, root: root, level: level + 1)
                found += r.found
                skipped += r.skipped
            }
        }
        if found.allSatisfy({ $0.1 == .dicom }) && DicomLayout.contains(dir) { return ([(dir, .dicom)], []) }
        if found.isEmpty { return ([], [SkippedFolder(path: relative(dir, root), reason: contents(dir))]) }
        return (found, skipped)
    }

    /// The manifest and name of a dataset folder: a built-in manifest recognised by its files or by
    /// the name of the folder or a folder above it names it; otherwise the folder's own name does,
    /// with the layout's defaults and what dataset.json says.
    private static func describe(_ dir: URL, layout: Manifest.Layout, root: URL, library: ManifestLibrary, options: IngestOptions) throws -> FoundDataset {
        if layout == .dicom {
            guard let m = library.layoutDefault(.dicom) else { throw LayoutError(description: "no DICOM manifest is built in") }
            return FoundDataset(manifest: m, dir: dir, namingDir: root)
        }
        var ancestors: [URL] = [dir]
        while let last = ancestors.last, !FS.same(last, root), last.path.count > 1 { ancestors.append(last.deletingLastPathComponent()) }
        let files = FS.files(dir, depth: 2).map(\.lastPathComponent)
        var m: Manifest, namer: URL
        if let (builtin, at) = library.named(layout: layout, folders: ancestors.map(\.lastPathComponent), files: files) {
            m = builtin
            namer = at.map { ancestors[$0] } ?? namingFolder(dir, root: root)
        } else {
            namer = namingFolder(dir, root: root)
            let name = datasetName(namer.lastPathComponent)
            if let d = library.layoutDefault(layout) {
                m = d
                m.name = name
            } else {
                m = try Manifest.parse("name: \(name)\nlayout: \(layout.rawValue)\n", file: "\(name) (\(layout.rawValue) defaults)", vocabulary: library.vocabulary)
            }
            // Labels the files keep as they are: a generic folder of masks names its one class itself.
            if m.labels.isEmpty && ![.msd, .nnunet].contains(layout) { m.foreground = options.className ?? ClassVocabulary.normalise(name) }
        }
        return FoundDataset(manifest: m, dir: dir, namingDir: namer)
    }

    /// The folder a dataset is named after: its own, or the one above when its own only says which
    /// split it holds.
    static func namingFolder(_ dir: URL, root: URL) -> URL {
        OfficialSplit.isSplitFolder(dir.lastPathComponent) && !FS.same(dir, root) ? dir.deletingLastPathComponent() : dir
    }

    /// A folder name as a catalog dataset name: lower case, runs of other characters as one "-".
    static func datasetName(_ folder: String) -> String {
        var out = "", dash = false
        for ch in folder.lowercased() {
            if ch.isASCII && (ch.isLetter || ch.isNumber || ch == "_") { out.append(ch); dash = false } else if !dash && !out.isEmpty { out.append("-"); dash = true }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "dataset" : out
    }

    /// A folder's path under the ingest root, the root's own name for the root.
    static func relative(_ dir: URL, _ root: URL) -> String {
        FS.same(dir, root) ? root.lastPathComponent : FS.relative(dir, to: root)
    }

    /// Why a folder was not taken: what it holds, in a few words.
    static func contents(_ dir: URL) -> String { fileTypes(dir).map { "no known layout (\($0))" } ?? "no files" }

    /// "3 .nii.gz, 1 .txt": the commonest file types three levels down; nil when there are no files.
    static func fileTypes(_ dir: URL) -> String? {
        let files = FS.files(dir, depth: 3)
        if files.isEmpty { return nil }
        var byExt: [String: Int] = [:]
        for f in files { byExt[f.lastPathComponent.lowercased().hasSuffix(".nii.gz") ? "nii.gz" : f.pathExtension.lowercased(), default: 0] += 1 }
        return byExt.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(4).map { "\($0.value) .\($0.key)" }.joined(separator: ", ")
    }
}

extension Layouts {
    /// Why nothing under `root` was recognised, and how to describe it.
    static func diagnose(_ root: URL) -> String {
        let dirs = FS.children(root).filter(FS.isDirectory).prefix(8).map(\.lastPathComponent)
        return """
            no known dataset layout in '\(root.lastPathComponent)' (found \(fileTypes(root) ?? "no files")\
            \(dirs.isEmpty ? "" : "; folders: " + dirs.joined(separator: ", ")))
            Known layouts: MSD/nnU-Net (dataset.json + imagesTr/labelsTr), KiTS (case_*/imaging.nii.gz + segmentation.nii.gz),
            BraTS (case folders with *_seg.nii.gz), ACDC (*_frameNN.nii.gz + _gt), CAMUS (*.mhd + _gt.mhd),
            ISIC (ISIC_*.jpg + ISIC_*_segmentation.png), DRIVE (images/ + 1st_manual/), Kvasir-SEG, generic
            pairs (images|imgs/ + masks|labels|gt/ with matching file names), and DICOM trees (series with SEG or RTSTRUCT).
            For another layout, write a manifest (see manifests/README.md), e.g.
              name: my-dataset
              layout: paired
              modality: ct
              labels: {1: liver}
            and run: medcat ingest \(root.lastPathComponent) --manifest my-dataset.yaml
            """
    }
}
