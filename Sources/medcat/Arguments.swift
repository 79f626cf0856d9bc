import ArgumentParser
import Catalog
import Eval
import Ingest
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

/// `--axes`: which planes of a 3D volume become slices.
enum SliceAxes: String, CaseIterable, ExpressibleByArgument {
    case z, xyz
    var axes: [SliceAxis] { self == .z ? [.axial] : [.axial, .coronal, .sagittal] }
}
