// SAM timings for `make bench`, mirrored by bench/sam_peer.py in Python PyTorch, and the checks of
// tools/gpu-check.sh. DEVICE (cpu, cuda, cuda:N) is optional and defaults to the CPU.
//   medcat-sam-bench train-vitb SIZE BATCH ITERS THREADS [DEVICE fp32|bf16 plain|checkpointed]
//       vit_b forward+backward, box prompts (and on CUDA the peak memory of tensors)
//   medcat-sam-bench lite-infer WEIGHTS ITERS THREADS [DEVICE]   LiteMedSAM encoder+decoder, one box
//   medcat-sam-bench train-step CATALOG WEIGHTS STEPS THREADS   full LiteMedSAM fine-tuning steps
//       through medcat's trainer (loader, augmentation, prompts included): 2 images × 5 masks,
//       box prompts, no click passes, on the catalog's test split
//   medcat-sam-bench loader CATALOG BATCHES   medcat's training loader alone: batches of 2 images
//       × 5 masks (256 px) with prompts and augmentation, built into the model's input tensors
//   medcat-sam-bench train-memory SIZE plain|checkpointed THREADS   one vit_b forward+backward at
//       batch 1 (box prompt) in a fresh process: peak resident memory above the model and its
//       gradients, i.e. activations and workspace, with or without activation checkpointing
//   medcat-sam-bench parity FIXTURES WEIGHTS DEVICE   the small ViT SAM and LiteMedSAM on DEVICE
//       against the reference outputs in FIXTURES (Tests/SAMTests/Fixtures): largest differences
//   medcat-sam-bench one-step DEVICE fp32|bf16   one AdamW step of the small ViT SAM from the
//       fixtures' weights: its loss and how far the weights moved
//   medcat-sam-bench device DEVICE   whether DEVICE is usable; with CUDA, a one-process NCCL group's all-reduce
// Prints one JSON line.
import CProcess
import Catalog
import Foundation
import Imaging
import SAM
import Torch
import Trainer

/// The device named by argument `index` (the CPU when absent), ready to use; an unusable one is an
/// error that says why (no GPU, no CUDA libtorch).
func device(_ index: Int) throws -> Device {
    guard CommandLine.arguments.count > index else { return .cpu }
    guard let d = Device(CommandLine.arguments[index]) else { throw TorchError(op: "device", message: "'\(CommandLine.arguments[index])' is not cpu, cuda or cuda:N") }
    try Runtime.prepare(d)
    return d
}

/// max |a − b| over all elements, `a` brought to the CPU as fp32.
func largestDifference(_ a: Tensor, _ b: Tensor) throws -> Double {
    guard a.shape == b.shape else { throw TorchError(op: "compare", shapes: [a.shape, b.shape], message: "shapes differ") }
    return try (a.to(.f32, device: .cpu) - b.to(.f32)).abs().amax().item()
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
}

let args = CommandLine.arguments
guard args.count >= 2 else { FileHandle.standardError.write(Data("usage: see bench/SamBench/main.swift\n".utf8)); exit(2) }
// An error ends the run with its message, not a crash report.
do {
switch args[1] {
case "train-vitb":
    let (size, batch, iters) = (Int(args[2])!, Int(args[3])!, Int(args[4])!)
    Runtime.threads = Int(args[5])!
    let device = try device(6)
    let bf16 = args.count > 7 && args[7] == "bf16"
    let sam = try Sam(.vitB(imageSize: size), device: device, seed: 1)
    sam.imageEncoder.checkpointBlocks = args.count > 8 && args[8] == "checkpointed"
    let images = try Tensor.randn([batch, 3, size, size], seed: 2, device: device)
    let s = Float(size)
    let boxes = try Tensor((0..<batch).flatMap { _ in [s * 0.2, s * 0.25, s * 0.7, s * 0.8] }, shape: [batch, 4]).to(device)
    func step() throws {
        let forward = { () throws -> Tensor in
            let out = try sam.decode(embeddings: sam.embed(images), boxes: boxes, multimask: false)
            return try out.masks.to(.f32).sigmoid().mean() + out.iou.to(.f32).mean()
        }
        try (bf16 ? Runtime.autocast(device, .bf16, forward) : forward()).backward()
        for p in sam.trainableParameters { try p.zeroGrad() }
    }
    for _ in 0..<2 { try step() }
    try Runtime.synchronize(device)
    if device != .cpu { _ = try Runtime.peakMemory(device, reset: true) }
    let t = try seconds { for _ in 0..<iters { try step() }; try Runtime.synchronize(device) }
    let peak = device == .cpu ? "" : ", \"peak_memory_mib\": \(try Runtime.peakMemory(device) >> 20)"
    print("{\"ms_per_iter\": \(t / Double(iters) * 1000), \"images_per_s\": \(Double(iters * batch) / t), \"threads\": \(Runtime.threads)\(peak)}")
case "lite-infer":
    let iters = Int(args[3])!
    Runtime.threads = Int(args[4])!
    let device = try device(5)
    let (sam, _) = try SamCheckpoint.open(URL(fileURLWithPath: args[2]), device: device)
    let pixels = (0..<(217 * 181)).map { Float(($0 * 7919) % 256) }
    func infer() throws {
        try withoutGrad {
            let prepared = try PreparedImage(pixels: pixels, height: 217, width: 181, channels: 1, config: sam.config, device: device)
            let box = try Tensor(prepared.modelCoordinates([40, 50, 140, 160]), shape: [1, 4]).to(device)
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
case "train-memory":
    let size = Int(args[2])!
    Runtime.threads = Int(args[4])!
    let sam = try Sam(.vitB(imageSize: size), seed: 1)
    sam.imageEncoder.checkpointBlocks = args[3] == "checkpointed"
    let images = try Tensor.randn([1, 3, size, size], seed: 2)
    let s = Float(size)
    let boxes = try Tensor([s * 0.2, s * 0.25, s * 0.7, s * 0.8], shape: [1, 4])
    let gradientBytes = sam.trainableParameters.reduce(0) { $0 + $1.count * 4 }
    /// VmRSS / VmHWM of /proc/self/status in bytes; writing 5 to clear_refs restarts the peak.
    func memory(_ field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "0") ?? 0) * 1024
    }
    try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    let before = memory("VmRSS")
    let t = try seconds {
        let out = try sam.decode(embeddings: sam.embed(images), boxes: boxes, multimask: false)
        try (out.masks.sigmoid().mean() + out.iou.mean()).backward()
    }
    let peak = memory("VmHWM")
    let activations = peak - before - gradientBytes
    print("{\"mode\": \"\(args[3])\", \"size\": \(size), \"peak_mib\": \(peak >> 20), \"activations_mib\": \(activations >> 20), \"gradients_mib\": \(gradientBytes >> 20), \"seconds\": \(t)}")
case "parity":
    let fixtures = URL(fileURLWithPath: args[2])
    let device = try device(4)
    // The small ViT SAM (tools/make_parity_fixtures.py) and its reference outputs for a box prompt.
    let small = try Sam(.vitDebug(imageSize: 128), device: device)
    try small.load(checkpoint: fixtures.appendingPathComponent("small_sam.pth"))
    let cases = try StateDict.load(fixtures.appendingPathComponent("small_cases.pth"))
    let (smallEmbedding, smallMasks) = try withoutGrad {
        let embedding = try small.embed(cases["input.image"]!.to(device))
        let out = try small.decode(embeddings: embedding, boxes: cases["input.boxes"]!.to(device), multimask: true)
        return (try largestDifference(embedding, cases["embedding"]!), try largestDifference(out.masks, cases["box.masks"]!))
    }
    // LiteMedSAM's real weights on a Colin27 slice with a box, medcat's pre-processing included.
    let (lite, _) = try SamCheckpoint.open(URL(fileURLWithPath: args[3]), device: device)
    let ref = try StateDict.load(fixtures.appendingPathComponent("lite_medsam_box.pth"))
    let png = try Raster.decode(Data(contentsOf: fixtures.appendingPathComponent("colin27_slice.png")), format: .png)
    let liteLogits = try withoutGrad {
        let prepared = try PreparedImage(pixels: png.voxels, height: png.ny, width: png.nx, channels: 1, config: lite.config, device: device)
        let box = try Tensor(prepared.modelCoordinates(try ref["box_pixels"]!.floats()), shape: [1, 4]).to(device)
        return try largestDifference(lite.decode(embeddings: lite.embed(prepared.tensor), boxes: box, multimask: false).masks, ref["logits"]!)
    }
    print("{\"device\": \"\(device)\", \"small_vit_embedding\": \(smallEmbedding), \"small_vit_box_masks\": \(smallMasks), \"lite_medsam_logits\": \(liteLogits)}")
case "one-step":
    let device = try device(2)
    let bf16 = args[3] == "bf16"
    let fixtures = URL(fileURLWithPath: args[4])
    let sam = try Sam(.vitDebug(imageSize: 128), device: device)
    try sam.load(checkpoint: fixtures.appendingPathComponent("small_sam.pth"))
    let cases = try StateDict.load(fixtures.appendingPathComponent("small_cases.pth"))
    let before = try sam.trainableParameters.map { try $0.to(.cpu).floats() }
    let optimizer = try Optimizer.adamW(sam.trainableParameters, lr: 1e-3)
    let forward = { () throws -> Tensor in
        let out = try sam.decode(embeddings: sam.embed(cases["input.image"]!.to(device)), boxes: cases["input.boxes"]!.to(device), multimask: false)
        return try out.masks.to(.f32).sigmoid().mean() + out.iou.to(.f32).mean()
    }
    let loss = try bf16 ? Runtime.autocast(device, .bf16, forward) : forward()
    try loss.backward()
    try optimizer.step()
    let moved = try zip(before, sam.trainableParameters).map { a, p in zip(a, try p.to(.cpu).floats()).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
    let dtypes = Set(sam.trainableParameters.map(\.dtype.description)).sorted()
    print("{\"device\": \"\(device)\", \"precision\": \"\(args[3])\", \"loss\": \(try loss.item()), \"largest_weight_change\": \(moved), \"weight_dtypes\": \"\(dtypes.joined(separator: ","))\"}")
case "device":
    let device = try device(2)
    var nccl = "not applicable"
    if device != .cpu {
        let group = try ProcessGroup(Launch(rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, masterAddress: "127.0.0.1",
                                            masterPort: 20000 + Int(getpid()) % 20000), device: device, timeout: 60)
        let t = try Tensor.full([4], 2, device: device)
        try group.allReduceSum([t])
        nccl = try t.to(.cpu).floats() == [2, 2, 2, 2] ? "all-reduce ok" : "all-reduce gave \(try t.to(.cpu).floats())"
    }
    print("{\"device\": \"\(device)\", \"nccl\": \"\(nccl)\"}")
default:
    FileHandle.standardError.write(Data("unknown mode \(args[1])\n".utf8))
    exit(2)
}
} catch {
    FileHandle.standardError.write(Data("medcat-sam-bench \(args[1]): \(error)\n".utf8))
    exit(1)
}
