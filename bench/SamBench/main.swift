// SAM timings for `make bench`, mirrored by bench/sam_peer.py in Python PyTorch:
//   medcat-sam-bench train-vitb SIZE BATCH ITERS THREADS   vit_b forward+backward, box prompts
//   medcat-sam-bench lite-infer WEIGHTS ITERS THREADS      LiteMedSAM encoder+decoder, one box
//   medcat-sam-bench train-step CATALOG WEIGHTS STEPS THREADS   full LiteMedSAM fine-tuning steps
//       through medcat's trainer (loader, augmentation, prompts included): 2 images × 5 masks,
//       box prompts, no click passes, on the catalog's test split
//   medcat-sam-bench loader CATALOG BATCHES   medcat's training loader alone: batches of 2 images
//       × 5 masks (256 px) with prompts and augmentation, built into the model's input tensors
// Prints one JSON line.
import CProcess
import Catalog
import Foundation
import SAM
import Torch
import Trainer

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

let args = CommandLine.arguments
guard args.count >= 2 else { FileHandle.standardError.write(Data("usage: see bench/SamBench/main.swift\n".utf8)); exit(2) }
switch args[1] {
case "train-vitb":
    let (size, batch, iters) = (Int(args[2])!, Int(args[3])!, Int(args[4])!)
    Runtime.threads = Int(args[5])!
    let sam = try Sam(.vitB(imageSize: size), seed: 1)
    let images = try Tensor.randn([batch, 3, size, size], seed: 2)
    let s = Float(size)
    let boxes = try Tensor((0..<batch).flatMap { _ in [s * 0.2, s * 0.25, s * 0.7, s * 0.8] }, shape: [batch, 4])
    func step() throws {
        let out = try sam.decode(embeddings: sam.embed(images), boxes: boxes, multimask: false)
        try (out.masks.sigmoid().mean() + out.iou.mean()).backward()
        for p in sam.trainableParameters { try p.zeroGrad() }
    }
    for _ in 0..<2 { try step() }
    let t = try seconds { for _ in 0..<iters { try step() } }
    print("{\"ms_per_iter\": \(t / Double(iters) * 1000), \"threads\": \(Runtime.threads)}")
case "lite-infer":
    let iters = Int(args[3])!
    Runtime.threads = Int(args[4])!
    let (sam, _) = try SamCheckpoint.open(URL(fileURLWithPath: args[2]))
    let pixels = (0..<(217 * 181)).map { Float(($0 * 7919) % 256) }
    func infer() throws {
        try withoutGrad {
            let prepared = try PreparedImage(pixels: pixels, height: 217, width: 181, channels: 1, config: sam.config)
            let box = try Tensor(prepared.modelCoordinates([40, 50, 140, 160]), shape: [1, 4])
            let out = try sam.decode(embeddings: sam.embed(prepared.tensor), boxes: box, multimask: false)
            _ = try prepared.upsample(out.masks, inputSize: 256).gt(0).sum().item()
        }
    }
    try infer()
    let t = try seconds { for _ in 0..<iters { try infer() } }
    print("{\"images_per_s\": \(Double(iters) / t), \"threads\": \(Runtime.threads)}")
case "train-step":
    mc_keep_freed_memory()  // as medcat train does
    let steps = Int(args[4])!
    Runtime.threads = Int(args[5])!
    let (sam, _) = try SamCheckpoint.open(URL(fileURLWithPath: args[3]))
    var config = TrainConfig()
    config.selection = Selection(splits: [.test])
    config.batchSize = 2; config.masksPerImage = 5; config.clickPasses = 0; config.boxProbability = 1
    config.steps = steps + 1; config.warmupSteps = 0; config.validationImages = 0
    let trainer = try Trainer(sam: sam, catalog: Catalog(path: args[2]), config: config)
    _ = try trainer.trainStep()  // warm-up
    let t = try seconds { for _ in 0..<steps { _ = try trainer.trainStep() } }
    print("{\"ms_per_step\": \(t / Double(steps) * 1000), \"threads\": \(Runtime.threads)}")
case "loader":
    mc_keep_freed_memory()  // as medcat train does
    let batches = Int(args[3])!
    Runtime.threads = 1
    var config = TrainConfig()
    config.selection = Selection(splits: [.test])
    config.batchSize = 2; config.masksPerImage = 5
    let loader = try SampleLoader(catalog: Catalog(path: args[2]), config: config)
    let samConfig = SamConfig.vitB(imageSize: 256)  // SAM's mean/std normalisation, as SAM-Med2D's pipeline
    var position = LoaderPosition(), samples = 0
    let t = try seconds {
        for _ in 0..<batches {
            let (batch, _, next) = try loader.batch(at: position)
            let t = try TrainingBatch(batch, config: samConfig, device: .cpu)
            _ = try PromptTensors(t.prompts, frame: t.frame, device: .cpu)
            samples += batch.count; position = next
        }
    }
    print("{\"samples\": \(samples), \"seconds\": \(t), \"samples_per_s\": \(Double(samples) / t)}")
default:
    FileHandle.standardError.write(Data("unknown mode \(args[1])\n".utf8))
    exit(2)
}
