import Catalog
import Hashing
import Prompts

/// The fixed prompt protocols an evaluation runs. Each is a pure function of the ground truth
/// (and the seed, for jittered boxes), so two models see the same prompts; `clicks` then adds
/// corrective clicks that depend on the model's own errors.
public enum EvalProtocol: String, CaseIterable, Codable, Sendable {
    /// The mask's tight box, optionally jittered.
    case box
    /// 1, 3 or 5 foreground points at distance-transform maxima (see `PromptSimulator.interiorPoints`).
    case points1, points3, points5
    /// One interior point, then corrective clicks at the distance-transform maximum of the error
    /// region, each labelled by the truth there, with the previous mask fed back as the mask prompt.
    case clicks

    var initialPoints: Int {
        switch self {
        case .box: 0
        case .points1, .clicks: 1
        case .points3: 3
        case .points5: 5
        }
    }
}

/// Everything that decides an evaluation's numbers, stored with the run.
public struct EvalSettings: Codable, Equatable, Sendable {
    public var selection: Selection
    public var protocols: [EvalProtocol]
    /// Total clicks of the `clicks` protocol, the first included.
    public var clicks: Int
    /// NSD tolerance in millimetres.
    public var tolerance: Double
    public var seed: UInt64
    /// `BoxJitter` argument form: none, sam-med2d, medsam:20, …
    public var boxJitter: String
    public var imageSize: Int?
    public var device: String
    /// At most this many images of the selection, in catalog order.
    public var limit: Int?
    /// This many images drawn by `seed` from the selection (of the first `limit`), scored in
    /// catalog order: a fixed subset spread over all of it (training validates on one).
    public var sample: Int?

    public init(selection: Selection = Selection(splits: [.test]), protocols: [EvalProtocol] = [.box, .points1, .clicks], clicks: Int = 5,
                tolerance: Double = 2, seed: UInt64 = 0, boxJitter: String = "none", imageSize: Int? = nil, device: String = "cpu",
                limit: Int? = nil, sample: Int? = nil) {
        self.selection = selection; self.protocols = protocols; self.clicks = clicks; self.tolerance = tolerance
        self.seed = seed; self.boxJitter = boxJitter; self.imageSize = imageSize; self.device = device; self.limit = limit
        self.sample = sample
    }

    enum CodingKeys: String, CodingKey {
        case selection, protocols, clicks, tolerance, seed, boxJitter = "box_jitter", imageSize = "image_size", device, limit, sample
    }

    /// The first setting, by name, that scores the same prediction differently from `other`, or nil:
    /// what the parts of one evaluation must share (`EvalStore.extend`).
    func scoringDifference(_ other: EvalSettings) -> String? {
        if protocols != other.protocols { return "protocol list" }
        if clicks != other.clicks { return "click count" }
        if tolerance != other.tolerance { return "NSD tolerance" }
        if seed != other.seed { return "seed" }
        if boxJitter != other.boxJitter { return "box jitter" }
        if imageSize != other.imageSize { return "image size" }
        return nil
    }

    /// The data a run scored, in words: "test · ct · kidney · first 24 images".
    public var dataDescription: String {
        let s = selection
        let parts = [s.splits.map(\.name), s.datasets, s.modalities, s.classes].map { $0.joined(separator: "+") }.filter { !$0.isEmpty }
        return (parts + (limit.map { ["first \($0) images"] } ?? []) + (sample.map { ["\($0) images drawn by seed \(seed)"] } ?? []))
            .joined(separator: " · ")
    }

    /// The protocol's first prompt for a mask. `interior` gives the mask's interior points, as many
    /// as any protocol of the run needs: the point protocols take prefixes of one greedy sequence.
    /// `jitter` is `boxJitter` parsed.
    func initialPrompt(_ p: EvalProtocol, truth: BinaryMask, maskID: Int64, jitter: BoxJitter, interior: () -> [Prompt.Point]) -> Prompt {
        if p == .box {
            var rng = PromptRNG(seed: seed, UInt64(bitPattern: maskID))
            return Prompt(box: PromptSimulator.box(truth, jitter: jitter, rng: &rng))
        }
        return Prompt(points: Array(interior().prefix(p.initialPoints)))
    }

    /// Whether a score is its protocol's last step (the click protocol's final click): the output
    /// volumes, thumbnails and the leaderboard report.
    func isFinal(_ v: EvalStore.Variant) -> Bool { v.proto != EvalProtocol.clicks.rawValue || v.step == clicks }

    /// Step numbers recorded for a protocol: click counts for `clicks`, a single 0 otherwise.
    func steps(_ p: EvalProtocol) -> [Int] { p == .clicks ? Array(1...clicks) : [0] }
}

extension Prompt {
    /// The same box and points give the same key in every run: what the leaderboard checks before
    /// it compares two runs' scores of one mask.
    var stableKey: Int64 {
        var s = box.map { "b\($0.x0),\($0.y0),\($0.x1),\($0.y1)" } ?? ""
        for p in points { s += ";\(p.x),\(p.y),\(p.label)" }
        return Int64(bitPattern: StableHash.fnv1a(s))
    }
}
