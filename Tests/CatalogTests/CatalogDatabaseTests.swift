import Foundation
import Geometry
import GRDB
import XCTest

@testable import Catalog
@testable import TestSupport

/// The SQLite catalog on an in-memory and an on-disk database.
final class CatalogDatabaseTests: TemporaryDirectoryTestCase {
    func catalogs() throws -> [Catalog] {
        [try Catalog(path: ":memory:"), try Catalog(path: dir.appendingPathComponent("c.sqlite").path)]
    }

    /// One volume of `slices` images, each with a mask of class `cls` and one of class `other`.
    func volume(_ c: Catalog, dataset: Int64, name: String, path: String, caseName: String, slices: Int, modality: String = "ct",
                cls: String = "liver", other: String = "spleen", hashPrefix: String? = nil) throws -> SourceResult {
        let m = try c.modalityID(modality), a = try c.classID(cls), b = try c.classID(other), shard = try c.shardID("s.mcs")
        let images = (0..<slices).map { s in
            NewImage(caseName: caseName, modalityID: m, axis: "z", slice: s, width: 256, height: 256, channels: 1, origWidth: 512,
                     origHeight: 512, spacing: [0.8, 0.8, 2.5],
                     transform: SliceTransform(axis: "axial", content: [256, 256], flipped: [false, false, false], index: s, permutation: [0, 1, 2],
                                               plane: [512, 512], rowsFlipped: false, size: 256, sourceSpacing: [0.4, 0.4, 2.5]),
                     blob: .new(hash: "\(hashPrefix ?? path)-\(s)", shardID: shard, offset: Int64(s * 1000), length: 900),
                     masks: [NewMask(classID: a, instance: 0, area: 100 + s, box: [1, 2, 30, 40], shardID: shard, offset: 1, length: 10),
                             NewMask(classID: b, instance: 0, area: 50, box: [5, 5, 9, 9], shardID: shard, offset: 2, length: 10)])
        }
        return SourceResult(datasetID: dataset, datasetName: name, path: path, maskPath: nil, size: 1, mtime: 0, stamp: "1:0",
                            runID: try run(c), outcome: .done(images))
    }

    func run(_ c: Catalog) throws -> Int64 {
        try c.db.read { try Int64.fetchOne($0, sql: "SELECT MAX(id) FROM ingest_runs") } ?? c.beginRun(options: "{}")
    }

    func dataset(_ c: Catalog, _ name: String) throws -> Int64 {
        try c.registerDataset(.init(name: name, title: nil, layout: "kits", modality: "ct", licence: nil, citation: nil, manifest: "name: \(name)"))
    }

    /// The mask lists against a scan of the masks table, for every single-column selection and
    /// paging from several points.
    func assertListsMatchMasks(_ c: Catalog, file: StaticString = #filePath, line: UInt = #line) throws {
        try c.db.read { db in
            let all = try Int64.fetchAll(db, sql: "SELECT id FROM masks ORDER BY id")
            var selections: [(Selection, String)] = [(Selection(), "1")]
            for (id, name) in try Row.fetchAll(db, sql: "SELECT id, name FROM classes").map({ ($0[0] as Int64, $0[1] as String) }) {
                selections.append((Selection(classes: [name]), "class_id = \(id)"))
            }
            for s in Split.allCases { selections.append((Selection(splits: [s]), "split = \(s.rawValue)")) }
            for (id, name) in try Row.fetchAll(db, sql: "SELECT id, name FROM datasets").map({ ($0[0] as Int64, $0[1] as String) }) {
                selections.append((Selection(classes: ["spleen"], datasets: [name]), "class_id = (SELECT id FROM classes WHERE name = 'spleen') AND dataset_id = \(id)"))
            }
            for (selection, condition) in selections {
                let expected = try Int64.fetchAll(db, sql: "SELECT id FROM masks WHERE \(condition) ORDER BY id")
                XCTAssertEqual(try c.maskIDs(db, selection), expected, condition, file: file, line: line)
                for after in [0, all.count / 3, all.count / 2].map({ all.isEmpty ? 0 : all[$0] }) {
                    XCTAssertEqual(try c.maskIDs(db, selection, after: after, limit: 5), Array(expected.filter { $0 > after }.prefix(5)),
                                   "\(condition) after \(after)", file: file, line: line)
                }
            }
        }
        XCTAssertEqual(try c.count(Selection()), try c.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM masks") }, file: file, line: line)
    }

    func testMaskIDListsRoundTrip() {
        let ids: [Int64] = [5, 6, 7, 200, 201, 70_000, 1 << 40, (1 << 40) + 1]
        var out: [Int64] = []
        MaskLists.decode(MaskLists.encode(ids), first: 5, into: &out)
        XCTAssertEqual(out, ids)
        XCTAssertEqual(MaskLists.encode([9, 10, 11]).count, 3, "one byte per small gap")
    }

    func testMigrationsAreNamedAndIdempotent() throws {
        let path = dir.appendingPathComponent("m.sqlite").path
        _ = try Catalog(path: path)
        let again = try Catalog(path: path)  // re-opening migrates nothing twice
        let applied = try again.db.read { try Schema.migrator.appliedIdentifiers($0) }
        XCTAssertEqual(applied, ["v1_catalog", "v3_blob_hashes_unindexed", "v4_mask_lists", "v5_unmapped_classes_and_official_splits"])
        let mode = try again.db.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        XCTAssertEqual(mode, "wal")
    }

    func testCommitCountsStatsAndQueries() throws {
        for c in try catalogs() {
            let d1 = try dataset(c, "kits19"), d2 = try dataset(c, "lits")
            try c.commit([try volume(c, dataset: d1, name: "kits19", path: "a", caseName: "case_0", slices: 10),
                          try volume(c, dataset: d1, name: "kits19", path: "b", caseName: "case_1", slices: 5),
                          try volume(c, dataset: d2, name: "lits", path: "c", caseName: "p0", slices: 4, modality: "mr_t1", cls: "kidney")])
            let s = try c.stats()
            XCTAssertEqual(s.images, 19)
            XCTAssertEqual(s.masks, 38)
            XCTAssertEqual(s.cases, 3)
            XCTAssertEqual(s.datasets, 2)
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: s.byModality.map { ($0.name, $0.images) }), ["ct": 15, "mr_t1": 4])
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: s.byClass.map { ($0.name, $0.masks) }), ["liver": 15, "spleen": 19, "kidney": 4])
            XCTAssertEqual(s.bySplit.map(\.images).reduce(0, +), 19)
            // The running totals equal a full recount.
            let recount = try c.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM masks") }
            XCTAssertEqual(recount, 38)

            let liver = try c.query(Selection(modalities: ["ct"], classes: ["liver"]))
            XCTAssertEqual(liver.count, 15)
            XCTAssertEqual(Set(liver.map(\.case)), ["case_0", "case_1"])
            XCTAssertEqual(liver.first?.bbox, [1, 2, 30, 40])
            XCTAssertEqual(try c.count(Selection(classes: ["spleen"], datasets: ["lits"])), 4)
            let page = try c.query(Selection(), limit: 7, afterID: liver[2].id)
            XCTAssertEqual(page.count, 7)
            XCTAssertTrue(page.allSatisfy { $0.id > liver[2].id })
            XCTAssertThrowsError(try c.query(Selection(classes: ["pancreas"]))) { XCTAssertTrue("\($0)".contains("unknown class 'pancreas'"), "\($0)") }
            // A second commit: lists of two commits, merged in id order.
            try c.commit([try volume(c, dataset: d2, name: "lits", path: "d", caseName: "p1", slices: 3, cls: "liver"),
                          try volume(c, dataset: d1, name: "kits19", path: "e", caseName: "case_0", slices: 2)])
            try assertListsMatchMasks(c)
            XCTAssertEqual(try c.query(Selection(classes: ["liver"]), limit: 100).map(\.id),
                           try c.db.read { try Int64.fetchAll($0, sql: "SELECT id FROM masks WHERE class_id = (SELECT id FROM classes WHERE name = 'liver') ORDER BY id") })
        }
    }

    func testIdenticalPixelsAreStoredOnce() throws {
        for c in try catalogs() {
            let d = try dataset(c, "x")
            try c.commit([try volume(c, dataset: d, name: "x", path: "a", caseName: "c0", slices: 3, hashPrefix: "same"),
                          try volume(c, dataset: d, name: "x", path: "b", caseName: "c1", slices: 3, hashPrefix: "same")])
            XCTAssertEqual(try c.stats().images, 6)
            XCTAssertEqual(try c.stats().blobs, 3)
            XCTAssertNotNil(try c.blobID(hash: "same-2"))
        }
    }

    /// The writer's in-memory hash index follows blobs that another connection stored, and is read
    /// again after a rolled-back commit (whose blob ids another connection may then take).
    func testIdenticalPixelsAreStoredOnceAcrossConnections() throws {
        let path = dir.appendingPathComponent("c.sqlite").path
        let a = try Catalog(path: path), b = try Catalog(path: path)
        let d = try dataset(a, "x")
        func blobs() throws -> Int { try a.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blobs") } ?? -1 }
        try a.commit([try volume(a, dataset: d, name: "x", path: "a", caseName: "c0", slices: 2, hashPrefix: "p")])
        try b.commit([try volume(b, dataset: d, name: "x", path: "b", caseName: "c1", slices: 3, hashPrefix: "p")])
        XCTAssertEqual(try blobs(), 3)
        try a.commit([try volume(a, dataset: d, name: "x", path: "c", caseName: "c2", slices: 3, hashPrefix: "p")])
        XCTAssertEqual(try blobs(), 3, "a sees p-2, which b stored after a had read the blobs")

        // a's commit stores a blob, then fails on an image that points at no blob: all of it rolls back.
        var broken = try volume(a, dataset: d, name: "x", path: "d", caseName: "c3", slices: 2, hashPrefix: "q")
        guard case .done(var images) = broken.outcome else { return XCTFail() }
        images[1].blob = .existing(999_999)
        broken.outcome = .done(images)
        XCTAssertThrowsError(try a.commit([broken]))
        XCTAssertEqual(try blobs(), 3)
        // b takes the blob id that a's rolled-back commit had used; a must then find b's row.
        try b.commit([try volume(b, dataset: d, name: "x", path: "e", caseName: "c4", slices: 1, hashPrefix: "r")])
        try a.commit([try volume(a, dataset: d, name: "x", path: "f", caseName: "c5", slices: 1, hashPrefix: "r")])
        XCTAssertEqual(try blobs(), 4)
        XCTAssertEqual(try a.blobID(hash: "r-0"), try b.blobID(hash: "r-0"))
        XCTAssertNil(try a.blobID(hash: "q-0"))
    }

    /// A catalog written before v3 keeps its blobs, loses the hash index, and still deduplicates.
    func testBlobHashIndexMigration() throws {
        let path = dir.appendingPathComponent("old.sqlite").path
        let old = try DatabaseQueue(path: path)
        try Schema.migrator.migrate(old, upTo: "v1_catalog")
        try old.write { db in
            try db.execute(sql: "INSERT INTO shards(name) VALUES ('s.mcs')")
            try db.execute(sql: "INSERT INTO blobs(hash, shard_id, offset, length) VALUES ('h-0', 1, 0, 10), ('h-1', 1, 10, 20)")
        }
        try old.close()
        let c = try Catalog(path: path)
        let rows = try c.db.read { try Row.fetchAll($0, sql: "SELECT id, hash, shard_id, offset, length FROM blobs ORDER BY id") }
        XCTAssertEqual(rows.map { "\($0[0] as Int64) \($0[1] as String) \($0[2] as Int64) \($0[3] as Int64) \($0[4] as Int64)" },
                       ["1 h-0 1 0 10", "2 h-1 1 10 20"])
        let indexes = try c.db.read { try Row.fetchAll($0, sql: "PRAGMA index_list(blobs)") }
        XCTAssertTrue(indexes.isEmpty, "\(indexes)")
        XCTAssertEqual(try c.blobID(hash: "h-1"), 2)
        let d = try dataset(c, "x")
        try c.commit([try volume(c, dataset: d, name: "x", path: "a", caseName: "c0", slices: 3, hashPrefix: "h")])
        XCTAssertEqual(try c.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM blobs") }, 3)
        XCTAssertEqual(try c.db.read { try Int64.fetchAll($0, sql: "SELECT blob_id FROM images ORDER BY slice") }, [1, 2, 3])
    }

    /// A catalog written before v4 gets lists built from its masks, and its per-mask index dropped.
    func testMaskListMigration() throws {
        let path = dir.appendingPathComponent("old.sqlite").path
        do {
            let c = try Catalog(path: path)
            let d = try dataset(c, "x")
            try c.commit((0..<3).map { try! volume(c, dataset: d, name: "x", path: "v\($0)", caseName: "case\($0)", slices: 4) })
        }
        let db = try DatabaseQueue(path: path)
        try db.write { db in
            try db.execute(sql: """
                DELETE FROM mask_lists; DROP TABLE mask_lists;
                CREATE INDEX masks_select ON masks(class_id, modality_id, split);
                DELETE FROM grdb_migrations WHERE identifier = 'v4_mask_lists';
                """)
        }
        try db.close()
        let c = try Catalog(path: path)
        try assertListsMatchMasks(c)
        XCTAssertEqual(try c.count(Selection(classes: ["liver"])), 12)
        XCTAssertNil(try c.db.read { try String.fetchOne($0, sql: "SELECT name FROM sqlite_master WHERE name = 'masks_select'") })
    }

    func testReplacingASourceKeepsCountsRight() throws {
        for c in try catalogs() {
            let d = try dataset(c, "x")
            try c.commit([try volume(c, dataset: d, name: "x", path: "a", caseName: "c0", slices: 6)])
            try c.commit([try volume(c, dataset: d, name: "x", path: "a", caseName: "c0", slices: 2, cls: "kidney", hashPrefix: "v2")])
            let s = try c.stats()
            XCTAssertEqual(s.images, 2)
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: s.byClass.map { ($0.name, $0.masks) }), ["kidney": 2, "spleen": 2])
            XCTAssertEqual(try c.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM images") }, 2)
            // A replaced file in the middle of later ones: its ids leave the lists, the others stay.
            try c.commit([try volume(c, dataset: d, name: "x", path: "b", caseName: "c1", slices: 3),
                          try volume(c, dataset: d, name: "x", path: "c", caseName: "c2", slices: 2)])
            try c.commit([try volume(c, dataset: d, name: "x", path: "b", caseName: "c1", slices: 1, hashPrefix: "v3")])
            try assertListsMatchMasks(c)
            XCTAssertEqual(try c.count(Selection(classes: ["spleen"])), 5)
            // One file twice in a batch: the second replaces the first, whose lists are not stored yet.
            try c.commit([try volume(c, dataset: d, name: "x", path: "g", caseName: "c3", slices: 4, hashPrefix: "g1"),
                          try volume(c, dataset: d, name: "x", path: "g", caseName: "c3", slices: 1, hashPrefix: "g2")])
            try assertListsMatchMasks(c)
            XCTAssertEqual(try c.count(Selection(classes: ["spleen"])), 6)
            XCTAssertEqual(try c.stats().byClass.first { $0.name == "spleen" }?.masks, 6)
            XCTAssertEqual(try c.query(Selection(), limit: 0).count, 0)
        }
    }

    func testRejectedSourcesRecordErrors() throws {
        for c in try catalogs() {
            let d = try dataset(c, "x")
            try c.commit([SourceResult(datasetID: d, datasetName: "x", path: "bad.nii.gz", maskPath: nil, size: 3, mtime: 0, stamp: "3:0",
                                       runID: try run(c), outcome: .rejected(stage: "read image", message: "NIfTI: data is truncated"))])
            let e = try c.errors()
            XCTAssertEqual(e.count, 1)
            XCTAssertEqual(e[0].path, "bad.nii.gz")
            XCTAssertEqual(e[0].message, "NIfTI: data is truncated")
            XCTAssertEqual(try c.stats().rejectedFiles, 1)
            XCTAssertEqual(try c.sourceStates(datasetID: d)["bad.nii.gz"], Catalog.SourceState(stamp: "3:0", status: "rejected"))
        }
    }

    func testSplitPolicyIsStableAndNearItsRatios() {
        let p = SplitPolicy()
        var counts = [0, 0, 0]
        for i in 0..<10_000 { counts[p.split(dataset: "d", case: "case_\(i)").rawValue] += 1 }
        XCTAssertEqual(Double(counts[0]) / 10_000, 0.8, accuracy: 0.02)
        XCTAssertEqual(Double(counts[1]) / 10_000, 0.1, accuracy: 0.02)
        XCTAssertEqual(p.split(dataset: "d", case: "case_7"), SplitPolicy().split(dataset: "d", case: "case_7"))
        let other = SplitPolicy(seed: 99)
        XCTAssertTrue((0..<100).contains { p.split(dataset: "d", case: "c\($0)") != other.split(dataset: "d", case: "c\($0)") })
    }

    func testResplitMovesWholeCasesAndRecounts() throws {
        for c in try catalogs() {
            let d = try dataset(c, "x")
            try c.commit((0..<20).map { try! volume(c, dataset: d, name: "x", path: "v\($0)", caseName: "case\($0)", slices: 2) })
            try c.resplit(SplitPolicy(train: 0.5, val: 0.25, test: 0.25, seed: 7))
            let perCase = try c.db.read { db in
                try Row.fetchAll(db, sql: "SELECT c.name, COUNT(DISTINCT i.split), MIN(i.split), c.split FROM images i JOIN cases c ON c.id = i.case_id GROUP BY c.id")
            }
            for r in perCase {
                XCTAssertEqual(r[1] as Int, 1)
                XCTAssertEqual(r[2] as Int, r[3] as Int)
                XCTAssertEqual(r[3] as Int, SplitPolicy(train: 0.5, val: 0.25, test: 0.25, seed: 7).split(dataset: "x", case: r[0]).rawValue)
            }
            let s = try c.stats()
            XCTAssertEqual(s.bySplit.map(\.images).reduce(0, +), 40)
            XCTAssertEqual(s.bySplit.map { $0.cases ?? 0 }.reduce(0, +), 20)
            XCTAssertEqual(try c.splitPolicy().seed, 7)
            try assertListsMatchMasks(c)
            XCTAssertEqual(try Split.allCases.map { try c.count(Selection(splits: [$0])) }, s.bySplit.map(\.masks))
        }
    }

    func testWholeDatasetSplits() throws {
        for c in try catalogs() {
            let x = try dataset(c, "x"), y = try dataset(c, "y")
            try c.commit((0..<6).map { try! volume(c, dataset: x, name: "x", path: "v\($0)", caseName: "case\($0)", slices: 2) }
                         + (0..<4).map { try! volume(c, dataset: y, name: "y", path: "w\($0)", caseName: "case\($0)", slices: 1) })
            try c.resplit(SplitPolicy(train: 1, val: 0, test: 0, datasets: ["y": .test]))
            let s = try c.stats()
            XCTAssertEqual(s.bySplit.map(\.images), [12, 0, 4])
            XCTAssertEqual(try c.splitPolicy().datasets, ["y": .test], "stored for later ingests")
            // Policies stored before the field existed still decode.
            XCTAssertNil(try JSONDecoder().decode(SplitPolicy.self, from: Data(#"{"train":0.8,"val":0.1,"test":0.1,"seed":0}"#.utf8)).datasets)
        }
    }
}
