import Catalog
import Foundation
import SAM
import Torch
import XCTest

@testable import TestSupport
@testable import Trainer

/// What multi-node and large-model training rest on: a pack that trains with no catalog, bf16
/// autocast, and activation checkpointing that changes nothing but memory.
final class TrainerScaleTests: TemporaryDirectoryTestCase {
    func model() throws -> Sam { try Sam(.vitDebug(imageSize: 32), seed: 1) }

    func config(_ change: (inout TrainConfig) -> Void = { _ in }) -> TrainConfig {
        var c = TrainConfig()
        c.batchSize = 3; c.masksPerImage = 2; c.seed = 5; c.validationImages = 0
        c.steps = 4; c.clickPasses = 1; c.warmupSteps = 0; c.learningRate = 1e-3; c.adamEps = 1e-6
        change(&c)
        return c
    }

    func weights(_ t: Trainer) throws -> [String: [Float]] {
        try Dictionary(uniqueKeysWithValues: t.sam.parameters.entries.map { ($0.name, try $0.tensor.floats()) })
    }

    func assertClose(_ a: [String: [Float]], _ b: [String: [Float]], _ tolerance: Float, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Set(a.keys), Set(b.keys), file: file, line: line)
        var worst: Float = 0
        for (k, x) in a { for (u, v) in zip(x, b[k]!) { worst = max(worst, abs(u - v)) } }
        XCTAssertLessThan(worst, tolerance, "largest parameter difference", file: file, line: line)
    }

    /// A pack copied elsewhere, with the catalog and its shards gone, trains exactly as the
    /// catalog's packed run does.
    func testACopiedPackTrainsWithoutTheCatalog() throws {
        let catalogDir = dir.appendingPathComponent("head")
        try FileManager.default.createDirectory(at: catalogDir, withIntermediateDirectories: true)
        var cat: Catalog? = try TrainerTests.catalog(in: catalogDir)
        let c = config { $0.shards = 3 }
        let fromCatalog = try Trainer(sam: model(), catalog: cat, config: c)
        for _ in 0..<c.steps { _ = try fromCatalog.trainStep() }
        let pack = try Pack.open(catalog: cat!, selection: c.selection, shards: 3).pack
        XCTAssertEqual(pack.selection, c.selection)
        let node = dir.appendingPathComponent("node1/pack")
        try FileManager.default.createDirectory(at: node.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: pack.directory, to: node)
        cat = nil
        try FileManager.default.removeItem(at: catalogDir)

        let copied = try Pack.load(node)
        XCTAssertEqual(copied.directory.path, node.path)
        XCTAssertEqual(copied.images.count, 21)
        let fromPack = try Trainer(sam: model(), catalog: nil, pack: copied, config: c)
        for _ in 0..<c.steps { _ = try fromPack.trainStep() }
        assertClose(try weights(fromCatalog), try weights(fromPack), 1e-6)
        XCTAssertThrowsError(try Trainer(sam: model(), catalog: nil, pack: copied, config: config { $0.shards = 3; $0.validationImages = 2 }).validate()) { XCTAssertTrue("\($0)".contains("validation reads the catalog"), "\($0)") }
        XCTAssertThrowsError(try Trainer(sam: model(), catalog: nil, pack: copied, config: config { $0.shards = 4 })) {
            XCTAssertTrue("\($0)".contains("the pack has 3 shards"), "\($0)")
        }

        try FileManager.default.removeItem(at: node.appendingPathComponent("pack-00001.mcs"))
        XCTAssertThrowsError(try Pack.load(node)) { XCTAssertTrue("\($0)".contains("shard pack-00001.mcs, named by pack.json, is missing"), "\($0)") }
        XCTAssertThrowsError(try Pack.load(dir)) { XCTAssertTrue("\($0)".contains("no pack here"), "\($0)") }
    }

    /// bf16 autocast over 20 steps: every step's loss within 1% of fp32's (bf16 keeps 8 bits of
    /// mantissa; measured: under 0.004 on losses near 3), both fall, and every parameter and
    /// optimiser state stays fp32.
    func testBF16TrainsLikeFP32WithFP32Weights() throws {
        let cat = try TrainerTests.catalog(in: dir)
        let c = config { $0.steps = 20; $0.augment = false }
        var runs: [Precision: (Trainer, [Double])] = [:]
        for precision in Precision.allCases {
            var pc = c
            pc.precision = precision
            let t = try Trainer(sam: model(), catalog: cat, config: pc)
            let losses = try (0..<pc.steps).map { _ in try t.trainStep().loss }
            runs[precision] = (t, losses)
        }
        let (fp32, bf16) = (runs[.fp32]!.1, runs[.bf16]!.1)
        let gaps = zip(fp32, bf16).map { abs($0 - $1) }
        for (gap, loss) in zip(gaps, fp32) { XCTAssertLessThan(gap, 0.01 * loss, "per-step loss gap, fp32 vs bf16: \(gaps)") }
        XCTAssertGreaterThan(gaps.max()!, 0, "bf16 really ran")
        print("bf16 vs fp32 loss gaps over \(c.steps) steps: max \(gaps.max()!), fp32 \(fp32.first!) → \(fp32.last!)")
        for losses in [fp32, bf16] { XCTAssertLessThan(losses.suffix(5).reduce(0, +), losses.prefix(5).reduce(0, +), "\(losses)") }
        let trainer = runs[.bf16]!.0
        for e in trainer.sam.parameters.entries { XCTAssertEqual(e.tensor.dtype, .f32, e.name) }
        for g in trainer.optimizers {
            let state = try g.optimizer.state(of: 0)  // step, exp_avg, exp_avg_sq
            XCTAssertEqual(state.count, 3)
            XCTAssertEqual(state.dropFirst().map(\.dtype), [.f32, .f32])
        }
    }

    /// Full fine-tuning with each encoder block recomputed in the backward pass reaches the same
    /// weights as without.
    func testCheckpointedActivationsTrainToTheSameWeights() throws {
        let cat = try TrainerTests.catalog(in: dir)
        var runs: [[String: [Float]]] = []
        for checkpointed in [false, true] {
            let t = try Trainer(sam: model(), catalog: cat, config: config { $0.checkpointActivations = checkpointed })
            XCTAssertEqual(t.sam.imageEncoder.checkpointBlocks, checkpointed)
            for _ in 0..<4 { _ = try t.trainStep() }
            runs.append(try weights(t))
        }
        assertClose(runs[0], runs[1], 1e-5)
        let start = try Dictionary(uniqueKeysWithValues: model().parameters.entries.map { ($0.name, try $0.tensor.floats()) })
        let moved = runs[0]["image_encoder.blocks.0.attn.qkv.weight"]!.indices.map { abs(runs[0]["image_encoder.blocks.0.attn.qkv.weight"]![$0] - start["image_encoder.blocks.0.attn.qkv.weight"]![$0]) }.max()!
        XCTAssertGreaterThan(moved, 1e-4, "the encoder trained")
    }
}
