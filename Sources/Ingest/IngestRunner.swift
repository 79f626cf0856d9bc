import CProcess
import Catalog
import Foundation
import Hashing
import Imaging
import Logging

/// What an ingest run did with one dataset (a row of the run's summary table).
public struct DatasetSummary: Sendable {
    public var name: String, layout: String, folder: String
    public var files = 0, images = 0, masks = 0
    /// Files of the dataset rejected by this or an earlier run and still rejected.
    public var rejected = 0
    /// Images the dataset ships without labels (test sets): counted, not ingested.
    public var unlabelled = 0
    /// Classes of this run's masks, by whether classes.yaml knows them.
    public var mapped: Set<String> = [], unmapped: Set<String> = []
    /// DICOM structures not ingested because they are not anatomy, by reason.
    public var structuresSkipped: [String: Int] = [:]
    /// Why the dataset could not be ingested at all.
    public var failure: String?

    /// Adds another folder of the same dataset; `rejected` counts the dataset, so it is taken as is.
    mutating func merge(_ other: DatasetSummary) {
        files += other.files; images += other.images; masks += other.masks; unlabelled += other.unlabelled
        rejected = other.rejected
        mapped.formUnion(other.mapped); unmapped.formUnion(other.unmapped)
        structuresSkipped.merge(other.structuresSkipped, uniquingKeysWith: +)
        if folder != other.folder { folder = "\(folder), \(other.folder)" }
    }
}

/// What an ingest run did.
public struct IngestSummary: Sendable {
    public var datasets: [String] = []
    public var rows: [DatasetSummary] = []
    /// Folders that were looked at and not taken, with the reason.
    public var skippedFolders: [SkippedFolder] = []
    /// Renamed datasets and the like, said once per run.
    public var notes: [String] = []
    public var duplicates: DuplicateReport?
    public var failures: Int { rows.filter { $0.failure != nil }.count }
    public var filesSeen = 0, filesSkipped = 0, filesDone = 0, filesRejected = 0
    /// Files of these datasets rejected by this or an earlier run and still rejected.
    public var rejectedTotal = 0
    public var images = 0, masks = 0, deduplicated = 0
    public var seconds = 0.0
}

/// Runs `medcat ingest`: discovery, skipping what is done, parallel decoding, and one writer that
/// appends pixels to the shards and commits catalog rows in source order.
///
/// Crash safety: pixels are flushed to the shard before the transaction that references them
/// commits, and a source file is marked done in that same transaction. A run killed at any point
/// leaves complete files recorded and the rest absent; the next run does the rest. Shard bytes
/// written after the last commit are orphans, never referenced.
public final class IngestRunner {
    let catalog: Catalog
    let library: ManifestLibrary
    let options: IngestOptions
    let log: Logger
    let progress: Progress?
    /// A transaction closes after this many units, mask rows or seconds, whichever comes first:
    /// large transactions keep index maintenance cheap, the time bound keeps resume granularity fine.
    let batchUnits = 256, batchMasks = 50_000, batchSeconds = 2.0

    public init(catalog: Catalog, library: ManifestLibrary, options: IngestOptions, log: Logger, progress: Progress?) {
        self.catalog = catalog
        self.library = library
        self.options = options
        self.log = log
        self.progress = progress
    }

    public func run(root: URL, manifest explicit: Manifest?) throws -> IngestSummary {
        let start = Date()
        var summary = IngestSummary()
        guard FS.isDirectory(root) else { throw LayoutError(description: "'\(root.lastPathComponent)' is not a folder") }
        var discovery = Discovery()
        if let m = explicit {
            discovery.datasets = [FoundDataset(manifest: m, dir: root, namingDir: root)]
        } else {
            discovery = try Layouts.discover(root, library: library, options: options)
        }
        summary.skippedFolders = discovery.skipped
        summary.notes = discovery.notes
        for n in discovery.notes { log.notice("\(n)") }
        let salt = discovery.datasets.contains { $0.manifest.layout == .dicom } ? try catalog.identifierSalt() : ""
        var failures = discovery.failures
        var plans: [(plan: DatasetPlan, folder: String)] = []
        for found in discovery.datasets {
            let m = found.manifest
            // DICOM folder names often name the patient: hashed, and not shown, unless asked otherwise.
            let hidden = m.layout == .dicom && !options.keepPaths
            let folder = hidden ? m.name : Layouts.relative(found.dir, root)
            let prefix = hidden && !found.prefix.isEmpty
                ? DicomLayout.anonymous("folder", String(found.prefix.dropLast()), salt: salt) + "/" : found.prefix
            do {
                let plan = try Layouts.plan(m, root: found.dir, vocabulary: library.vocabulary, prefix: prefix, salt: salt, keepPaths: options.keepPaths,
                                            modality: options.modality)
                if plan.items.isEmpty && plan.problems.isEmpty && plan.unlabelled == 0 {
                    throw LayoutError(description: "recognised as '\(m.layout.rawValue)' but no image–label pairs were found")
                }
                plans.append((plan, folder))
            } catch {
                failures.append(DatasetFailure(dataset: m.name, folder: folder, message: "\(error)"))
            }
        }
        ShardSet.recoverUnsealed(in: catalog.shardDirectory, log: log)
        // Units an earlier run died on (a codec's abort or crash): rejected below, not read again.
        let crashNote = catalog.path == ":memory:" ? nil : catalog.path + ".crashed"
        let crashed = crashNote.map(CrashNote.read) ?? CrashNote()
        if let path = crashNote { mc_crash_note_install(path) }
        defer { mc_crash_note_uninstall() }
        let runID = try catalog.beginRun(options: options.json)
        // One dataset that cannot be ingested stops no other: it is an error row of its own.
        for f in failures {
            try catalog.record(f, runID: runID)
            log.error("dataset \(f.dataset) (\(f.folder)) not ingested: \(f.message)")
            var row = DatasetSummary(name: f.dataset, layout: "?", folder: f.folder)
            row.failure = f.message
            summary.rows.append(row)
        }
        let shards = try ShardSet(catalog: catalog, prefix: "run\(runID)")
        var status = "failed"
        defer {
            try? shards.seal()
            try? catalog.finishRun(runID, status: status)
        }
        for (plan, folder) in plans {
            let m = plan.manifest
            summary.datasets.append(m.name)
            try catalog.clearFailure(dataset: m.name, folder: folder)
            var row = DatasetSummary(name: m.name, layout: m.layout.rawValue, folder: folder)
            row.files = plan.items.count + plan.problems.count
            row.unlabelled = plan.unlabelled
            summary.skippedFolders += plan.skipped.map { SkippedFolder(path: folder + "/" + $0.path, reason: $0.reason) }
            log.info("dataset \(m.name): layout \(m.layout.rawValue), \(plan.items.count) images, modality \(m.modality ?? Set(plan.items.map(\.modality)).sorted().joined(separator: "/"))")
            for name in Set(m.labels.values) {
                _ = try catalog.classID(name, description: library.vocabulary.descriptions[name], mapped: library.vocabulary.contains(name))
            }
            let datasetID = try catalog.registerDataset(.init(name: m.name, title: m.title, layout: m.layout.rawValue, modality: m.modality,
                                                               licence: m.licence, citation: m.citation, manifest: m.source))
            let known = try catalog.sourceStates(datasetID: datasetID)
            // Output settings and the manifest join each unit's stamp: changing either re-ingests.
            let settings = ContentHash.hex(Data((options.outputSettings + m.source).utf8)).prefix(16)
            var pending: [(WorkItem, Int64, Double, String)] = []
            var problems: [SourceResult] = []
            for p in plan.problems {
                // DICOM problems are keyed by hashes, not paths, so their stamp is fixed: --retry-rejected reads them again.
                let url = plan.root.appendingPathComponent(String(p.path.dropFirst(plan.prefix.count)))
                let (size, mtime) = m.layout == .dicom ? (0, 0) : FS.stat(url)
                let stamp = "\(size):\(mtime)"
                if known[p.path]?.stamp == stamp, !options.retryRejected { summary.filesSkipped += 1; continue }
                problems.append(SourceResult(datasetID: datasetID, datasetName: m.name, path: p.path, maskPath: nil, size: size, mtime: mtime,
                                             stamp: stamp, runID: runID, outcome: .rejected(stage: "pair", message: p.message)))
            }
            for item in plan.items {
                var (size, mtime) = FS.stat(item.image)
                // A unit is unchanged when all its files are: image and mask, or a series and its annotations.
                let stamp: String
                if let files = item.dicom?.files {
                    let stats = files.map(FS.stat)
                    (size, mtime) = (stats.reduce(0) { $0 + $1.0 }, stats.map(\.1).max() ?? 0)
                    stamp = "\(files.count) files:" + ContentHash.hex(Data(stats.map { "\($0.0):\($0.1)" }.joined(separator: ";").utf8)) + ";\(settings)"
                } else {
                    let (msize, mmtime) = item.mask.map(FS.stat) ?? (0, 0)
                    stamp = "\(size):\(mtime);\(msize):\(mmtime);\(settings)"
                }
                if let k = known[item.key], k.stamp == stamp, k.status == "done" || !options.retryRejected {
                    summary.filesSkipped += 1
                    continue
                }
                if let signal = crashed.units["\(m.name)\t\(item.key)"], !options.retryRejected {
                    problems.append(SourceResult(datasetID: datasetID, datasetName: m.name, path: item.key, maskPath: item.maskKey, size: size, mtime: mtime,
                                                 stamp: stamp, runID: runID, outcome: .rejected(stage: "crashed", message:
                        "an earlier run died (signal \(signal)) while reading this unit, most likely in a codec library on a malformed file; skipped (--retry-rejected reads it again)")))
                    continue
                }
                pending.append((item, size, mtime, stamp))
            }
            summary.filesSeen += plan.items.count + plan.problems.count
            if !problems.isEmpty {
                try catalog.commit(problems)
                summary.filesRejected += problems.count
                for p in problems { if case .rejected(_, let msg) = p.outcome { log.warning("rejected \(m.name)/\(p.path): \(msg)") } }
            }
            try process(pending, plan: plan, datasetID: datasetID, runID: runID, shards: shards, summary: &summary, row: &row)
            row.rejected = try catalog.rejectedCount(datasetID: datasetID)
            // Parts of one dataset (its training and test folders) make one row.
            if let i = summary.rows.firstIndex(where: { $0.name == row.name && $0.failure == nil }) {
                summary.rejectedTotal += row.rejected - summary.rows[i].rejected
                summary.rows[i].merge(row)
            } else {
                summary.rejectedTotal += row.rejected
                summary.rows.append(row)
            }
        }
        // Shared pixels join their cases' splits: only a run that met a stored image again can have made new pairs.
        if summary.deduplicated > 0 {
            summary.duplicates = try catalog.joinSplitGroups()
        }
        progress?.finish()
        if let path = crashNote, !crashed.units.isEmpty { try? FileManager.default.removeItem(atPath: path) }
        status = "done"
        summary.seconds = Date().timeIntervalSince(start)
        return summary
    }

    /// Decodes on `options.workers` threads; commits in item order so ids do not depend on timing.
    private func process(_ items: [(WorkItem, Int64, Double, String)], plan: DatasetPlan, datasetID: Int64, runID: Int64,
                         shards: ShardSet, summary: inout IngestSummary, row: inout DatasetSummary) throws {
        if items.isEmpty { return }
        let builder = SampleBuilder(manifest: plan.manifest, vocabulary: library.vocabulary, options: options)
        let queue = UnitQueue(count: items.count, window: max(2, options.workers * 2))
        progress?.begin(total: items.count)
        for slot in 0..<max(1, options.workers) {
            let t = Thread {
                while let i = queue.take() {
                    // Named in the crash note while it is being read.
                    mc_crash_note_set(Int32(slot), "\(plan.manifest.name)\t\(items[i].0.key)")
                    defer { mc_crash_note_set(Int32(slot), nil) }
                    do { queue.put(i, .success(try builder.build(items[i].0))) } catch let e as IngestFailure { queue.put(i, .failure(e)) } catch {
                        queue.put(i, .failure(IngestFailure(stage: "process", message: "\(error)")))
                    }
                }
            }
            t.stackSize = 8 << 20
            t.start()
        }
        defer { queue.stop() }

        var batch: [SourceResult] = []
        var batchMaskCount = 0, batchStarted = Date()
        func flush() throws {
            if batch.isEmpty { return }
            try shards.flush()
            try catalog.commit(batch)
            batch.removeAll(keepingCapacity: true)
            batchMaskCount = 0
            batchStarted = Date()
        }
        for index in 0..<items.count {
                let r = queue.result(index)
                let (item, size, mtime, stamp) = items[index]
                let outcome: SourceResult.Outcome
                var contentHash: String?
                switch r {
                case .success(let unit):
                    contentHash = unit.contentHash
                    for note in unit.notes { log.notice("\(plan.manifest.name)/\(item.key): \(note)") }
                    row.structuresSkipped.merge(unit.structuresSkipped, uniquingKeysWith: +)
                    for m in unit.images.flatMap(\.masks) {
                        if library.vocabulary.contains(m.className) { row.mapped.insert(m.className) } else { row.unmapped.insert(m.className) }
                    }
                    let rows = try shards.store(unit.images, modality: try catalog.modalityID(item.modality), caseName: item.caseName,
                                                vocabulary: library.vocabulary, summary: &summary)
                    outcome = .done(rows)
                    let masks = rows.reduce(0) { $0 + $1.masks.count }
                    summary.filesDone += 1
                    summary.images += rows.count
                    summary.masks += masks
                    row.images += rows.count
                    row.masks += masks
                    progress?.advance(slices: rows.count)
                case .failure(let e):
                    outcome = .rejected(stage: e.stage, message: e.message)
                    summary.filesRejected += 1
                    log.warning("rejected \(plan.manifest.name)/\(item.key): \(e.stage): \(e.message)")
                    progress?.advance(slices: 0)
                }
                batch.append(SourceResult(datasetID: datasetID, datasetName: plan.manifest.name, path: item.key, maskPath: item.maskKey,
                                          size: size, mtime: mtime, stamp: stamp, contentHash: contentHash, runID: runID, outcome: outcome,
                                          officialSplit: item.split))
                if case .done(let rows) = outcome { batchMaskCount += rows.reduce(0) { $0 + $1.masks.count } }
                if batch.count >= batchUnits || batchMaskCount >= batchMasks || Date().timeIntervalSince(batchStarted) >= batchSeconds { try flush() }
        }
        try flush()
    }
}

/// Hands unit indices to decoder threads and their results back in index order. At most `window`
/// units are decoded ahead of the writer, which bounds memory.
final class UnitQueue: @unchecked Sendable {
    private let cond = NSCondition()
    private var results: [Int: Result<BuiltUnit, IngestFailure>] = [:]
    private var next = 0, consumed = 0, stopped = false
    let count: Int, window: Int

    init(count: Int, window: Int) { self.count = count; self.window = window }

    func take() -> Int? {
        cond.lock(); defer { cond.unlock() }
        while next - consumed >= window && !stopped { cond.wait() }
        if next >= count || stopped { return nil }
        next += 1
        return next - 1
    }

    func put(_ i: Int, _ r: Result<BuiltUnit, IngestFailure>) {
        cond.lock(); results[i] = r; cond.broadcast(); cond.unlock()
    }

    func result(_ i: Int) -> Result<BuiltUnit, IngestFailure> {
        cond.lock(); defer { cond.unlock() }
        while results[i] == nil { cond.wait() }
        consumed = i + 1
        cond.broadcast()
        return results.removeValue(forKey: i)!
    }

    func stop() { cond.lock(); stopped = true; cond.broadcast(); cond.unlock() }
}

/// The run's shard files: images and masks go to one file at a time, rolled over at 2 GiB.
final class ShardSet {
    let catalog: Catalog
    let prefix: String
    var writer: ShardWriter?
    var name = ""
    var shardID: Int64 = 0
    var sequence = 0
    /// Pixels written in this run but not committed yet, by content hash (deduplication inside a batch).
    var pendingBlobs: [String: BlobRef] = [:]
    let rollover: Int64 = 2 << 30

    init(catalog: Catalog, prefix: String) throws {
        self.catalog = catalog
        self.prefix = prefix
        try FileManager.default.createDirectory(at: catalog.shardDirectory, withIntermediateDirectories: true)
    }

    /// Seals shards an interrupted run left open. A shard damaged in the middle is left as it is
    /// (its good records stay readable) and reported; it does not stop the run.
    static func recoverUnsealed(in dir: URL, log: Logger) {
        for url in FS.children(dir) where url.pathExtension == "mcs" {
            if (try? ShardReader(url: url))?.isSealed == true { continue }
            do {
                let r = try ShardRepair.recover(url: url)
                log.notice("recovered shard \(url.lastPathComponent) left by an interrupted run: \(r.records) records kept, \(r.truncatedBytes) bytes of a torn tail dropped")
            } catch {
                log.warning("shard \(url.lastPathComponent) could not be repaired and is left as it is: \(error)")
            }
        }
    }

    private func current() throws -> ShardWriter {
        if let w = writer, w.byteCount < rollover { return w }
        try writer?.seal()
        name = String(format: "%@-%03d", prefix, sequence)
        sequence += 1
        let w = try ShardWriter(directory: catalog.shardDirectory, name: name)
        shardID = try catalog.shardID(name + ".mcs")
        writer = w
        return w
    }

    func store(_ images: [PreparedImage], modality: Int64, caseName: String, vocabulary: ClassVocabulary, summary: inout IngestSummary) throws -> [NewImage] {
        var rows: [NewImage] = []
        for im in images {
            let w = try current()
            var blob: BlobRef
            if let known = pendingBlobs[im.hash] {
                blob = known
                summary.deduplicated += 1
            } else if let id = try catalog.blobID(hash: im.hash) {
                blob = .existing(id)
                summary.deduplicated += 1
            } else {
                let loc = try im.pixels.withUnsafeBytes {
                    try w.append(kind: im.channels == 3 ? .rgb8 : .grey8, width: im.size, height: im.size, bytes: $0, compress: true)
                }
                blob = .new(hash: im.hash, shardID: shardID, offset: loc.offset, length: loc.length)
                pendingBlobs[im.hash] = blob
            }
            var masks: [NewMask] = []
            for m in im.masks {
                let bits = m.pixels.withUnsafeBufferPointer { MaskBits.pack($0, width: im.size, height: im.size, box: m.box) }
                let loc = try bits.withUnsafeBytes { try w.append(kind: .mask, width: im.size, height: im.size, bytes: $0, compress: true) }
                masks.append(NewMask(classID: try catalog.classID(m.className, mapped: vocabulary.contains(m.className)), instance: m.instance, area: m.area, box: m.box,
                                     shardID: shardID, offset: loc.offset, length: loc.length))
            }
            rows.append(NewImage(caseName: caseName, modalityID: modality, axis: im.axis.rawValue, slice: im.slice,
                                 width: im.size, height: im.size, channels: im.channels, origWidth: im.origWidth, origHeight: im.origHeight,
                                 spacing: im.spacing, transform: im.transform, blob: blob, masks: masks))
        }
        return rows
    }

    func flush() throws {
        // Durable before the rows that point at it commit: after a power cut, no row points past a shard's end.
        try writer?.flush(durable: true)
        // Committed next: later batches find these through the catalog.
        pendingBlobs.removeAll(keepingCapacity: true)
    }

    func seal() throws { try writer?.seal(); writer = nil }
}

extension FS {
    static func stat(_ u: URL) -> (Int64, Double) {
        let a = try? FileManager.default.attributesOfItem(atPath: u.path)
        return ((a?[.size] as? NSNumber)?.int64Value ?? 0, (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
    }
}

/// The note a fatal signal leaves (see mc_crash_note_install): "signal N", then one
/// "dataset<TAB>unit key" line per unit that was being read.
struct CrashNote {
    var units: [String: Int] = [:]

    static func read(_ path: String) -> CrashNote {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return CrashNote() }
        var lines = text.split(separator: "\n").map(String.init)
        guard let first = lines.first, first.hasPrefix("signal "), let signal = Int(first.dropFirst(7)) else { return CrashNote() }
        lines.removeFirst()
        return CrashNote(units: Dictionary(lines.map { ($0, signal) }, uniquingKeysWith: { a, _ in a }))
    }
}
