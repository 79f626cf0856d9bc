import Foundation
import GRDB

/// One stored image as ingest recorded it.
public struct StoredImage: Sendable {
    public var id: Int64
    /// The source file's path, relative to its dataset's folder.
    public var sourcePath: String
    public var caseName: String, axis: String, slice: Int
    public var width: Int, height: Int, channels: Int
    /// Millimetres per source pixel across and down the plane, and between planes.
    public var spacing: [Double]
    /// Nil for rows from before transforms were recorded.
    public var transform: SliceTransform?
}

/// One ingested unit's row: its path relative to the dataset folder, `done` or `rejected`, and the
/// XXH3-128 of its image file's bytes.
public struct SourceRecord: Sendable {
    public var dataset: String, path: String, status: String, contentHash: String?
}

extension Catalog {
    /// Every dataset as it was registered, by name.
    public func datasets() throws -> [DatasetInfo] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM datasets ORDER BY name").map { r in
                DatasetInfo(name: r["name"], title: r["title"], layout: r["layout"], modality: r["modality"], licence: r["licence"],
                            citation: r["citation"], manifest: r["manifest"])
            }
        }
    }

    /// Case (patient or study) names, of one dataset or all, sorted.
    public func caseNames(dataset: String? = nil) throws -> [String] {
        try db.read { db in
            try String.fetchAll(db, sql: """
                SELECT c.name FROM cases c JOIN datasets d ON d.id = c.dataset_id \(dataset == nil ? "" : "WHERE d.name = ?") ORDER BY c.name
                """, arguments: dataset.map { [$0] } ?? [])
        }
    }

    public func sourceRecords() throws -> [SourceRecord] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT d.name AS dataset, s.path, s.status, s.content_hash FROM source_files s JOIN datasets d ON d.id = s.dataset_id ORDER BY s.id
                """).map { SourceRecord(dataset: $0["dataset"], path: $0["path"], status: $0["status"], contentHash: $0["content_hash"]) }
        }
    }

    /// The images with these ids, in id order (all of them without ids).
    public func storedImages(ids: [Int64]? = nil) throws -> [StoredImage] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT i.id, s.path, c.name AS "case", i.axis, i.slice, i.width, i.height, i.channels, i.spacing_x, i.spacing_y, i.spacing_z, i.transform
                FROM images i JOIN source_files s ON s.id = i.source_id JOIN cases c ON c.id = i.case_id
                \(ids == nil ? "" : "WHERE i.id IN (SELECT value FROM json_each(?))") ORDER BY i.id
                """, arguments: ids.map { [Self.idList($0)] } ?? []).map { r in
                StoredImage(id: r["id"], sourcePath: r["path"], caseName: r["case"], axis: r["axis"], slice: r["slice"], width: r["width"],
                            height: r["height"], channels: r["channels"], spacing: [r["spacing_x"], r["spacing_y"], r["spacing_z"]],
                            transform: SliceTransform(json: r["transform"]))
            }
        }
    }

    /// Moves everything in the write-ahead log into the database file, so that the file alone holds
    /// the catalog (before copying it, say).
    public func checkpoint() throws {
        try db.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }
}
