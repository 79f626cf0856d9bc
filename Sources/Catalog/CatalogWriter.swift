import Foundation
import Geometry
import GRDB

/// What the ingest writer hands the catalog for one source file: its images with their masks, or
/// the reason it was rejected. A batch of these is committed in one transaction, after the pixels
/// they point at were flushed to the shards.
public struct SourceResult: Sendable {
    public enum Outcome: Sendable { case done([NewImage]), rejected(stage: String, message: String) }
    public var datasetID: Int64, datasetName: String
    public var path: String, maskPath: String?
    public var size: Int64, mtime: Double, stamp: String, contentHash: String?
    public var runID: Int64
    public var outcome: Outcome
    /// The split the dataset's own folders give the file's case (a labelled test folder), if any.
    public var officialSplit: Split?
    public init(datasetID: Int64, datasetName: String, path: String, maskPath: String?, size: Int64, mtime: Double,
                stamp: String, contentHash: String? = nil, runID: Int64, outcome: Outcome, officialSplit: Split? = nil) {
        self.officialSplit = officialSplit
        self.datasetID = datasetID; self.datasetName = datasetName; self.path = path; self.maskPath = maskPath
        self.size = size; self.mtime = mtime; self.stamp = stamp; self.contentHash = contentHash; self.runID = runID; self.outcome = outcome
    }
}

public enum BlobRef: Sendable {
    case existing(Int64)
    case new(hash: String, shardID: Int64, offset: Int64, length: Int32)
}

public struct NewImage: Sendable {
    public var caseName: String, modalityID: Int64
    public var axis: String, slice: Int
    public var width: Int, height: Int, channels: Int, origWidth: Int, origHeight: Int
    public var spacing: [Double]
    public var transform: SliceTransform
    public var blob: BlobRef
    public var masks: [NewMask]
    public init(caseName: String, modalityID: Int64, axis: String, slice: Int, width: Int, height: Int, channels: Int,
                origWidth: Int, origHeight: Int, spacing: [Double], transform: SliceTransform, blob: BlobRef, masks: [NewMask]) {
        self.caseName = caseName; self.modalityID = modalityID; self.axis = axis; self.slice = slice
        self.width = width; self.height = height; self.channels = channels; self.origWidth = origWidth
        self.origHeight = origHeight; self.spacing = spacing; self.transform = transform; self.blob = blob; self.masks = masks
    }
}

public struct NewMask: Sendable {
    public var classID: Int64, instance: Int, area: Int
    public var box: Box2D
    public var shardID: Int64, offset: Int64, length: Int32
    public init(classID: Int64, instance: Int, area: Int, box: Box2D, shardID: Int64, offset: Int64, length: Int32) {
        self.classID = classID; self.instance = instance; self.area = area; self.box = box
        self.shardID = shardID; self.offset = offset; self.length = length
    }
}

/// The columns of the rows ingest inserts by the million, as Schema.swift names them.
private enum ImageColumns: Int32, InsertColumns {
    case id = 1, dataset_id, case_id, source_id, modality_id, split, axis, slice, width, height, channels,
         orig_width, orig_height, spacing_x, spacing_y, spacing_z, transform, blob_id, first_mask_id, mask_count
}

private enum MaskColumns: Int32, InsertColumns {
    case id = 1, image_id, class_id, instance, area, x0, y0, x1, y1, shard_id, offset, length, modality_id, split, dataset_id
}

private enum BlobColumns: Int32, InsertColumns {
    case hash = 1, shard_id, offset, length
}

extension Catalog {
    private struct CountKey: Hashable { var dataset: Int64, modality: Int64, cls: Int64, split: Int }

    /// Records a batch of source files in one transaction.
    public func commit(_ results: [SourceResult]) throws {
        let policy = try splitPolicy()
        var committed = false
        defer { if !committed { blobs = BlobIndex() } }  // it may hold blobs of a rolled-back transaction: read it again
        try db.write { db in
            try blobs.catchUp(db)
            var counts: [CountKey: (images: Int, masks: Int)] = [:]
            var lastCase: (dataset: Int64, name: String, id: Int64, split: Int)?  // a file's images share one case
            var lists = MaskLists.Builder()
            // Stores the lists built so far, with their masks' running counts.
            func writeLists() throws {
                for (k, ids) in lists.lists {
                    counts[CountKey(dataset: k.dataset, modality: k.modality, cls: k.cls, split: Int(k.split)), default: (0, 0)].masks += ids.count
                }
                try lists.write(db)
                lists = MaskLists.Builder()
            }
            let insertImage = try FastInsert<ImageColumns>(db, into: "images")
            let insertMask = try FastInsert<MaskColumns>(db, into: "masks")
            let insertBlob = try FastInsert<BlobColumns>(db, into: "blobs")
            // Explicit ids make the contiguous ranges the schema relies on (see Schema.swift).
            var nextImageID = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM images")!
            var nextMaskID = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) + 1 FROM masks")!
            for r in results {
                if let old = try Int64.fetchOne(db, sql: "SELECT id FROM source_files WHERE dataset_id = ? AND path = ?", arguments: [r.datasetID, r.path]) {
                    try writeLists()  // the file may be earlier in this batch: its masks' lists must be stored to be fixed
                    try Self.removeImages(db, sourceID: old)
                    try db.execute(sql: "DELETE FROM source_files WHERE id = ?", arguments: [old])
                }
                var imageCount = 0, maskCount = 0
                let status: String
                switch r.outcome {
                case .done(let images):
                    status = "done"
                    imageCount = images.count
                    maskCount = images.reduce(0) { $0 + $1.masks.count }
                case .rejected(let stage, let message):
                    status = "rejected"
                    try db.execute(sql: "INSERT INTO errors(run_id, dataset, path, stage, message, at) VALUES (?,?,?,?,?,?)",
                                   arguments: [r.runID, r.datasetName, r.path, stage, message, Self.now()])
                }
                try db.execute(sql: """
                    INSERT INTO source_files(dataset_id, path, mask_path, size, mtime, stamp, content_hash, status, images, masks, run_id, first_image_id)
                    VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
                    """, arguments: [r.datasetID, r.path, r.maskPath, r.size, r.mtime, r.stamp, r.contentHash, status, imageCount, maskCount, r.runID,
                                     imageCount > 0 ? nextImageID : nil])
                let sourceID = db.lastInsertedRowID
                guard case .done(let images) = r.outcome else { continue }
                for im in images {
                    let (caseID, split): (Int64, Int)
                    if let c = lastCase, c.dataset == r.datasetID, c.name == im.caseName { (caseID, split) = (c.id, c.split) } else {
                        let s = policy.split(dataset: r.datasetName, case: im.caseName, official: r.officialSplit).rawValue
                        try db.execute(sql: "INSERT INTO cases(dataset_id, name, split, fixed_split) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                                       arguments: [r.datasetID, im.caseName, s, r.officialSplit?.rawValue])
                        let row = try Row.fetchOne(db, sql: "SELECT id, split FROM cases WHERE dataset_id = ? AND name = ?", arguments: [r.datasetID, im.caseName])!
                        (caseID, split) = (row["id"], row["split"])
                        lastCase = (r.datasetID, im.caseName, caseID, split)
                    }
                    let blobID: Int64
                    switch im.blob {
                    case .existing(let id): blobID = id
                    case let .new(hash, shard, offset, length):
                        // A duplicate of an image earlier in this batch is already there.
                        if let id = try blobs.find(db, hash: hash) { blobID = id; break }
                        insertBlob.set(.hash, hash)
                        insertBlob.set(.shard_id, shard)
                        insertBlob.set(.offset, offset)
                        insertBlob.set(.length, Int(length))
                        try insertBlob.insert()
                        blobID = db.lastInsertedRowID
                        blobs.add(hash: hash, id: blobID)
                    }
                    let imageID = nextImageID
                    nextImageID += 1
                    let i = insertImage
                    i.set(.id, imageID); i.set(.dataset_id, r.datasetID); i.set(.case_id, caseID); i.set(.source_id, sourceID)
                    i.set(.modality_id, im.modalityID); i.set(.split, split); i.set(.axis, im.axis); i.set(.slice, im.slice)
                    i.set(.width, im.width); i.set(.height, im.height); i.set(.channels, im.channels)
                    i.set(.orig_width, im.origWidth); i.set(.orig_height, im.origHeight)
                    i.set(.spacing_x, im.spacing[0]); i.set(.spacing_y, im.spacing[1]); i.set(.spacing_z, im.spacing[2])
                    i.set(.transform, im.transform.json); i.set(.blob_id, blobID); i.set(.first_mask_id, nextMaskID); i.set(.mask_count, im.masks.count)
                    try i.insert()
                    counts[CountKey(dataset: r.datasetID, modality: im.modalityID, cls: 0, split: split), default: (0, 0)].images += 1
                    for m in im.masks {
                        let k = insertMask
                        k.set(.id, nextMaskID); k.set(.image_id, imageID); k.set(.class_id, m.classID); k.set(.instance, m.instance)
                        k.set(.area, m.area); k.set(.x0, m.box.x0); k.set(.y0, m.box.y0); k.set(.x1, m.box.x1); k.set(.y1, m.box.y1)
                        k.set(.shard_id, m.shardID); k.set(.offset, m.offset); k.set(.length, Int(m.length))
                        k.set(.modality_id, im.modalityID); k.set(.split, split); k.set(.dataset_id, r.datasetID)
                        try k.insert()
                        lists.add(.init(cls: m.classID, modality: im.modalityID, split: Int64(split), dataset: r.datasetID), id: nextMaskID)
                        nextMaskID += 1
                    }
                }
            }
            let bump = try db.cachedStatement(sql: """
                INSERT INTO counts(dataset_id, modality_id, class_id, split, images, masks) VALUES (?,?,?,?,?,?)
                ON CONFLICT DO UPDATE SET images = images + excluded.images, masks = masks + excluded.masks
                """)
            try writeLists()
            for (k, v) in counts { try bump.execute(arguments: [k.dataset, k.modality, k.cls, k.split, v.images, v.masks]) }
        }
        committed = true
    }

    /// Removes a source file's images and masks (the file changed since it was ingested), keeping
    /// the running counts right. Shard bytes stay: shards are append-only.
    static func removeImages(_ db: Database, sourceID: Int64) throws {
        guard let src = try Row.fetchOne(db, sql: "SELECT first_image_id, images FROM source_files WHERE id = ?", arguments: [sourceID]),
              let first = src["first_image_id"] as Int64?, let n = src["images"] as Int64?, n > 0 else { return }
        let last = first + n - 1
        let range = try Row.fetchOne(db, sql: """
            SELECT MIN(first_mask_id) AS first, MAX(first_mask_id + mask_count) - 1 AS last FROM images WHERE id BETWEEN ? AND ?
            """, arguments: [first, last])!
        let (m0, m1): (Int64, Int64) = (range["first"] ?? 0, range["last"] ?? -1)
        try db.execute(sql: """
            UPDATE counts SET images = images - (SELECT COUNT(*) FROM images i WHERE i.id BETWEEN ? AND ? AND i.dataset_id = counts.dataset_id
                AND i.modality_id = counts.modality_id AND i.split = counts.split) WHERE class_id = 0
            """, arguments: [first, last])
        try db.execute(sql: """
            UPDATE counts SET masks = masks - (SELECT COUNT(*) FROM masks m WHERE m.id BETWEEN ? AND ? AND m.dataset_id = counts.dataset_id
                AND m.modality_id = counts.modality_id AND m.class_id = counts.class_id AND m.split = counts.split) WHERE class_id != 0
            """, arguments: [m0, m1])
        if m0 <= m1 { try MaskLists.remove(db, m0...m1) }
        try db.execute(sql: "DELETE FROM masks WHERE id BETWEEN ? AND ?", arguments: [m0, m1])
        try db.execute(sql: "DELETE FROM images WHERE id BETWEEN ? AND ?", arguments: [first, last])
    }
}
