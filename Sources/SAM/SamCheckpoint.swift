import Foundation
import Torch

/// Opening checkpoints whatever made them: medcat's own safetensors (the config travels in the
/// file's metadata), or official SAM / MedSAM / LiteMedSAM .pth files, whose preset is read off
/// their keys and shapes.
public enum SamCheckpoint {
    static let configKey = "medcat.config"

    /// Builds the model a checkpoint describes and loads it strictly. `imageSize` overrides the
    /// input size (e.g. 256 for a 1024 checkpoint, SAM-Med2D style). `adapterRatio` gives a ViT
    /// without adapters fresh SAM-Med2D adapters of that ratio (a checkpoint with them keeps its own).
    public static func open(_ url: URL, imageSize: Int? = nil, adapterRatio: Double? = nil, device: Device = .cpu) throws -> (Sam, [String: String]) {
        let dict = try StateDict.load(url)
        var config = try self.config(of: dict, url: url)
        if let imageSize { config.imageSize = imageSize }
        var added = false
        if let adapterRatio {
            guard case .vit(var vit) = config.encoder else {
                throw CheckpointError(url, "\(config.preset) has no adapter slots: SAM-Med2D's adapters need a ViT image encoder")
            }
            if vit.adapterRatio == nil { vit.adapterRatio = adapterRatio; config.encoder = .vit(vit); added = true }
        }
        let sam = try Sam(config, device: device)
        try sam.load(dict, from: url, adapt: Sam.adaptToInputSize, fresh: { added && $0.contains(".Adapter.") })
        return (sam, dict.metadata)
    }

    /// Writes the model as safetensors with its config and `info` (step, data selection, metrics…)
    /// in the metadata, so the file alone rebuilds the model.
    public static func save(_ sam: Sam, to url: URL, info: [String: String] = [:]) throws {
        var dict = try sam.stateDict()
        dict.metadata = info
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        dict.metadata[configKey] = String(decoding: try encoder.encode(sam.config), as: UTF8.self)
        try dict.saveSafetensors(url)
    }

    /// WiSE-FT (Wortsman et al., 2022): every floating-point tensor of `tuned` becomes
    /// (1 − alpha)·start + alpha·tuned, in place. Both must be the same model (the same keys and
    /// shapes): a key that differs is an error that names it. Integer buffers (BatchNorm's batch
    /// counts) keep the tuned value.
    public static func blend(_ tuned: Sam, from start: Sam, alpha: Double) throws {
        let startByName = Dictionary(uniqueKeysWithValues: start.parameters.entries.map { ($0.name, $0.tensor) })
        let entries = tuned.parameters.entries
        if let odd = Set(entries.map(\.name)).symmetricDifference(startByName.keys).sorted().first {
            throw TorchError(op: "blend", message: "\(odd) is in one model only: blend a fine-tuned model with the model it started from")
        }
        try withoutGrad {
            for e in entries {
                let s = startByName[e.name]!
                guard s.shape == e.tensor.shape else { throw TorchError(op: "blend", shapes: [s.shape, e.tensor.shape], message: "\(e.name) has another shape") }
                guard e.tensor.dtype == .f32 || e.tensor.dtype == .bf16 || e.tensor.dtype == .f16 else { continue }
                try e.tensor.assign(s.to(e.tensor.dtype, device: e.tensor.device) * (1 - alpha) + e.tensor * alpha)
            }
        }
    }

    public static func config(of dict: StateDict, url: URL) throws -> SamConfig {
        if let json = dict.metadata[configKey] {
            do { return try JSONDecoder().decode(SamConfig.self, from: Data(json.utf8)) } catch {
                throw CheckpointError(url, "unreadable model config in metadata: \(error)")
            }
        }
        if dict["image_encoder.layers.0.blocks.0.conv1.c.weight"] != nil { return .tinyViT }
        guard let pos = dict["image_encoder.pos_embed"], pos.rank == 4 else {
            throw CheckpointError(url, "not a SAM checkpoint (neither image_encoder.pos_embed nor a TinyViT encoder)")
        }
        let depth = dict.names.compactMap { name -> Int? in
            guard name.hasPrefix("image_encoder.blocks.") else { return nil }
            return Int(name.dropFirst("image_encoder.blocks.".count).prefix { $0 != "." })
        }.max().map { $0 + 1 } ?? 0
        let size = pos.shape[1] * 16
        var config: SamConfig
        switch (pos.shape[3], depth) {
        case (768, 12): config = .vitB(imageSize: size)
        case (1024, 24): config = .vitL(imageSize: size)
        case (1280, 32): config = .vitH(imageSize: size)
        default: throw CheckpointError(url, "ViT of width \(pos.shape[3]) and depth \(depth) matches no preset (vit_b, vit_l, vit_h)")
        }
        // SAM-Med2D's checkpoints carry adapters: their bottleneck gives the ratio.
        if let down = dict["image_encoder.blocks.0.Adapter.channel.0.weight"], case .vit(var vit) = config.encoder {
            vit.adapterRatio = Double(down.shape[0]) / Double(vit.embedDim)
            config.encoder = .vit(vit)
        }
        return config
    }
}
