import GRDB

/// Where a mask or a source file is reported: its modality, class and dataset names.
/// What a score is reported under: its groups, and its case (the patient, or the image where a
/// dataset has no patients), the unit the leaderboard's statistics resample.
public struct ReportGroups: Hashable, Sendable {
    public var modality: String, className: String, dataset: String, caseID: Int64
    public init(modality: String, className: String, dataset: String, caseID: Int64) {
        self.modality = modality; self.className = className; self.dataset = dataset; self.caseID = caseID
    }
}

extension Catalog {
    /// The database for tables another module keeps beside the catalog's (evaluation results):
    /// `migrator` holds that module's own named migrations, which run here. That module's SQL
    /// stays on its own tables; it reads the catalog's through the methods below.
    public func companionDatabase(migrations migrator: DatabaseMigrator) throws -> any DatabaseWriter {
        try migrator.migrate(db)
        return db
    }

    /// Every class name with its id.
    public func classIDs() throws -> [String: Int64] {
        try db.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT name, id FROM classes").map { ($0["name"] as String, $0["id"] as Int64) })
        }
    }

    /// The groups of each mask id that exists.
    public func reportGroups(maskIDs: [Int64]) throws -> [Int64: ReportGroups] {
        try groups(ids: maskIDs, sql: """
            SELECT m.id, mo.name AS modality, k.name AS class, d.name AS dataset, i.case_id FROM masks m JOIN modalities mo ON mo.id = m.modality_id
            JOIN classes k ON k.id = m.class_id JOIN datasets d ON d.id = m.dataset_id JOIN images i ON i.id = m.image_id WHERE \(Self.idIn)
            """)
    }

    /// The groups of each (source file id, class id) that exists: a volume's modality and dataset,
    /// with the class.
    public func reportGroups(sources: [(sourceID: Int64, classID: Int64)]) throws -> [Int64: [Int64: ReportGroups]] {
        let classes = Dictionary(uniqueKeysWithValues: try classIDs().map { ($0.value, $0.key) })
        let volumes = try groups(ids: Array(Set(sources.map(\.sourceID))), sql: """
            SELECT s.id, mo.name AS modality, '' AS class, d.name AS dataset, i.case_id FROM source_files s JOIN images i ON i.id = s.first_image_id
            JOIN modalities mo ON mo.id = i.modality_id JOIN datasets d ON d.id = s.dataset_id
            WHERE s.id IN (SELECT value FROM json_each(?))
            """)
        var out: [Int64: [Int64: ReportGroups]] = [:]
        for (source, cls) in sources {
            guard var g = volumes[source], let name = classes[cls] else { continue }
            g.className = name
            out[source, default: [:]][cls] = g
        }
        return out
    }

    private func groups(ids: [Int64], sql: String) throws -> [Int64: ReportGroups] {
        try db.read { db in
            var out: [Int64: ReportGroups] = [:]
            let rows = try Row.fetchCursor(db, sql: sql, arguments: [Self.idList(ids)])
            while let r = try rows.next() {
                out[r["id"]] = ReportGroups(modality: r["modality"], className: r["class"], dataset: r["dataset"], caseID: r["case_id"])
            }
            return out
        }
    }

    /// Cases joined by a shared stored image (a split group: the same scan in two datasets or
    /// cases), each with its group's first case; cases in no group are absent. Such cases are not
    /// independent, so the leaderboard resamples and tests them as one.
    public func caseGroups() throws -> [Int64: Int64] {
        try db.read { try SplitGroups.scan($0).roots }
    }

    /// What the catalog holds, as the highest id and count of its images and masks and its last
    /// ingest run: any ingest changes it, so keys built on it (packs) go stale with the catalog.
    public func contentState() throws -> [Int64] {
        try db.read { db in
            try ["SELECT COALESCE(MAX(id), 0) FROM images", "SELECT COUNT(*) FROM images", "SELECT COALESCE(MAX(id), 0) FROM masks",
                 "SELECT COUNT(*) FROM masks", "SELECT COALESCE(MAX(id), 0) FROM ingest_runs"].map { try Int64.fetchOne(db, sql: $0) ?? 0 }
        }
    }
}
