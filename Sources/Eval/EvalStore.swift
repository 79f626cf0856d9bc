import Catalog
import Foundation
import Geometry
import GRDB
import Hashing

/// Evaluation runs and their per-mask and per-case scores, kept beside the catalog (EvalSchema.swift)
/// so that any number of models and runs can be compared later (`medcat leaderboard`).
public struct EvalStore {
    public let catalog: Catalog
    private let db: any DatabaseWriter

    public init(catalog: Catalog) throws {
        self.catalog = catalog
        db = try catalog.companionDatabase(migrations: EvalSchema.migrator)
    }

    /// Which protocol step and model output a score belongs to.
    public struct Variant: Hashable, Codable, Comparable, Sendable {
        public var proto: String, step: Int, output: String
        public static func < (a: Variant, b: Variant) -> Bool { (a.proto, a.step, a.output) < (b.proto, b.step, b.output) }
        /// The protocol with its step: "box", "clicks@3".
        public var protocolLabel: String { proto + (step > 0 ? "@\(step)" : "") }
        public var label: String { protocolLabel + " · " + output }
    }

    public struct MaskScore: Sendable {
        public var variant: Variant, maskID: Int64, scores: SegmentationScores, predictedIoU: Double?
        /// `Prompt.stableKey` of the protocol's first prompt: runs are compared only where it agrees.
        public var promptKey: Int64? = nil
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
        /// Each part's checkpoint hash, shortened: "a97979acfd01", or "67885045673e + 5f0e…" for a run
        /// made of parts (`EvalStore.extend`).
        public var shortHashes: String { checkpointHash.split(separator: " ").map { String($0.prefix(12)) }.joined(separator: " + ") }
        enum CodingKeys: String, CodingKey {
            case id, name, model, checkpointHash = "checkpoint_hash", status, startedAt = "started_at", finishedAt = "finished_at", images, masks, seconds, settings
        }
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// Starts a run; a finished run of that name is an error unless `replace`, which deletes it first.
    public func begin(name: String, model: String, checkpointHash: String, settings: EvalSettings, replace: Bool) throws -> Int64 {
        let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        return try db.write { db in
            if let old = try Int64.fetchOne(db, sql: "SELECT id FROM eval_runs WHERE name = ?", arguments: [name]) {
                guard replace else { throw EvalError("an evaluation named '\(name)' exists; choose another name or replace it") }
                for table in ["eval_masks", "eval_cases", "eval_examples"] { try db.execute(sql: "DELETE FROM \(table) WHERE run_id = ?", arguments: [old]) }
                try db.execute(sql: "DELETE FROM eval_runs WHERE id = ?", arguments: [old])
            }
            try db.execute(sql: "INSERT INTO eval_runs (name, model, checkpoint_hash, settings, started_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [name, model, checkpointHash, json, Self.now()])
            return db.lastInsertedRowID
        }
    }

    /// Reopens the finished run `name` to add another model's scores of other masks: the parts of a
    /// cross-validation, each fold's model scoring the cases it did not train on, reported as one
    /// run. The scoring settings must be the run's; `masks` (the new part's selection) must not hold a
    /// mask the run has scored.
    public func extend(name: String, model: String, checkpointHash: String, settings: EvalSettings, masks: [Int64]) throws -> Int64 {
        try db.write { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT id, settings, status FROM eval_runs WHERE name = ?", arguments: [name]) else {
                throw EvalError("no evaluation named '\(name)' to add to; run the first part without --add")
            }
            let id: Int64 = r["id"]
            guard r["status"] as String == "finished" else { throw EvalError("the evaluation '\(name)' did not finish; run it again with --replace") }
            var old = try JSONDecoder().decode(EvalSettings.self, from: Data((r["settings"] as String).utf8))
            if let field = old.scoringDifference(settings) {
                throw EvalError("the evaluation '\(name)' was scored with another \(field); a part added to it must be scored alike")
            }
            let scored = Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT mask_id FROM eval_masks WHERE run_id = ?", arguments: [id]))
            let shared = masks.filter(scored.contains)
            if !shared.isEmpty {
                throw EvalError("the evaluation '\(name)' has scored \(shared.count) of this selection's masks (mask \(shared[0]) the first): "
                                + "the parts of one evaluation must score different masks")
            }
            old.selection = old.selection.union(settings.selection)
            if old.limit != settings.limit { old.limit = nil }
            if old.sample != settings.sample { old.sample = nil }
            let json = String(decoding: try JSONEncoder().encode(old), as: UTF8.self)
            try db.execute(sql: """
                UPDATE eval_runs SET model = model || ' + ' || ?, checkpoint_hash = checkpoint_hash || ' ' || ?, settings = ?, status = 'running'
                WHERE id = ?
                """, arguments: [model, checkpointHash, json, id])
            return id
        }
    }

    /// One transaction per image (its masks) or per finished volume (its cases).
    public func record(run: Int64, masks: [MaskScore], cases: [CaseScore] = []) throws {
        try db.write { db in
            let m = try db.cachedStatement(sql: """
                INSERT INTO eval_masks(run_id, protocol, step, output, mask_id, dice, iou, nsd, hd95, predicted_iou, prompt_key)
                VALUES (:run, :protocol, :step, :output, :mask, :dice, :iou, :nsd, :hd95, :predicted, :prompt)
                """)
            for r in masks {
                try m.execute(arguments: ["run": run, "protocol": r.variant.proto, "step": r.variant.step, "output": r.variant.output,
                                          "mask": r.maskID, "dice": r.scores.dice, "iou": r.scores.iou, "nsd": r.scores.nsd,
                                          "hd95": r.scores.hd95, "predicted": r.predictedIoU, "prompt": r.promptKey])
            }
            let c = try db.cachedStatement(sql: """
                INSERT INTO eval_cases(run_id, protocol, step, output, source_id, axis, class_id, instance, slices, dice, iou, nsd, hd95)
                VALUES (:run, :protocol, :step, :output, :source, :axis, :class, :instance, :slices, :dice, :iou, :nsd, :hd95)
                """)
            for r in cases {
                try c.execute(arguments: ["run": run, "protocol": r.variant.proto, "step": r.variant.step, "output": r.variant.output,
                                          "source": r.sourceID, "axis": r.axis, "class": r.classID, "instance": r.instance, "slices": r.slices,
                                          "dice": r.scores.dice, "iou": r.scores.iou, "nsd": r.scores.nsd, "hd95": r.scores.hd95])
            }
        }
    }

    public func finish(run: Int64, images: Int, masks: Int, seconds: Double, examples: [Example]) throws {
        try db.write { db in
            for e in examples {
                let bits = e.prediction.withUnsafeBufferPointer { MaskBits.pack($0, width: e.width, height: e.height, box: Box2D(width: e.width, height: e.height)) }
                try db.execute(sql: """
                    INSERT INTO eval_examples(run_id, protocol, step, output, mask_id, kind, dice, width, height, prediction)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [run, e.variant.proto, e.variant.step, e.variant.output, e.maskID, e.kind, e.dice, e.width, e.height, Data(bits)])
            }
            try db.execute(sql: """
                UPDATE eval_runs SET status = 'finished', finished_at = ?, images = images + ?, masks = masks + ?, seconds = COALESCE(seconds, 0) + ?
                WHERE id = ?
                """,
                           arguments: [Self.now(), images, masks, seconds, run])
        }
    }

    // MARK: reading back

    public func runs(names: [String] = []) throws -> [Run] {
        let all: [Run] = try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM eval_runs ORDER BY id").map { r in
                Run(id: r["id"], name: r["name"], model: r["model"], checkpointHash: r["checkpoint_hash"], status: r["status"],
                    startedAt: r["started_at"], finishedAt: r["finished_at"], images: r["images"], masks: r["masks"], seconds: r["seconds"],
                    settings: try JSONDecoder().decode(EvalSettings.self, from: Data((r["settings"] as String).utf8)))
            }
        }
        guard !names.isEmpty else { return all }
        return try names.map { name in
            guard let run = all.first(where: { $0.name == name }) else {
                throw EvalError("no evaluation named '\(name)'; the catalog has: \(all.isEmpty ? "none" : all.map(\.name).joined(separator: ", "))")
            }
            return run
        }
    }

    /// A score with the groups it is reported under.
    public struct Scored: Sendable {
        public var variant: Variant
        /// What two runs must share for their scores to be compared: the mask and its first prompt,
        /// or the volume, class and instance of a 3D score.
        public var key: ItemKey
        public var caseID: Int64, modality: String, className: String, dataset: String, scores: SegmentationScores
        public var id: Int64 { key.id }

        public init(variant: Variant, key: ItemKey, caseID: Int64, modality: String, className: String, dataset: String, scores: SegmentationScores) {
            self.variant = variant; self.key = key; self.caseID = caseID; self.modality = modality; self.className = className
            self.dataset = dataset; self.scores = scores
        }
    }

    public struct ItemKey: Hashable, Sendable {
        /// The mask id, or the volume's source file id.
        public var id: Int64
        /// The first prompt's key (0 where a run predates prompt keys), or a 3D score's axis, class and instance.
        public var detail: Int64
        public init(id: Int64, detail: Int64) { self.id = id; self.detail = detail }
    }

    public func maskScores(run: Int64) throws -> [Scored] {
        let rows = try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT protocol, step, output, mask_id, dice, iou, nsd, hd95, prompt_key FROM eval_masks WHERE run_id = ?
                ORDER BY protocol, step, output, mask_id
                """,
                             arguments: [run])
        }
        let groups = try catalog.reportGroups(maskIDs: rows.map { $0["mask_id"] })
        return rows.compactMap { r in
            groups[r["mask_id"]].map { Self.scored(r, key: ItemKey(id: r["mask_id"], detail: r["prompt_key"] ?? 0), $0) }
        }
    }

    public func caseScores(run: Int64) throws -> [Scored] {
        let rows = try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT protocol, step, output, source_id, axis, class_id, instance, dice, iou, nsd, hd95 FROM eval_cases WHERE run_id = ?
                ORDER BY protocol, step, output, source_id, axis, class_id, instance
                """,
                             arguments: [run])
        }
        let groups = try catalog.reportGroups(sources: rows.map { (sourceID: $0["source_id"], classID: $0["class_id"]) })
        return rows.compactMap { r in
            let part = Int64(bitPattern: StableHash.fnv1a("\(r["axis"] as String)/\(r["class_id"] as Int64)/\(r["instance"] as Int)"))
            return groups[r["source_id"]]?[r["class_id"]].map { Self.scored(r, key: ItemKey(id: r["source_id"], detail: part), $0) }
        }
    }

    private static func scored(_ r: Row, key: ItemKey, _ g: ReportGroups) -> Scored {
        Scored(variant: Variant(proto: r["protocol"], step: r["step"], output: r["output"]), key: key, caseID: g.caseID, modality: g.modality,
               className: g.className, dataset: g.dataset, scores: SegmentationScores(dice: r["dice"], iou: r["iou"], nsd: r["nsd"], hd95: r["hd95"]))
    }

    public func examples(run: Int64) throws -> [Example] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM eval_examples WHERE run_id = ? ORDER BY kind, dice DESC", arguments: [run]).map { r in
                let (w, h): (Int, Int) = (r["width"], r["height"])
                let bits: Data = r["prediction"]
                return Example(variant: Variant(proto: r["protocol"], step: r["step"], output: r["output"]), maskID: r["mask_id"], kind: r["kind"],
                               dice: r["dice"], width: w, height: h,
                               prediction: bits.withUnsafeBytes { MaskBits.unpack($0, width: w, height: h, box: Box2D(width: w, height: h)) })
            }
        }
    }
}

extension Selection {
    /// A selection holding both: each filter the two share, an unfiltered field where either is one.
    func union(_ other: Selection) -> Selection {
        func merge<T: Equatable>(_ a: [T], _ b: [T]) -> [T] { a.isEmpty || b.isEmpty ? [] : a + b.filter { !a.contains($0) } }
        return Selection(modalities: merge(modalities, other.modalities), classes: merge(classes, other.classes),
                         datasets: merge(datasets, other.datasets), splits: merge(splits, other.splits))
    }
}
