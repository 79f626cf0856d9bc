import Catalog
import Foundation

/// Which parameters fine-tuning updates.
public enum TuneMode: String, Codable, CaseIterable, Sendable {
    /// Image encoder, prompt encoder and mask decoder (SAM-Med2D's and MedSAM's full fine-tuning).
    case full
    /// The prompt encoder and mask decoder, the image encoder frozen (the light mode MedSAM users
    /// start with), its output cached (`EmbeddingCache`).
    case decoder
    /// SAM-Med2D: the image encoder frozen but for adapters in every block (added when the model
    /// has none); prompt encoder and mask decoder trained.
    case adapter
    /// SAMed: the image encoder frozen, LoRA updates of its attention projections trained (and
    /// merged into the saved weights); prompt encoder and mask decoder trained.
    case lora

    /// Whether the parameter with this key trains in this mode (LoRA's own factors aside).
    func trains(_ key: String) -> Bool {
        switch self {
        case .full: return true
        case .decoder: return !key.hasPrefix("image_encoder.")
        case .adapter: return !key.hasPrefix("image_encoder.") || key.contains(".Adapter.")
        case .lora: return !key.hasPrefix("image_encoder.")
        }
    }
}

/// The arithmetic of the forward pass.
public enum Precision: String, Codable, CaseIterable, Sendable {
    case fp32, bf16
}

/// Everything that decides a training run; stored in every checkpoint it writes.
public struct TrainConfig: Codable, Equatable, Sendable {
    public var selection = Selection(splits: [.train])
    public var validation = Selection(splits: [.val])
    /// Validation images, drawn once by a fixed seed from the validation selection and scored as
    /// `medcat eval --protocol box --protocol points1 --sample N` scores them; 0 turns validation off.
    public var validationImages = 16
    /// Validate after every this many steps (0: after each epoch) and after the last.
    public var validationEvery = 0
    /// Stop after this many validations in a row without a better mean Dice (0: never).
    public var earlyStop = 0
    /// Rebalancing: "modality:NAME" or "dataset:NAME" → weight. With any, an epoch is as many draws
    /// (with replacement) as there are images, each image drawn with probability proportional to
    /// the product of the weights it matches (1 where none does).
    public var sampleWeights: [String: Double] = [:]
    /// Read from a pack of this many shards (`Pack`), or from the catalog's own shards when 0.
    public var shards = 0
    public var steps = 100
    /// Images per step (over all processes together) and masks drawn from each (resampled when an
    /// image has fewer).
    public var batchSize = 2
    public var masksPerImage = 5
    public var accumulate = 1
    public var learningRate = 1e-4
    /// The pretrained image encoder's rate as a fraction of the peak (`tune == .full`): lower than
    /// the decoder's, as SAM-Med2D and MedSAM fine-tune, so the features it learned stay.
    public var encoderLearningRateScale = 0.1
    public var weightDecay = 0.01
    public var adamEps = 1e-8
    public var warmupSteps = 10
    public var minLearningRate = 0.0
    public var clipNorm = 1.0
    /// Weight of the focal term against the Dice term of the mask loss: SAM's 20, or lower where
    /// thin structures (vessels) are trained, whose pixels the focal term would rather drop.
    public var focalWeight = 20.0
    public var tune = TuneMode.full
    /// Rank of the LoRA updates (`tune == .lora` only).
    public var loraRank: Int?
    public static let defaultLoRARank = 4  // SAMed's
    /// Decoder passes after the first, each adding one corrective click per mask and feeding back
    /// the previous mask (SAM-Med2D uses 8); one of them, drawn per step, adds no click.
    public var clickPasses = 8
    /// Probability that a step prompts with boxes (else with points).
    public var boxProbability = 0.5
    /// Points per mask on point steps (nil: 1): one foreground point, or for k > 1 ⌊k/2⌋
    /// foreground and the rest background points, as SAM-Med2D draws them.
    public var points: Int?
    /// `BoxJitter` argument form.
    public var boxJitter = "sam-med2d"
    /// Flips, quarter turns, scale-crops and intensity changes; with the encoder frozen
    /// (`tune == .decoder`), the eight flips and turns only, whose embeddings can be cached.
    public var augment = true
    public var seed: UInt64 = 0
    public var checkpointEvery = 50
    public var device = "cpu"
    /// bf16: autocast (matrix products in bf16; weights, gradients and optimiser state in fp32).
    public var precision = Precision.fp32
    /// Recompute each image-encoder block in the backward pass instead of keeping its activations.
    public var checkpointActivations = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case selection, validation, validationImages = "validation_images", validationEvery = "validation_every", earlyStop = "early_stop"
        case encoderLearningRateScale = "encoder_learning_rate_scale", sampleWeights = "sample_weights", shards, steps, batchSize = "batch_size", masksPerImage = "masks_per_image"
        case accumulate, learningRate = "learning_rate", weightDecay = "weight_decay", adamEps = "adam_eps", warmupSteps = "warmup_steps"
        case minLearningRate = "min_learning_rate", clipNorm = "clip_norm", tune, loraRank = "lora_rank", clickPasses = "click_passes"
        case boxProbability = "box_probability", points, boxJitter = "box_jitter", augment, seed, checkpointEvery = "checkpoint_every", device
        case precision, checkpointActivations = "checkpoint_activations", focalWeight = "focal_weight"
    }

    /// Linear warm-up to the peak rate, then cosine decay to the minimum at the last step.
    public func learningRate(at step: Int) -> Double {
        if step < warmupSteps { return learningRate * Double(step + 1) / Double(warmupSteps) }
        let span = max(1, steps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        return minLearningRate + (learningRate - minLearningRate) * 0.5 * (1 + cos(.pi * progress))
    }

    public var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try! e.encode(self), as: UTF8.self)
    }
}
