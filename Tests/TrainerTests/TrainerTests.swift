import Catalog
import Eval
import Foundation
import Imaging
import Ingest
import Logging
import Prompts
import SAM
import Torch
import XCTest

@testable import TestSupport
@testable import Trainer

/// The loader's order, prompts and augmentation, the schedule and the loss, on a small catalog of
/// KiTS-layout volumes whose kidney and tumour are brighter than the background.
final class TrainerTests: TemporaryDirectoryTestCase {
    func catalog(cases: Int = 3, kits23: Int = 0) throws -> Catalog { try Self.catalog(in: dir, cases: cases, kits23: kits23) }

    static func catalog(in dir: URL, cases: Int = 3, kits23: Int = 0) throws -> Catalog {
        let n = 32
        for (folder, c) in (0..<cases).map({ ("KiTS19", $0) }) + (0..<kits23).map({ ("KiTS23", $0) }) {
            let d = dir.appendingPathComponent(String(format: "raw/%@/case_%05d", folder, c))
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            var img = [Float](repeating: 0, count: n * n * 8), lab = img
            for k in 0..<8 { for j in 0..<n { for i in 0..<n {
                let p = (k * n + j) * n + i
                img[p] = Float(-300 + (i * 37 + j * 11) % 60)
                if (4..<14).contains(i) && (6..<20).contains(j) && k >= 1 { lab[p] = 1; img[p] = 250 }
                if (20..<28).contains(i) && (4..<12).contains(j) && (2..<6).contains(k) { lab[p] = 2; img[p] = 120 }
            } } }
            try NIfTI.write(Volume(size: [n, n, 8], spacing: [1, 1, 2], voxels: img), to: d.appendingPathComponent("imaging.nii.gz"), datatype: .int16)
            try NIfTI.write(Volume(size: [n, n, 8], spacing: [1, 1, 2], voxels: lab), to: d.appendingPathComponent("segmentation.nii.gz"), datatype: .uint8)
        }
        let c = try Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        var options = IngestOptions()
        options.size = 32; options.minMaskPixels = 1; options.minComponentVoxels = 1
        var log = Logger(label: "test")
        log.logLevel = .critical
        _ = try IngestRunner(catalog: c, library: try ManifestLibrary.builtin(), options: options, log: log, progress: nil)
            .run(root: dir.appendingPathComponent("raw"), manifest: nil)
        try c.resplit(SplitPolicy(train: 1, val: 0, test: 0))
        return c
    }

    func config(_ change: (inout TrainConfig) -> Void = { _ in }) -> TrainConfig {
        var c = TrainConfig()
        c.batchSize = 3; c.masksPerImage = 2; c.seed = 5; c.validationImages = 0
        change(&c)
        return c
    }

    func testOrderIsAPermutationFixedBySeedAndEpoch() throws {
        let loader = try SampleLoader(catalog: catalog(), config: config())
        XCTAssertEqual(loader.imageCount, 21)  // 3 cases × 7 slices with a mask
        let e0 = loader.order(epoch: 0), e1 = loader.order(epoch: 1)
        XCTAssertEqual(e0.sorted(), Array(0..<21), "every image exactly once per epoch")
        XCTAssertEqual(e1.sorted(), Array(0..<21))
        XCTAssertNotEqual(e0, e1)
        XCTAssertEqual(e0, loader.order(epoch: 0))
        let other = try SampleLoader(catalog: catalog(), config: config { $0.seed = 6 })
        XCTAssertNotEqual(other.order(epoch: 0), e0)

        // Batches follow the order; the epoch rolls over after 21 / 3 = 7 full batches.
        XCTAssertEqual(loader.batchesPerEpoch, 7)
        var position = LoaderPosition(), seen: [Int64] = []
        for _ in 0..<7 {
            let (batch, _, next) = try loader.batch(at: position)
            seen += batch.map(\.imageID); position = next
        }
        XCTAssertEqual(Set(seen).count, 21)
        let (rolled, _, after) = try loader.batch(at: position)
        XCTAssertEqual(after, LoaderPosition(epoch: 1, batch: 1))
        XCTAssertEqual(rolled.count, 3)
    }

    func testPackHoldsTheSelectionBalancedAndIsReused() throws {
        let cat = try catalog()
        let train = Selection(splits: [.train])
        let (pack, reused) = try Pack.open(catalog: cat, selection: train, shards: 4)
        XCTAssertFalse(reused)
        XCTAssertEqual(pack.images.count, 21)
        XCTAssertEqual(pack.samplesPerShard.sorted(), [5, 5, 5, 6], "balanced to ±1")
        let files = try FileManager.default.contentsOfDirectory(atPath: pack.directory.path).sorted()
        XCTAssertEqual(files, ["pack-00000.mcs", "pack-00001.mcs", "pack-00002.mcs", "pack-00003.mcs", "pack.json"])
        let (again, reusedAgain) = try Pack.open(catalog: cat, selection: train, shards: 4)
        XCTAssertTrue(reusedAgain)
        XCTAssertEqual(again.key, pack.key)
        XCTAssertNotEqual(try Pack.open(catalog: cat, selection: train, shards: 3).pack.key, pack.key)

        // The loader reads the very same samples from the pack as from the catalog's shards, in
        // the pack's shard-by-shard order.
        let fromCatalog = try SampleLoader(catalog: cat, config: config()), fromPack = try SampleLoader(catalog: cat, config: config(), pack: pack)
        let byID = Dictionary(uniqueKeysWithValues: fromCatalog.images.indices.map { (fromCatalog.images[$0].id, $0) })
        for batch in 0..<7 {
            let (b, boxes, _) = try fromPack.batch(at: LoaderPosition(epoch: 1, batch: batch))
            for sample in b {
                let same = try fromCatalog.sample(fromCatalog.images[byID[sample.imageID]!], epoch: 1, boxes: boxes)
                XCTAssertEqual(sample.pixels, same.pixels)
                XCTAssertEqual(sample.masks, same.masks)
                XCTAssertEqual(sample.prompts, same.prompts)
            }
        }

        // Order: every image once per epoch; position p reads shard p mod 4; two processes with a
        // batch of 4 read disjoint shards (0 and 2, 1 and 3), and their parts make up the one-process batch.
        let loader = try SampleLoader(catalog: cat, config: config { $0.batchSize = 4 }, pack: pack)
        let order = loader.order(epoch: 2)
        XCTAssertEqual(order.sorted(), Array(0..<21))
        XCTAssertEqual(order.indices.map { order[$0] % 4 }, order.indices.map { $0 % 4 })
        XCTAssertNotEqual(order, loader.order(epoch: 3))
        let shardOf = Dictionary(uniqueKeysWithValues: pack.images.indices.map { (pack.images[$0].id, $0 % 4) })
        var seen: [Int64] = []
        for batch in 0..<loader.batchesPerEpoch {
            let position = LoaderPosition(epoch: 2, batch: batch)
            let whole = try loader.batch(at: position).0.map(\.imageID)
            let parts = try (0..<2).map { try loader.batch(at: position, part: $0, of: 2).0.map(\.imageID) }
            XCTAssertEqual(Set(parts[0].map { shardOf[$0]! }).isSubset(of: [0, 2]), true)
            XCTAssertEqual(Set(parts[1].map { shardOf[$0]! }).isSubset(of: [1, 3]), true)
            XCTAssertEqual([whole[0], whole[2]], parts[0])
            XCTAssertEqual([whole[1], whole[3]], parts[1])
            seen += whole
        }
        XCTAssertEqual(Set(seen).count, 20, "5 batches of 4 distinct images from 21")
    }

    func testSamplingWeightsRebalanceDatasets() throws {
        let cat = try catalog(cases: 3, kits23: 1)  // 21 kits19 images, 7 kits23
        let even = try SampleLoader(catalog: cat, config: config())
        XCTAssertEqual(even.order(epoch: 0).sorted(), Array(0..<28))
        let kits23 = Set(even.images.indices.filter { even.images[$0].dataset == "kits23" })
        XCTAssertEqual(kits23.count, 7)
        // kits23 weighted 9: 7·9 / (21 + 63) = 75 % of the draws on average.
        let loader = try SampleLoader(catalog: cat, config: config { $0.sampleWeights = ["dataset:kits23": 9] })
        var drawn = 0, total = 0
        for epoch in 0..<50 { let o = loader.order(epoch: epoch); total += o.count; drawn += o.filter(kits23.contains).count }
        XCTAssertEqual(Double(drawn) / Double(total), 0.75, accuracy: 0.03)
        XCTAssertEqual(loader.order(epoch: 3), loader.order(epoch: 3))
        let none = try SampleLoader(catalog: cat, config: config { $0.sampleWeights = ["dataset:kits23": 0] })
        XCTAssertTrue(none.order(epoch: 0).allSatisfy { !kits23.contains($0) })
        XCTAssertThrowsError(try SampleLoader(catalog: cat, config: config { $0.sampleWeights = ["modality:mr": 2] })) {
            XCTAssertTrue("\($0)".contains("no selected image has modality 'mr'"), "\($0)")
        }
    }

    func testSamplesAreDeterministicAndAugmentedConsistently() throws {
        let loader = try SampleLoader(catalog: catalog(), config: config())
        let (a, boxesA, _) = try loader.batch(at: LoaderPosition(epoch: 2, batch: 3))
        let (b, boxesB, _) = try loader.batch(at: LoaderPosition(epoch: 2, batch: 3))
        XCTAssertEqual(boxesA, boxesB)
        XCTAssertEqual(a.map(\.pixels), b.map(\.pixels))
        XCTAssertEqual(a.map(\.masks), b.map(\.masks))
        XCTAssertEqual(a.map(\.prompts), b.map(\.prompts))
        var flips = Set<[UInt8]>()
        let areas = Dictionary(uniqueKeysWithValues: loader.images.flatMap(\.masks).map { ($0.id, $0.area) })
        var scaled = 0
        for epoch in 0..<4 {
            for batch in 0..<7 {
                let (samples, usesBoxes, _) = try loader.batch(at: LoaderPosition(epoch: epoch, batch: batch))
                for s in samples {
                    XCTAssertEqual(s.masks.count, 2)
                    for (k, m) in s.masks.enumerated() {
                        // Scale-crops keep every drawn mask whole: it only grows.
                        let area = m.pixels.reduce(0) { $0 + Int($1) }, stored = areas[s.maskIDs[k]]!
                        XCTAssertGreaterThanOrEqual(area, stored)
                        if area > stored { scaled += 1 }
                        // The objects are bright: after any flip or turn, the mask still covers bright pixels.
                        let inside = m.pixels.indices.filter { m.pixels[$0] != 0 }, outside = m.pixels.indices.filter { m.pixels[$0] == 0 }
                        let meanIn = inside.map { s.pixels[$0] }.reduce(0, +) / Float(inside.count)
                        let meanOut = outside.map { s.pixels[$0] }.reduce(0, +) / Float(outside.count)
                        XCTAssertGreaterThan(meanIn, meanOut + 50)
                        if usesBoxes {
                            XCTAssertEqual(s.prompts.compactMap(\.box).count, 2)
                            let e = m.extent!, box = s.prompts[k].box!
                            XCTAssertEqual(box.x1 - box.x0, e.x1 - e.x0, "SAM-Med2D jitter shifts, never resizes (unless clamped)")
                        } else {
                            XCTAssertEqual(s.prompts[k].points.count, 1)
                            XCTAssertEqual(m.pixels[s.prompts[k].points[0].y * 32 + s.prompts[k].points[0].x], 1, "the point lies in its mask")
                        }
                        flips.insert(m.pixels)
                    }
                }
            }
        }
        XCTAssertGreaterThan(flips.count, 4, "augmentation varies the samples")
        XCTAssertGreaterThan(scaled, 20, "about half the samples are scale-cropped")

        // Three points per mask, as SAM-Med2D draws them: one inside, two outside, labelled so.
        let three = try SampleLoader(catalog: catalog(), config: config { $0.points = 3 })
        var pointSteps = 0
        for batch in 0..<7 {
            let (samples, usesBoxes, _) = try three.batch(at: LoaderPosition(epoch: 0, batch: batch))
            guard !usesBoxes else { continue }
            pointSteps += 1
            for s in samples {
                for (m, points) in zip(s.masks, s.prompts.map(\.points)) {
                    XCTAssertEqual(points.map(\.label).sorted(), [0, 0, 1])
                    for p in points { XCTAssertEqual(Int(m.pixels[p.y * 32 + p.x]), p.label) }
                }
            }
        }
        XCTAssertGreaterThan(pointSteps, 0)
    }

    /// The batch tensors equal what PreparedImage makes of each image, for both normalisations.
    func testBatchTensorsMatchPreparedImages() throws {
        let loader = try SampleLoader(catalog: catalog(), config: config())
        let (samples, _, _) = try loader.batch(at: LoaderPosition(epoch: 1, batch: 2))
        for normalization in [SamConfig.Normalization.pixelMeanStd, .minMax] {
            var c = SamConfig.vitDebug(imageSize: 32)
            c.normalization = normalization
            let batch = try TrainingBatch(samples, config: c, device: .cpu)
            let each = try samples.map { try PreparedImage(pixels: $0.pixels, height: 32, width: 32, channels: 1, config: c).tensor.floats() }
            XCTAssertEqual(try batch.images.floats(), Array(each.joined()))
            XCTAssertEqual(batch.images.shape, [3, 3, 32, 32])
            XCTAssertEqual(batch.targets.shape, [6, 1, 32, 32])
            XCTAssertEqual(try batch.targets.floats(), samples.flatMap { $0.masks.flatMap { $0.pixels.map(Float.init) } })
            XCTAssertEqual(try batch.index.values(as: Int64.self), [0, 0, 1, 1, 2, 2])
        }
    }

    /// Grey and colour images in one batch: grey ones are repeated over three channels, each image
    /// as PreparedImage makes it, whichever comes first.
    func testBatchesMixGreyAndColourImages() throws {
        let loader = try SampleLoader(catalog: catalog(), config: config())
        var (samples, _, _) = try loader.batch(at: LoaderPosition(epoch: 0, batch: 0))
        samples[1].channels = 3
        samples[1].pixels = samples[1].pixels.enumerated().flatMap { i, v in [v, Float((i * 7) % 256), 255 - v] }
        let c = SamConfig.vitDebug(imageSize: 32)
        let batch = try TrainingBatch(samples, config: c, device: .cpu)
        XCTAssertEqual(batch.images.shape, [3, 3, 32, 32])
        let each = try samples.map { try PreparedImage(pixels: $0.pixels, height: 32, width: 32, channels: $0.channels, config: c).tensor.floats() }
        XCTAssertEqual(try batch.images.floats(), Array(each.joined()))
        // Stored at another size than the encoder's: each image is prepared on its own.
        let small = try TrainingBatch(samples, config: SamConfig.vitDebug(imageSize: 64), device: .cpu)
        XCTAssertEqual(small.images.shape, [3, 3, 64, 64])
    }

    func testACorruptRecordIsReportedAndReplacedDeterministically() throws {
        let cat = try catalog()
        let loader = try SampleLoader(catalog: cat, config: config())
        let victim = loader.images[loader.order(epoch: 0)[0]]
        // Flip the last byte of the image's pixel record: its payload checksum no longer holds.
        let h = try FileHandle(forUpdating: cat.shardDirectory.appendingPathComponent(victim.location.shard))
        let at = UInt64(victim.location.offset) + UInt64(victim.location.length) - 1
        try h.seek(toOffset: at)
        let byte = try XCTUnwrap(h.read(upToCount: 1))[0]
        try h.seek(toOffset: at)
        try h.write(contentsOf: Data([byte ^ 0xFF]))
        try h.close()

        var notes: [SampleLoader.Replacement] = []
        loader.onReplacement = { notes.append($0) }
        let (a, _, _) = try loader.batch(at: LoaderPosition())
        let note = try XCTUnwrap(notes.first { $0.imageID == victim.id })
        XCTAssertTrue(note.reason.contains("checksum"), note.reason)
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a[0].imageID, note.replacementID)
        XCTAssertNotEqual(a[0].imageID, victim.id)
        let (b, _, _) = try loader.batch(at: LoaderPosition())
        XCTAssertEqual(a.map(\.imageID), b.map(\.imageID), "the same replacement every time")
        XCTAssertEqual(a.map(\.pixels), b.map(\.pixels))
    }

    func testScheduleWarmsUpThenDecays() {
        let c = config { $0.steps = 110; $0.warmupSteps = 10; $0.learningRate = 1e-3; $0.minLearningRate = 1e-5 }
        XCTAssertEqual(c.learningRate(at: 0), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(c.learningRate(at: 9), 1e-3, accuracy: 1e-12)
        XCTAssertEqual(c.learningRate(at: 10), 1e-3, accuracy: 1e-12)
        XCTAssertEqual(c.learningRate(at: 60), 1e-5 + (1e-3 - 1e-5) * 0.5, accuracy: 1e-12)
        XCTAssertEqual(c.learningRate(at: 110), 1e-5, accuracy: 1e-12)
    }

    func testLossTerms() throws {
        // One 1×1×1×2 mask: logits (2, −1), target (1, 0).
        let x = try Tensor([Float(2), -1], shape: [1, 1, 1, 2]), t = try Tensor([Float(1), 0], shape: [1, 1, 1, 2])
        let terms = try SegmentationLoss.compute(logits: x, targets: t, predictedIoU: Tensor([Float(0.5)], shape: [1, 1]))
        func sig(_ v: Double) -> Double { 1 / (1 + exp(-v)) }
        let (p0, p1) = (sig(2), sig(-1))
        let focal = (0.25 * pow(1 - p0, 2) * -log(p0) + 0.75 * pow(p1, 2) * -log(1 - p1)) / 2
        let dice = 1 - (2 * p0 + 1) / (p0 + p1 + 1 + 1)
        XCTAssertEqual(terms.focal, focal, accuracy: 1e-6)
        XCTAssertEqual(terms.dice, dice, accuracy: 1e-6)
        XCTAssertEqual(terms.iou, 0.25, accuracy: 1e-6)  // hard mask equals the target: IoU 1, predicted 0.5
        XCTAssertEqual(try terms.total.item(), 20 * focal + dice + 0.25, accuracy: 1e-5)
        let diceOnly = try SegmentationLoss.compute(logits: x, targets: t, predictedIoU: Tensor([Float(0.5)], shape: [1, 1]), focalWeight: 0)
        XCTAssertEqual(try diceOnly.total.item(), dice + 0.25, accuracy: 1e-6)
        XCTAssertEqual(diceOnly.focal, focal, accuracy: 1e-6, "the focal term is still logged")
    }

    /// A few steps of the debug model: the loss falls on a batch it sees repeatedly, decoder tuning
    /// leaves the encoders untouched, and a run resumed from its checkpoint logs the same losses.
    func testTrainingStepsAndExactResume() throws {
        let cat = try catalog()
        func model() throws -> Sam { try Sam(.vitDebug(imageSize: 32), seed: 1) }
        var c = config { $0.steps = 6; $0.clickPasses = 2; $0.warmupSteps = 0; $0.learningRate = 1e-3; $0.augment = false }
        c.selection = Selection(splits: [.train])

        let straight = try Trainer(sam: model(), catalog: cat, config: c)
        var losses: [Double] = []
        for _ in 0..<6 { losses.append(try straight.trainStep().loss) }

        let first = try Trainer(sam: model(), catalog: cat, config: c)
        for _ in 0..<3 { _ = try first.trainStep() }
        let ckpt = dir.appendingPathComponent("run")
        _ = try first.saveCheckpoint(to: ckpt)
        let resumed = try Trainer(sam: model(), catalog: cat, config: c)
        try resumed.resume(from: ckpt)
        XCTAssertEqual(resumed.step, 3)
        XCTAssertEqual(resumed.position, first.position)
        var after: [Double] = []
        for _ in 0..<3 { after.append(try resumed.trainStep().loss) }
        XCTAssertEqual(after, Array(losses[3...]), "a resumed run's losses equal the uninterrupted run's")

        // Other settings: resuming is refused, naming the file.
        var other = c
        other.learningRate = 5e-4
        XCTAssertThrowsError(try Trainer(sam: model(), catalog: cat, config: other).resume(from: ckpt)) { error in
            XCTAssertTrue("\(error)".contains("state-000003.safetensors: was written with other training settings"), "\(error)")
        }

        // Decoder tuning: image encoder weights stay, prompt encoder and decoder weights move.
        var d = c
        d.tune = .decoder
        let sam = try model()
        let before = try sam.imageEncoder.trainableParameters.map { try $0.floats() }
        let decoderBefore = try sam.maskDecoder.trainableParameters.map { try $0.floats() }
        let promptsBefore = try sam.promptEncoder.trainableParameters.map { try $0.floats() }
        let tuner = try Trainer(sam: sam, catalog: cat, config: d)
        for _ in 0..<2 { _ = try tuner.trainStep() }
        XCTAssertEqual(try sam.imageEncoder.trainableParameters.map { try $0.floats() }, before)
        XCTAssertNotEqual(try sam.maskDecoder.trainableParameters.map { try $0.floats() }, decoderBefore)
        XCTAssertNotEqual(try sam.promptEncoder.trainableParameters.map { try $0.floats() }, promptsBefore)
    }

    /// --tune lora: the encoder's own weights stay, the LoRA factors and the decoder train, the
    /// saved model is a plain SAM equal to the adapted one, and a resumed run continues exactly.
    func testLoRATrainsLowRankUpdatesAndSavesMergedWeights() throws {
        let cat = try catalog()
        func model() throws -> Sam { try Sam(.vitDebug(imageSize: 32), seed: 1) }
        let c = config { $0.steps = 4; $0.clickPasses = 1; $0.warmupSteps = 0; $0.learningRate = 1e-2; $0.augment = false
                         $0.tune = .lora; $0.loraRank = 2 }
        let image = try Tensor.randn([1, 3, 32, 32], seed: 3)
        let sam = try model()
        let plain = try sam.embed(image).floats()
        let encoderBefore = try sam.imageEncoder.trainableParameters.map { try $0.floats() }
        let trainer = try Trainer(sam: sam, catalog: cat, config: c)
        XCTAssertEqual(trainer.lowRank.map(\.key), ["image_encoder.blocks.0.attn.qkv.weight", "image_encoder.blocks.1.attn.qkv.weight"])
        XCTAssertEqual(trainer.lowRank[0].update.a.shape, [2, 64])
        XCTAssertEqual(trainer.lowRank[0].update.b.shape, [192, 2])
        XCTAssertEqual(try sam.embed(image).floats(), plain, "B starts at zero: the adapted model starts as the frozen one")

        var losses: [Double] = []
        for _ in 0..<2 { losses.append(try trainer.trainStep().loss) }
        XCTAssertEqual(try sam.imageEncoder.trainableParameters.map { try $0.floats() }, encoderBefore, "the encoder's own weights are frozen")
        XCTAssertGreaterThan(try trainer.lowRank[0].update.b.abs().amax().item(), 0, "the LoRA factors train")

        let run = dir.appendingPathComponent("lora")
        let saved = try trainer.saveCheckpoint(to: run)
        let (reopened, _) = try SamCheckpoint.open(saved)
        XCTAssertEqual(try StateDict.load(saved).names.sorted(), try model().parameters.entries.map(\.name).sorted(), "the saved model is a plain SAM")
        let adapted = try sam.embed(image).floats(), merged = try reopened.embed(image).floats()
        XCTAssertLessThan(zip(adapted, merged).map { abs($0 - $1) }.max()!, 1e-4, "merged weights compute what the adapted model computes")
        XCTAssertNotEqual(merged, plain)

        for _ in 0..<2 { losses.append(try trainer.trainStep().loss) }
        let resumed = try Trainer(sam: model(), catalog: cat, config: c)
        try resumed.resume(from: run)
        var after: [Double] = []
        for _ in 0..<2 { after.append(try resumed.trainStep().loss) }
        XCTAssertEqual(after, Array(losses[2...]), "a resumed LoRA run's losses equal the uninterrupted run's")
    }

    /// --tune adapter: SAM-Med2D's adapters join a plain model without changing its output, train
    /// while the rest of the encoder stays, and travel in the checkpoint with the config.
    func testAdaptersJoinAPlainModelAndTrainAlone() throws {
        let cat = try catalog()
        let plainURL = dir.appendingPathComponent("plain.safetensors")
        let plain = try Sam(.vitDebug(imageSize: 32), seed: 1)
        try SamCheckpoint.save(plain, to: plainURL)
        let image = try Tensor.randn([1, 3, 32, 32], seed: 3)

        let (sam, _) = try SamCheckpoint.open(plainURL, adapterRatio: 0.25)
        let names = sam.parameters.entries.map(\.name)
        XCTAssertTrue(names.contains("image_encoder.blocks.1.Adapter.channel.0.weight"), "SAM-Med2D's key paths")
        let shapes = Dictionary(uniqueKeysWithValues: sam.parameters.entries.map { ($0.name, $0.tensor.shape) })
        XCTAssertEqual(shapes["image_encoder.blocks.0.Adapter.channel.0.weight"], [16, 64])
        XCTAssertEqual(shapes["image_encoder.blocks.0.Adapter.channel.2.weight"], [64, 16])
        XCTAssertEqual(shapes["image_encoder.blocks.0.Adapter.spatial.0.weight"], [64, 64, 3, 3])
        XCTAssertEqual(shapes["image_encoder.blocks.0.Adapter.spatial.2.weight"], [64, 64, 4, 4])
        XCTAssertEqual(try sam.embed(image).floats(), try plain.embed(image).floats(), "fresh adapters leave the output as it was")

        let frozen = try sam.parameters.entries.filter { $0.name.hasPrefix("image_encoder.") && !$0.name.contains(".Adapter.") }.map { try $0.tensor.floats() }
        let adapters = try sam.parameters.entries.filter { $0.name.contains(".Adapter.") }.map { try $0.tensor.floats() }
        let c = config { $0.steps = 2; $0.clickPasses = 1; $0.warmupSteps = 0; $0.learningRate = 1e-2; $0.augment = false; $0.tune = .adapter }
        let trainer = try Trainer(sam: sam, catalog: cat, config: c)
        for _ in 0..<2 { _ = try trainer.trainStep() }
        XCTAssertEqual(try sam.parameters.entries.filter { $0.name.hasPrefix("image_encoder.") && !$0.name.contains(".Adapter.") }
            .map { try $0.tensor.floats() }, frozen)
        XCTAssertNotEqual(try sam.parameters.entries.filter { $0.name.contains(".Adapter.") }.map { try $0.tensor.floats() }, adapters)
        XCTAssertNotEqual(try sam.embed(image).floats(), try plain.embed(image).floats())

        // The checkpoint describes its adapters; a state dict with SAM-Med2D's keys is recognised too.
        let saved = try trainer.saveCheckpoint(to: dir.appendingPathComponent("adapter"))
        let (reopened, _) = try SamCheckpoint.open(saved)
        XCTAssertEqual(try reopened.embed(image).floats(), try sam.embed(image).floats())
        var official = StateDict()  // what SAM-Med2D's vit_b checkpoint holds, as far as recognising it goes
        official["image_encoder.pos_embed"] = try Tensor.zeros([1, 16, 16, 768])
        official["image_encoder.blocks.11.norm1.weight"] = try Tensor.zeros([768])
        official["image_encoder.blocks.0.Adapter.channel.0.weight"] = try Tensor.zeros([192, 768])
        let detected = try SamCheckpoint.config(of: official, url: saved)
        guard case .vit(let vit) = detected.encoder else { return XCTFail("\(detected)") }
        XCTAssertEqual(detected.preset, "vit_b")
        XCTAssertEqual(detected.imageSize, 256)
        XCTAssertEqual(vit.adapterRatio, 0.25)

        // Plain models refuse adapter tuning; TinyViT has no adapter slots.
        XCTAssertThrowsError(try Trainer(sam: Sam(.vitDebug(imageSize: 32), seed: 1), catalog: cat, config: c)) {
            XCTAssertTrue("\($0)".contains("adapter tuning needs a model with adapters"), "\($0)")
        }
        let lite = dir.appendingPathComponent("lite.safetensors")
        try SamCheckpoint.save(try Sam(.tinyViT), to: lite)
        XCTAssertThrowsError(try SamCheckpoint.open(lite, adapterRatio: 0.25)) {
            XCTAssertTrue("\($0)".contains("tiny_vit has no adapter slots"), "\($0)")
        }
    }
}

/// Decoder tuning's embedding cache, validation through Eval, and the best checkpoint.
final class TrainerValidationTests: TemporaryDirectoryTestCase {
    func model(seed: UInt64 = 1) throws -> Sam { try Sam(.vitDebug(imageSize: 32), seed: seed) }

    func testEmbeddingCacheTrainsLikeTheEncoderAndSurvivesDamage() throws {
        let cat = try TrainerTests.catalog(in: dir)
        var c = TrainConfig()
        c.batchSize = 3; c.masksPerImage = 2; c.seed = 5; c.validationImages = 0
        c.steps = 5; c.clickPasses = 1; c.warmupSteps = 0; c.learningRate = 1e-3; c.tune = .decoder
        func train(_ cache: EmbeddingCache?) throws -> [[Float]] {
            let sam = try model()
            let t = try Trainer(sam: sam, catalog: cat, config: c, embeddingCache: cache)
            for _ in 0..<c.steps { _ = try t.trainStep() }
            return try (sam.maskDecoder.trainableParameters + sam.promptEncoder.trainableParameters).map { try $0.floats() }
        }
        func largestDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
            zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
        }
        let start = try model().maskDecoder.trainableParameters.map { try $0.floats() } + model().promptEncoder.trainableParameters.map { try $0.floats() }
        let plain = try train(nil)
        let folder = dir.appendingPathComponent("embeddings")
        let first = try EmbeddingCache(directory: folder)
        let cached = try train(first)
        XCTAssertEqual(first.misses, first.count)
        XCTAssertEqual(first.hits + first.misses, c.steps * c.batchSize)
        XCTAssertGreaterThan(largestDifference(plain, start), 1e-3, "training moves the decoder")
        XCTAssertLessThan(largestDifference(plain, cached), 1e-5, "the cache changes speed, not the result")

        // A second run reads every embedding it needs from the files.
        let second = try EmbeddingCache(directory: folder)
        XCTAssertEqual(second.count, first.count)
        XCTAssertEqual(try train(second), cached)
        XCTAssertEqual(second.misses, 0)
        XCTAssertEqual(second.hits, c.steps * c.batchSize)

        // What it stores is the encoder's output in half precision.
        let loader = try SampleLoader(catalog: cat, config: c)
        let sample = try loader.batch(at: LoaderPosition()).0[0]
        let sam = try model()
        let batch = try TrainingBatch([sample], config: sam.config, device: .cpu)
        let direct = try withoutGrad { try sam.embed(batch.images) }.floats()
        let stored = try XCTUnwrap(try second.embedding(sample.cacheKey)).floats()
        XCTAssertEqual(stored.count, direct.count)
        for (s, d) in zip(stored, direct) { XCTAssertEqual(s, d, accuracy: 1e-3 * max(1, abs(d))) }

        // A damaged payload is refused (then computed again); a torn last record is cut on reopening.
        let part = folder.appendingPathComponent("part-0.mcemb")
        var bytes = try Data(contentsOf: part)
        bytes[bytes.count - 10] ^= 0xFF
        try bytes.write(to: part)
        let damaged = try EmbeddingCache(directory: folder)
        var keys: [EmbeddingCache.Key] = []
        for p in 0..<loader.batchesPerEpoch { keys += try loader.batch(at: LoaderPosition(epoch: 0, batch: p)).0.map(\.cacheKey) }
        for k in keys { _ = try damaged.embedding(k) }
        XCTAssertEqual(damaged.rejected, 1, "the record whose payload changed")
        try bytes.prefix(bytes.count - 100).write(to: part)
        let torn = try EmbeddingCache(directory: folder)
        XCTAssertEqual(torn.count, first.count - 1)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: part.path)[.size] as? Int, bytes.count - stored.count * 2 - EmbeddingCache.headerSize,
                       "cut back to the last whole record")

        // Another encoder, another folder.
        XCTAssertNotEqual(try EmbeddingCache(sam: model(seed: 2), shards: cat.shardDirectory).directory, try EmbeddingCache(sam: model(), shards: cat.shardDirectory).directory)
        XCTAssertEqual(try EmbeddingCache(sam: model(), shards: cat.shardDirectory).directory, try EmbeddingCache(sam: model(), shards: cat.shardDirectory).directory)
    }

    func testValidationIsEvalAndTheBestCheckpointIsKept() throws {
        let cat = try TrainerTests.catalog(in: dir)
        var c = TrainConfig()
        c.batchSize = 3; c.masksPerImage = 2; c.seed = 5; c.steps = 6; c.clickPasses = 1; c.warmupSteps = 0; c.learningRate = 1e-3
        c.validation = Selection(splits: [.train]); c.validationImages = 5; c.validationEvery = 2; c.earlyStop = 2
        let sam = try model()
        let trainer = try Trainer(sam: sam, catalog: cat, config: c)

        // Validation scores what `medcat eval --protocol box --protocol points1 --sample 5` scores.
        let v = try XCTUnwrap(try trainer.validate())
        let run = try EvalRunner(sam: sam, catalog: cat, settings: trainer.validationSettings).run(name: "v", model: "debug", checkpointHash: "-")
        XCTAssertEqual(run.images, 5)
        let scores = try EvalStore(catalog: cat).maskScores(run: run.run)
        for proto in [EvalProtocol.box, .points1] {
            let dice = scores.filter { $0.variant.proto == proto.rawValue && $0.variant.output == "first" }.compactMap(\.scores.dice)
            XCTAssertGreaterThan(dice.count, 5)
            XCTAssertEqual(v.byProtocol[proto]!, dice.reduce(0, +) / Double(dice.count), accuracy: 1e-12, proto.rawValue)
        }
        XCTAssertEqual(v.dice, (v.byProtocol[.box]! + v.byProtocol[.points1]!) / 2, accuracy: 1e-12)

        // The best is the highest mean Dice (a tie is no improvement); patience counts from it.
        let out = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        XCTAssertTrue(trainer.record(validation: 0.5))
        for _ in 0..<2 { _ = try trainer.trainStep() }
        XCTAssertTrue(trainer.record(validation: 0.6))
        try trainer.saveBest(to: out, metrics: ["val_dice": 0.6])
        let bestWeights = try StateDict(sam).tensors.mapValues { try $0.floats() }
        for _ in 0..<2 { _ = try trainer.trainStep() }
        XCTAssertFalse(trainer.record(validation: 0.6))
        XCTAssertFalse(trainer.patienceSpent)
        XCTAssertEqual(trainer.best, Trainer.Best(step: 2, dice: 0.6, since: 1))
        _ = try trainer.saveCheckpoint(to: out)

        // A resumed run keeps the best so far and its patience.
        let resumed = try Trainer(sam: model(), catalog: cat, config: c)
        try resumed.resume(from: out)
        XCTAssertEqual(resumed.best, trainer.best)
        for _ in 0..<2 { _ = try resumed.trainStep() }
        XCTAssertFalse(resumed.record(validation: 0.59))
        XCTAssertTrue(resumed.patienceSpent, "two validations without a better one")

        // model-best holds the weights of the best step, with its step and score.
        let best = try StateDict.load(out.appendingPathComponent(Trainer.bestFile))
        XCTAssertEqual(best.metadata["medcat.step"], "2")
        XCTAssertEqual(best.metadata["medcat.metric.val_dice"], "0.6")
        for (name, values) in bestWeights { XCTAssertEqual(try best[name]?.floats(), values, name) }
    }

    /// --tune full: the pretrained encoder learns at its fraction of the rate, the rest at the rate.
    func testEncoderLearnsAtItsScaledRate() throws {
        let cat = try TrainerTests.catalog(in: dir)
        var c = TrainConfig()
        c.batchSize = 3; c.masksPerImage = 2; c.seed = 5; c.validationImages = 0; c.steps = 1; c.clickPasses = 0; c.warmupSteps = 0
        c.learningRate = 1e-3; c.weightDecay = 0; c.clipNorm = 0
        func firstStep(scale: Double) throws -> (encoder: Float, decoder: Float) {
            c.encoderLearningRateScale = scale
            let sam = try model()
            let e0 = try sam.imageEncoder.trainableParameters.map { try $0.floats() }, d0 = try sam.maskDecoder.trainableParameters.map { try $0.floats() }
            _ = try Trainer(sam: sam, catalog: cat, config: c).trainStep()
            func moved(_ before: [[Float]], _ after: [Tensor]) throws -> Float {
                try zip(before, after).map { b, t in zip(b, try t.floats()).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
            }
            return (try moved(e0, sam.imageEncoder.trainableParameters), try moved(d0, sam.maskDecoder.trainableParameters))
        }
        // Adam's first step moves each weight by about the rate.
        let scaled = try firstStep(scale: 0.1), same = try firstStep(scale: 1)
        XCTAssertEqual(Double(same.encoder), 1e-3, accuracy: 1e-4)
        XCTAssertEqual(Double(scaled.encoder), 1e-4, accuracy: 1e-5)
        XCTAssertEqual(Double(scaled.decoder), 1e-3, accuracy: 1e-4)
    }
}
