import ArgumentParser
import CProcess
import Catalog
import Foundation
import Prompts
import SAM
import Torch
import Trainer

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune SAM on catalog samples with box, point and iterative click prompts.",
        discussion: """
            Each step draws --batch-size images and --masks-per-image masks from each (seeded by --seed, epoch and image), \
            augments them (flips, quarter turns, intensity), prompts with jittered boxes or one point, then runs \
            --click-passes more decoder passes with corrective clicks and the previous mask fed back (SAM-Med2D). \
            Loss 20·focal + dice + IoU MSE; AdamW with warm-up and cosine decay.

            Checkpoints go to --out every --checkpoint-every steps and at the end; --resume continues the run in --out \
            exactly. Metrics are appended to <out>/metrics.jsonl.

            Several processes (torch.distributed: Gloo on the CPU, NCCL with CUDA) split each batch. --nproc G starts \
            G on this machine; on N machines, run the same command on each with --nnodes N --node-rank K --master \
            ADDR:PORT (ADDR: node 0's address). Or start medcat train under torchrun --no-python or any launcher that sets \
            torchrun's variables:
              RANK, WORLD_SIZE            this process and all processes, over all nodes
              LOCAL_RANK, LOCAL_WORLD_SIZE  on this node (--device cuda means cuda:LOCAL_RANK)
              MASTER_ADDR, MASTER_PORT    where rank 0 serves the rendezvous
              GLOO_SOCKET_IFNAME          the network interface Gloo uses (default: the address of this host's name)
            Give each node a copy of the pack (medcat pack, then --pack DIR): training reads no catalog, and only \
            rank 0 reads the catalog to validate (--val-images 0 turns that off).

            Examples:
              medcat train --checkpoint lite_medsam.pth --out runs/lite --steps 200
              medcat train --checkpoint sam_vit_b.pth --image-size 256 --tune decoder --out runs/ct
              medcat train --checkpoint lite_medsam.pth --val-every 25 --early-stop 3 --out runs/best
              medcat train --checkpoint lite_medsam.pth --tune decoder --focal-weight 0 --click-passes 0 --out runs/vessels
              medcat train --checkpoint sam_vit_b.pth --image-size 256 --tune adapter --out runs/sam-med2d
              medcat train --checkpoint lite_medsam.pth --tune lora --lora-rank 8 --out runs/lora
              medcat train --checkpoint lite_medsam.pth --out runs/lite --steps 200 --resume
              medcat train --preset vit_debug --out runs/smoke --steps 60
              medcat train --checkpoint sam_vit_b.pth --device cuda --nproc 8 --precision bf16 --checkpoint-activations --out runs/b
              medcat train --pack medcat.packs/KEY --nnodes 2 --node-rank 1 --master 10.0.0.1:29500 --nproc 8 --device cuda --val-images 0 ...
            """)

    @OptionGroup var common: CatalogOptions
    @OptionGroup var filters: CatalogCommand.Filters
    @Option(help: "Initial weights (.pth or .safetensors): SAM, MedSAM, LiteMedSAM or a medcat checkpoint.") var checkpoint: String?
    @Option(help: "Train from scratch with this preset instead (vit_debug: a tiny model for smoke tests; tiny_vit at 256 only).") var preset: Preset?
    @Option(help: "Encoder input size; default: the checkpoint's or preset's.") var imageSize: Int?
    @Option(help: "Output folder for checkpoints and metrics.") var out: String
    @Option(help: "Optimiser steps.") var steps: Int = 100
    @Option(help: "Images per micro-batch.") var batchSize: Int = 2
    @Option(help: "Masks drawn from each image.") var masksPerImage: Int = 5
    @Option(help: "Micro-batches per optimiser step.") var accumulate: Int = 1
    @Option(help: "Peak learning rate.") var lr: Double = 1e-4
    @Option(help: "AdamW weight decay.") var weightDecay: Double = 0.01
    @Option(help: "Linear warm-up steps.") var warmup: Int = 10
    @Option(help: "Gradient norm clip (0: off).") var clip: Double = 1
    @Option(help: "Weight of the focal term against the Dice term (SAM: 20; 0, Dice and IoU only, trains thin structures such as vessels).")
    var focalWeight: Double = TrainConfig().focalWeight
    @Option(help: ArgumentHelp("What trains.", discussion: """
        full: everything. decoder: prompt encoder and mask decoder, the image encoder frozen and its output cached. adapter: SAM-Med2D's adapters in every ViT block (added when the \
        checkpoint has none), prompt encoder and mask decoder. lora: LoRA updates of the image encoder's attention \
        projections (merged into the saved weights), prompt encoder and mask decoder.
        """)) var tune: TuneMode = .full
    @Option(help: "Rank of the LoRA updates (--tune lora; default \(TrainConfig.defaultLoRARank)).") var loraRank: Int?
    @Option(help: "Click passes after the first decoder pass.") var clickPasses: Int = 8
    @Option(help: "Share of steps prompted with boxes; the others with points.") var boxProbability: Double = TrainConfig().boxProbability
    @Option(help: "Points per mask on point steps: 1 foreground point, or for K > 1, K/2 foreground and the rest background (SAM-Med2D).")
    var points: Int = 1
    @Option(help: "Box jitter: none, sam-med2d, sam-med2d:PX:FRACTION, medsam or medsam:PX.") var boxJitter: String = "sam-med2d"
    @Option(help: "Rebalance: modality:NAME=W or dataset:NAME=W (repeatable); images are drawn in proportion to their weights.")
    var sampleWeight: [String] = []
    @Option(help: "Validation split: its images are scored as `medcat eval --protocol box --protocol points1 --sample N` scores them.")
    var valSplit: Split = .val
    @Option(help: "Validation images N, drawn once by a fixed seed (0: no validation).") var valImages: Int = 16
    @Option(help: "Validate every N steps (0: after each epoch) and after the last; the best is kept as model-best.safetensors.")
    var valEvery: Int = 0
    @Option(help: "Stop after N validations in a row without a better mean Dice (0: never).") var earlyStop: Int = 0
    @Option(help: "The image encoder's learning rate as a fraction of --lr (--tune full; default \(TrainConfig().encoderLearningRateScale) for a pretrained checkpoint, 1 for a --preset trained from scratch).")
    var encoderLrScale: Double?
    @Option(help: "Seed of order, prompts and augmentation.") var seed: UInt64 = 0
    @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int = 50
    @Option(help: "Where the model runs: cpu, cuda (this process's GPU, cuda:LOCAL_RANK) or cuda:N.") var device: String = "cpu"
    @Option(help: "fp32, or bf16 autocast with fp32 weights and optimiser state (default: bf16 on CUDA, fp32 on the CPU).")
    var precision: Precision?
    @Flag(help: "Recompute each image-encoder block in the backward pass instead of keeping its activations (measured: 6× less activation memory for ViT-B at 1024, 1.5× the step time).")
    var checkpointActivations = false
    @Option(help: "Pack the selection into N shard files first (reused while the catalog is unchanged); 0 reads the catalog's shards.")
    var shards: Int = 0
    @Option(help: "Train from this pack folder (medcat pack), which needs no catalog; filters and --shards come from the pack.")
    var pack: String?
    @Option(help: "Processes on this machine; --batch-size is split between all processes.") var nproc: Int = 1
    @Option(help: "Machines in the run, each starting this command with --nproc processes.") var nnodes: Int = 1
    @Option(help: "This machine's place among --nnodes (0 hosts the rendezvous).") var nodeRank: Int = 0
    @Option(help: "Node 0's address and a free port, ADDR:PORT (needed with --nnodes > 1).") var master: String?
    @Option(help: "AdamW epsilon.") var adamEps: Double = 1e-8
    @Flag(help: "Turn augmentation off.") var noAugment = false
    @Flag(help: "--tune decoder: run the frozen encoder every step instead of storing its output beside the catalog's shards.")
    var noEmbeddingCache = false
    @Flag(help: "Continue the run in --out from its last checkpoint.") var resume = false

    func validate() throws {
        guard (checkpoint == nil) != (preset == nil) else { throw ValidationError("give --checkpoint FILE or --preset NAME (one of them)") }
        if let preset, preset.config(imageSize: imageSize) == nil {
            throw ValidationError("--preset \(preset.rawValue) takes --image-size 256 only")
        }
        if tune == .adapter, preset == .tinyViT {
            throw ValidationError("--tune adapter needs a ViT image encoder; tiny_vit has none (use --tune lora or decoder)")
        }
        if let loraRank {
            guard tune == .lora else { throw ValidationError("--lora-rank applies to --tune lora only") }
            guard loraRank >= 1 else { throw ValidationError("--lora-rank must be at least 1") }
        }
        guard BoxJitter(argument: boxJitter) != nil else { throw ValidationError("--box-jitter must be \(BoxJitter.choices) (got '\(boxJitter)')") }
        for (name, value) in [("--steps", steps), ("--batch-size", batchSize), ("--masks-per-image", masksPerImage), ("--accumulate", accumulate),
                              ("--checkpoint-every", checkpointEvery), ("--nproc", nproc), ("--nnodes", nnodes), ("--points", points)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        for (name, value) in [("--warmup", warmup), ("--click-passes", clickPasses), ("--val-images", valImages), ("--shards", shards),
                              ("--val-every", valEvery), ("--early-stop", earlyStop)] where value < 0 {
            throw ValidationError("\(name) must be 0 or more")
        }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive") }
        guard focalWeight >= 0, focalWeight.isFinite else { throw ValidationError("--focal-weight must be 0 or more") }
        guard (0...1).contains(boxProbability) else { throw ValidationError("--box-probability must be between 0 and 1") }
        if let encoderLrScale, !(encoderLrScale >= 0 && encoderLrScale.isFinite) { throw ValidationError("--encoder-lr-scale must be 0 or more") }
        if noEmbeddingCache, tune != .decoder { throw ValidationError("--no-embedding-cache applies to --tune decoder only") }
        _ = try weights()
        guard Device(device) != nil else { throw ValidationError("--device must be cpu, cuda or cuda:N (got '\(device)')") }
        guard (0..<nnodes).contains(nodeRank) else { throw ValidationError("--node-rank must be in 0…\(nnodes - 1)") }
        if nnodes > 1 && master == nil { throw ValidationError("--nnodes \(nnodes) needs --master ADDR:PORT, node 0's address") }
        if let master, masterAddress(master) == nil { throw ValidationError("--master takes ADDR:PORT (got '\(master)')") }
        let processes = nproc * nnodes
        guard batchSize % processes == 0 else { throw ValidationError("--batch-size \(batchSize) must be a multiple of the \(processes) processes") }
        guard shards % processes == 0 else {
            throw ValidationError("--shards \(shards) must be a multiple of the \(processes) processes, so that each process reads shards of its own")
        }
        if pack != nil {
            guard shards == 0, filters.selection == Selection() else { throw ValidationError("--pack holds its selection and shard count: leave out --shards and the filters") }
        }
    }

    func weights() throws -> [String: Double] {
        var out: [String: Double] = [:]
        for w in sampleWeight {
            let parts = w.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].hasPrefix("modality:") || parts[0].hasPrefix("dataset:"), let v = Double(parts[1]), v >= 0 else {
                throw ValidationError("--sample-weight takes modality:NAME=W or dataset:NAME=W with W ≥ 0 (got '\(w)')")
            }
            out[parts[0]] = v
        }
        return out
    }

    var config: TrainConfig {
        var c = TrainConfig()
        c.sampleWeights = (try? weights()) ?? [:]
        c.selection = filters.selection
        if c.selection.splits.isEmpty { c.selection.splits = [.train] }
        c.validation = Selection(modalities: filters.modalities, classes: filters.classes, datasets: filters.datasets, splits: [valSplit])
        c.validationImages = valImages; c.validationEvery = valEvery; c.earlyStop = earlyStop; c.encoderLearningRateScale = encoderLrScale ?? (preset == nil ? c.encoderLearningRateScale : 1)
        c.shards = shards
        c.steps = steps; c.batchSize = batchSize; c.masksPerImage = masksPerImage; c.accumulate = accumulate
        c.learningRate = lr; c.weightDecay = weightDecay; c.adamEps = adamEps; c.warmupSteps = warmup; c.clipNorm = clip
        c.focalWeight = focalWeight
        c.tune = tune; c.loraRank = c.tune == .lora ? loraRank ?? TrainConfig.defaultLoRARank : nil; c.clickPasses = clickPasses; c.boxJitter = boxJitter
        c.boxProbability = boxProbability
        c.points = points == 1 ? nil : points
        c.augment = !noAugment; c.seed = seed; c.checkpointEvery = checkpointEvery; c.device = device
        c.precision = precision ?? (device.hasPrefix("cuda") ? .bf16 : .fp32)
        c.checkpointActivations = checkpointActivations
        return c
    }

    func run() throws {
        if nproc * nnodes > 1 && ProcessInfo.processInfo.environment["WORLD_SIZE"] == nil { return try launch() }
        mc_keep_freed_memory()
        let launch = try Launch.fromEnvironment()
        let device = launch?.device(self.device) ?? Device(self.device)!
        try Runtime.prepare(device)
        let group = try launch.map { try ProcessGroup($0, device: device) }
        let lead = (group?.rank ?? 0) == 0
        let sam: Sam
        // SAM-Med2D's adapters, for models that have none yet.
        let adapterRatio = config.tune == .adapter ? 0.25 : nil
        if let checkpoint {
            sam = try SamCheckpoint.open(URL(fileURLWithPath: checkpoint), imageSize: imageSize, adapterRatio: adapterRatio, device: device).0
        } else if let config = preset?.config(imageSize: imageSize) {
            var config = config
            if case .vit(var vit) = config.encoder { vit.adapterRatio = adapterRatio; config.encoder = .vit(vit) }
            sam = try Sam(config, device: device, seed: seed)
        } else {
            throw ValidationError("--preset \(preset?.rawValue ?? "") has no model at --image-size \(imageSize ?? 0)")
        }
        // From a pack, only rank 0 reads the catalog, and only to validate.
        let packed = try pack.map { try Pack.load(URL(fileURLWithPath: $0)) }
        var settings = config
        if let packed {
            settings.selection = packed.selection ?? settings.selection
            settings.shards = packed.shards
        }
        var catalog: Catalog?
        if packed == nil || (lead && valImages > 0) {
            guard packed == nil || FileManager.default.fileExists(atPath: common.catalog) else {
                throw ValidationError("validation reads the catalog \(common.catalog), which is not here: give --catalog, or --val-images 0")
            }
            catalog = try Catalog(path: common.catalog)
        }
        let shardFolder = packed?.directory ?? catalog!.shardDirectory
        let cache = tune == .decoder && !noEmbeddingCache ? try EmbeddingCache(sam: sam, shards: shardFolder, rank: group?.rank ?? 0) : nil
        let trainer = try Trainer(sam: sam, catalog: catalog, pack: packed, config: settings, group: group, embeddingCache: cache)
        guard lead else { return try follow(trainer) }
        let log = common.logger("train")
        trainer.loader.onReplacement = { log.warning("\($0)") }
        let dir = URL(fileURLWithPath: out)
        if resume {
            try trainer.resume(from: dir)
            print("resumed at step \(trainer.step) (epoch \(trainer.position.epoch), batch \(trainer.position.batch))")
        } else if FileManager.default.fileExists(atPath: dir.appendingPathComponent("last.json").path) {
            throw ValidationError("\(out) already holds a run: pass --resume to continue it, or choose another --out")
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let metrics = try FileHandle.appending(to: dir.appendingPathComponent("metrics.jsonl"))
        func write<T: Encodable>(_ value: T) throws { metrics.write(Data((try Output.json(value) + "\n").utf8)) }
        print("training \(sam.config.preset) (\(trainer.config.tune.rawValue), \(trainer.trainedParameterCount) parameters trained, the model has \(sam.parameterCount)) on \(trainer.loader.imageCount) images, "
              + "\(trainer.loader.batchesPerEpoch) batches per epoch, \(steps) steps")
        let bar = ProgressLine(total: steps)
        var lastValidation: [String: Double] = [:]
        /// Scores the validation subset, keeps model-best, logs; true when patience is spent.
        func validation() throws -> Bool {
            guard let v = try trainer.validate() else { return false }
            let better = trainer.record(validation: v.dice)
            lastValidation = ["val_dice": v.dice]
            for (p, d) in v.byProtocol { lastValidation["val_\(p.rawValue)_dice"] = d }
            if better { try trainer.saveBest(to: dir, metrics: lastValidation) }
            let best = trainer.best!
            try write(lastValidation.merging(["step": Double(trainer.step), "best_step": Double(best.step), "best_val_dice": best.dice]) { a, _ in a })
            let parts = v.byProtocol.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \(String(format: "%.4f", $0.value))" }
            bar.note("step \(trainer.step) validation Dice \(String(format: "%.4f", v.dice)) (\(parts.joined(separator: ", ")))"
                     + (better ? ": best so far, \(Trainer.bestFile)" : ", best \(String(format: "%.4f", best.dice)) at step \(best.step)"))
            return trainer.patienceSpent
        }
        if !resume { _ = try validation() }  // the starting weights are the first candidate for best
        var stopped = false
        while trainer.step < steps && !stopped {
            let log = try trainer.trainStep()
            try write(log)
            bar.update(log.step, "loss \(String(format: "%.4f", log.loss))  \(String(format: "%.1f", log.samplesPerSecond)) samples/s")
            if trainer.validatesNow { stopped = try trainer.agreeToStop(try validation()) }
            if trainer.step % checkpointEvery == 0 || trainer.step == steps || stopped {
                let url = try trainer.saveCheckpoint(to: dir, metrics: lastValidation)
                bar.note("checkpoint \(url.lastPathComponent)")
            }
        }
        bar.finish()
        try group?.barrier()
        if stopped && trainer.step < steps { print("early stop at step \(trainer.step): \(trainer.config.earlyStop) validations without a better Dice") }
        if let cache = trainer.embeddingCache {
            print("embedding cache: \(cache.hits) read, \(cache.misses) computed, \(cache.count) stored")
        }
        print("model: \(out)/model-\(String(format: "%06d", trainer.step)).safetensors")
        if let best = trainer.best {
            var summary = ["best_step": Double(best.step), "best_val_dice": best.dice, "last_step": Double(trainer.step)]
            summary["last_val_dice"] = lastValidation["val_dice"]
            try write(summary)
            print("best: \(out)/\(Trainer.bestFile) (step \(best.step), validation Dice \(String(format: "%.4f", best.dice)))")
        }
    }
}

extension TrainCommand {
    /// ADDR and PORT of `--master ADDR:PORT` (the address may be a bracketed IPv6 one).
    func masterAddress(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1..<65536).contains(port) else { return nil }
        let host = text[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return host.isEmpty ? nil : (host, port)
    }

    /// Starts this node's --nproc processes as ranks nodeRank·nproc … of nnodes·nproc, with
    /// torchrun's variables (on one node, a free local port), and waits for all of them.
    func launch() throws {
        let (host, port) = master.flatMap(masterAddress) ?? ("127.0.0.1", 20000 + Int(getpid()) % 20000)
        var children: [Process] = []
        for local in 0..<nproc {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            p.arguments = Array(CommandLine.arguments.dropFirst())
            var env = ProcessInfo.processInfo.environment
            env["WORLD_SIZE"] = "\(nproc * nnodes)"; env["RANK"] = "\(nodeRank * nproc + local)"
            env["LOCAL_RANK"] = "\(local)"; env["LOCAL_WORLD_SIZE"] = "\(nproc)"; env["GROUP_RANK"] = "\(nodeRank)"
            env["MASTER_ADDR"] = host; env["MASTER_PORT"] = "\(port)"
            p.environment = env
            try p.run()
            children.append(p)
        }
        for p in children { p.waitUntilExit() }
        if let failed = children.firstIndex(where: { $0.terminationStatus != 0 }) {
            throw ExitCode(children[failed].terminationStatus)
        }
    }

    /// Ranks other than 0 train in step with rank 0 and leave output, validation and checkpoints to it.
    func follow(_ trainer: Trainer) throws {
        if resume { try trainer.resume(from: URL(fileURLWithPath: out)) }
        while trainer.step < steps {
            _ = try trainer.trainStep()
            if trainer.validatesNow, try trainer.agreeToStop(false) { break }
        }
        try trainer.group?.barrier()
    }
}

/// One self-rewriting status line on a terminal ("step 12/100 …, ETA 0:41"), plain lines every
/// tenth of the run otherwise.
final class ProgressLine {
    let total: Int, start = Date(), tty = isatty(2) != 0
    var lastPrinted = 0
    init(total: Int) { self.total = total }

    func update(_ step: Int, _ text: String) {
        let elapsed = Date().timeIntervalSince(start)
        let eta = Int(elapsed / Double(max(step, 1)) * Double(total - step))
        let line = "step \(step)/\(total)  \(text)  ETA \(eta / 60):\(String(format: "%02d", eta % 60))"
        if tty { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
        else if step == total || step - lastPrinted >= max(1, total / 10) { FileHandle.standardError.write(Data((line + "\n").utf8)); lastPrinted = step }
    }
    func note(_ text: String) { FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + text + "\n").utf8)) }
    func finish() { if tty { FileHandle.standardError.write(Data("\n".utf8)) } }
}

extension FileHandle {
    static func appending(to url: URL) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let h = try FileHandle(forWritingTo: url)
        try h.seekToEnd()
        return h
    }
}
