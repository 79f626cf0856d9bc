import ArgumentParser
import Catalog
import Foundation
import Ingest

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a selection as the SA-Med2D-20M layout (PNG + image2label JSON) or WebDataset tar shards.",
        discussion: """
            Examples:
              medcat export --format sa-med2d --out ./sa-med2d --split train
              medcat export --format webdataset --out ./wds --modality ct --samples-per-shard 500
            """)

    @OptionGroup var common: CatalogOptions
    @OptionGroup var filters: CatalogCommand.Filters
    @Option(help: "Layout to write.") var format: Exporter.Format
    @Option(help: "Output folder.") var out: String
    @Option(help: "Samples per WebDataset tar shard.") var samplesPerShard: Int = 1000

    func validate() throws {
        guard samplesPerShard > 0 else { throw ValidationError("--samples-per-shard must be positive") }
    }

    func run() throws {
        let exporter = Exporter(catalog: try Catalog(path: common.catalog))
        let (images, masks) = try exporter.export(format, selection: filters.selection,
                                                  to: URL(fileURLWithPath: out), samplesPerShard: samplesPerShard)
        print("exported \(images) images and \(masks) masks to \(out)")
    }
}
