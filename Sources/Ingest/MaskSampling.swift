import Geometry
import Imaging

/// The masks of one slice on the output grid, straight from its label planes by nearest-neighbour
/// lookup: one pass over the output pixels that sample the labels' box, for all classes (or, with
/// `instances`, all connected components) of a plane at once.
struct MaskSampling {
    /// Side of the stored square; masks cover all of it.
    let size: Int
    let instances: Bool

    /// `planes` hold `plane.labelColumns` × `plane.labelRows`; output pixel (x, y) samples plane
    /// pixel (xs[x], ys[y]). Masks come sorted by class index, then instance.
    func masks(_ planes: [[Int32]], plane: SlicePlane, xs: [Int], ys: [Int], classNames: [String]) -> [PreparedMask] {
        let (cRange, rRange) = (plane.labelColumns, plane.labelRows)
        let (bw, bh) = (cRange.count, rRange.count)
        let xOut = Self.sampling(xs, cRange), yOut = Self.sampling(ys, rRange)
        var masks: [(cls: Int32, instance: Int, mask: PreparedMask)] = []
        var instancesOfClass: [Int32: Int] = [:]
        for labels in planes {
            var keys = labels
            var keyClass: [Int32: (cls: Int32, instance: Int)] = [:]
            if instances {
                let (ids, _) = labels.withUnsafeBufferPointer { Components.label($0, size: [bw, bh, 1]) }
                for i in ids.indices where ids[i] != 0 && keyClass[ids[i]] == nil {
                    instancesOfClass[labels[i], default: 0] += 1
                    keyClass[ids[i]] = (labels[i], instancesOfClass[labels[i]]!)
                }
                keys = ids
            }
            // Each key's first sample gives it a slot; keys are class indices or component ids, both small.
            var slot = [Int](repeating: -1, count: Int(keys.max() ?? 0) + 1)
            var found: [(key: Int32, area: Int, box: Box2D)] = []
            let (sw, sh) = (xOut.count, yOut.count)
            var sampled = [Int32](repeating: 0, count: sw * sh)
            keys.withUnsafeBufferPointer { kp in
                for (sy, y) in yOut.enumerated() {
                    let row = (ys[y] - rRange.lowerBound) * bw - cRange.lowerBound
                    for (sx, x) in xOut.enumerated() {
                        let k = kp[row + xs[x]]
                        if k == 0 { continue }
                        sampled[sy * sw + sx] = k
                        var j = slot[Int(k)]
                        if j < 0 {
                            j = found.count
                            slot[Int(k)] = j
                            found.append((k, 0, Box2D(x0: x, y0: y, x1: x, y1: y)))
                        }
                        found[j].area += 1
                        found[j].box = Box2D(x0: min(found[j].box.x0, x), y0: min(found[j].box.y0, y), x1: max(found[j].box.x1, x), y1: max(found[j].box.y1, y))
                    }
                }
            }
            for f in found {
                let (cls, instance) = instances ? keyClass[f.key]! : (f.key, 0)
                var pixels = [UInt8](repeating: 0, count: size * size)
                for sy in 0..<sh {
                    for sx in 0..<sw { pixels[(yOut.lowerBound + sy) * size + xOut.lowerBound + sx] = sampled[sy * sw + sx] == f.key ? 1 : 0 }
                }
                masks.append((cls, instance, PreparedMask(className: classNames[Int(cls) - 1], instance: instance, area: f.area, box: f.box, pixels: pixels)))
            }
        }
        masks.sort { ($0.cls, $0.instance) < ($1.cls, $1.instance) }
        return masks.map(\.mask)
    }

    /// The output positions whose source index lies in `r`.
    private static func sampling(_ source: [Int], _ r: Range<Int>) -> Range<Int> {
        let lo = source.firstIndex { $0 >= r.lowerBound } ?? source.count, hi = source.lastIndex { $0 < r.upperBound }.map { $0 + 1 } ?? 0
        return lo..<max(lo, hi)
    }
}
