import Foundation
import GRDB

/// A class the catalog holds under a name that classes.yaml does not know.
public struct UnmappedClass: Codable, Equatable, Sendable {
    public var name: String
    public var masks: Int
    public var datasets: [String]
}

/// What `mapClass` did.
public enum ClassMapOutcome: Equatable, Sendable {
    /// The masks joined an existing class.
    case merged(masks: Int)
    /// The class took the new name (no class had it).
    case renamed
}

/// A dataset that could not be planned at all (unreadable dataset.json, no pairs, …).
public struct DatasetFailure: Sendable {
    public var dataset: String, folder: String, message: String
    public init(dataset: String, folder: String, message: String) { self.dataset = dataset; self.folder = folder; self.message = message }
}

extension Catalog {
    /// Classes marked unmapped that hold masks, most masks first, with the datasets they come from.
    public func unmappedClasses() throws -> [UnmappedClass] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT k.name, SUM(c.masks) AS masks, GROUP_CONCAT(DISTINCT d.name) AS datasets FROM classes k
                JOIN counts c ON c.class_id = k.id JOIN datasets d ON d.id = c.dataset_id
                WHERE k.mapped = 0 GROUP BY k.id HAVING SUM(c.masks) > 0 ORDER BY SUM(c.masks) DESC, k.name
                """).map { r in
                UnmappedClass(name: r["name"], masks: r["masks"], datasets: ((r["datasets"] as String?) ?? "").split(separator: ",").map(String.init).sorted())
            }
        }
    }

    /// Maps class `name` onto `target` without re-ingesting: its masks join `target` when that class
    /// exists, else the class is renamed. Later ingests follow the mapping (`class_map`).
    /// `targetIsKnown`: whether `target` is a classes.yaml name (the class is then mapped).
    public func mapClass(_ name: String, to target: String, targetIsKnown: Bool) throws -> ClassMapOutcome {
        guard name != target else { throw CatalogError("'\(name)' is already called that") }
        let outcome = try db.write { db -> ClassMapOutcome in
            guard let from = try Int64.fetchOne(db, sql: "SELECT id FROM classes WHERE name = ?", arguments: [name]) else {
                let known = try String.fetchAll(db, sql: "SELECT name FROM classes WHERE mapped = 0 ORDER BY name LIMIT 50")
                throw CatalogError("no class '\(name)' in the catalog; unmapped classes: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
            }
            // Earlier mappings onto `name` follow it to `target`.
            try db.execute(sql: "UPDATE class_map SET target = ? WHERE target = ?", arguments: [target, name])
            try db.execute(sql: "INSERT OR REPLACE INTO class_map(name, target) VALUES (?, ?)", arguments: [name, target])
            guard let to = try Int64.fetchOne(db, sql: "SELECT id FROM classes WHERE name = ?", arguments: [target]) else {
                try db.execute(sql: "UPDATE classes SET name = ?, mapped = ? WHERE id = ?", arguments: [target, targetIsKnown, from])
                return .renamed
            }
            let masks = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(masks), 0) FROM counts WHERE class_id = ?", arguments: [from]) ?? 0
            try db.execute(sql: "UPDATE masks SET class_id = ? WHERE class_id = ?", arguments: [to, from])
            try Self.rebuildCounts(db)
            try MaskLists.rebuild(db)
            return .merged(masks: masks)
        }
        classIDCache = [:]
        classMap = try readClassMap()
        return outcome
    }

    /// Puts cases that share images into one split (see SplitGroups) and returns the duplicates.
    @discardableResult
    public func joinSplitGroups() throws -> DuplicateReport {
        try db.write { db in try SplitGroups.join(db, propagate: true) }
    }

    /// The duplicates found by the last ingest or re-split that looked for them.
    public func duplicates() throws -> DuplicateReport? {
        try db.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'duplicates'")
                .map { try JSONDecoder().decode(DuplicateReport.self, from: Data($0.utf8)) }
        }
    }

    /// Records why a dataset could not be ingested at all, replacing what an earlier run recorded
    /// for the same folder, so that a re-run adds no rows.
    public func record(_ failure: DatasetFailure, runID: Int64) throws {
        try db.write { db in
            try Self.deleteFailure(db, dataset: failure.dataset, folder: failure.folder)
            try db.execute(sql: "INSERT INTO errors(run_id, dataset, path, stage, message, at) VALUES (?, ?, ?, 'dataset', ?, ?)",
                           arguments: [runID, failure.dataset, failure.folder, failure.message, Self.now()])
        }
    }

    /// Clears a dataset-level failure once the folder ingests.
    public func clearFailure(dataset: String, folder: String) throws {
        try db.write { db in try Self.deleteFailure(db, dataset: dataset, folder: folder) }
    }

    private static func deleteFailure(_ db: Database, dataset: String, folder: String) throws {
        try db.execute(sql: "DELETE FROM errors WHERE stage = 'dataset' AND dataset = ? AND path = ?", arguments: [dataset, folder])
    }

    /// Rejected files of a dataset, for the run's summary.
    public func rejectedCount(datasetID: Int64) throws -> Int {
        try db.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM source_files WHERE dataset_id = ? AND status = 'rejected'", arguments: [datasetID]) ?? 0
        }
    }
}
