import Foundation
import GRDB
import Hashing

public enum Split: Int, CaseIterable, Codable, Sendable {
    case train = 0, val = 1, test = 2
    public var name: String { ["train", "val", "test"][rawValue] }
    public init?(name: String) {
        guard let i = ["train", "val", "test"].firstIndex(of: name.lowercased()) else { return nil }
        self.init(rawValue: i)
    }
}

/// Case-level split assignment: a pure function of (seed, dataset, case), so adding cases later
/// never moves an existing patient to another split.
public struct SplitPolicy: Codable, Equatable, Sendable {
    public var train: Double, val: Double, test: Double
    public var seed: UInt64
    /// Whole datasets put in one split (an external test set, say), by dataset name.
    public var datasets: [String: Split]?
    public init(train: Double = 0.8, val: Double = 0.1, test: Double = 0.1, seed: UInt64 = 0, datasets: [String: Split]? = nil) {
        self.train = train; self.val = val; self.test = test; self.seed = seed; self.datasets = datasets
    }
    /// `official`: the split the dataset's own folders give the case (its test folder, say); a whole
    /// dataset put in one split by the policy still wins.
    public func split(dataset: String, case name: String, official: Split? = nil) -> Split {
        if let fixed = datasets?[dataset] { return fixed }
        if let official { return official }
        // Seeded FNV-1a, then a 64-bit finaliser so nearby names spread evenly over [0, 1).
        var h = StableHash.fnv1a("\(dataset)\u{1F}\(name)", basis: StableHash.offsetBasis ^ seed)
        h ^= h >> 33; h = h &* 0xff51afd7ed558ccd; h ^= h >> 33; h = h &* 0xc4ceb9fe1a85ec53; h ^= h >> 33
        let u = Double(h >> 11) / Double(1 << 53) * (train + val + test)
        return u < train ? .train : u < train + val ? .val : .test
    }
}

public struct CatalogError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The SQLite catalog (WAL) and the shard folder beside it.
///
/// Writes come from one thread at a time (the ingest writer); reads may run concurrently.
public final class Catalog {
    public let path: String
    public let shardDirectory: URL
    let db: any DatabaseWriter
    var classIDCache: [String: Int64] = [:]
    /// `catalog map-class` mappings, read once: ingest follows them.
    lazy var classMap: [String: String] = (try? readClassMap()) ?? [:]

    func readClassMap() throws -> [String: String] {
        try db.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT name, target FROM class_map").map { ($0["name"] as String, $0["target"] as String) })
        }
    }
    private var modalityIDs: [String: Int64] = [:]
    private var shardIDs: [String: Int64] = [:]
    var blobs = BlobIndex()

    /// `path` ":memory:" opens an in-memory database (tests); shards then go to `shardDirectory`.
    public init(path: String, shardDirectory: URL? = nil) throws {
        self.path = path
        if path == ":memory:" {
            db = try DatabaseQueue()
            self.shardDirectory = shardDirectory ?? FileManager.default.temporaryDirectory.appendingPathComponent("medcat-shards-\(UUID().uuidString)")
        } else {
            var config = Configuration()
            // Several processes may open one catalog at once (the ranks of a training run, an eval
            // beside it): wait for another's transaction instead of failing.
            config.busyMode = .timeout(60)
            config.prepareDatabase { db in
                // A large page cache keeps the pages that inserts touch in memory at millions of rows.
                // Fewer checkpoints: each rewrites every page the last transactions dirtied.
                try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -524288; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 100000")
            }
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            do { db = try DatabasePool(path: path, configuration: config) } catch {
                throw CatalogError("\(url.lastPathComponent): cannot open the catalog (\(error))")
            }
            self.shardDirectory = shardDirectory ?? url.deletingLastPathComponent().appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".shards")
        }
        try Schema.migrator.migrate(db)
    }

    // MARK: Vocabulary

    /// `mapped`: whether the name is one of classes.yaml's; an unmapped name is kept as a class of
    /// its own and listed by `catalog stats`. A name mapped by `mapClass` gives its target's id.
    /// `mapped` is asked only the first time a name is seen (ingest calls this once per mask).
    public func classID(_ name: String, description: String? = nil, mapped: @autoclosure () -> Bool = true) throws -> Int64 {
        if let id = classIDCache[name] { return id }
        if let target = classMap[name] {
            let id = try classID(target, mapped: mapped())
            classIDCache[name] = id
            return id
        }
        let mapped = mapped()
        let id = try db.write { db -> Int64 in
            // A name classes.yaml has learnt since it was first kept becomes mapped.
            try db.execute(sql: "INSERT INTO classes(name, description, mapped) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET mapped = MAX(mapped, excluded.mapped)",
                           arguments: [name, description, mapped])
            return try Int64.fetchOne(db, sql: "SELECT id FROM classes WHERE name = ?", arguments: [name])!
        }
        classIDCache[name] = id
        return id
    }

    public func modalityID(_ name: String) throws -> Int64 { try vocabularyID(table: "modalities", name: name, cache: &modalityIDs) }

    public func shardID(_ name: String) throws -> Int64 { try vocabularyID(table: "shards", name: name, cache: &shardIDs) }

    /// The id of `name` in a (id, name UNIQUE) table, inserting it the first time.
    private func vocabularyID(table: String, name: String, cache: inout [String: Int64]) throws -> Int64 {
        if let id = cache[name] { return id }
        let id = try db.write { db -> Int64 in
            try db.execute(sql: "INSERT INTO \(table)(name) VALUES (?) ON CONFLICT(name) DO NOTHING", arguments: [name])
            return try Int64.fetchOne(db, sql: "SELECT id FROM \(table) WHERE name = ?", arguments: [name])!
        }
        cache[name] = id
        return id
    }

    public struct DatasetInfo: Sendable {
        public var name: String, title: String?, layout: String, modality: String?, licence: String?, citation: String?, manifest: String
        public init(name: String, title: String?, layout: String, modality: String?, licence: String?, citation: String?, manifest: String) {
            self.name = name; self.title = title; self.layout = layout; self.modality = modality
            self.licence = licence; self.citation = citation; self.manifest = manifest
        }
    }

    public func registerDataset(_ d: DatasetInfo) throws -> Int64 {
        try db.write { db -> Int64 in
            try db.execute(sql: """
                INSERT INTO datasets(name, title, layout, modality, licence, citation, manifest) VALUES (?,?,?,?,?,?,?)
                ON CONFLICT(name) DO UPDATE SET title = excluded.title, layout = excluded.layout, modality = excluded.modality,
                    licence = excluded.licence, citation = excluded.citation, manifest = excluded.manifest
                """, arguments: [d.name, d.title, d.layout, d.modality, d.licence, d.citation, d.manifest])
            return try Int64.fetchOne(db, sql: "SELECT id FROM datasets WHERE name = ?", arguments: [d.name])!
        }
    }

    // MARK: Settings

    /// A random secret made once per catalog: identifiers read from DICOM headers (patient ids,
    /// series UIDs) enter the catalog only as hashes salted with it, so they match across runs into
    /// this catalog. It lives in its own file beside the catalog (`medcat.sqlite.salt`, readable by
    /// its owner only), never inside it: low-entropy ids could otherwise be found again by trying
    /// every candidate against a shared catalog.
    public func identifierSalt() throws -> String {
        if path == ":memory:" { return memorySalt }
        let url = URL(fileURLWithPath: path + ".salt")
        if let s = try? String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), s.count == 64 { return s }
        let salt = Self.randomSalt()
        guard FileManager.default.createFile(atPath: url.path, contents: Data((salt + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CatalogError("\(url.lastPathComponent): cannot write the identifier salt")
        }
        return salt
    }

    private lazy var memorySalt = Self.randomSalt()

    private static func randomSalt() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
    }

    public func splitPolicy() throws -> SplitPolicy {
        try db.read { db in
            guard let json = try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'split_policy'") else { return SplitPolicy() }
            return try JSONDecoder().decode(SplitPolicy.self, from: Data(json.utf8))
        }
    }

    /// Sets the split policy and re-assigns every case (and the copies of the split on images,
    /// masks, counts and mask lists) in one transaction.
    public func resplit(_ policy: SplitPolicy) throws {
        let json = String(decoding: try JSONEncoder().encode(policy), as: UTF8.self)
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO settings(key, value) VALUES ('split_policy', ?)", arguments: [json])
            let rows = try Row.fetchAll(db, sql: """
                SELECT cases.id, cases.name, cases.fixed_split, datasets.name AS dataset FROM cases JOIN datasets ON datasets.id = cases.dataset_id
                """)
            let update = try db.makeStatement(sql: "UPDATE cases SET split = ? WHERE id = ?")
            for r in rows {
                let s = policy.split(dataset: r["dataset"], case: r["name"], official: (r["fixed_split"] as Int?).flatMap(Split.init(rawValue:)))
                try update.execute(arguments: [s.rawValue, r["id"] as Int64])
            }
            try SplitGroups.join(db, propagate: false)
            try db.execute(sql: "UPDATE images SET split = (SELECT split FROM cases WHERE cases.id = images.case_id)")
            try db.execute(sql: "UPDATE masks SET split = (SELECT split FROM images WHERE images.id = masks.image_id)")
            try Self.rebuildCounts(db)
            try MaskLists.rebuild(db)
        }
    }

    static func rebuildCounts(_ db: Database) throws {
        try db.execute(sql: """
            DELETE FROM counts;
            INSERT INTO counts(dataset_id, modality_id, class_id, split, images, masks)
                SELECT dataset_id, modality_id, 0, split, COUNT(*), 0 FROM images GROUP BY 1, 2, 3, 4;
            INSERT INTO counts(dataset_id, modality_id, class_id, split, images, masks)
                SELECT dataset_id, modality_id, class_id, split, 0, COUNT(*) FROM masks GROUP BY 1, 2, 3, 4;
            """)
    }

    // MARK: Ingest runs and errors

    public func beginRun(options: String) throws -> Int64 {
        try db.write { db in
            try db.execute(sql: "INSERT INTO ingest_runs(started_at, options) VALUES (?, ?)", arguments: [Self.now(), options])
            return db.lastInsertedRowID
        }
    }

    public func finishRun(_ id: Int64, status: String) throws {
        try db.write { db in
            try db.execute(sql: """
                UPDATE ingest_runs SET finished_at = ?, status = ?,
                    files_done = (SELECT COUNT(*) FROM source_files WHERE run_id = ?1 AND status = 'done'),
                    files_rejected = (SELECT COUNT(*) FROM source_files WHERE run_id = ?1 AND status = 'rejected'),
                    images = (SELECT COALESCE(SUM(images), 0) FROM source_files WHERE run_id = ?1),
                    masks = (SELECT COALESCE(SUM(masks), 0) FROM source_files WHERE run_id = ?1)
                WHERE id = ?1
                """.replacingOccurrences(of: "?1", with: "\(id)"), arguments: [Self.now(), status])
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    public struct SourceState: Equatable, Sendable {
        public var stamp: String, status: String
    }

    /// What is already recorded for a dataset's files, for skipping unchanged ones.
    public func sourceStates(datasetID: Int64) throws -> [String: SourceState] {
        try db.read { db in
            var out: [String: SourceState] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT path, stamp, status FROM source_files WHERE dataset_id = ?", arguments: [datasetID])
            while let r = try rows.next() { out[r["path"]] = SourceState(stamp: r["stamp"], status: r["status"]) }
            return out
        }
    }

    /// Memory held by the index of stored image hashes, once a lookup or commit has read it.
    public var blobIndexBytes: Int { blobs.bytes }

    /// The stored blob with this content hash. For the writer's thread, like `commit`: it reads
    /// the writer's in-memory index.
    public func blobID(hash: String) throws -> Int64? {
        try db.read { db in
            try blobs.catchUp(db)
            return try blobs.find(db, hash: hash)
        }
    }
}
