import ArgumentParser
import CProcess
import Catalog
import Foundation
import Imaging
import Ingest

struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Recognise datasets in a folder, slice and normalise them, and record image–mask pairs in the catalog.",
        discussion: """
            Re-running on the same folder adds nothing; an interrupted run resumes where it stopped.
            Any dataset in a standard layout ingests without a manifest, under its folder's name; label and
            structure names that classes.yaml does not know are kept as unmapped classes (see
            `medcat catalog stats` and `medcat catalog map-class`). A dataset that cannot be read is an error
            row of its own and stops no other. The run ends with one summary row per dataset.
            Exit status: 0 when every file was ingested, 2 when some file or dataset was rejected
            (see `medcat catalog errors`).

            Examples:
              medcat ingest ./raw
              medcat ingest ./raw/KiTS19 --size 1024 --workers 8
              medcat ingest ./my-ct --manifest my-ct.yaml --window 1500/-600
              medcat ingest ./pairs --modality ultrasound --class thyroid_nodule
              medcat ingest ./tcia-export                # DICOM series with SEG/RTSTRUCT; identifiers hashed
              medcat ingest ./raw --verify-crc           # check each .nii.gz image's CRC, not only the labelled part
            """
    )

    @OptionGroup var common: CatalogOptions

    @Argument(help: "Folder holding one dataset or several side by side.")
    var root: String

    @Option(help: "Manifest YAML to use instead of layout detection.")
    var manifest: String?

    @Option(help: "Decoder threads (default: all cores).")
    var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Output side in pixels (longest side resized, then padded to a square).")
    var size: Int = 256

    @Option(help: "Slicing axes of 3D volumes: z (axial) or xyz (axial, coronal, sagittal).")
    var axes: SliceAxes = .z

    @Flag(help: "One mask per connected component instead of one per class.")
    var instances = false

    @Flag(help: "Keep slices that have no mask.")
    var keepEmpty = false

    @Option(help: "Drop 2D mask components under this many pixels (source grid).")
    var minMaskPixels: Int = 100

    @Option(help: "Drop 3D components under this many voxels.")
    var minComponentVoxels: Int = 1000

    @Option(help: "CT window WIDTH/LEVEL in HU for every image of this run, e.g. 1500/-600.")
    var window: String?

    @Option(help: "Percentile clip LOW/HIGH for every image of this run, e.g. 0.5/99.5.")
    var percentile: String?

    @Option(help: "Modality of datasets whose manifest or dataset.json does not say it (e.g. ct, mr_t1, ultrasound); others keep theirs.")
    var modality: String?

    @Option(name: .customLong("class"), help: "Class of the foreground of mask folders that no manifest describes (default: the folder's name).")
    var className: String?

    @Flag(help: "Inflate every .nii.gz image to its end and check its CRC-32, even past the last labelled slice.")
    var verifyCRC = false

    @Flag(help: "Try again files rejected by an earlier run even if unchanged.")
    var retryRejected = false

    @Flag(help: "DICOM: record file paths and series UIDs in the catalog and log instead of salted hashes (they may identify patients).")
    var keepPaths = false

    func validate() throws {
        guard size >= 16 && size <= 4096 else { throw ValidationError("--size must be between 16 and 4096") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if window != nil && percentile != nil { throw ValidationError("give --window or --percentile, not both") }
        if let w = window {
            guard let (width, level) = Self.pair(w) else { throw ValidationError("--window must be WIDTH/LEVEL, e.g. 400/40") }
            if let p = IntensityPolicy.window(width: width, level: level).problem { throw ValidationError("--window: \(p)") }
        }
        if let pc = percentile {
            guard let (lo, hi) = Self.pair(pc) else { throw ValidationError("--percentile must be LOW/HIGH, e.g. 0.5/99.5") }
            if let p = IntensityPolicy.percentile(lower: lo, upper: hi).problem { throw ValidationError("--percentile: \(p)") }
        }
        if let m = modality, !Manifest.modalities.contains(m) {
            throw ValidationError("unknown modality '\(m)'; use one of \(Manifest.modalities.sorted().joined(separator: ", "))")
        }
    }

    static func pair(_ s: String) -> (Double, Double)? {
        let p = s.split(separator: "/").compactMap { Double($0) }
        return p.count == 2 ? (p[0], p[1]) : nil
    }

    func run() throws {
        mc_keep_freed_memory()
        let log = common.logger("ingest")
        var options = IngestOptions()
        options.size = size
        options.axes = axes.axes
        options.instances = instances
        options.keepEmpty = keepEmpty
        options.minMaskPixels = minMaskPixels
        options.minComponentVoxels = minComponentVoxels
        options.workers = workers
        options.modality = modality
        options.className = className
        options.retryRejected = retryRejected
        options.verifyCRC = verifyCRC
        options.keepPaths = keepPaths
        if let w = window.flatMap(Self.pair) { options.intensity = .window(width: w.0, level: w.1) }
        if let p = percentile.flatMap(Self.pair) { options.intensity = .percentile(lower: p.0, upper: p.1) }

        let library = try ManifestLibrary.builtin()
        var explicit: Manifest?
        if let path = manifest {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw ValidationError("cannot read manifest \(path)") }
            explicit = try Manifest.parse(text, file: (path as NSString).lastPathComponent, vocabulary: library.vocabulary)
        }
        let lock = try CatalogLock(path: common.catalog)
        defer { lock.release() }
        let catalog = try Catalog(path: common.catalog)
        let interactive = isatty(STDERR_FILENO) == 1
        let progress = Progress(interactive: interactive) { FileHandle.standardError.write(Data($0.utf8)) }
        let runner = IngestRunner(catalog: catalog, library: library, options: options, log: log, progress: progress)
        let s = try runner.run(root: URL(fileURLWithPath: root), manifest: explicit)
        print(String(format: "ingested %@: %d files done, %d unchanged, %d rejected; %d images, %d masks (%d duplicate images stored once) in %.1f s (%.0f slices/s)",
                     s.datasets.joined(separator: ", "), s.filesDone, s.filesSkipped, s.filesRejected, s.images, s.masks, s.deduplicated,
                     s.seconds, Double(s.images) / max(s.seconds, 1e-3)))
        print(IngestReport(summary: s).text)
        if s.rejectedTotal > 0 { print("\(s.rejectedTotal) file\(s.rejectedTotal == 1 ? " is" : "s are") rejected; see `medcat catalog errors`") }
        if s.rejectedTotal > 0 || s.failures > 0 { throw ExitCode(2) }
    }
}

/// The summary at the end of a run: one row per dataset, the folders not taken, what to do next.
struct IngestReport {
    var summary: IngestSummary

    var text: String {
        let s = summary
        var out = "\n" + Output.table(
            ["dataset", "layout", "files", "images", "masks", "classes (mapped/unmapped)", "rejected", "unlabelled", "not anatomy"],
            s.rows.map { r in
                guard r.failure == nil else { return [r.name, r.layout, "-", "-", "-", "-", "dataset", "-", "-"] }
                return [r.name, r.layout, "\(r.files)", "\(r.images)", "\(r.masks)", "\(r.mapped.count)/\(r.unmapped.count)",
                        "\(r.rejected)", "\(r.unlabelled)", "\(r.structuresSkipped.values.reduce(0, +))"]
            })
        for r in s.rows { if let f = r.failure { out += "\n\(r.name) (\(r.folder)) not ingested: \(f)" } }
        let unmapped = Set(s.rows.flatMap(\.unmapped)).sorted()
        if !unmapped.isEmpty { out += "\nunmapped classes: \(unmapped.prefix(12).joined(separator: ", "))\(unmapped.count > 12 ? ", …" : "")" }
        for r in s.rows where !r.structuresSkipped.isEmpty {
            out += "\n\(r.name): not anatomy, not ingested: " + r.structuresSkipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        }
        if !s.skippedFolders.isEmpty {
            out += "\nfolders not taken:"
            for f in s.skippedFolders.prefix(20) { out += "\n  \(f.path): \(f.reason)" }
            if s.skippedFolders.count > 20 { out += "\n  … and \(s.skippedFolders.count - 20) more" }
        }
        for n in s.notes { out += "\nnote: \(n)" }
        if let d = s.duplicates, d.sharedImages > 0 {
            out += "\n\(d.sharedImages) stored image\(d.sharedImages == 1 ? " is" : "s are") shared by several cases; their \(d.groupedCases) cases are kept in one split per group"
        }
        var next: [String] = []
        if s.failures > 0 { next.append("medcat catalog errors            # what was rejected, and why") }
        if let u = unmapped.first { next.append("medcat catalog map-class \(u) --to CLASS   # map an unmapped class (see `medcat catalog stats`)") }
        if !next.isEmpty { out += "\nnext:\n" + next.map { "  " + $0 }.joined(separator: "\n") }
        return out
    }
}

/// One ingest per catalog at a time (the shard writer assumes it is alone).
final class CatalogLock {
    let fd: Int32
    init(path: String) throws {
        let name = (path as NSString).lastPathComponent
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        fd = open(path + ".lock", O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot create the lock file for \(name): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ValidationError("another medcat process is writing \(name); wait for it to finish")
        }
    }
    func release() { flock(fd, LOCK_UN); close(fd) }
}
