import Catalog
import Foundation
import GRDB
@testable import TestSupport
import XCTest
@testable import Eval

/// Evaluation's tables live beside the catalog's under migrations of their own, and read their
/// groups back through the catalog.
final class EvalStoreTests: TemporaryDirectoryTestCase {
    /// One CT image with a liver and a spleen mask; returns the mask ids.
    func catalogWithTwoMasks(_ path: String) throws -> (Catalog, [Int64]) {
        let c = try Catalog(path: path, shardDirectory: dir.appendingPathComponent("shards"))
        let d = try c.registerDataset(.init(name: "kits", title: nil, layout: "kits", modality: "ct", licence: nil, citation: nil, manifest: ""))
        let (ct, liver, spleen, shard) = (try c.modalityID("ct"), try c.classID("liver"), try c.classID("spleen"), try c.shardID("s.mcs"))
        let transform = SliceTransform(axis: "axial", content: [64, 64], flipped: [false, false, false], index: 0, permutation: [0, 1, 2],
                                       plane: [64, 64], rowsFlipped: false, size: 64, sourceSpacing: [1, 1, 1])
        let image = NewImage(caseName: "case_00000", modalityID: ct, axis: "axial", slice: 0, width: 64, height: 64, channels: 1, origWidth: 64,
                             origHeight: 64, spacing: [1, 1, 1], transform: transform, blob: .new(hash: "h", shardID: shard, offset: 0, length: 10),
                             masks: [NewMask(classID: liver, instance: 0, area: 20, box: [1, 1, 5, 4], shardID: shard, offset: 10, length: 3),
                                     NewMask(classID: spleen, instance: 0, area: 9, box: [9, 9, 11, 11], shardID: shard, offset: 13, length: 2)])
        try c.commit([SourceResult(datasetID: d, datasetName: "kits", path: "case_00000", maskPath: nil, size: 1, mtime: 0, stamp: "1",
                                   runID: try c.beginRun(options: "{}"), outcome: .done([image]))])
        return (c, try c.query(Selection()).map(\.id))
    }

    func testScoresRoundTripWithTheirGroups() throws {
        for path in [":memory:", dir.appendingPathComponent("c.sqlite").path] {
            let (catalog, masks) = try catalogWithTwoMasks(path)
            let store = try EvalStore(catalog: catalog)
            let run = try store.begin(name: "lite", model: "lite.pth", checkpointHash: "0", settings: EvalSettings(), replace: false)
            let variant = EvalStore.Variant(proto: "box", step: 0, output: "first")
            try store.record(run: run, masks: [
                .init(variant: variant, maskID: masks[0], scores: SegmentationScores(dice: 0.9, iou: 0.8, nsd: 0.7, hd95: 2), predictedIoU: 0.85),
                .init(variant: variant, maskID: masks[1], scores: SegmentationScores(dice: nil, iou: nil, nsd: nil, hd95: nil), predictedIoU: nil),
            ])
            try store.finish(run: run, images: 1, masks: 2, seconds: 1, examples: [])
            let scored = try store.maskScores(run: run).sorted { $0.id < $1.id }
            XCTAssertEqual(scored.map(\.className), ["liver", "spleen"], path)
            XCTAssertEqual(scored.map(\.modality), ["ct", "ct"])
            XCTAssertEqual(scored.map(\.dataset), ["kits", "kits"])
            XCTAssertEqual(scored.map(\.scores.dice), [0.9, nil])
            XCTAssertEqual(try store.runs().map(\.status), ["finished"])
            XCTAssertThrowsError(try store.begin(name: "lite", model: "x", checkpointHash: "1", settings: EvalSettings(), replace: false)) {
                XCTAssertTrue("\($0)".contains("an evaluation named 'lite' exists"), "\($0)")
            }
        }
    }

    /// A catalog whose evaluation tables came from the catalog's own former `v2_eval` migration
    /// keeps its runs; the migration is renamed to evaluation's, nothing is created twice.
    func testCatalogsFromBeforeEvalHadItsOwnMigrationsKeepTheirRuns() throws {
        let path = dir.appendingPathComponent("old.sqlite").path
        do {
            let (catalog, _) = try catalogWithTwoMasks(path)
            _ = try EvalStore(catalog: catalog).begin(name: "old", model: "m.pth", checkpointHash: "0", settings: EvalSettings(), replace: false)
        }
        let db = try DatabaseQueue(path: path)
        try db.write { try $0.execute(sql: "UPDATE grdb_migrations SET identifier = 'v2_eval' WHERE identifier = 'eval_v1_runs_scores_examples'") }
        try db.close()

        let store = try EvalStore(catalog: Catalog(path: path))
        XCTAssertEqual(try store.runs().map(\.name), ["old"])
        let applied = try DatabaseQueue(path: path).read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        XCTAssertEqual(applied, ["eval_v1_runs_scores_examples", "eval_v2_prompt_keys", "v1_catalog", "v3_blob_hashes_unindexed", "v4_mask_lists",
                                 "v5_unmapped_classes_and_official_splits"])
    }
}
