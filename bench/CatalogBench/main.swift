// Catalog at scale: synthesises a catalog of IMAGES images with MASKS_PER_IMAGE masks each through
// the same batch API `medcat ingest` uses, then times `catalog stats` and a filtered query.
// Usage: medcat-catalog-bench DB_PATH [images] [masks-per-image]
import Catalog
import Geometry
import Foundation

let args = CommandLine.arguments
let path = args.count > 1 ? args[1] : "bench/out/scale.sqlite"
let totalImages = args.count > 2 ? Int(args[2])! : 5_000_000
let masksPerImage = args.count > 3 ? Int(args[3])! : 4
for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }

let catalog = try Catalog(path: path)
let modalities = ["ct", "mr_t1", "mr_t2", "mr_flair", "ultrasound", "x_ray", "endoscopy", "dermoscopy"]
let classNames = (0..<40).map { $0 == 0 ? "liver" : "class_\($0)" }
let modalityIDs = try modalities.map { try catalog.modalityID($0) }
let classIDs = try classNames.map { try catalog.classID($0) }
let shard = try catalog.shardID("synthetic.mcs")
let runID = try catalog.beginRun(options: "{}")
let datasets = try (0..<20).map { d in
    try catalog.registerDataset(.init(name: "dataset\(d)", title: nil, layout: "paired", modality: modalities[d % 8], licence: nil, citation: nil, manifest: ""))
}

// Deterministic pseudo-random numbers (SplitMix64).
var state: UInt64 = 42
func next() -> UInt64 { state &+= 0x9E3779B97F4A7C15; var z = state; z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) &* 0x94D049BB133111EB; return z ^ (z >> 31) }

let slicesPerVolume = 100, volumesPerBatch = 200
var offset: Int64 = 0, inserted = 0
var insertSeconds = 0.0  // time inside Catalog.commit only, not spent synthesising rows
var batch: [SourceResult] = []
var volume = 0
/// An axial slice's transform as ingest records it.
func transform(slice: Int) -> SliceTransform {
    SliceTransform(axis: "axial", content: [256, 256], flipped: [false, true, false], index: slice, permutation: [0, 1, 2],
                   plane: [512, 512], rowsFlipped: false, size: 256, sourceSpacing: [0.8, 0.8, 2.5])
}
while inserted < totalImages {
    let d = volume % datasets.count
    var images: [NewImage] = []
    for s in 0..<min(slicesPerVolume, totalImages - inserted) {
        var masks: [NewMask] = []
        for _ in 0..<masksPerImage {
            let x0 = Int(next() % 200), y0 = Int(next() % 200)
            masks.append(NewMask(classID: classIDs[Int(next() % UInt64(classIDs.count))], instance: 0, area: Int(next() % 5000) + 100,
                                 box: Box2D(x0: x0, y0: y0, x1: x0 + 40, y1: y0 + 30), shardID: shard, offset: offset, length: 300))
            offset += 300
        }
        let hash = String(format: "%016llx%016llx", next(), next())
        images.append(NewImage(caseName: "case\(volume / 2)", modalityID: modalityIDs[d % 8], axis: "z", slice: s, width: 256, height: 256,
                               channels: 1, origWidth: 512, origHeight: 512, spacing: [0.8, 0.8, 2.5], transform: transform(slice: s),
                               blob: .new(hash: hash, shardID: shard, offset: offset, length: 20000), masks: masks))
        offset += 20000
    }
    inserted += images.count
    batch.append(SourceResult(datasetID: datasets[d], datasetName: "dataset\(d)", path: "vol\(volume).nii.gz", maskPath: nil, size: 1, mtime: 0,
                              stamp: "", runID: runID, outcome: .done(images)))
    volume += 1
    if batch.count == volumesPerBatch || inserted >= totalImages {
        let t = Date()
        try catalog.commit(batch)
        insertSeconds += Date().timeIntervalSince(t)
        batch.removeAll()
    }
}
let masks = totalImages * masksPerImage

func best(_ n: Int, _ body: () throws -> Void) rethrows -> Double {
    var t = Double.infinity
    for _ in 0..<n { let s = Date(); try body(); t = min(t, Date().timeIntervalSince(s)) }
    return t
}
let reopened = try Catalog(path: path)
// The writer's in-memory index of blob hashes, read on its first lookup.
let loadStart = Date()
_ = try reopened.blobID(hash: "not-stored")
let blobIndexSeconds = Date().timeIntervalSince(loadStart), blobIndexBytes = reopened.blobIndexBytes
var stats: CatalogStats?
let statsSeconds = try best(5) { stats = try reopened.stats() }
let selection = Selection(modalities: ["ct"], classes: ["liver"], splits: [.train])
var rows = 0
let querySeconds = try best(5) { rows = try reopened.query(selection, limit: 1000).count }
var matching = 0
let countSeconds = try best(3) { matching = try reopened.count(selection) }
var size: Int64 = 0
for suffix in ["", "-wal"] { size += ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? NSNumber)??.int64Value ?? 0) }

let result: [String: Any] = [
    "images": totalImages, "masks": masks, "insert_seconds": insertSeconds,
    "mask_rows_per_s": Double(masks) / insertSeconds, "rows_per_s": Double(masks + totalImages) / insertSeconds,
    "stats_seconds": statsSeconds, "stats_images": stats?.images ?? 0,
    "query_seconds": querySeconds, "query_rows": rows, "count_seconds": countSeconds, "count_rows": matching,
    "db_bytes": size, "blob_index_seconds": blobIndexSeconds, "blob_index_bytes": blobIndexBytes,
]
print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: .sortedKeys), as: UTF8.self))
