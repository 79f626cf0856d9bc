import Catalog
import Foundation
import GRDB

/// Evaluation runs and their per-mask and per-case scores, kept in the catalog so that any number
/// of models and runs can be compared later (`medcat leaderboard`).
public struct EvalStore {
    public let catalog: Catalog
    public init(catalog: Catalog) { self.catalog = catalog }

    /// Which protocol step and model output a score belongs to.
    public struct Variant: Hashable, Codable, Comparable, Sendable {
        public var proto: String, step: Int, output: String
        public static func < (a: Variant, b: Variant) -> Bool { (a.proto, a.step, a.output) < (b.proto, b.step, b.output) }
        public var label: String { proto + (step > 0 ? "@\(step)" : "") + " · " + output }
    }

    public struct MaskScore: Sendable {
        public var variant: Variant, maskID: Int64, scores: SegmentationScores, predictedIoU: Double?
    }

    public struct CaseScore: Sendable {
        public var variant: Variant, sourceID: Int64, axis: String, classID: Int64, instance: Int, slices: Int, scores: SegmentationScores
    }

    public struct Example: Sendable {
        public var variant: Variant, maskID: Int64, kind: String, dice: Double, width: Int, height: Int, prediction: [UInt8]
    }

    public struct Run: Codable, Sendable {
        public var id: Int64, name: String, model: String, checkpointHash: String, status: String
        public var startedAt: String, finishedAt: String?, images: Int, masks: Int, seconds: Double?
        public var settings: EvalSettings
        enum CodingKeys: String, CodingKey {
            case id, name, model, checkpointHash = "checkpoint_hash", status, startedAt = "started_at", finishedAt = "finished_at", images, masks, seconds, settings
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// Starts a run; a finished run of that name is an error unless `replace`, which deletes it first.
    public func begin(name: String, model: String, checkpointHash: String, settings: EvalSettings, replace: Bool) throws -> Int64 {
        let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        return try catalog.db.write { db in
            if let old = try Int64.fetchOne(db, sql: "SELECT id FROM eval_runs WHERE name = ?", arguments: [name]) {
                guard replace else { throw CatalogError("an evaluation named '\(name)' exists; choose another --name or pass --replace") }
                for table in ["eval_masks", "eval_cases", "eval_examples"] { try db.execute(sql: "DELETE FROM \(table) WHERE run_id = ?", arguments: [old]) }
                try db.execute(sql: "DELETE FROM eval_runs WHERE id = ?", arguments: [old])
            }
            try db.execute(sql: "INSERT INTO eval_runs (name, model, checkpoint_hash, settings, started_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [name, model, checkpointHash, json, Self.now()])
            return db.lastInsertedRowID
        }
    }

    /// One transaction per image (its masks) or per finished volume (its cases).
    public func record(run: Int64, masks: [MaskScore], cases: [CaseScore] = []) throws {
        try catalog.db.write { db in
            let m = try db.cachedStatement(sql: "INSERT INTO eval_masks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for r in masks {
                try m.execute(arguments: [run, r.variant.proto, r.variant.step, r.variant.output, r.maskID,
                                          r.scores.dice, r.scores.iou, r.scores.nsd, r.scores.hd95, r.predictedIoU])
            }
            let c = try db.cachedStatement(sql: "INSERT INTO eval_cases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for r in cases {
                try c.execute(arguments: [run, r.variant.proto, r.variant.step, r.variant.output, r.sourceID, r.axis, r.classID, r.instance,
                                          r.slices, r.scores.dice, r.scores.iou, r.scores.nsd, r.scores.hd95])
            }
        }
    }

    public func finish(run: Int64, images: Int, masks: Int, seconds: Double, examples: [Example]) throws {
        try catalog.db.write { db in
            for e in examples {
                let bits = e.prediction.withUnsafeBufferPointer { MaskBits.pack($0, width: e.width, height: e.height, box: (0, 0, e.width - 1, e.height - 1)) }
                try db.execute(sql: "INSERT INTO eval_examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               arguments: [run, e.variant.proto, e.variant.step, e.variant.output, e.maskID, e.kind, e.dice, e.width, e.height, Data(bits)])
            }
            try db.execute(sql: "UPDATE eval_runs SET status = 'finished', finished_at = ?, images = ?, masks = ?, seconds = ? WHERE id = ?",
                           arguments: [Self.now(), images, masks, seconds, run])
        }
    }

    public func classIDs() throws -> [String: Int64] {
        try catalog.db.read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT name, id FROM classes").map { ($0[0] as String, $0[1] as Int64) })
        }
    }

    // MARK: reading back

    public func runs(names: [String] = []) throws -> [Run] {
        let all: [Run] = try catalog.db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, name, model, checkpoint_hash, status, started_at, finished_at, images, masks, seconds, settings FROM eval_runs ORDER BY id
                """).map { r in
                Run(id: r[0], name: r[1], model: r[2], checkpointHash: r[3], status: r[4], startedAt: r[5], finishedAt: r[6],
                    images: r[7], masks: r[8], seconds: r[9], settings: try JSONDecoder().decode(EvalSettings.self, from: Data((r[10] as String).utf8)))
            }
        }
        guard !names.isEmpty else { return all }
        return try names.map { name in
            guard let run = all.first(where: { $0.name == name }) else {
                throw CatalogError("no evaluation named '\(name)'; the catalog has: \(all.isEmpty ? "none" : all.map(\.name).joined(separator: ", "))")
            }
            return run
        }
    }

    /// A score with the groups it is reported under.
    public struct Scored: Sendable {
        public var variant: Variant, id: Int64, modality: String, className: String, dataset: String, scores: SegmentationScores
    }

    public func maskScores(run: Int64) throws -> [Scored] {
        try scored(sql: """
            SELECT e.protocol, e.step, e.output, e.mask_id, mo.name, k.name, d.name, e.dice, e.iou, e.nsd, e.hd95
            FROM eval_masks e JOIN masks m ON m.id = e.mask_id JOIN modalities mo ON mo.id = m.modality_id
            JOIN classes k ON k.id = m.class_id JOIN datasets d ON d.id = m.dataset_id WHERE e.run_id = ?
            """, run)
    }

    public func caseScores(run: Int64) throws -> [Scored] {
        try scored(sql: """
            SELECT e.protocol, e.step, e.output, e.source_id, mo.name, k.name, d.name, e.dice, e.iou, e.nsd, e.hd95
            FROM eval_cases e JOIN source_files s ON s.id = e.source_id JOIN images i ON i.id = s.first_image_id
            JOIN modalities mo ON mo.id = i.modality_id JOIN classes k ON k.id = e.class_id JOIN datasets d ON d.id = s.dataset_id
            WHERE e.run_id = ?
            """, run)
    }

    private func scored(sql: String, _ run: Int64) throws -> [Scored] {
        try catalog.db.read { db in
            try Row.fetchAll(db, sql: sql, arguments: [run]).map { r in
                Scored(variant: Variant(proto: r[0], step: r[1], output: r[2]), id: r[3], modality: r[4], className: r[5], dataset: r[6],
                       scores: SegmentationScores(dice: r[7], iou: r[8], nsd: r[9], hd95: r[10]))
            }
        }
    }

    public func examples(run: Int64) throws -> [Example] {
        try catalog.db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT protocol, step, output, mask_id, kind, dice, width, height, prediction FROM eval_examples WHERE run_id = ? ORDER BY kind, dice DESC
                """, arguments: [run]).map { r in
                let (w, h): (Int, Int) = (r[6], r[7])
                let bits: Data = r[8]
                return Example(variant: Variant(proto: r[0], step: r[1], output: r[2]), maskID: r[3], kind: r[4], dice: r[5], width: w, height: h,
                               prediction: bits.withUnsafeBytes { MaskBits.unpack($0, width: w, height: h, box: (0, 0, w - 1, h - 1)) })
            }
        }
    }
}
