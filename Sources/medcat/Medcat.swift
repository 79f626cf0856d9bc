import ArgumentParser
import Foundation
import Logging

@main
struct Medcat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medcat",
        abstract: "Turn public medical segmentation datasets into a training-ready corpus of 2D image–mask pairs.",
        discussion: """
            Examples:
              medcat ingest ./raw
              medcat catalog stats
              medcat catalog query --modality ct --class liver --split train --limit 5
              medcat catalog errors
              medcat catalog map-class lesion --to liver_tumor
              medcat export --format sa-med2d --out ./sa-med2d
              medcat manifests kits19
              medcat predict --checkpoint lite_medsam.pth --image slice.png --box 40,50,140,160 --out mask.png
              medcat pack --shards 64 --split train
              medcat train --checkpoint lite_medsam.pth --out runs/lite --steps 200
              medcat train --pack medcat.packs/KEY --nnodes 2 --node-rank 0 --master 10.0.0.1:29500 --device cuda --checkpoint sam_vit_b.pth --out runs/b
              medcat blend --start lite_medsam.pth --tuned runs/lite/model-best.safetensors --alpha 0.3 --out runs/lite/blend.safetensors
              medcat eval --checkpoint lite_medsam.pth --split test
              medcat leaderboard --out report
            """,
        subcommands: [IngestCommand.self, CatalogCommand.self, ExportCommand.self, ManifestsCommand.self, PredictCommand.self, PackCommand.self, TrainCommand.self, BlendCommand.self,
                      EvalCommand.self, LeaderboardCommand.self]
    )
}

/// Shared by every command: where the catalog lives.
struct CatalogOptions: ParsableArguments {
    @Option(name: .long, help: "Catalog database (shard files go in a folder beside it).")
    var catalog: String = "medcat.sqlite"

    @Flag(name: .shortAndLong, help: "Log more detail.")
    var verbose = false

    func logger(_ label: String) -> Logger {
        LoggingSystem.bootstrapOnce()
        var log = Logger(label: label)
        log.logLevel = verbose ? .debug : .info
        return log
    }
}

extension LoggingSystem {
    nonisolated(unsafe) private static var done = false
    static func bootstrapOnce() {
        if done { return }
        done = true
        bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return PlainLogHandler(inner: h)
        }
    }
}

/// Log lines without the timestamp-and-label prefix noise: "level: message".
struct PlainLogHandler: LogHandler {
    var inner: StreamLogHandler
    var logLevel: Logger.Level { get { inner.logLevel } set { inner.logLevel = newValue } }
    var metadata: Logger.Metadata { get { inner.metadata } set { inner.metadata = newValue } }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { inner[metadataKey: key] } set { inner[metadataKey: key] = newValue } }
    func log(event: LogEvent) {
        let prefix = event.level == .info || event.level == .notice ? "" : "\(event.level): "
        FileHandle.standardError.write(Data((prefix + event.message.description + "\n").utf8))
    }
}

enum Output {
    static func json<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    /// A left-aligned text table.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { i in max(header[i].count, rows.map { $0[i].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
