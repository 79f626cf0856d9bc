import Catalog
import Foundation
import Imaging
import Ingest
import Logging
import Prompts
import SAM
import Torch
import XCTest

@testable import Trainer

/// The loader's order, prompts and augmentation, the schedule and the loss, on a small catalog of
/// KiTS-layout volumes whose kidney and tumour are brighter than the background.
final class TrainerTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func catalog(cases: Int = 3, kits23: Int = 0) throws -> Catalog {
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

        // The loader reads the very same samples from the pack as from the catalog's shards.
        let fromCatalog = try SampleLoader(catalog: cat, config: config()), fromPack = try SampleLoader(catalog: cat, config: config(), pack: pack)
        for batch in 0..<7 {
            let (a, boxesA, _) = try fromCatalog.batch(at: LoaderPosition(epoch: 1, batch: batch))
            let (b, boxesB, _) = try fromPack.batch(at: LoaderPosition(epoch: 1, batch: batch))
            XCTAssertEqual(boxesA, boxesB)
            XCTAssertEqual(a.map(\.imageID), b.map(\.imageID))
            XCTAssertEqual(a.map(\.pixels), b.map(\.pixels))
            XCTAssertEqual(a.map(\.masks), b.map(\.masks))
        }
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
        XCTAssertEqual(a.map(\.boxes), b.map(\.boxes))
        XCTAssertEqual(a.map { $0.points.map(\.x) }, b.map { $0.points.map(\.x) })
        var flips = Set<[UInt8]>()
        for epoch in 0..<4 {
            for batch in 0..<7 {
                let (samples, usesBoxes, _) = try loader.batch(at: LoaderPosition(epoch: epoch, batch: batch))
                for s in samples {
                    XCTAssertEqual(s.masks.count, 2)
                    for (k, m) in s.masks.enumerated() {
                        // The objects are bright: after any flip or turn, the mask still covers bright pixels.
                        let inside = m.pixels.indices.filter { m.pixels[$0] != 0 }, outside = m.pixels.indices.filter { m.pixels[$0] == 0 }
                        let meanIn = inside.map { s.pixels[$0] }.reduce(0, +) / Float(inside.count)
                        let meanOut = outside.map { s.pixels[$0] }.reduce(0, +) / Float(outside.count)
                        XCTAssertGreaterThan(meanIn, meanOut + 50)
                        if usesBoxes {
                            XCTAssertEqual(s.boxes.count, 2)
                            let e = m.extent!, box = s.boxes[k]
                            XCTAssertEqual(box[2] - box[0], e[2] - e[0], "SAM-Med2D jitter shifts, never resizes (unless clamped)")
                        } else {
                            XCTAssertEqual(m.pixels[s.points[k].y * 32 + s.points[k].x], 1, "the point lies in its mask")
                        }
                        flips.insert(m.pixels)
                    }
                }
            }
        }
        XCTAssertGreaterThan(flips.count, 4, "augmentation varies the samples")
    }

    /// The batch tensors equal what PreparedImage makes of each image, for both normalisations.
    func testBatchTensorsMatchPreparedImages() throws {
        let loader = try SampleLoader(catalog: catalog(), config: config())
        let (samples, usesBoxes, _) = try loader.batch(at: LoaderPosition(epoch: 1, batch: 2))
        for normalization in [SamConfig.Normalization.pixelMeanStd, .minMax] {
            var c = SamConfig.vitDebug(imageSize: 32)
            c.normalization = normalization
            let batch = try TrainingBatch(samples, usesBoxes: usesBoxes, config: c, device: .cpu)
            let each = try samples.map { try PreparedImage(pixels: $0.pixels, height: 32, width: 32, channels: 1, config: c).tensor.floats() }
            XCTAssertEqual(try batch.images.floats(), Array(each.joined()))
            XCTAssertEqual(batch.images.shape, [3, 3, 32, 32])
            XCTAssertEqual(batch.targets.shape, [6, 1, 32, 32])
            XCTAssertEqual(try batch.targets.floats(), samples.flatMap { $0.masks.flatMap { $0.pixels.map(Float.init) } })
            XCTAssertEqual(try batch.index.values(as: Int64.self), [0, 0, 1, 1, 2, 2])
        }
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

        // Decoder tuning: encoder weights stay, decoder weights move.
        var d = c
        d.tune = .decoder
        let sam = try model()
        let before = try sam.imageEncoder.trainableParameters.map { try $0.floats() }
        let decoderBefore = try sam.maskDecoder.trainableParameters.map { try $0.floats() }
        let tuner = try Trainer(sam: sam, catalog: cat, config: d)
        for _ in 0..<2 { _ = try tuner.trainStep() }
        XCTAssertEqual(try sam.imageEncoder.trainableParameters.map { try $0.floats() }, before)
        XCTAssertNotEqual(try sam.maskDecoder.trainableParameters.map { try $0.floats() }, decoderBefore)
    }
}
