import ArgumentParser
import Ingest

struct ManifestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "List the dataset manifests built into medcat, or print one.",
        discussion: "Examples: medcat manifests; medcat manifests kits19")

    @Argument(help: "Print this manifest's YAML.") var name: String?

    func run() throws {
        let library = try ManifestLibrary.builtin()
        if let name {
            guard let m = library.manifest(named: name) else { throw ValidationError("no manifest named '\(name)'; run `medcat manifests` for the list") }
            print(m.source, terminator: "")
            return
        }
        print(Output.table(["name", "layout", "modality", "classes", "title"], library.manifests.map {
            [$0.name, $0.layout.rawValue, $0.modality ?? ($0.channels.isEmpty ? "-" : $0.channels.map(\.modality).joined(separator: ",")),
             "\(Set($0.labels.values).count)", $0.title ?? ""]
        }))
    }
}
