import ArgumentParser
import Catalog
import Eval
import Ingest
import SAM
import Torch
import Trainer

// Enumerated options are parsed as their types: the parser rejects other values and `--help` lists
// the choices.

extension Split: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public var defaultValueDescription: String { name }
    public static var allValueStrings: [String] { allCases.map(\.name) }
}

extension EvalProtocol: ExpressibleByArgument {}
extension Exporter.Format: ExpressibleByArgument {}
extension TuneMode: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// `--axes`: which planes of a 3D volume become slices.
enum SliceAxes: String, CaseIterable, ExpressibleByArgument {
    case z, xyz
    var axes: [SliceAxis] { self == .z ? [.axial] : [.axial, .coronal, .sagittal] }
}

extension Device: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
    public var defaultValueDescription: String { description }
    public static var allValueStrings: [String] { ["cpu", "cuda", "cuda:N"] }
}

/// `--preset`: the configurations a model can be trained from scratch in.
enum Preset: String, CaseIterable, ExpressibleByArgument {
    case vitB = "vit_b", vitL = "vit_l", vitH = "vit_h", tinyViT = "tiny_vit", vitDebug = "vit_debug"

    /// Nil where the preset has no such input size (tiny_vit is 256 only).
    func config(imageSize: Int?) -> SamConfig? { SamConfig.preset(rawValue, imageSize: imageSize) }
}
