import Geometry
import Imaging

/// A binary mask on a W×H grid, row-major, nonzero = foreground.
public struct BinaryMask: Sendable, Equatable {
    public let width: Int, height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height, "mask needs width × height pixels")
        self.width = width; self.height = height; self.pixels = pixels
    }

    public var isEmpty: Bool { !pixels.contains { $0 != 0 } }
    public var area: Int { pixels.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }

    /// The box of the foreground pixels, or nil for an empty mask.
    public var extent: Box2D? {
        var x0 = width, y0 = height, x1 = -1, y1 = -1
        for y in 0..<height { for x in 0..<width where pixels[y * width + x] != 0 {
            x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
        } }
        return x1 < 0 ? nil : Box2D(x0: x0, y0: y0, x1: x1, y1: y1)
    }
}

/// How a box prompt strays from the mask's tight box, as the papers train and test with.
public enum BoxJitter: Equatable, Sendable {
    case none
    /// SAM-Med2D: the box shifted by (dx, dy), each uniform in [−m, m] with m = min(maxPixels, ⌊fraction · shorter side⌋).
    case samMed2D(maxPixels: Int = 5, fraction: Double = 0.1)
    /// MedSAM: each side moved outwards by a uniform 0…maxShift pixels (MedSAM uses 20 at 1024 px).
    case medSAM(maxShift: Int = 20)
}

/// Prompts simulated from ground truth. Everything is a pure function of the masks and the RNG.
public enum PromptSimulator {
    public static func box(_ mask: BinaryMask, jitter: BoxJitter = .none, rng: inout PromptRNG) -> Box2D? {
        guard var b = mask.extent else { return nil }
        switch jitter {
        case .none: break
        case let .samMed2D(maxPixels, fraction):
            let m = min(maxPixels, Int(fraction * Double(min(b.width, b.height))))
            if m > 0 {
                let dx = Int.random(in: -m...m, using: &rng), dy = Int.random(in: -m...m, using: &rng)
                b = Box2D(x0: b.x0 + dx, y0: b.y0 + dy, x1: b.x1 + dx, y1: b.y1 + dy)
            }
        case let .medSAM(maxShift):
            if maxShift > 0 {
                b = Box2D(x0: b.x0 - Int.random(in: 0...maxShift, using: &rng), y0: b.y0 - Int.random(in: 0...maxShift, using: &rng),
                          x1: b.x1 + Int.random(in: 0...maxShift, using: &rng), y1: b.y1 + Int.random(in: 0...maxShift, using: &rng))
            }
        }
        let x0 = min(max(b.x0, 0), mask.width - 1), y0 = min(max(b.y0, 0), mask.height - 1)
        return Box2D(x0: x0, y0: y0, x1: min(max(b.x1, x0), mask.width - 1), y1: min(max(b.y1, y0), mask.height - 1))
    }

    /// `count` foreground points, deterministic (Mazurowski et al.'s rule, extended): the first is the
    /// maximum of the distance transform inside the largest connected component, i.e. the point
    /// farthest from the boundary; each next one maximises the distance to both the boundary and the
    /// points already chosen, anywhere in the mask, which spreads them over the object and its other
    /// components. Ties go to the tied pixel nearest their centroid (then the first in raster order),
    /// so a bar's point is at its middle, not at the end of its ridge.
    public static func interiorPoints(_ mask: BinaryMask, count: Int) -> [Prompt.Point] {
        guard count > 0, !mask.isEmpty else { return [] }
        var d = insideDistances(mask)
        let largest = largestComponent(mask)
        var points: [Prompt.Point] = []
        for k in 0..<count {
            guard let best = argmax(d, width: mask.width, where: { mask.pixels[$0] != 0 && (k > 0 || largest[$0]) }) else { break }
            let (bx, by) = (best % mask.width, best / mask.width)
            points.append(.init(x: bx, y: by, label: 1))
            for i in d.indices where mask.pixels[i] != 0 {
                let dx = Double(i % mask.width - bx), dy = Double(i / mask.width - by)
                d[i] = min(d[i], (dx * dx + dy * dy).squareRoot())
            }
        }
        return points
    }

    /// The next corrective click, as an annotator would give it: at the distance-transform maximum
    /// of the error region (prediction ≠ truth), labelled by the truth there (foreground for a
    /// missed pixel, background for a false one). Nil when the prediction is exact.
    public static func correctiveClick(prediction: BinaryMask, truth: BinaryMask) -> Prompt.Point? {
        let error = BinaryMask(width: truth.width, height: truth.height,
                               pixels: zip(prediction.pixels, truth.pixels).map { ($0 != 0) != ($1 != 0) ? 1 : 0 })
        guard !error.isEmpty else { return nil }
        let best = argmax(insideDistances(error), width: truth.width) { error.pixels[$0] != 0 }!
        return .init(x: best % truth.width, y: best / truth.width, label: truth.pixels[best] != 0 ? 1 : 0)
    }

    /// The index of the largest positive value among those allowed, ties broken as described above.
    static func argmax(_ d: [Double], width: Int, where allowed: (Int) -> Bool) -> Int? {
        var top = 0.0, ties: [Int] = []
        for i in d.indices where d[i] > 0 && allowed(i) {
            if d[i] > top { top = d[i]; ties = [i] } else if d[i] == top { ties.append(i) }
        }
        guard !ties.isEmpty else { return nil }
        let cx = Double(ties.reduce(0) { $0 + $1 % width }) / Double(ties.count)
        let cy = Double(ties.reduce(0) { $0 + $1 / width }) / Double(ties.count)
        func gap(_ i: Int) -> Double { let dx = Double(i % width) - cx, dy = Double(i / width) - cy; return dx * dx + dy * dy }
        return ties.min { gap($0) < gap($1) }  // min keeps the first of equals: raster order
    }

    /// Distance of each foreground pixel to the nearest background pixel, the image's outside
    /// counting as background (so a mask touching the border has its maximum inside).
    static func insideDistances(_ mask: BinaryMask) -> [Double] {
        let (w, h) = (mask.width, mask.height)
        var d = DistanceTransform.distances(size: [w, h, 1], spacing: [1, 1, 1]) { mask.pixels[$0] == 0 }
        for i in d.indices where mask.pixels[i] != 0 {
            let x = i % w, y = i / w
            d[i] = min(d[i], Double(min(x + 1, y + 1, w - x, h - y)))
        }
        return d
    }

    static func largestComponent(_ mask: BinaryMask) -> [Bool] {
        let labels = mask.pixels.map { Int32($0 != 0 ? 1 : 0) }
        let (ids, sizes) = labels.withUnsafeBufferPointer { Components.label($0, size: [mask.width, mask.height, 1]) }
        // sizes[0] counts nothing; component k has size sizes[k].
        let top = sizes.indices.max { sizes[$0] < sizes[$1] } ?? 0
        return ids.map { $0 == Int32(top) }
    }
}

extension BoxJitter: CustomStringConvertible {
    /// The argument forms, for messages.
    public static let choices = "none, sam-med2d, sam-med2d:PX:FRACTION, medsam or medsam:PX"

    /// `init?(argument:)`, with an error that lists the choices.
    public static func parse(_ argument: String) throws -> BoxJitter {
        guard let j = BoxJitter(argument: argument) else { throw PromptError("box jitter must be \(choices) (got '\(argument)')") }
        return j
    }

    /// `none`, `sam-med2d`, `sam-med2d:MAXPX:FRACTION`, `medsam` or `medsam:MAXSHIFT`.
    public init?(argument: String) {
        let parts = argument.split(separator: ":").map(String.init)
        switch parts.first {
        case "none" where parts.count == 1: self = .none
        case "sam-med2d" where parts.count == 1: self = .samMed2D()
        case "sam-med2d" where parts.count == 3:
            guard let m = Int(parts[1]), let f = Double(parts[2]), m >= 0, f >= 0 else { return nil }
            self = .samMed2D(maxPixels: m, fraction: f)
        case "medsam" where parts.count == 1: self = .medSAM()
        case "medsam" where parts.count == 2:
            guard let s = Int(parts[1]), s >= 0 else { return nil }
            self = .medSAM(maxShift: s)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case let .samMed2D(m, f): "sam-med2d:\(m):\(f)"
        case let .medSAM(s): "medsam:\(s)"
        }
    }
}

extension PromptSimulator {
    /// A uniformly drawn pixel of the mask, as SAM-Med2D samples training points and clicks.
    public static func randomPoint(in mask: BinaryMask, label: Int, rng: inout PromptRNG) -> Prompt.Point? {
        let count = mask.area
        guard count > 0 else { return nil }
        var k = Int(rng.next() % UInt64(count))  // the k-th foreground pixel in raster order
        for (i, v) in mask.pixels.enumerated() where v != 0 {
            if k == 0 { return Prompt.Point(x: i % mask.width, y: i / mask.width, label: label) }
            k -= 1
        }
        return nil
    }

    /// Training points as SAM-Med2D draws them: one foreground pixel for one point; for k > 1,
    /// ⌊k/2⌋ foreground and the rest background pixels, uniformly with replacement, in random order.
    /// Nil when the mask is empty (or fills the grid and background points are asked for).
    public static func trainingPoints(_ mask: BinaryMask, count: Int, rng: inout PromptRNG) -> [Prompt.Point]? {
        let positives = count == 1 ? 1 : count / 2
        let background = positives < count ? BinaryMask(width: mask.width, height: mask.height, pixels: mask.pixels.map { $0 == 0 ? 1 : 0 }) : mask
        var points: [Prompt.Point] = []
        for k in 0..<count {
            guard let p = k < positives ? randomPoint(in: mask, label: 1, rng: &rng) : randomPoint(in: background, label: 0, rng: &rng)
            else { return nil }
            points.append(p)
        }
        rng.permute(&points)
        return points
    }

    /// A training click: a uniformly drawn pixel of the error region, labelled by the truth there.
    public static func randomClick(prediction: BinaryMask, truth: BinaryMask, rng: inout PromptRNG) -> Prompt.Point? {
        let error = BinaryMask(width: truth.width, height: truth.height,
                               pixels: zip(prediction.pixels, truth.pixels).map { ($0 != 0) != ($1 != 0) ? 1 : 0 })
        guard var p = randomPoint(in: error, label: 0, rng: &rng) else { return nil }
        p.label = truth.pixels[p.y * truth.width + p.x] != 0 ? 1 : 0
        return p
    }
}
