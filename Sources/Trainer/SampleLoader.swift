import Catalog
import Dispatch
import Foundation
import Geometry
import Hashing
import Prompts
import SAM
import Torch

/// One training sample as the loader hands it over: an S×S image (channels interleaved, 0–255)
/// and `masksPerImage` 0/1 masks on the same grid, augmented identically, with their prompts.
public struct TrainingSample: Sendable {
    public var imageID: Int64
    /// The catalog masks drawn, in the order of `masks`.
    public var maskIDs: [Int64]
    public var size: Int, channels: Int
    public var pixels: [Float]
    public var masks: [BinaryMask]
    /// One per mask: a box (box steps) or `TrainConfig.points` points (point steps).
    public var prompts: [Prompt]
    /// What the image encoder sees, as the embedding cache keys it: the stored pixels' hash and
    /// the flip/turn variant applied (flip · 4 + quarter turns).
    public var pixelsHash: UInt64 = 0, variant: UInt8 = 0
    public var cacheKey: EmbeddingCache.Key { .init(image: imageID, pixels: pixelsHash, variant: variant) }
}

/// Where a run stands in its data: epoch and batches already consumed in it. With the seed this
/// fixes everything that follows, so a checkpoint stores just these two numbers.
public struct LoaderPosition: Codable, Equatable, Sendable {
    public var epoch = 0, batch = 0
    public init(epoch: Int = 0, batch: Int = 0) { self.epoch = epoch; self.batch = batch }
}

/// The training data of a selection, in an order that is a pure function of (seed, epoch): a
/// seeded permutation of the selected images, cut into full batches. Samples of a batch are read,
/// unpacked and augmented on all cores; prompts and augmentation are seeded per (seed, epoch,
/// image), never by visiting order.
public final class SampleLoader {
    public let config: TrainConfig
    let reader: SampleReader
    let images: [SampleReader.Image]
    let jitter: BoxJitter

    /// Reads `pack` when given (its images are the selection's; no catalog needed), else the
    /// catalog's selection from its shards.
    public init(catalog: Catalog?, config: TrainConfig, pack: Pack? = nil) throws {
        self.config = config
        var list: [SampleReader.Image] = []
        if let pack {
            reader = SampleReader(shardDirectory: pack.directory)
            list = pack.images
        } else if let catalog {
            reader = SampleReader(catalog: catalog)
            try reader.forEach(config.selection) { list.append($0) }
        } else {
            throw TrainingError("training reads a catalog or a pack; neither was given")
        }
        guard list.count >= config.batchSize else {
            throw TrainingError("the training selection has \(list.count) images, fewer than one batch of \(config.batchSize)")
        }
        guard let sizes = Set(list.map(\.width)).first, Set(list.map(\.width)).count == 1, Set(list.map(\.height)) == [sizes] else {
            throw TrainingError("training images must share one stored size (ingest them at one size)")
        }
        images = list
        packShards = pack?.shards
        jitter = try BoxJitter.parse(config.boxJitter)
        weights = try Self.weights(list, config.sampleWeights)
    }

    /// Each image's sampling weight, nil without rebalancing.
    let weights: [Double]?
    /// The pack's shard count (image i lives in shard i mod N), nil when reading the catalog.
    let packShards: Int?

    static func weights(_ images: [SampleReader.Image], _ spec: [String: Double]) throws -> [Double]? {
        guard !spec.isEmpty else { return nil }
        for (key, w) in spec {
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["modality", "dataset"].contains(parts[0]), w >= 0, w.isFinite else {
                throw TrainingError("sampling weight '\(key)=\(w)': expected modality:NAME or dataset:NAME with a weight ≥ 0")
            }
            guard images.contains(where: { (parts[0] == "modality" ? $0.modality : $0.dataset) == parts[1] }) else {
                throw TrainingError("sampling weight '\(key)': no selected image has \(parts[0]) '\(parts[1])'")
            }
        }
        let w = images.map { (spec["modality:" + $0.modality] ?? 1) * (spec["dataset:" + $0.dataset] ?? 1) }
        guard w.contains(where: { $0 > 0 }) else { throw TrainingError("the sampling weights leave no image to draw") }
        return w
    }

    public var imageCount: Int { images.count }
    public var batchesPerEpoch: Int { images.count / config.batchSize }

    /// The image order of an epoch: a permutation, or with sampling weights, weighted draws.
    ///
    /// From a pack of N shards the permutation keeps shards apart: position p reads shard p mod N,
    /// the (p / N)-th image of that shard's own permutation (seeded per epoch and shard). The order
    /// does not depend on the number of processes, so a run may resume with another count; and
    /// with N and the batch multiples of the process count W, process r, which takes positions
    /// r, r + W, … of every batch, reads shards r, r + W, … only: no shard is read by two processes.
    public func order(epoch: Int) -> [Int] {
        var rng = PromptRNG(seed: config.seed, 0x6F72_6465_72, UInt64(epoch))
        if let n = packShards, weights == nil {
            let shards = (0..<n).map { s -> [Int] in
                var r = PromptRNG(seed: config.seed, 0x6F72_6465_72, UInt64(epoch), UInt64(s))
                var mine = Array(stride(from: s, to: images.count, by: n))
                r.permute(&mine)
                return mine
            }
            return images.indices.map { p in shards[p % n][p / n] }
        }
        if let weights {
            var cumulative = [Double](), total = 0.0
            for w in weights { total += w; cumulative.append(total) }
            return images.indices.map { _ in
                let u = rng.unit() * total
                var lo = 0, hi = cumulative.count - 1
                while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] > u { hi = mid } else { lo = mid + 1 } }
                return lo
            }
        }
        var order = Array(images.indices)
        rng.permute(&order)
        return order
    }

    /// The last epoch's order: every batch of an epoch reads it, and it costs a pass over the selection.
    private var cachedOrder: (epoch: Int, order: [Int])?
    private let cacheLock = NSLock()
    func cachedOrder(epoch: Int) -> [Int] {
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let c = cachedOrder, c.epoch == epoch { return c.order }
        let order = self.order(epoch: epoch)
        cachedOrder = (epoch, order)
        return order
    }

    /// A stored record that failed its checksum (or could not be read), and the image that took
    /// its place in the batch.
    public struct Replacement: Sendable, CustomStringConvertible {
        public var imageID: Int64, replacementID: Int64, reason: String
        public var description: String { "image \(imageID): \(reason); replaced by image \(replacementID)" }
    }
    /// Called for every replacement (the training command reports them).
    public var onReplacement: ((Replacement) -> Void)?

    /// The batch at `position`, and the position after it. A sample whose shard record fails its
    /// checksum is replaced by the image one batch further on in the epoch's order (then two, …),
    /// so the replacement is the same in every run and the run goes on. With `parts` processes,
    /// process `part` gets the batch's samples part, part + parts, … (the batch is global).
    public func batch(at position: LoaderPosition, part: Int = 0, of parts: Int = 1) throws -> ([TrainingSample], usesBoxes: Bool, next: LoaderPosition) {
        var position = position
        if position.batch >= batchesPerEpoch { position = LoaderPosition(epoch: position.epoch + 1, batch: 0) }
        let order = cachedOrder(epoch: position.epoch)
        let start = position.batch * config.batchSize
        var rng = PromptRNG(seed: config.seed, 0x6261_7463_68, UInt64(position.epoch), UInt64(position.batch))
        let usesBoxes = rng.unit() < config.boxProbability
        let mine = Array(stride(from: part, to: config.batchSize, by: parts))
        var results = [Result<TrainingSample, Error>?](repeating: nil, count: mine.count)
        var replaced = [Replacement?](repeating: nil, count: mine.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: mine.count) { slot in
            let k = mine[slot]
            var result: Result<TrainingSample, Error>!, note: Replacement?
            for hop in 0..<order.count {
                let image = images[order[(start + k + hop * config.batchSize) % order.count]]
                result = Result { try self.sample(image, epoch: position.epoch, boxes: usesBoxes) }
                guard case .failure(let error) = result, error is ShardError else { break }
                if note == nil { note = Replacement(imageID: image.id, replacementID: 0, reason: "\(error)") }
            }
            if var n = note, case .success(let s) = result { n.replacementID = s.imageID; note = n }
            lock.lock(); results[slot] = result; replaced[slot] = note; lock.unlock()
        }
        for r in replaced.compactMap({ $0 }) { onReplacement?(r) }
        return (try results.map { try $0!.get() }, usesBoxes, LoaderPosition(epoch: position.epoch, batch: position.batch + 1))
    }

    func sample(_ image: SampleReader.Image, epoch: Int, boxes: Bool) throws -> TrainingSample {
        var rng = PromptRNG(seed: config.seed, 0x7361_6D70_6C65, UInt64(epoch), UInt64(bitPattern: image.id))
        let n = image.width, c = image.channels
        // Masks: all of them in random order, repeated when the image has fewer than needed.
        var chosen: [SampleReader.Mask] = []
        while chosen.count < config.masksPerImage { chosen += image.masks.shuffled(using: &rng) }
        chosen = Array(chosen.prefix(config.masksPerImage))
        let stored = try reader.pixels(image)
        var pixels = stored.map(Float.init)
        var masks = try chosen.map { BinaryMask(width: n, height: n, pixels: try reader.mask($0)) }
        var variant: UInt8 = 0
        func move(_ source: [Int32]?) {  // image and masks alike
            guard let source else { return }
            pixels = Augment.gather(pixels, source, channels: c)
            for k in masks.indices { masks[k].pixels = Augment.gather(masks[k].pixels, source, channels: 1) }
        }
        if config.augment && config.tune == .decoder {
            // The encoder is frozen: only the eight flips and quarter turns, so that its output
            // for each can be cached (`EmbeddingCache`).
            variant = UInt8(rng.next() % 8)
            move(Augment.sourceIndex(size: n, flipX: variant & 4 != 0, flipY: false, turns: Int(variant & 3)))
        } else if config.augment {
            let (flipX, flipY, turns) = (rng.next() & 1 == 1, rng.next() & 1 == 1, Int(rng.next() % 4))
            // Scale-crop from a stream of its own, so that flips, intensity and prompts draw as before.
            var cropRNG = PromptRNG(seed: config.seed, 0x6372_6F70, UInt64(epoch), UInt64(bitPattern: image.id))
            let crop = Augment.crop(size: n, keeping: chosen.map(\.box), rng: &cropRNG)
            move(Augment.sourceIndex(size: n, flipX: flipX, flipY: flipY, turns: turns, crop: crop))
            let gain = Float(0.9 + 0.2 * rng.unit()), shift = Float(Int(rng.next() % 21) - 10)
            for i in pixels.indices { pixels[i] = min(255, max(0, pixels[i] * gain + shift)) }
        }
        let prompts = masks.map { m in
            if boxes { return Prompt(box: PromptSimulator.box(m, jitter: jitter, rng: &rng) ?? Box2D(width: n, height: n)) }
            // A mask left empty gets padding points, which SAM ignores.
            return Prompt(points: PromptSimulator.trainingPoints(m, count: config.points ?? 1, rng: &rng)
                          ?? Array(repeating: Prompt.Point(x: 0, y: 0, label: -1), count: config.points ?? 1))
        }
        let hash = stored.withUnsafeBytes { ContentHash.words($0).low }
        return TrainingSample(imageID: image.id, maskIDs: chosen.map(\.id), size: n, channels: c, pixels: pixels, masks: masks, prompts: prompts,
                              pixelsHash: hash, variant: variant)
    }
}

/// A batch as the model consumes it: normalised images B×3×S×S, the image index of each of the
/// B·M masks, targets B·M×1×S×S, and each mask's prompt.
public struct TrainingBatch {
    public let frame: PreparedImage
    public let images: Tensor, index: Tensor, targets: Tensor
    public let truths: [BinaryMask]
    public let prompts: [Prompt]

    public init(_ batch: [TrainingSample], config: SamConfig, device: Device) throws {
        // A selection may mix grey (CT, MR) and colour (dermoscopy, endoscopy, fundus) images: grey ones
        // are repeated over three channels when the batch holds a colour one, as the encoder sees them anyway.
        let n = batch[0].size, m = batch[0].masks.count, c = batch.contains { $0.channels == 3 } ? 3 : 1
        if n == config.imageSize {
            // Stored at the encoder's size: the whole batch normalised in one go, as PreparedImage does per image.
            var all = [Float](); all.reserveCapacity(batch.count * n * n * c)
            for s in batch {
                if s.channels == c { all += s.pixels } else { for v in s.pixels { all.append(v); all.append(v); all.append(v) } }
            }
            images = try Self.normalise(Tensor(all, shape: [batch.count, n, n, c]).to(device), config)
            frame = PreparedImage(prepared: try images.narrow(0, 0, 1), height: n, width: n, config: config)
        } else {
            let prepared = try batch.map { s in try PreparedImage(pixels: s.pixels, height: n, width: n, channels: s.channels, config: config, device: device) }
            images = try Tensor.cat(prepared.map(\.tensor), dim: 0)
            frame = prepared[0]
        }
        index = try Tensor((0..<(batch.count * m)).map { Int64($0 / m) }, shape: [batch.count * m]).to(device)
        truths = batch.flatMap(\.masks)
        var flat = [Float](repeating: 0, count: truths.count * n * n)
        for (k, t) in truths.enumerated() { for i in 0..<(n * n) where t.pixels[i] != 0 { flat[k * n * n + i] = 1 } }
        targets = try Tensor(flat, shape: [truths.count, 1, n, n]).to(device)
        prompts = batch.flatMap(\.prompts)
    }

    /// B×S×S×C pixels → B×3×S×S normalised as the model expects.
    static func normalise(_ x: Tensor, _ config: SamConfig) throws -> Tensor {
        var t = try x.permute([0, 3, 1, 2])
        if x.shape[3] == 1 { t = try t.expand([x.shape[0], 3, x.shape[1], x.shape[2]]) }
        return try PreparedImage.normalise(t, config).contiguous()
    }
}

/// Scale-crops, flips and quarter turns of a square grid, applied to an image and its masks alike:
/// one map from each output pixel to its source pixel (nearest neighbour), computed once per sample
/// and gathered through.
enum Augment {
    /// A square window to scale up to the full grid, or nil: with probability one half, a side of
    /// 75–100 % of the grid, placed at random but always holding the boxes of the masks drawn, so
    /// that no mask is cut.
    static func crop(size n: Int, keeping boxes: [Box2D], rng: inout PromptRNG) -> (x: Int, y: Int, side: Int)? {
        guard rng.next() & 1 == 1, let first = boxes.first else { return nil }
        let union = boxes.dropFirst().reduce(first) { $0.union($1) }
        let wanted = Int((0.75 + 0.25 * rng.unit()) * Double(n))
        let side = min(n, max(wanted, union.width, union.height))
        if side == n { return nil }
        // The window's corner ranges over positions that keep [union] inside it and itself inside the grid.
        func corner(_ lo: Int, _ hi: Int) -> Int {
            let from = max(0, hi - side + 1), to = min(lo, n - side)
            return from + Int(rng.next() % UInt64(to - from + 1))
        }
        return (corner(union.x0, union.x1), corner(union.y0, union.y1), side)
    }

    static func sourceIndex(size n: Int, flipX: Bool, flipY: Bool, turns: Int, crop: (x: Int, y: Int, side: Int)? = nil) -> [Int32]? {
        if !flipX && !flipY && turns == 0 && crop == nil { return nil }
        let (cx, cy, side) = crop ?? (0, 0, n)
        var map = [Int32](repeating: 0, count: n * n)
        for y in 0..<n {
            for x in 0..<n {
                var (sx, sy) = (flipX ? n - 1 - x : x, flipY ? n - 1 - y : y)
                for _ in 0..<turns { (sx, sy) = (sy, n - 1 - sx) }
                map[y * n + x] = Int32((cy + sy * side / n) * n + cx + sx * side / n)
            }
        }
        return map
    }

    static func gather<T>(_ v: [T], _ source: [Int32], channels c: Int) -> [T] {
        var out = v
        out.withUnsafeMutableBufferPointer { o in
            v.withUnsafeBufferPointer { i in
                if c == 1 {
                    for k in 0..<source.count { o[k] = i[Int(source[k])] }
                } else {
                    for k in 0..<source.count { for q in 0..<c { o[k * c + q] = i[Int(source[k]) * c + q] } }
                }
            }
        }
        return out
    }
}
