import Geometry
import Foundation

/// Connected components of label maps, for dropping specks (MedSAM removes 3D components under
/// 1000 voxels and 2D ones under 100 pixels) and for splitting masks into instances.
///
/// Labels are mostly long runs along x (organs, lesions), so components are found between runs, not
/// voxels: two runs of one value in neighbouring rows touch when their x ranges, each widened by
/// one, overlap. That is 8-connectivity in 2D and 26-connectivity in 3D.
public enum Components {
    /// Maximal runs of one nonzero value along x, row after row (y fastest, then z).
    struct Runs {
        var start: [Int32] = [], end: [Int32] = [], value: [Int32] = []
        /// Runs of row `r` (r = z * ny + y) are `rowStart[r]..<rowStart[r + 1]`.
        var rowStart: [Int32] = [0]
        /// Per run, its component (1…n, numbered by first voxel in raster order); `sizes[c]` in voxels.
        var component: [Int32] = []
        var sizes: [Int] = [0]
    }

    /// The runs of a label map and their components.
    static func runs(_ labels: UnsafeBufferPointer<Int32>, size: [Int]) -> Runs {
        let nx = size[0], ny = size[1], nz = size[2]
        var r = Runs()
        r.rowStart.reserveCapacity(ny * nz + 1)
        for row in 0..<(ny * nz) {
            let base = row * nx
            var x = nextForeground(labels, base, from: 0, to: nx)
            while x < nx {
                let v = labels[base + x], s = x
                x += 1
                while x < nx && labels[base + x] == v { x += 1 }
                r.start.append(Int32(s)); r.end.append(Int32(x)); r.value.append(v)
                if x < nx && labels[base + x] == 0 { x = nextForeground(labels, base, from: x + 1, to: nx) }
            }
            r.rowStart.append(Int32(r.start.count))
        }
        // Union-find over runs; the smaller index becomes the root, so a component's root is its
        // first run in raster order.
        var parent = (0..<Int32(r.start.count)).map { $0 }
        parent.withUnsafeMutableBufferPointer { p in
            r.start.withUnsafeBufferPointer { start in r.end.withUnsafeBufferPointer { end in r.value.withUnsafeBufferPointer { value in
                r.rowStart.withUnsafeBufferPointer { rowStart in
                    // Rows already visited that may touch row (y, z): (y-1, z) and, in 3D, y-1…y+1 at z-1.
                    var neighbours: [(dy: Int, dz: Int)] = [(-1, 0)]
                    if nz > 1 { neighbours += [(-1, -1), (0, -1), (1, -1)] }
                    for z in 0..<nz { for y in 0..<ny {
                        let row = z * ny + y
                        let mine = Int(rowStart[row])..<Int(rowStart[row + 1])
                        if mine.isEmpty { continue }
                        for (dy, dz) in neighbours {
                            let (oy, oz) = (y + dy, z + dz)
                            guard oy >= 0, oy < ny, oz >= 0 else { continue }
                            let other = oz * ny + oy
                            var j = Int(rowStart[other])
                            let jEnd = Int(rowStart[other + 1])
                            for i in mine {
                                // Both rows' runs are sorted and disjoint: skip the other row's runs
                                // that end before this one starts (less one).
                                while j < jEnd && end[j] < start[i] { j += 1 }
                                var k = j
                                while k < jEnd && start[k] <= end[i] {
                                    if value[k] == value[i] { union(Int32(i), Int32(k), p) }
                                    k += 1
                                }
                            }
                        }
                    }
                } }
            } } }
        }
        // Components numbered in order of their first run; sizes summed over runs.
        r.component = [Int32](repeating: 0, count: r.start.count)
        parent.withUnsafeMutableBufferPointer { p in
            for i in 0..<r.start.count {
                let root = Int(find(Int32(i), p))
                if root == i {
                    r.sizes.append(0)
                    r.component[i] = Int32(r.sizes.count - 1)
                } else {
                    r.component[i] = r.component[root]
                }
                r.sizes[Int(r.component[i])] += Int(r.end[i] - r.start[i])
            }
        }
        return r
    }

    /// Labels the connected components of equal nonzero values. 3D uses 26-connectivity, 2D
    /// (depth 1) 8-connectivity. Returns per-voxel component ids (0 = background, 1…n, in order of
    /// each component's first voxel in raster order) and each component's size.
    public static func label(_ labels: UnsafeBufferPointer<Int32>, size: [Int]) -> (ids: [Int32], sizes: [Int]) {
        let r = runs(labels, size: size), nx = size[0]
        var ids = [Int32](repeating: 0, count: labels.count)
        ids.withUnsafeMutableBufferPointer { id in
            for row in 0..<(r.rowStart.count - 1) {
                for i in Int(r.rowStart[row])..<Int(r.rowStart[row + 1]) {
                    let base = row * nx
                    for x in Int(r.start[i])..<Int(r.end[i]) { id[base + x] = r.component[i] }
                }
            }
        }
        return (ids, r.sizes)
    }

    /// The first x in `from..<to` where `v[row + x]` is nonzero, else `to`. Foreground is sparse
    /// even inside its bounding box: runs of zeros are passed 16 at a time by an OR that vectorises.
    @inline(__always)
    static func nextForeground(_ v: UnsafeBufferPointer<Int32>, _ row: Int, from: Int, to: Int) -> Int {
        var x = from
        while x + 16 <= to {
            var any: Int32 = 0
            for k in 0..<16 { any |= v[row + x + k] }
            if any != 0 { break }
            x += 16
        }
        while x < to && v[row + x] == 0 { x += 1 }
        return x
    }

    /// Root of `x` with path compression.
    @inline(__always)
    static func find(_ x: Int32, _ parent: UnsafeMutableBufferPointer<Int32>) -> Int32 {
        var r = x
        while parent[Int(r)] != r { r = parent[Int(r)] }
        var c = x
        while parent[Int(c)] != r { let n = parent[Int(c)]; parent[Int(c)] = r; c = n }
        return r
    }

    @inline(__always)
    static func union(_ a: Int32, _ b: Int32, _ parent: UnsafeMutableBufferPointer<Int32>) {
        let (ra, rb) = (find(a, parent), find(b, parent))
        if ra != rb { parent[Int(max(ra, rb))] = min(ra, rb) }
    }

    /// Sets to 0 every component smaller than `minSize`. Returns how many voxels were removed.
    @discardableResult
    public static func removeSmall(_ labels: inout [Int32], size: [Int], minSize: Int) -> Int {
        if minSize <= 1 { return 0 }
        let r = labels.withUnsafeBufferPointer { runs($0, size: size) }
        if !r.sizes.dropFirst().contains(where: { $0 < minSize }) { return 0 }
        var removed = 0
        labels.withUnsafeMutableBufferPointer { l in
            for row in 0..<(r.rowStart.count - 1) {
                for i in Int(r.rowStart[row])..<Int(r.rowStart[row + 1]) where r.sizes[Int(r.component[i])] < minSize {
                    let base = row * size[0]
                    for x in Int(r.start[i])..<Int(r.end[i]) { l[base + x] = 0 }
                    removed += Int(r.end[i] - r.start[i])
                }
            }
        }
        return removed
    }

    /// Inclusive bounding box of the nonzero voxels, or nil when there are none.
    public static func boundingBox(_ labels: [Int32], size: [Int]) -> Box3D? {
        var lo = SIMD3(Int.max, Int.max, Int.max), hi = SIMD3(-1, -1, -1)
        let nx = size[0]
        labels.withUnsafeBufferPointer { l in
            guard let base = l.baseAddress else { return }
            for z in 0..<size[2] { for y in 0..<size[1] {
                let row = base + (z * size[1] + y) * nx
                // Most rows of a label map are empty: a branch-free OR over the row (vectorised)
                // rules them out before any search.
                var any: Int32 = 0
                for x in 0..<nx { any |= row[x] }
                if any == 0 { continue }
                var first = 0, last = nx - 1
                while row[first] == 0 { first += 1 }
                while row[last] == 0 { last -= 1 }
                lo[0] = min(lo[0], first); hi[0] = max(hi[0], last)
                lo[1] = min(lo[1], y); hi[1] = max(hi[1], y)
                lo[2] = min(lo[2], z); hi[2] = max(hi[2], z)
            } }
        }
        return hi[0] < 0 ? nil : Box3D(lo: lo, hi: hi)
    }
}
