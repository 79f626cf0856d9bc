import ArgumentParser
import Catalog
import CProcess
import Eval
import Foundation
import Hashing
import Imaging
import Prompts
import SAM
import Torch

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score a SAM checkpoint on catalog masks under fixed prompt protocols; results go into the catalog.",
        discussion: """
            Protocols (repeatable --protocol; default box, points1 and clicks):
              box      the mask's tight box (--box-jitter none | sam-med2d | medsam[:PX])
              points1  1, 3 or 5 foreground points at distance-transform maxima
              points3  (the first inside the largest component)
              points5
              clicks   one point, then corrective clicks at the error region's
                       distance-transform maximum, previous mask fed back (--clicks N)

            Each reports SAM's first output and the oracle (best of its three multimask outputs), with Dice, IoU, \
            NSD (--tolerance mm) and HD95 per 2D mask and per 3D case (a volume's slices stacked). Prompts are \
            seeded; --save-prompts writes them, --prompts replays them on another model.

            --workers N evaluates N images at once, each with --threads / N libtorch threads; the \
            scores are those of one worker with as many threads as each of the N has.

            Examples:
              medcat eval --checkpoint lite_medsam.pth --split test
              medcat eval --checkpoint ft.safetensors --name ft --prompts prompts.json
              medcat eval --checkpoint lite_medsam.pth --name zs-2w --workers 2 --threads 8
              medcat eval --checkpoint fold1/model-best.safetensors --name cv --dataset fundus_chase
              medcat eval --checkpoint fold2/model-best.safetensors --name cv --add --dataset fundus_drive
              medcat leaderboard --out report
            """)

    @OptionGroup var common: CatalogOptions
    @OptionGroup var filters: CatalogCommand.Filters
    @Option(help: "Model weights (.pth or .safetensors).") var checkpoint: String
    @Option(help: "Name of this evaluation in the catalog (default: the checkpoint's file name without extension).") var name: String?
    @Option(name: .customLong("protocol"), help: "Prompt protocol (repeatable; default box, points1 and clicks).") var protocols: [EvalProtocol] = []
    @Option(help: "Clicks of the clicks protocol, the first included.") var clicks: Int = 5
    @Option(help: "NSD tolerance in mm.") var tolerance: Double = 2
    @Option(help: "Seed of jittered boxes and of --sample.") var seed: UInt64 = 0
    @Option(help: "Box jitter: none, sam-med2d, sam-med2d:PX:FRACTION, medsam or medsam:PX.") var boxJitter: String = "none"
    @Option(help: "Replay the prompts of this file (written by --save-prompts).") var prompts: String?
    @Option(help: "Write the prompts used to this file.") var savePrompts: String?
    @Option(help: "Evaluate at most this many images.") var limit: Int?
    @Option(help: "Evaluate this many images drawn by --seed from the selection (the subset training validates on).") var sample: Int?
    @Option(help: "Encoder input size; default: the checkpoint's.") var imageSize: Int?
    @Option(help: "Where the model runs: the CPU or CUDA device N.") var device: Device = .cpu
    @Option(help: "Images evaluated at once, each with its share of --threads.") var workers: Int = 1
    @Option(help: "libtorch threads in all (default: all cores).") var threads: Int?
    @Flag(help: "Replace an earlier evaluation of the same name.") var replace = false
    @Flag(help: ArgumentHelp("Add this checkpoint's scores to the finished evaluation --name as another part of it.", discussion: """
        For cross-validation: each fold's model scores the cases it did not train on, and the leaderboard \
        reports the parts as one model. The selection must not hold a mask the evaluation has scored, and \
        protocols, clicks, tolerance, seed, box jitter and image size must be the evaluation's.
        """)) var add = false

    func validate() throws {
        guard clicks >= 1 else { throw ValidationError("--clicks must be at least 1") }
        guard tolerance >= 0, tolerance.isFinite else { throw ValidationError("--tolerance must be a distance in mm, at least 0") }
        guard BoxJitter(argument: boxJitter) != nil else { throw ValidationError("--box-jitter must be \(BoxJitter.choices) (got '\(boxJitter)')") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1") }
        guard workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if add, replace { throw ValidationError("--add and --replace exclude each other") }
        if add, name == nil { throw ValidationError("--add needs the --name of the evaluation to add to") }
    }

    func run() throws {
        // The encoder's activations (64 MB at LiteMedSAM's first stage) would otherwise be mapped
        // afresh and page-faulted in for every image: that was nearly half of an evaluation's time.
        mc_keep_freed_memory()
        try Runtime.prepare(device)
        var selection = filters.selection
        if selection.splits.isEmpty { selection.splits = [.test] }
        let settings = EvalSettings(selection: selection, protocols: protocols.isEmpty ? [.box, .points1, .clicks] : protocols,
                                    clicks: clicks, tolerance: tolerance, seed: seed, boxJitter: boxJitter, imageSize: imageSize, device: device.description,
                                    limit: limit, sample: sample)
        let url = URL(fileURLWithPath: checkpoint)
        let catalog = try Catalog(path: common.catalog)
        guard try catalog.count(selection) > 0 else {
            throw ValidationError("no masks match the selection (split \(selection.splits.map(\.name).joined(separator: ", "))); see medcat catalog stats")
        }
        let runName = name ?? url.deletingPathExtension().lastPathComponent
        if !replace, !add, try EvalStore(catalog: catalog).runs().contains(where: { $0.name == runName }) {
            throw EvalError("an evaluation named '\(runName)' exists; choose another --name or pass --replace")
        }
        let (sam, _) = try SamCheckpoint.open(url, imageSize: imageSize, device: device)
        let hash = try ContentHash.hex(Data(contentsOf: url, options: .alwaysMapped))
        let replay = try prompts.map { try PromptFile.read(URL(fileURLWithPath: $0)) } ?? []
        let runner = try EvalRunner(sam: sam, catalog: catalog, settings: settings, replay: replay, workers: workers, threads: threads)
        let log = common.logger("eval")
        var lastReport = Date()
        let summary = try runner.run(name: runName, model: url.lastPathComponent, checkpointHash: hash, replace: replace, adding: add) { images, masks in
            if Date().timeIntervalSince(lastReport) > 10 { log.info("\(images) images, \(masks) masks"); lastReport = Date() }
        }
        if let savePrompts {
            try PromptFile.write(settings.protocols.compactMap { runner.used[$0] }, to: URL(fileURLWithPath: savePrompts))
        }
        print("evaluation '\(runName)'\(add ? " (a part added)" : ""): \(summary.images) images, \(summary.masks) masks in \(String(format: "%.1f", summary.seconds)) s "
              + "(\(String(format: "%.2f", Double(summary.images) / max(summary.seconds, 1e-9))) images/s)")
        let rows = try LeaderboardReport.overview(catalog: catalog, run: runName).compactMap { e -> [String]? in
            guard let g = e.groups.first(where: { $0.kind == "overall" }) else { return nil }
            return [e.variant.label, "\(g.count)", LeaderboardReport.number(g.dice.mean), LeaderboardReport.number(g.iou.mean),
                    LeaderboardReport.number(g.nsd.mean), LeaderboardReport.number(g.hd95.mean, 2)]
        }
        print(Output.table(["protocol", "masks", "Dice", "IoU", "NSD", "HD95"], rows))
    }
}
