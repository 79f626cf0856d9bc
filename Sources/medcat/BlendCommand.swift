import ArgumentParser
import Foundation
import SAM

struct BlendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blend",
        abstract: "Blend a fine-tuned model with the model it started from: (1 − α)·start + α·tuned (WiSE-FT).",
        discussion: """
            Weight-space blending keeps much of what fine-tuning gained on its own structures and much of what \
            the starting model knew about others (training.md has medcat's measurements). The output is a \
            medcat checkpoint with the tuned model's config, loadable by eval and predict.

            Examples:
              medcat blend --start lite_medsam.pth --tuned runs/full/model-best.safetensors --out runs/full/model-blend.safetensors
            """)

    @Option(help: "The model fine-tuning started from (.pth or .safetensors).") var start: String
    @Option(help: "The fine-tuned model (.safetensors from medcat train).") var tuned: String
    @Option(help: "The tuned model's share: 0 gives the start, 1 the tuned model (0.3: what medcat's measurements favour).") var alpha: Double = 0.3
    @Option(help: "Where to write the blend (.safetensors).") var out: String

    func validate() throws {
        guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be between 0 and 1 (got \(alpha))") }
    }

    func run() throws {
        let (model, info) = try SamCheckpoint.open(URL(fileURLWithPath: tuned))
        let (origin, _) = try SamCheckpoint.open(URL(fileURLWithPath: start), imageSize: model.config.imageSize)
        try SamCheckpoint.blend(model, from: origin, alpha: alpha)
        var metadata = info
        metadata["medcat.blend"] = "{\"alpha\": \(alpha), \"start\": \"\(URL(fileURLWithPath: start).lastPathComponent)\", \"tuned\": \"\(URL(fileURLWithPath: tuned).lastPathComponent)\"}"
        try SamCheckpoint.save(model, to: URL(fileURLWithPath: out), info: metadata)
        print("blended \(model.parameterCount) parameters, \(alpha) of the tuned model: \(out)")
    }
}
