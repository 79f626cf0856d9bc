import Foundation
import Torch

/// Segment Anything: image encoder (ViT or TinyViT), prompt encoder and mask decoder, with the
/// pre-processing (resize the longest side, normalise, pad) and post-processing (upsample, crop,
/// threshold) around them.
public final class Sam: Module {
    public let config: SamConfig
    public let imageEncoder: Module & ImageEncoder
    public let promptEncoder: PromptEncoder
    public let maskDecoder: MaskDecoder
    public let device: Device

    /// A model with seeded random weights (load a checkpoint over them, or train from scratch).
    public init(_ config: SamConfig, device: Device = .cpu, seed: UInt64 = 0) throws {
        self.config = config
        self.device = device
        var i = Initializer(seed: seed, device: device)
        switch config.encoder {
        case .vit(let v): imageEncoder = try ImageEncoderViT(v, imageSize: config.imageSize, &i)
        case .tinyViT(let t): imageEncoder = try TinyViT(t, imageSize: config.imageSize, &i)
        }
        promptEncoder = try PromptEncoder(embedDim: config.promptEmbedDim, embeddingSize: config.embeddingSize,
                                          inputSize: config.imageSize, maskInChannels: config.maskInChannels, &i)
        let transformer = try TwoWayTransformer(depth: config.decoderDepth, dim: config.promptEmbedDim, heads: config.decoderHeads,
                                                mlpDim: config.decoderMLPDim, &i)
        maskDecoder = try MaskDecoder(dim: config.promptEmbedDim, transformer: transformer, iouHeadHidden: config.iouHeadHidden, &i)
    }

    public func collect(_ p: inout Parameters) {
        p.add("image_encoder", imageEncoder)
        p.add("prompt_encoder", promptEncoder)
        p.add("mask_decoder", maskDecoder)
    }

    /// Loads an official SAM / MedSAM / LiteMedSAM .pth, or safetensors, strictly into this model.
    public func load(checkpoint url: URL) throws {
        try load(StateDict.load(url), from: url, adapt: Sam.adaptToInputSize)
    }

    /// Lets a checkpoint made for another input size (1024 → 256) load: the absolute positional
    /// embedding is resized bilinearly (as SAM-Med2D does) and global relative-position tables
    /// linearly (as SAM itself does at run time).
    static func adaptToInputSize(_ name: String, _ source: Tensor, _ target: [Int]) throws -> Tensor? {
        if name.hasSuffix("image_encoder.pos_embed"), source.rank == 4, target.count == 4, source.shape[3] == target[3] {
            // 1×G×G×C → 1×C×G×G → resized → 1×G'×G'×C
            return try source.permute([0, 3, 1, 2]).interpolate(height: target[1], width: target[2]).permute([0, 2, 3, 1]).contiguous()
        }
        if name.hasSuffix("rel_pos_h") || name.hasSuffix("rel_pos_w"), source.rank == 2, target.count == 2, source.shape[1] == target[1] {
            return try resizeRelativeTable(source, to: target[0])
        }
        return nil
    }

    // MARK: inference

    /// Encoder input: B×3×S×S, already normalised and padded (see `prepare`).
    public func embed(_ images: Tensor) throws -> Tensor { try imageEncoder(images) }

    /// Decodes prompts against image embeddings. Coordinates are pixels of the S×S encoder input.
    /// Returns low-resolution mask logits B×M×4G×4G and IoU predictions B×M.
    public func decode(embeddings: Tensor, points: (Tensor, Tensor)? = nil, boxes: Tensor? = nil, masks: Tensor? = nil,
                       multimask: Bool) throws -> (masks: Tensor, iou: Tensor) {
        let (sparse, dense) = try promptEncoder(points: points, boxes: boxes, masks: masks)
        return try maskDecoder(image: embeddings, imagePE: promptEncoder.densePositionalEncoding(), sparse: sparse, dense: dense,
                               multimask: multimask)
    }

    /// All four outputs at once, B×4×4G×4G logits and B×4 IoU: the single-mask output first, then
    /// the three multimask outputs (evaluation reports the first and the best of the three).
    public func decodeAll(embeddings: Tensor, points: (Tensor, Tensor)? = nil, boxes: Tensor? = nil, masks: Tensor? = nil) throws -> (masks: Tensor, iou: Tensor) {
        let (sparse, dense) = try promptEncoder(points: points, boxes: boxes, masks: masks)
        return try maskDecoder.predict(image: embeddings, imagePE: promptEncoder.densePositionalEncoding(), sparse: sparse, dense: dense)
    }
}

extension Sam {
    /// Attaches a LoRA update of `rank` to every attention qkv projection of the image encoder (as
    /// SAMed does, though SAMed adapts the q and v rows only: TinyViT interleaves q, k and v per
    /// head, so medcat adapts the whole projection). Returns them by their frozen weight's key.
    public func attachLowRank(rank: Int, seed: UInt64) throws -> [(key: String, update: LowRankUpdate)] {
        var i = Initializer(seed: seed, device: device)
        return try imageEncoder.attentionProjections.map { key, layer in
            let update = try LowRankUpdate(inFeatures: layer.weight.shape[1], outFeatures: layer.weight.shape[0], rank: rank, &i)
            layer.lowRank = update
            return ("image_encoder.\(key).weight", update)
        }
    }

    /// The weights as a checkpoint holds them, LoRA updates folded in: a plain SAM.
    public func stateDict() throws -> StateDict {
        var dict = StateDict(self)
        for (key, layer) in imageEncoder.attentionProjections {
            if let update = layer.lowRank { dict["image_encoder.\(key).weight"] = try update.merged(into: layer.weight) }
        }
        return dict
    }
}

/// What an image encoder is to Sam: images in, a B×256×G×G embedding out.
public protocol ImageEncoder: AnyObject {
    func callAsFunction(_ images: Tensor) throws -> Tensor
    /// Activation checkpointing for training: each attention block keeps only its input and runs
    /// again in the backward pass (`Tensor.checkpointed`). Same gradients, a fraction of the memory.
    var checkpointBlocks: Bool { get set }
    /// Every attention block's qkv projection, by its key under image_encoder (LoRA's targets).
    var attentionProjections: [(key: String, layer: Linear)] { get }
}
extension ImageEncoderViT: ImageEncoder {}
extension TinyViT: ImageEncoder {}
