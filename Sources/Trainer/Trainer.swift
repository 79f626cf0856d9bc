import Catalog
import Eval
import Foundation
import Geometry
import Hashing
import Prompts
import SAM
import Torch

/// Fine-tunes SAM on catalog samples: a first decoder pass with boxes or points, then SAM-Med2D's
/// interactive passes (corrective clicks from the error region, the previous mask fed back), loss
/// 20·focal + dice + IoU MSE on every pass, AdamW with warm-up and cosine decay, clipping,
/// accumulation, periodic checkpoints that resume exactly.
public final class Trainer {
    public let sam: Sam
    public let config: TrainConfig
    public let loader: SampleLoader
    /// Where validation reads; nil when training from a pack alone (no validation).
    let catalog: Catalog?
    /// One AdamW per learning-rate group (the pretrained encoder's scaled rate, the rest), over
    /// consecutive stretches of `parameters`.
    let optimizers: [(optimizer: Optimizer, scale: Double, first: Int)]
    let parameters: [Tensor]
    /// Decoder tuning's stored encoder outputs (nil: the encoder runs every step).
    public let embeddingCache: EmbeddingCache?
    /// LoRA updates by their frozen weight's key (`--tune lora`).
    let lowRank: [(key: String, update: LowRankUpdate)]
    /// The other processes of a distributed run: each takes its share of every batch, and the
    /// gradients are summed before the step, so the run follows the single-process one.
    public let group: ProcessGroup?
    public private(set) var step = 0
    public private(set) var position = LoaderPosition()
    /// The best validation so far (its step and mean Dice) and validations since it.
    public private(set) var best: Best?
    public struct Best: Codable, Equatable, Sendable {
        public var step: Int, dice: Double, since: Int
    }

    public struct StepLog: Codable, Sendable {
        public var step: Int, epoch: Int, loss: Double, focal: Double, dice: Double, iou: Double, lr: Double
        public var gradNorm: Double, samplesPerSecond: Double
        enum CodingKeys: String, CodingKey {
            case step, epoch, loss, focal, dice, iou, lr, gradNorm = "grad_norm", samplesPerSecond = "samples_per_s"
        }
    }

    /// Trains on `pack` when given (`Pack.load`: no catalog needed but for validation), else on
    /// the catalog's selection, packed first when `config.shards` > 0.
    public init(sam: Sam, catalog: Catalog?, pack: Pack? = nil, config: TrainConfig, group: ProcessGroup? = nil, embeddingCache: EmbeddingCache? = nil) throws {
        self.sam = sam; self.config = config; self.catalog = catalog; self.group = group; self.embeddingCache = embeddingCache
        if embeddingCache != nil && config.tune != .decoder {
            throw TrainingError("the embedding cache needs a frozen image encoder (--tune decoder)")
        }
        if let group, config.batchSize % group.worldSize != 0 {
            throw TrainingError("a batch of \(config.batchSize) samples cannot be split evenly over \(group.worldSize) processes")
        }
        var pack = pack
        if let pack, pack.shards != config.shards {
            throw TrainingError("the pack has \(pack.shards) shards but the training settings say \(config.shards)")
        }
        if pack == nil, config.shards > 0, let catalog {
            // Rank 0 packs (or finds the pack); the others open it once it is there.
            if (group?.rank ?? 0) == 0 { pack = try Pack.open(catalog: catalog, selection: config.selection, shards: config.shards).pack }
            try group?.barrier()
            if pack == nil { pack = try Pack.open(catalog: catalog, selection: config.selection, shards: config.shards).pack }
        }
        loader = try SampleLoader(catalog: catalog, config: config, pack: pack)
        let entries = sam.parameters.entries.filter(\.trainable)
        if config.tune == .adapter && !entries.contains(where: { $0.name.contains(".Adapter.") }) {
            throw TrainingError("adapter tuning needs a model with adapters (a ViT SAM opened with them, or a SAM-Med2D checkpoint)")
        }
        for e in entries where !config.tune.trains(e.name) { try e.tensor.requiresGrad(false) }
        sam.imageEncoder.checkpointBlocks = config.checkpointActivations
        lowRank = config.tune == .lora ? try sam.attachLowRank(rank: config.loraRank ?? TrainConfig.defaultLoRARank, seed: config.seed ^ 0x4C6F_5241) : []
        // Full fine-tuning: the pretrained encoder at its scaled rate. New weights (LoRA factors,
        // adapters) and everything else at the peak.
        let trained = entries.filter { config.tune.trains($0.name) }
        let slow = { (e: Parameters.Entry) in config.tune == .full && e.name.hasPrefix("image_encoder.") }
        let encoder = trained.filter(slow).map(\.tensor)
        let rest = lowRank.flatMap { [$0.update.a, $0.update.b] } + trained.filter { !slow($0) }.map(\.tensor)
        parameters = encoder + rest
        var groups: [(Optimizer, Double, Int)] = []
        for (list, scale, first) in [(encoder, config.encoderLearningRateScale, 0), (rest, 1.0, encoder.count)] where !list.isEmpty {
            groups.append((try Optimizer.adamW(list, lr: config.learningRate(at: 0) * scale, eps: config.adamEps, weightDecay: config.weightDecay), scale, first))
        }
        optimizers = groups
        // Every process starts from rank 0's weights.
        try group?.broadcast(parameters)
    }

    /// What the optimiser updates (LoRA factors included).
    public var trainedParameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// One optimiser step (with `accumulate` micro-batches).
    public func trainStep() throws -> StepLog {
        let start = Date()
        for g in optimizers { try g.optimizer.setLearningRate(config.learningRate(at: step) * g.scale) }
        var terms = (loss: 0.0, focal: 0.0, dice: 0.0, iou: 0.0), samples = 0
        let (part, parts) = (group?.rank ?? 0, group?.worldSize ?? 1)
        for _ in 0..<config.accumulate {
            let (batch, _, next) = try loader.batch(at: position, part: part, of: parts)
            position = next
            let t = try microStep(batch, firstSample: part, sampleStride: parts)
            terms.loss += t.loss; terms.focal += t.focal; terms.dice += t.dice; terms.iou += t.iou
            samples += batch.count * parts
        }
        if let group {
            // Each process's loss was weighted by its share of the batch: the sums are the global means.
            try group.allReduceSum(parameters.compactMap(\.grad))
            let sums = try Tensor([terms.loss, terms.focal, terms.dice, terms.iou], shape: [4])
            try group.allReduceSum([sums])
            let v = try sums.values(as: Double.self)
            terms = (v[0], v[1], v[2], v[3])
        }
        let norm = config.clipNorm > 0 ? try clipGradNorm(parameters, maxNorm: config.clipNorm) : 0
        for g in optimizers { try g.optimizer.step(); try g.optimizer.zeroGrad() }
        let n = Double(config.accumulate)
        let log = StepLog(step: step + 1, epoch: position.epoch, loss: terms.loss / n, focal: terms.focal / n, dice: terms.dice / n,
                          iou: terms.iou / n, lr: config.learningRate(at: step), gradNorm: norm,
                          samplesPerSecond: Double(samples) / Date().timeIntervalSince(start))
        step += 1
        return log
    }

    /// One micro-batch: this process's samples, which are samples firstSample, firstSample +
    /// sampleStride, … of the global batch. Returns the loss terms weighted by this share.
    func microStep(_ batch: [TrainingSample], firstSample: Int = 0, sampleStride: Int = 1) throws
        -> (loss: Double, focal: Double, dice: Double, iou: Double) {
        let device = sam.device, n = batch[0].size, m = config.masksPerImage
        let t = try TrainingBatch(batch, config: sam.config, device: device)
        let (frame, truths, targets) = (t.frame, t.truths, t.targets)
        var prompts = t.prompts

        func decode(_ embeddings: Tensor, masks: Tensor?) throws -> (low: Tensor, logits: Tensor, iou: Tensor) {
            let input = try PromptTensors(prompts, frame: frame, device: device)
            let out = try sam.decode(embeddings: embeddings, points: input.points, boxes: input.boxes, masks: masks, multimask: false)
            return (out.masks, try frame.upsample(out.masks, inputSize: sam.config.imageSize), out.iou)
        }
        let autocast = config.precision == .bf16
        func run<T>(_ body: () throws -> T) throws -> T { autocast ? try Runtime.autocast(device, .bf16, body) : try body() }

        // Pass 1 trains everything the tune mode allows; the click passes train the decoder on
        // detached embeddings, as SAM-Med2D does.
        let embeddings = try run { try encode(batch, t.images).indexSelect(0, t.index) }            // B·M×C×G×G
        var out = try run { try decode(embeddings, masks: nil) }
        var terms = try SegmentationLoss.compute(logits: out.logits.to(.f32), targets: targets, predictedIoU: out.iou.to(.f32),
                                                  focalWeight: config.focalWeight)
        var total = terms.total
        var sums = (focal: terms.focal, dice: terms.dice, iou: terms.iou)
        if config.clickPasses > 0 {
            let detached = try embeddings.detach()
            let stepKey = UInt64(step), positionKey = UInt64(position.epoch << 32 | position.batch)
            var stepRNG = PromptRNG(seed: config.seed, 0x636C_6963_6B, stepKey, positionKey)
            let maskOnly = Int(stepRNG.next() % UInt64(config.clickPasses))
            // Clicks are drawn per mask of the global batch, so a process draws what one process would.
            var rngs = truths.indices.map { k in
                PromptRNG(seed: config.seed, 0x636C_6963_6B, stepKey, positionKey, UInt64((firstSample + (k / m) * sampleStride) * m + k % m))
            }
            for pass in 0..<config.clickPasses {
                if pass != maskOnly {
                    let hard = try out.logits.gt(0).to(.u8, device: .cpu).values(as: UInt8.self)
                    for k in truths.indices {
                        let prediction = BinaryMask(width: n, height: n, pixels: Array(hard[(k * n * n)..<((k + 1) * n * n)]))
                        prompts[k].points.append(PromptSimulator.randomClick(prediction: prediction, truth: truths[k], rng: &rngs[k])
                                         ?? Prompt.Point(x: 0, y: 0, label: -1))
                    }
                }
                out = try run { try decode(detached, masks: out.low.detach()) }
                terms = try SegmentationLoss.compute(logits: out.logits.to(.f32), targets: targets, predictedIoU: out.iou.to(.f32),
                                                  focalWeight: config.focalWeight)
                total = try total + terms.total
                sums.focal += terms.focal; sums.dice += terms.dice; sums.iou += terms.iou
            }
        }
        let passes = Double(1 + config.clickPasses)
        let weight = Double(batch.count) / Double(config.batchSize)  // this process's part of the global mean
        let loss = try total * (weight / (passes * Double(config.accumulate)))
        try loss.backward()
        return (try loss.item() * Double(config.accumulate), weight * sums.focal / passes, weight * sums.dice / passes, weight * sums.iou / passes)
    }

    /// B×C×G×G image embeddings. With the encoder frozen (decoder tuning) each image is embedded
    /// on its own without autograd history and rounded to half precision, as the embedding cache
    /// stores it: with the cache or without, the decoder sees the same values and trains alike.
    func encode(_ batch: [TrainingSample], _ images: Tensor) throws -> Tensor {
        guard config.tune == .decoder else { return try sam.embed(images) }
        return try withoutGrad {
            try Tensor.cat(batch.indices.map { k in
                let key = batch[k].cacheKey
                if let stored = try embeddingCache?.embedding(key) { return try stored.to(sam.device) }
                let fresh = try sam.embed(images.narrow(0, k, 1))
                if let cache = embeddingCache { return try cache.store(key, fresh).to(sam.device) }
                return try fresh.to(.f16).to(.f32)
            }, dim: 0)
        }
    }

    /// What `validate` scores: `medcat eval --protocol box --protocol points1 --sample N` on the
    /// validation selection (seed 0, whatever the training seed, so runs compare on one subset).
    public var validationSettings: EvalSettings {
        EvalSettings(selection: config.validation, protocols: [.box, .points1], seed: 0, imageSize: sam.config.imageSize,
                     device: config.device, sample: config.validationImages)
    }

    /// Eval's mean first-output Dice per protocol on the validation subset, and their mean (what
    /// the best checkpoint is chosen by); nil when validation is off or finds no mask.
    public func validate() throws -> (dice: Double, byProtocol: [EvalProtocol: Double])? {
        guard config.validationImages > 0 else { return nil }
        guard let catalog else { throw TrainingError("validation reads the catalog, and this run has none (it trains from a pack alone)") }
        let scores = try EvalRunner(sam: sam, catalog: catalog, settings: validationSettings).meanDice()
        guard !scores.isEmpty else { return nil }
        return (scores.values.reduce(0, +) / Double(scores.count), scores)
    }

    /// Whether a validation follows the step just taken: every `validationEvery` steps (each epoch
    /// when 0) and after the last. Every process knows it, so all take part in `agreeToStop`.
    public var validatesNow: Bool {
        guard config.validationImages > 0 else { return false }
        let every = config.validationEvery > 0 ? config.validationEvery : max(1, loader.batchesPerEpoch / config.accumulate)
        return step % every == 0 || step == config.steps
    }

    /// Records a validation's mean Dice; true when it is the best so far.
    public func record(validation dice: Double) -> Bool {
        if let b = best, dice <= b.dice { best!.since += 1; return false }
        best = Best(step: step, dice: dice, since: 0)
        return true
    }

    /// Early stop: as many validations in a row without a better one as the config allows.
    public var patienceSpent: Bool { config.earlyStop > 0 && (best?.since ?? 0) >= config.earlyStop }

    /// Rank 0's decision to stop, shared with every process (a no-op for one process).
    public func agreeToStop(_ stop: Bool) throws -> Bool {
        guard let group else { return stop }
        let flag = try Tensor([stop ? 1.0 : 0], shape: [1])
        try group.broadcast([flag])
        return try flag.item() != 0
    }

    /// `model-best.safetensors`: the weights of the best validation, with its step and scores.
    public func saveBest(to dir: URL, metrics: [String: Double]) throws {
        var info = ["medcat.train": config.json, "medcat.step": "\(step)", "medcat.selection_hash": selectionHash]
        for (k, v) in metrics { info["medcat.metric.\(k)"] = "\(v)" }
        try SamCheckpoint.save(sam, to: dir.appendingPathComponent(Self.bestFile), info: info)
    }
    public static let bestFile = "model-best.safetensors"

    // MARK: checkpoints

    /// Writes `model-STEP.safetensors` (loadable by eval and predict; the config, step and data
    /// selection in its metadata) and `state-STEP.safetensors` (optimiser moments, loader position,
    /// LoRA factors), then points `last.json` at them. LoRA runs also write their frozen weights once.
    public func saveCheckpoint(to dir: URL, metrics: [String: Double] = [:]) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tag = String(format: "%06d", step)
        let model = dir.appendingPathComponent("model-\(tag).safetensors")
        var info = ["medcat.train": config.json, "medcat.step": "\(step)", "medcat.selection_hash": selectionHash]
        for (k, v) in metrics { info["medcat.metric.\(k)"] = "\(v)" }
        try SamCheckpoint.save(sam, to: model, info: info)
        var state = StateDict()
        for (key, update) in lowRank {
            state["lora.\(key).a"] = update.a
            state["lora.\(key).b"] = update.b
        }
        try saveFrozenWeights(in: dir)
        for i in parameters.indices {
            let (optimizer, local) = optimizer(of: i)
            for (k, t) in try optimizer.state(of: local).enumerated() { state["optimizer.\(i).\(k)"] = t }
        }
        let pos = String(decoding: try JSONEncoder().encode(position), as: UTF8.self)
        state.metadata = ["medcat.train": config.json, "medcat.step": "\(step)", "medcat.position": pos]
        if let best { state.metadata["medcat.best"] = String(decoding: try JSONEncoder().encode(best), as: UTF8.self) }
        try state.saveSafetensors(dir.appendingPathComponent("state-\(tag).safetensors"))
        let last = ["step": "\(step)", "model": model.lastPathComponent, "state": "state-\(tag).safetensors"]
        try JSONSerialization.data(withJSONObject: last, options: .sortedKeys).write(to: dir.appendingPathComponent("last.json"), options: .atomic)
        return model
    }

    /// Continues from the checkpoint `last.json` in `dir` names: model weights, optimiser state,
    /// step, loader position and best validation. The run's config must be the checkpoint's. With
    /// several processes every one calls this: rank 0 reads `dir` and hands the state to the
    /// others, so no other node needs the folder (nodes without a shared file system).
    public func resume(from dir: URL) throws {
        guard let group else { return try load(from: dir) }
        let lead = group.rank == 0
        if lead { try load(from: dir) }
        let header = try Tensor(lead ? [Double(step), Double(position.epoch), Double(position.batch), best == nil ? 0 : 1,
                                        Double(best?.step ?? 0), best?.dice ?? 0, Double(best?.since ?? 0)] : [Double](repeating: 0, count: 7), shape: [7])
        try group.broadcast([header])
        let h = try header.values(as: Double.self)
        step = Int(h[0]); position = LoaderPosition(epoch: Int(h[1]), batch: Int(h[2]))
        best = h[3] == 1 ? Best(step: Int(h[4]), dice: h[5], since: Int(h[6])) : nil
        // Frozen weights too: a LoRA run's base weights come back from the frozen file on rank 0.
        try group.broadcast(sam.parameters.entries.map(\.tensor) + lowRank.flatMap { [$0.update.a, $0.update.b] })
        // AdamW state (step, exp_avg, exp_avg_sq) of the parameters that have any.
        let saved = try parameters.indices.map { i -> [Tensor] in
            guard lead else { return [] }
            let (optimizer, local) = optimizer(of: i)
            return try optimizer.state(of: local)
        }
        let stated = try Tensor(saved.map { $0.isEmpty ? 0.0 : 1 }, shape: [parameters.count])
        try group.broadcast([stated])
        for (i, has) in try stated.values(as: Double.self).enumerated() where has == 1 {
            let (optimizer, local) = optimizer(of: i)
            let state = lead ? saved[i] : [try Tensor.zeros([], dtype: .i64), try Tensor.zeros(parameters[i].shape), try Tensor.zeros(parameters[i].shape)]
            try group.broadcast(state)
            if !lead { try optimizer.setState(of: local, state) }
        }
    }

    /// What `resume` reads from the run's folder.
    private func load(from dir: URL) throws {
        let lastURL = dir.appendingPathComponent("last.json")
        guard let last = try? JSONSerialization.jsonObject(with: Data(contentsOf: lastURL)) as? [String: String],
              let modelName = last["model"], let stateName = last["state"] else {
            throw CheckpointError(lastURL, "no checkpoint to resume from (last.json missing or unreadable)")
        }
        let stateURL = dir.appendingPathComponent(stateName)
        let state = try StateDict.load(stateURL)
        guard let saved = state.metadata["medcat.train"], let savedConfig = try? JSONDecoder().decode(TrainConfig.self, from: Data(saved.utf8)) else {
            throw CheckpointError(stateURL, "no training config in the metadata")
        }
        guard savedConfig == config else {
            throw CheckpointError(stateURL, "was written with other training settings; resume with the same options (\(saved))")
        }
        let modelURL = dir.appendingPathComponent(modelName)
        try sam.load(try StateDict.load(modelURL), from: modelURL)
        if !lowRank.isEmpty {
            // The model file holds merged weights: put the frozen ones back under the saved factors.
            let frozenURL = dir.appendingPathComponent(Self.frozenWeightsFile)
            let frozen = try StateDict.load(frozenURL)
            let weights = namedParameters
            for (key, update) in lowRank {
                guard let a = state["lora.\(key).a"], let b = state["lora.\(key).b"] else { throw CheckpointError(stateURL, "no LoRA factors for \(key)") }
                guard let base = frozen[key] else { throw CheckpointError(frozenURL, "no frozen weight \(key)") }
                try update.a.assign(a)
                try update.b.assign(b)
                try weights[key]!.assign(base)
            }
            frozenWeightsSaved = true
        }
        for i in parameters.indices {
            var tensors: [Tensor] = []
            while let t = state["optimizer.\(i).\(tensors.count)"] { tensors.append(t) }
            let (optimizer, local) = optimizer(of: i)
            if !tensors.isEmpty { try optimizer.setState(of: local, tensors) }
        }
        step = Int(state.metadata["medcat.step"] ?? "") ?? 0
        best = try state.metadata["medcat.best"].map { try JSONDecoder().decode(Best.self, from: Data($0.utf8)) }
        position = try JSONDecoder().decode(LoaderPosition.self, from: Data((state.metadata["medcat.position"] ?? "{}").utf8))
    }

    static let frozenWeightsFile = "lora-frozen.safetensors"

    /// The optimiser holding parameter i, and i's index in it.
    func optimizer(of i: Int) -> (Optimizer, Int) {
        let g = optimizers.last { $0.first <= i }!
        return (g.optimizer, i - g.first)
    }

    /// Set once this run wrote (or resumed from) its frozen weights: a fresh run writes its own
    /// rather than trusting a file an earlier, killed run left.
    var frozenWeightsSaved = false

    /// LoRA runs: the frozen weights under the updates, written once (they never change), so that
    /// a resumed run continues from exactly them rather than from merged weights minus B·A.
    func saveFrozenWeights(in dir: URL) throws {
        guard !lowRank.isEmpty, !frozenWeightsSaved else { return }
        var frozen = StateDict()
        let weights = namedParameters
        for (key, _) in lowRank { frozen[key] = weights[key] }
        try frozen.saveSafetensors(dir.appendingPathComponent(Self.frozenWeightsFile))
        frozenWeightsSaved = true
    }

    var namedParameters: [String: Tensor] { StateDict(sam).tensors }

    /// Identifies the training data: the selection and how many images it had.
    var selectionHash: String {
        let text = (try? String(decoding: JSONEncoder().encode(config.selection), as: UTF8.self)) ?? ""
        return StableHash.hex(text + "/\(loader.imageCount)")
    }
}
