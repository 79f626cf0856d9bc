import Foundation
import Geometry
import Imaging

/// Overlap and surface scores of one predicted mask against its ground truth, on a 2D or 3D grid.
/// A nil score is undefined; it is left out of every mean and counted apart.
public struct SegmentationScores: Codable, Equatable, Sendable {
    public var dice: Double?, iou: Double?
    /// Normalised surface Dice at the tolerance given (mm).
    public var nsd: Double?
    /// 95th percentile of the symmetric surface distance (mm).
    public var hd95: Double?

    public init(dice: Double?, iou: Double?, nsd: Double?, hd95: Double?) {
        self.dice = dice; self.iou = iou; self.nsd = nsd; self.hd95 = hd95
    }
}

/// The definitions follow MONAI's DiceMetric, SurfaceDiceMetric (use_subvoxels=False) and
/// HausdorffDistanceMetric(percentile=95), and are checked against them (Tests/EvalTests):
/// - surface voxels are the foreground voxels with a background face neighbour (scipy's binary
///   erosion with the cross structure; the grid's outside counts as background);
/// - distances run from the surface voxels of one mask to the nearest surface voxel of the other,
///   in millimetres through the spacing, by an exact Euclidean distance transform;
/// - NSD = (pred surface within tolerance of truth's + truth surface within tolerance of pred's) /
///   (both surface sizes); HD95 = the larger of the two directed 95th percentiles (linear
///   interpolation, as numpy and torch.quantile do).
///
/// Empty masks, where MONAI returns NaN (or a free 1 with `ignore_empty=False`):
/// - truth and prediction both empty: every score is undefined (nil), never a free Dice of 1;
/// - one of them empty: Dice, IoU and NSD are 0, and HD95 is the grid's diagonal in mm, the
///   largest distance the grid allows, so that a missed object is the worst case on every score.
public enum SegmentationMetrics {
    /// Masks are x-fastest over size = [nx, ny, nz] (nz = 1 for 2D); spacing in mm per axis.
    public static func score(prediction: [UInt8], truth: [UInt8], size: [Int], spacing: [Double], tolerance: Double = 2) -> SegmentationScores {
        precondition(truth.count == size.reduce(1, *), "masks must cover the grid")
        guard let counts = counted(prediction: prediction, truth: truth) else { return SegmentationScores(dice: nil, iou: nil, nsd: nil, hd95: nil) }
        let (dice, iou, p, t) = counts
        if p == 0 || t == 0 {
            let diagonal = zip(size, spacing).filter { $0.0 > 1 }.reduce(0.0) { $0 + pow(Double($1.0) * $1.1, 2) }.squareRoot()
            return SegmentationScores(dice: dice, iou: iou, nsd: 0, hd95: diagonal)
        }
        // Both surfaces lie inside the union's bounding box, and so do their nearest neighbours:
        // the distance transform runs on that box only.
        let box = boundingBox(size: size) { prediction[$0] != 0 || truth[$0] != 0 }
        let sub = (0..<3).map { box.hi[$0] - box.lo[$0] + 1 }
        func crop(_ m: [UInt8]) -> [Bool] {
            var out = [Bool](repeating: false, count: sub.reduce(1, *))
            for z in 0..<sub[2] { for y in 0..<sub[1] {
                let src = ((z + box.lo[2]) * size[1] + y + box.lo[1]) * size[0] + box.lo[0], dst = (z * sub[1] + y) * sub[0]
                for x in 0..<sub[0] { out[dst + x] = m[src + x] != 0 }
            } }
            return out
        }
        let volumetric = size[2] > 1
        let predSurface = surface(crop(prediction), size: sub, volumetric: volumetric)
        let truthSurface = surface(crop(truth), size: sub, volumetric: volumetric)
        let toTruth = DistanceTransform.distances(size: sub, spacing: spacing) { truthSurface[$0] }
        let toPred = DistanceTransform.distances(size: sub, spacing: spacing) { predSurface[$0] }
        let predToTruth = predSurface.indices.filter { predSurface[$0] }.map { toTruth[$0] }
        let truthToPred = truthSurface.indices.filter { truthSurface[$0] }.map { toPred[$0] }
        let within = predToTruth.filter { $0 <= tolerance }.count + truthToPred.filter { $0 <= tolerance }.count
        let nsd = Double(within) / Double(predToTruth.count + truthToPred.count)
        let hd95 = max(percentile(predToTruth, 95), percentile(truthToPred, 95))
        return SegmentationScores(dice: dice, iou: iou, nsd: nsd, hd95: hd95)
    }

    /// Foreground voxels with a face neighbour that is background or outside the grid (here a crop
    /// whose outside is all background). A 2D mask has no neighbours along z: it is not a
    /// one-voxel-thick slab.
    static func surface(_ m: [Bool], size: [Int], volumetric: Bool) -> [Bool] {
        let (nx, ny, nz) = (size[0], size[1], size[2])
        var out = [Bool](repeating: false, count: m.count)
        for z in 0..<nz { for y in 0..<ny { for x in 0..<nx {
            let i = (z * ny + y) * nx + x
            guard m[i] else { continue }
            var edge = x == 0 || x == nx - 1 || !m[i - 1] || !m[i + 1] || y == 0 || y == ny - 1 || !m[i - nx] || !m[i + nx]
            if volumetric && !edge { edge = z == 0 || z == nz - 1 || !m[i - nx * ny] || !m[i + nx * ny] }
            out[i] = edge
        } } }
        return out
    }

    /// Dice and IoU alone, without the surface scores; nil when both masks are empty.
    public static func overlap(prediction: [UInt8], truth: [UInt8]) -> (dice: Double, iou: Double)? {
        counted(prediction: prediction, truth: truth).map { ($0.dice, $0.iou) }
    }

    /// Dice, IoU and the foreground counts of each mask; nil when both are empty.
    private static func counted(prediction: [UInt8], truth: [UInt8]) -> (dice: Double, iou: Double, predicted: Int, truth: Int)? {
        precondition(prediction.count == truth.count, "masks must cover the same grid")
        var p = 0, t = 0, both = 0
        for i in truth.indices {
            let a = prediction[i] != 0, b = truth[i] != 0
            if a { p += 1 }
            if b { t += 1 }
            if a && b { both += 1 }
        }
        if p == 0 && t == 0 { return nil }
        return (2 * Double(both) / Double(p + t), Double(both) / Double(p + t - both), p, t)
    }

    static func boundingBox(size: [Int], _ inside: (Int) -> Bool) -> Box3D {
        var (x0, y0, z0, x1, y1, z1) = (size[0], size[1], size[2], -1, -1, -1)
        for z in 0..<size[2] { for y in 0..<size[1] { for x in 0..<size[0] where inside((z * size[1] + y) * size[0] + x) {
            x0 = min(x0, x); y0 = min(y0, y); z0 = min(z0, z); x1 = max(x1, x); y1 = max(y1, y); z1 = max(z1, z)
        } } }
        return Box3D(lo: SIMD3(x0, y0, z0), hi: SIMD3(x1, y1, z1))
    }

    /// numpy's default ("linear") percentile.
    static func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        let rank = q / 100 * Double(s.count - 1), lo = Int(rank.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (rank - Double(lo))
    }
}
