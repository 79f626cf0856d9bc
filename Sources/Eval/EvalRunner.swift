import Catalog
import Foundation
import Prompts
import SAM
import Torch

/// Runs a SAM model over a catalog selection under the settings' prompt protocols and records
/// every score in the catalog. One image is embedded once; all its masks are decoded as one batch.
/// Images are evaluated on `workers` threads and recorded in catalog order.
public final class EvalRunner: @unchecked Sendable {
    public let sam: Sam
    public let settings: EvalSettings
    let store: EvalStore
    let reader: SampleReader
    /// Prompts to replay, by protocol; protocols without one are simulated.
    let replay: [EvalProtocol: PromptFile]
    /// The initial prompts actually used, by protocol (what `--save-prompts` writes).
    public private(set) var used: [EvalProtocol: PromptFile] = [:]
    var classIDs: [String: Int64] = [:]
    let jitter: BoxJitter
    /// Images evaluated at once, each on its own thread with its share of `threads`.
    let workers: Int
    /// libtorch threads in all; nil: libtorch's own count (all cores).
    let threads: Int?

    public struct Summary: Sendable { public var run: Int64, images: Int, masks: Int, seconds: Double }

    public init(sam: Sam, catalog: Catalog, settings: EvalSettings, replay: [PromptFile] = [], workers: Int = 1, threads: Int? = nil) throws {
        self.sam = sam; self.settings = settings; self.workers = max(1, workers); self.threads = threads
        jitter = try BoxJitter.parse(settings.boxJitter)
        store = try EvalStore(catalog: catalog)
        reader = SampleReader(catalog: catalog)
        var files: [EvalProtocol: PromptFile] = [:]
        for f in replay {
            guard let p = EvalProtocol(rawValue: f.protocolName) else { throw PromptError("prompt file: unknown protocol '\(f.protocolName)'") }
            files[p] = f
        }
        self.replay = files
        for p in settings.protocols {
            used[p] = PromptFile(protocolName: p.rawValue, seed: settings.seed, settings: ["box_jitter": settings.boxJitter])
        }
    }

    /// The predictions and truth of one mask kept until its volume is complete (3D scores).
    struct Slice { var truth: [UInt8]; var predictions: [EvalStore.Variant: [UInt8]] }
    struct CaseKey: Hashable { var axis: String, className: String, instance: Int }
    /// One image's results: its score rows, each mask's slice and the initial prompts used (by
    /// protocol, one per mask).
    struct Evaluated { var rows: [EvalStore.MaskScore]; var slices: [Slice]; var prompts: [EvalProtocol: [Prompt]] }

    /// Scores the selection as the run `name`; `adding` adds the scores to that finished run as
    /// another part of it (`EvalStore.extend`) instead of starting one.
    public func run(name: String, model: String, checkpointHash: String, replace: Bool = false, adding: Bool = false,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = Date()
        classIDs = try store.catalog.classIDs()
        let runID = adding
            ? try store.extend(name: name, model: model, checkpointHash: checkpointHash, settings: settings,
                               masks: try store.catalog.maskIDs(settings.selection))
            : try store.begin(name: name, model: model, checkpointHash: checkpointHash, settings: settings, replace: replace)
        var images = 0, masks = 0
        var examples = ExampleKeeper(variant: primaryVariant)
        var volume: (source: Int64, images: Int, spacing: [Double], size: (Int, Int), slices: [CaseKey: [Int: Slice]])?

        func flushVolume() throws {
            guard let v = volume, v.images > 1 else { return }  // a 2D source: its masks are its cases
            var rows: [EvalStore.CaseScore] = []
            for (key, slices) in v.slices.sorted(by: { ($0.key.className, $0.key.instance, $0.key.axis) < ($1.key.className, $1.key.instance, $1.key.axis) }) {
                let z0 = slices.keys.min()!, nz = slices.keys.max()! - z0 + 1, plane = v.size.0 * v.size.1
                var truth = [UInt8](repeating: 0, count: plane * nz)
                for (z, s) in slices { truth.replaceSubrange((z - z0) * plane..<(z - z0 + 1) * plane, with: s.truth) }
                for variant in slices.values.first!.predictions.keys.sorted() {
                    var pred = [UInt8](repeating: 0, count: plane * nz)
                    for (z, s) in slices { pred.replaceSubrange((z - z0) * plane..<(z - z0 + 1) * plane, with: s.predictions[variant]!) }
                    let scores = SegmentationMetrics.score(prediction: pred, truth: truth, size: [v.size.0, v.size.1, nz], spacing: v.spacing,
                                                           tolerance: settings.tolerance)
                    rows.append(.init(variant: variant, sourceID: v.source, axis: key.axis, classID: classIDs[key.className] ?? 0,
                                      instance: key.instance, slices: slices.count, scores: scores))
                }
            }
            try store.record(run: runID, masks: [], cases: rows)
        }

        func record(_ image: SampleReader.Image, _ evaluated: Evaluated) throws {
            if volume?.source != image.sourceID {
                try flushVolume()
                volume = (image.sourceID, 0, image.spacing, (image.contentWidth, image.contentHeight), [:])
            }
            var rows = evaluated.rows
            let perMask = evaluated.slices
            for (proto, prompts) in evaluated.prompts {
                for (k, m) in image.masks.enumerated() { used[proto]!.prompts[Int(m.id)] = prompts[k] }
            }
            for i in rows.indices {
                rows[i].promptKey = EvalProtocol(rawValue: rows[i].variant.proto).flatMap { used[$0]?.prompts[Int(rows[i].maskID)]?.stableKey }
            }
            try store.record(run: runID, masks: rows)
            volume!.images += 1
            for (k, m) in image.masks.enumerated() {
                let key = CaseKey(axis: image.axis, className: m.className, instance: m.instance)
                volume!.slices[key, default: [:]][image.slice] = perMask[k]
            }
            for r in rows where r.variant == examples.variant {
                guard let dice = r.scores.dice, let k = image.masks.firstIndex(where: { $0.id == r.maskID }),
                      let prediction = perMask[k].predictions[r.variant] else { continue }
                examples.offer(.init(variant: r.variant, maskID: r.maskID, kind: "", dice: dice, width: image.contentWidth,
                                     height: image.contentHeight, prediction: prediction), group: image.modality + " · " + image.masks[k].className)
            }
            images += 1; masks += image.masks.count
            progress?(images, masks)
        }

        // libtorch's thread count is the calling thread's: each worker sets its share. Results are
        // the same for any number of workers at the same threads per worker; a different thread
        // count rounds libtorch's convolutions differently (predicted IoU moves by about 1e-6).
        let perWorker = max(1, (threads ?? Runtime.threads) / workers)
        let pool = OrderedWorkers<SampleReader.Image, Evaluated>(workers: workers, window: 2 * workers,
                                                                 setUp: { Runtime.threads = perWorker }) { [self] in try evaluate($0) }
        defer { pool.stop() }
        try forEachImage { image in
            pool.submit(image)
            while pool.inFlight >= pool.window { let (image, evaluated) = try pool.next(); try record(image, evaluated) }
        }
        while pool.inFlight > 0 { let (image, evaluated) = try pool.next(); try record(image, evaluated) }
        try flushVolume()
        let seconds = Date().timeIntervalSince(start)
        try store.finish(run: runID, images: images, masks: masks, seconds: seconds, examples: examples.all)
        return Summary(run: runID, images: images, masks: masks, seconds: seconds)
    }

    /// The selection's images the settings score, in catalog order.
    func forEachImage(_ body: (SampleReader.Image) throws -> Void) throws {
        guard let sample = settings.sample else { return try reader.forEach(settings.selection, limit: settings.limit, body) }
        var total = 0
        try reader.forEach(settings.selection, limit: settings.limit) { _ in total += 1 }
        var order = Array(0..<total)
        var rng = PromptRNG(seed: settings.seed, 0x7361_6D70_6C65)
        rng.permute(&order)
        let chosen = Set(order.prefix(sample))
        var i = 0
        try reader.forEach(settings.selection, limit: settings.limit) { image in
            defer { i += 1 }
            if chosen.contains(i) { try body(image) }
        }
    }

    /// Scores the selection as `run` does, without recording a run: per protocol, the mean Dice of
    /// the first output at the protocol's final step over all masks (what training validates on).
    public func meanDice() throws -> [EvalProtocol: Double] {
        var sums: [EvalProtocol: (total: Double, count: Int)] = [:]
        try forEachImage { image in
            for r in try evaluate(image).rows where r.variant.output == "first" && settings.isFinal(r.variant) {
                guard let p = EvalProtocol(rawValue: r.variant.proto), let dice = r.scores.dice else { continue }
                sums[p, default: (0, 0)].total += dice
                sums[p, default: (0, 0)].count += 1
            }
        }
        return sums.compactMapValues { $0.count > 0 ? $0.total / Double($0.count) : nil }
    }

    /// The output thumbnails show: the box protocol's when it runs, else the first protocol's final one.
    var primaryVariant: EvalStore.Variant {
        let p = settings.protocols.contains(.box) ? .box : settings.protocols.first ?? .box
        return EvalStore.Variant(proto: p.rawValue, step: settings.steps(p).last ?? 0, output: "first")
    }

    /// Scores every mask of one image under every protocol. Runs on the worker threads: it reads the
    /// runner's settings and nothing it writes.
    func evaluate(_ image: SampleReader.Image) throws -> Evaluated {
        let (w, h, c) = (image.contentWidth, image.contentHeight, image.channels)
        let pixels = try reader.contentPixels(image).map(Float.init)
        let truths = try image.masks.map { BinaryMask(width: w, height: h, pixels: try reader.contentMask($0, of: image)) }
        let device = sam.device
        let prepared = try PreparedImage(pixels: pixels, height: h, width: w, channels: c, config: sam.config, device: device)
        let embedding = try withoutGrad { try sam.embed(prepared.tensor) }
        var rows: [EvalStore.MaskScore] = []
        var slices = truths.map { Slice(truth: $0.pixels, predictions: [:]) }
        var used: [EvalProtocol: [Prompt]] = [:]
        // Protocols that start from the same prompts (clicks starts as points1) share the first
        // decode: the same batch gives the same outputs.
        var firstSteps: [(prompts: [Prompt], decoded: Decoded)] = []
        let spacing = [image.spacing[0], image.spacing[1], 1]

        // Interior points cost a distance transform each: computed once per mask, for all protocols.
        let deepest = settings.protocols.map(\.initialPoints).max() ?? 0
        var interior = [[Prompt.Point]?](repeating: nil, count: truths.count)
        for proto in settings.protocols {
            var prompts = try image.masks.indices.map { k -> Prompt in
                let id = image.masks[k].id
                if let file = replay[proto] {
                    guard let p = file.prompts[Int(id)] else { throw PromptError("prompt file for \(proto.rawValue) has no prompt for mask \(id)") }
                    return p
                }
                return settings.initialPrompt(proto, truth: truths[k], maskID: id, jitter: jitter) {
                    if interior[k] == nil { interior[k] = PromptSimulator.interiorPoints(truths[k], count: deepest) }
                    return interior[k]!
                }
            }
            used[proto] = prompts
            var lowRes: Tensor?
            var current: [BinaryMask] = truths
            var active = [Bool](repeating: true, count: truths.count)
            var last: [[EvalStore.MaskScore]] = []
            for step in settings.steps(proto) {
                if step > 1 {
                    for k in truths.indices where active[k] {
                        if let click = PromptSimulator.correctiveClick(prediction: current[k], truth: truths[k]) { prompts[k].points.append(click) }
                        else { active[k] = false }  // exact: nothing left to correct
                    }
                }
                let decoded: Decoded
                if lowRes == nil, let same = firstSteps.first(where: { $0.prompts == prompts }) {
                    decoded = same.decoded
                } else {
                    let (logits, iou) = try withoutGrad { try decode(prompts, prepared: prepared, embedding: embedding, maskInput: lowRes) }
                    decoded = Decoded(lowRes: logits.lowRes, outputs: try logits.full.gt(0).to(.u8, device: .cpu).values(as: UInt8.self),
                                      predicted: try iou.to(.f32, device: .cpu).floats())
                    if lowRes == nil { firstSteps.append((prompts, decoded)) }
                }
                lowRes = try decoded.lowRes.narrow(1, 0, 1)
                let (outputs, predicted) = (decoded.outputs, decoded.predicted)
                var stepRows: [EvalStore.MaskScore] = []
                for k in truths.indices {
                    if step > 1 && !active[k] {  // the prediction was already exact: it stands for this step too
                        for var r in last[k] {
                            let previous = slices[k].predictions[r.variant]
                            r.variant.step = step
                            stepRows.append(r)
                            slices[k].predictions[r.variant] = previous
                        }
                        continue
                    }
                    let plane = w * h
                    func out(_ j: Int) -> [UInt8] { Array(outputs[((k * 4 + j) * plane)..<((k * 4 + j + 1) * plane)]) }
                    let first = out(0)
                    let multi = (1...3).map(out)
                    let dices = multi.map { SegmentationMetrics.overlap(prediction: $0, truth: truths[k].pixels)?.dice ?? 0 }
                    let best = dices.indices.max { dices[$0] < dices[$1] }!
                    current[k] = BinaryMask(width: w, height: h, pixels: first)
                    for (output, mask, j) in [("first", first, 0), ("oracle", multi[best], best + 1)] {
                        let variant = EvalStore.Variant(proto: proto.rawValue, step: step, output: output)
                        let scores = SegmentationMetrics.score(prediction: mask, truth: truths[k].pixels, size: [w, h, 1], spacing: spacing,
                                                               tolerance: settings.tolerance)
                        stepRows.append(.init(variant: variant, maskID: image.masks[k].id, scores: scores, predictedIoU: Double(predicted[k * 4 + j])))
                        slices[k].predictions[variant] = mask
                    }
                }
                last = truths.indices.map { k in stepRows.filter { $0.maskID == image.masks[k].id } }
                rows += stepRows
            }
        }
        // Volumes and thumbnails need only each protocol's final output.
        for k in slices.indices { slices[k].predictions = slices[k].predictions.filter { settings.isFinal($0.key) } }
        return Evaluated(rows: rows, slices: slices, prompts: used)
    }

    /// A decoded batch: low-res logits B×4×4G×4G, the thresholded outputs at the image size B×4×H×W
    /// and the IoU predictions B×4.
    struct Decoded { var lowRes: Tensor; var outputs: [UInt8]; var predicted: [Float] }

    /// Decodes a batch of prompts (one per mask) against one image: all four outputs, as low-res
    /// logits B×4×4G×4G and upsampled to the image B×4×H×W, with their IoU predictions B×4.
    func decode(_ prompts: [Prompt], prepared: PreparedImage, embedding: Tensor, maskInput: Tensor?) throws -> ((lowRes: Tensor, full: Tensor), Tensor) {
        let input = try PromptTensors(prompts, frame: prepared, device: sam.device)
        let out = try sam.decodeAll(embeddings: embedding, points: input.points, boxes: input.boxes, masks: maskInput)
        return ((out.masks, try prepared.upsample(out.masks, inputSize: sam.config.imageSize)), out.iou)
    }
}

/// For each modality · class group of a run, the masks its report draws: the best, the worst, and
/// the one nearest the group's median Dice. The median's candidates are a seeded reservoir of
/// predictions, so memory stays bounded; for groups of up to `reservoir` masks it is the median itself.
struct ExampleKeeper {
    static let reservoir = 8
    let variant: EvalStore.Variant
    struct Group { var best: EvalStore.Example?, worst: EvalStore.Example?, sample: [EvalStore.Example] = [], dice: [Double] = [] }
    var groups: [String: Group] = [:]
    var rng = PromptRNG(seed: 0x7E57_5A3B)

    init(variant: EvalStore.Variant) { self.variant = variant }

    mutating func offer(_ e: EvalStore.Example, group: String) {
        var g = groups[group] ?? Group()
        g.dice.append(e.dice)
        if g.best.map({ (e.dice, -e.maskID) > ($0.dice, -$0.maskID) }) ?? true { g.best = e }
        if g.worst.map({ (e.dice, e.maskID) < ($0.dice, $0.maskID) }) ?? true { g.worst = e }
        if g.sample.count < Self.reservoir { g.sample.append(e) } else {
            let j = Int(rng.next() % UInt64(g.dice.count))
            if j < Self.reservoir { g.sample[j] = e }
        }
        groups[group] = g
    }

    var all: [EvalStore.Example] {
        groups.sorted { $0.key < $1.key }.flatMap { _, g -> [EvalStore.Example] in
            let median = g.dice.sorted()[(g.dice.count - 1) / 2]
            let nearest = g.sample.min { (abs($0.dice - median), $0.maskID) < (abs($1.dice - median), $1.maskID) }
            return [("best", g.best), ("median", nearest), ("worst", g.worst)].compactMap { kind, e in
                e.map { var e = $0; e.kind = kind; return e }
            }
        }
    }
}
