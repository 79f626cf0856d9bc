import Catalog
import Foundation
@testable import TestSupport
@testable import Eval

/// A catalog with evaluations and no pixels, for leaderboard tests: 4 modalities × `classes`
/// classes; 6 cases per modality, each one image holding a mask of every class. Run r scores the
/// masks `scored(r, mask)` admits (box protocol, first and oracle outputs), a little better than
/// run r − 1, with the first prompt `prompt(r, mask)`.
enum GeneratedEvaluations {
    static func catalog(at dir: URL, runs: Int, classes: Int = 50, scored: (Int, Int64) -> Bool = { _, _ in true },
                        prompt: (Int, Int64) -> Int64 = { _, _ in 7 }) throws -> Catalog {
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path, shardDirectory: dir.appendingPathComponent("shards"))
        let shard = try c.shardID("s.mcs"), run = try c.beginRun(options: "{}")
        let classIDs = try (0..<classes).map { try c.classID(String(format: "structure_%02d", $0)) }
        let transform = SliceTransform(axis: "axial", content: [64, 64], flipped: [false, false, false], index: 0, permutation: [0, 1, 2],
                                       plane: [64, 64], rowsFlipped: false, size: 64, sourceSpacing: [1, 1, 1])
        for modality in ["ct", "mr", "us", "fundus"] {
            let d = try c.registerDataset(.init(name: "\(modality)_set", title: nil, layout: "generic", modality: modality, licence: nil, citation: nil,
                                                manifest: ""))
            let m = try c.modalityID(modality)
            try c.commit((0..<6).map { k in
                let image = NewImage(caseName: "case_\(k)", modalityID: m, axis: "axial", slice: 0, width: 64, height: 64, channels: 1, origWidth: 64,
                                     origHeight: 64, spacing: [1, 1, 1], transform: transform,
                                     blob: .new(hash: "\(modality)-\(k)", shardID: shard, offset: 0, length: 10),
                                     masks: classIDs.map { NewMask(classID: $0, instance: 0, area: 20, box: [1, 1, 5, 4], shardID: shard, offset: 10, length: 3) })
                return SourceResult(datasetID: d, datasetName: "\(modality)_set", path: "\(modality)/case_\(k)", maskPath: nil, size: 1, mtime: 0,
                                    stamp: "1", runID: run, outcome: .done([image]))
            })
        }
        let masks = try c.query(Selection()).map(\.id)
        let store = try EvalStore(catalog: c)
        var rng = SeededGenerator(seed: 50)
        for r in 0..<runs {
            let id = try store.begin(name: "model_\(r)", model: "m\(r).pth", checkpointHash: "\(r)", settings: EvalSettings(protocols: [.box]), replace: false)
            let rows = masks.filter { scored(r, $0) }.flatMap { mask in
                ["first", "oracle"].map { output -> EvalStore.MaskScore in
                    let dice = min(1, max(0, 0.5 + 0.004 * Double(r) + Double.random(in: -0.2..<0.2, using: &rng)))
                    return .init(variant: .init(proto: "box", step: 0, output: output), maskID: mask,
                                 scores: SegmentationScores(dice: dice, iou: dice / (2 - dice), nsd: min(1, dice + 0.1), hd95: 10 * (1 - dice)),
                                 predictedIoU: nil, promptKey: prompt(r, mask))
                }
            }
            try store.record(run: id, masks: rows)
            try store.finish(run: id, images: 24, masks: rows.count / 2, seconds: 1, examples: [])
        }
        return c
    }
}
