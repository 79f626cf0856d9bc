import ArgumentParser
import Catalog
import Foundation
import Trainer

struct PackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Pack a training selection into N shard files (what medcat train --shards N reads).",
        discussion: """
            Image i of the selection goes to shard i mod N, so shard sizes differ by at most one sample; \\
            every record keeps its CRC-32, which the training loader checks. Packs go to <catalog>.packs/KEY/, \\
            KEY a hash of the selection, the catalog's state and N: a later pack or train with the same \\
            selection reuses it, and an ingest in between makes a new one.

            Examples:
              medcat pack --shards 64 --split train
              medcat pack --shards 8 --modality ct --class liver
            """)

    @OptionGroup var common: CatalogOptions
    @OptionGroup var filters: CatalogCommand.Filters
    @Option(help: "Shard files.") var shards: Int = 64

    func validate() throws {
        guard shards >= 1 else { throw ValidationError("--shards must be at least 1") }
    }

    func run() throws {
        var selection = filters.selection
        if selection.splits.isEmpty { selection.splits = [.train] }
        let (pack, reused) = try Pack.open(catalog: try Catalog(path: common.catalog), selection: selection, shards: shards)
        let sizes = pack.samplesPerShard
        print("\(reused ? "reused" : "packed") \(pack.images.count) images in \(pack.shards) shards "
              + "(\(sizes.min() ?? 0)–\(sizes.max() ?? 0) per shard), key \(pack.key)")
    }
}
