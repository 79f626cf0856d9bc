import Foundation
import Geometry
import GRDB

/// Selections over image–mask pairs. Every field is optional; names are the catalog's vocabulary.
public struct Selection: Codable, Equatable, Sendable {
    public var modalities: [String] = []
    public var classes: [String] = []
    public var datasets: [String] = []
    public var splits: [Split] = []
    public init(modalities: [String] = [], classes: [String] = [], datasets: [String] = [], splits: [Split] = []) {
        self.modalities = modalities; self.classes = classes; self.datasets = datasets; self.splits = splits
    }
}

public struct PairRecord: Codable, Equatable, Sendable {
    public var id: Int64, imageID: Int64
    public var dataset: String, `case`: String, modality: String, `class`: String, split: String
    public var instance: Int, axis: String, slice: Int
    public var area: Int, bbox: Box2D
    public var width: Int, height: Int

    enum CodingKeys: String, CodingKey {
        case id, imageID = "image_id", dataset, `case`, modality, `class`, split, instance, axis, slice, area, bbox, width, height
    }
}

public struct CatalogStats: Codable, Sendable {
    public struct Row: Codable, Sendable { public var name: String; public var images: Int; public var masks: Int; public var cases: Int? }
    public var datasets: Int, cases: Int, images: Int, masks: Int, blobs: Int
    public var sourceFiles: Int, rejectedFiles: Int, errors: Int
    public var byModality: [Row], byClass: [Row], byDataset: [Row], bySplit: [Row]
    /// Classes kept under names classes.yaml does not know (see `Catalog.mapClass`).
    public var unmapped: [UnmappedClass]
    /// Images shared between cases and datasets, as the last ingest found them.
    public var duplicates: DuplicateReport?
    enum CodingKeys: String, CodingKey {
        case datasets, cases, images, masks, blobs, sourceFiles = "source_files", rejectedFiles = "rejected_files", errors
        case byModality = "by_modality", byClass = "by_class", byDataset = "by_dataset", bySplit = "by_split", unmapped, duplicates
    }
}

public struct ErrorRecord: Codable, Sendable {
    public var id: Int64, runID: Int64?, dataset: String?, path: String, stage: String, message: String, at: String
    enum CodingKeys: String, CodingKey { case id, runID = "run_id", dataset, path, stage, message, at }
}

extension Catalog {
    /// Counts from the running totals: constant time in the number of images.
    public func stats() throws -> CatalogStats {
        let unmapped = try unmappedClasses(), duplicates = try duplicates()
        return try db.read { db in
            func rows(_ sql: String) throws -> [CatalogStats.Row] {
                try Row.fetchAll(db, sql: sql).map { CatalogStats.Row(name: $0["name"], images: $0["images"], masks: $0["masks"], cases: $0["cases"]) }
            }
            let scalar = { (sql: String) in try Int.fetchOne(db, sql: sql) ?? 0 }
            return CatalogStats(
                datasets: try scalar("SELECT COUNT(*) FROM datasets"),
                cases: try scalar("SELECT COUNT(*) FROM cases"),
                images: try scalar("SELECT COALESCE(SUM(images), 0) FROM counts"),
                masks: try scalar("SELECT COALESCE(SUM(masks), 0) FROM counts"),
                blobs: try scalar("SELECT COALESCE(MAX(id), 0) FROM blobs"),
                sourceFiles: try scalar("SELECT COUNT(*) FROM source_files"),
                rejectedFiles: try scalar("SELECT COUNT(*) FROM source_files WHERE status = 'rejected'"),
                errors: try scalar("SELECT COUNT(*) FROM errors"),
                byModality: try rows("""
                    SELECT m.name, SUM(c.images) AS images, SUM(c.masks) AS masks, NULL AS cases FROM counts c JOIN modalities m ON m.id = c.modality_id
                    GROUP BY m.name HAVING SUM(c.images) + SUM(c.masks) > 0 ORDER BY SUM(c.images) DESC, m.name
                    """),
                byClass: try rows("""
                    SELECT k.name, 0 AS images, SUM(c.masks) AS masks, NULL AS cases FROM counts c JOIN classes k ON k.id = c.class_id
                    GROUP BY k.name HAVING SUM(c.masks) > 0 ORDER BY SUM(c.masks) DESC, k.name
                    """),
                byDataset: try rows("""
                    SELECT d.name, COALESCE(SUM(c.images), 0) AS images, COALESCE(SUM(c.masks), 0) AS masks,
                        (SELECT COUNT(*) FROM cases WHERE dataset_id = d.id) AS cases
                    FROM datasets d LEFT JOIN counts c ON c.dataset_id = d.id GROUP BY d.id ORDER BY d.name
                    """),
                bySplit: try Split.allCases.map { s in
                    let r = try Row.fetchOne(db, sql: "SELECT COALESCE(SUM(images), 0) AS images, COALESCE(SUM(masks), 0) AS masks FROM counts WHERE split = ?", arguments: [s.rawValue])!
                    let cases = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM cases WHERE split = ?", arguments: [s.rawValue]) ?? 0
                    return CatalogStats.Row(name: s.name, images: r["images"], masks: r["masks"], cases: cases)
                },
                unmapped: unmapped, duplicates: duplicates)
        }
    }

    /// Resolves names to ids; an unknown name is an error that lists what exists.
    func ids(_ db: Database, table: String, names: [String]) throws -> [Int64] {
        try names.map { name in
            if let id = try Int64.fetchOne(db, sql: "SELECT id FROM \(table) WHERE name = ?", arguments: [name]) { return id }
            let known = try String.fetchAll(db, sql: "SELECT name FROM \(table) ORDER BY name LIMIT 50")
            let what = ["classes": "class", "modalities": "modality", "datasets": "dataset"][table] ?? table
            throw CatalogError("unknown \(what) '\(name)'; the catalog has: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
    }

    /// Ids of the masks in `selection` above `after`, ascending: the first `limit`, or all.
    func maskIDs(_ db: Database, _ selection: Selection, after: Int64 = 0, limit: Int? = nil) throws -> [Int64] {
        let (cond, args) = try whereClause(db, selection)
        return try MaskLists.ids(db, condition: cond, arguments: args, after: after, limit: limit)
    }

    /// SQL condition on the group columns, which the masks and mask_lists tables share.
    func whereClause(_ db: Database, _ s: Selection) throws -> (String, StatementArguments) {
        var parts: [String] = [], args = StatementArguments()
        func add(_ column: String, _ values: [DatabaseValueConvertible]) {
            guard !values.isEmpty else { return }
            parts.append("\(column) IN (\(Array(repeating: "?", count: values.count).joined(separator: ",")))")
            args += StatementArguments(values)
        }
        add("modality_id", try ids(db, table: "modalities", names: s.modalities))
        add("class_id", try ids(db, table: "classes", names: s.classes))
        add("split", s.splits.map(\.rawValue))
        add("dataset_id", try ids(db, table: "datasets", names: s.datasets))
        return (parts.isEmpty ? "1" : parts.joined(separator: " AND "), args)
    }

    /// Image–mask pairs matching `selection`, in mask id order.
    public func query(_ selection: Selection, limit: Int? = nil, afterID: Int64 = 0) throws -> [PairRecord] {
        try db.read { db in
            let sql = """
                SELECT m.id, m.image_id, d.name AS dataset, c.name AS "case", mo.name AS modality, k.name AS class, m.split, m.instance,
                       i.axis, i.slice, m.area, m.x0, m.y0, m.x1, m.y1, i.width, i.height
                FROM masks m JOIN images i ON i.id = m.image_id JOIN cases c ON c.id = i.case_id
                JOIN datasets d ON d.id = m.dataset_id JOIN modalities mo ON mo.id = m.modality_id JOIN classes k ON k.id = m.class_id
                WHERE \(Self.idIn) ORDER BY m.id
                """
            let ids = try maskIDs(db, selection, after: afterID, limit: limit)
            return try Row.fetchAll(db, sql: sql, arguments: [Self.idList(ids)]).map { r in
                PairRecord(id: r["id"], imageID: r["image_id"], dataset: r["dataset"], case: r["case"], modality: r["modality"], class: r["class"],
                           split: Split(rawValue: r["split"])?.name ?? "?", instance: r["instance"], axis: r["axis"], slice: r["slice"],
                           area: r["area"], bbox: Box2D(x0: r["x0"], y0: r["y0"], x1: r["x1"], y1: r["y1"]), width: r["width"], height: r["height"])
            }
        }
    }

    /// Ids of the masks in `selection`, ascending.
    public func maskIDs(_ selection: Selection) throws -> [Int64] {
        try db.read { db in try maskIDs(db, selection) }
    }

    public func count(_ selection: Selection) throws -> Int {
        try db.read { db in
            let (cond, args) = try whereClause(db, selection)
            return try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(count), 0) FROM mask_lists WHERE \(cond)", arguments: args) ?? 0
        }
    }

    /// `m.id` among the ids of one argument, a JSON array (a statement's parameters are limited in number).
    static let idIn = "m.id IN (SELECT value FROM json_each(?))"
    static func idList(_ ids: [Int64]) -> String { "[" + ids.map(String.init).joined(separator: ",") + "]" }

    public func errors(dataset: String? = nil, limit: Int? = nil) throws -> [ErrorRecord] {
        try db.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, run_id, dataset, path, stage, message, at FROM errors
                \(dataset == nil ? "" : "WHERE dataset = ?") ORDER BY id \(limit.map { "LIMIT \($0)" } ?? "")
                """, arguments: dataset.map { [$0] } ?? [])
            return rows.map { ErrorRecord(id: $0["id"], runID: $0["run_id"], dataset: $0["dataset"], path: $0["path"], stage: $0["stage"],
                                          message: $0["message"], at: $0["at"]) }
        }
    }

    /// Where an image's pixels and a mask's bits are stored.
    public struct Locations: Sendable {
        public var image: ShardLocation
        public var masks: [(id: Int64, className: String, instance: Int, box: Box2D, location: ShardLocation)]
    }

    public func locations(imageID: Int64) throws -> Locations {
        try db.read { db in
            guard let r = try Row.fetchOne(db, sql: """
                SELECT s.name AS shard, b.offset, b.length, i.first_mask_id, i.mask_count FROM images i JOIN blobs b ON b.id = i.blob_id
                JOIN shards s ON s.id = b.shard_id WHERE i.id = ?
                """, arguments: [imageID]) else { throw CatalogError("no image with id \(imageID)") }
            let first: Int64 = r["first_mask_id"], count: Int64 = r["mask_count"]
            let masks = try Row.fetchAll(db, sql: """
                SELECT m.id, k.name AS class, m.instance, m.x0, m.y0, m.x1, m.y1, s.name AS shard, m.offset, m.length
                FROM masks m JOIN classes k ON k.id = m.class_id JOIN shards s ON s.id = m.shard_id WHERE m.id BETWEEN ? AND ? ORDER BY m.id
                """, arguments: [first, first + count - 1]).map { m in
                (id: m["id"] as Int64, className: m["class"] as String, instance: m["instance"] as Int,
                 box: Box2D(x0: m["x0"], y0: m["y0"], x1: m["x1"], y1: m["y1"]), location: ShardLocation(shard: m["shard"], offset: m["offset"], length: m["length"]))
            }
            return Locations(image: ShardLocation(shard: r["shard"], offset: r["offset"], length: r["length"]), masks: masks)
        }
    }
}
