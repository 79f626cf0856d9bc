import Foundation

/// Connected components of label maps, for dropping specks (MedSAM removes 3D components under
/// 1000 voxels and 2D ones under 100 pixels) and for splitting masks into instances.
public enum Components {
    /// Labels the connected components of equal nonzero values. 3D uses 26-connectivity, 2D
    /// (depth 1) 8-connectivity. Returns per-voxel component ids (0 = background, 1…n) and each
    /// component's size.
    public static func label(_ labels: UnsafeBufferPointer<Int32>, size: [Int]) -> (ids: [Int32], sizes: [Int]) {
        let nx = size[0], ny = size[1], nz = size[2]
        var parent: [Int32] = [0]
        var ids = [Int32](repeating: 0, count: labels.count)
        // Neighbours already visited in raster order: half of the 26 (or 8) neighbourhood.
        var offsets: [(Int, Int, Int)] = [(-1, 0, 0), (-1, -1, 0), (0, -1, 0), (1, -1, 0)]
        if nz > 1 { for dy in -1...1 { for dx in -1...1 { offsets.append((dx, dy, -1)) } } }
        ids.withUnsafeMutableBufferPointer { id in
            for z in 0..<nz {
                for y in 0..<ny {
                    let row = (z * ny + y) * nx
                    for x in 0..<nx {
                        let v = labels[row + x]
                        if v == 0 { continue }
                        var mine: Int32 = 0
                        for (dx, dy, dz) in offsets {
                            let X = x + dx, Y = y + dy, Z = z + dz
                            if X < 0 || X >= nx || Y < 0 || Y >= ny || Z < 0 { continue }
                            let j = (Z * ny + Y) * nx + X
                            if labels[j] != v { continue }
                            let other = parent.withUnsafeMutableBufferPointer { find(id[j], $0) }
                            if mine == 0 { mine = other } else if other != mine {
                                let (a, b) = (min(mine, other), max(mine, other))
                                parent[Int(b)] = a
                                mine = a
                            }
                        }
                        if mine == 0 {
                            mine = Int32(parent.count)
                            parent.append(mine)
                        }
                        id[row + x] = mine
                    }
                }
            }
        }
        // Compact roots to 1…n and count sizes.
        var compact = [Int32](repeating: 0, count: parent.count)
        var sizes: [Int] = [0]
        parent.withUnsafeMutableBufferPointer { p in
            for r in 1..<p.count where find(Int32(r), p) == Int32(r) {
                compact[r] = Int32(sizes.count)
                sizes.append(0)
            }
            ids.withUnsafeMutableBufferPointer { id in
                for i in id.indices where id[i] != 0 {
                    let c = compact[Int(find(id[i], p))]
                    id[i] = c
                    sizes[Int(c)] += 1
                }
            }
        }
        return (ids, sizes)
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

    /// Sets to 0 every component smaller than `minSize`. Returns how many voxels were removed.
    /// `box`: the foreground's bounding box when the caller knows it.
    @discardableResult
    public static func removeSmall(_ labels: inout [Int32], size: [Int], minSize: Int, box known: (lo: [Int], hi: [Int])? = nil) -> Int {
        if minSize <= 1 { return 0 }
        // Labels are sparse in medical volumes: work inside the bounding box of the foreground.
        guard let box = known ?? boundingBox(labels, size: size) else { return 0 }
        let bx = box.hi[0] - box.lo[0] + 1, by = box.hi[1] - box.lo[1] + 1, bz = box.hi[2] - box.lo[2] + 1
        let whole = bx == size[0] && by == size[1] && bz == size[2]
        var sub = whole ? labels : [Int32](repeating: 0, count: bx * by * bz)
        func each(_ body: (Int, Int) -> Void) {
            for z in 0..<bz { for y in 0..<by {
                let src = ((z + box.lo[2]) * size[1] + y + box.lo[1]) * size[0] + box.lo[0], dst = (z * by + y) * bx
                for x in 0..<bx { body(src + x, dst + x) }
            } }
        }
        if !whole { labels.withUnsafeBufferPointer { l in sub.withUnsafeMutableBufferPointer { s in each { s[$1] = l[$0] } } } }
        let (ids, sizes) = sub.withUnsafeBufferPointer { label($0, size: [bx, by, bz]) }
        var removed = 0
        labels.withUnsafeMutableBufferPointer { l in
            ids.withUnsafeBufferPointer { id in
                each { src, dst in
                    if id[dst] != 0 && sizes[Int(id[dst])] < minSize { l[src] = 0; removed += 1 }
                }
            }
        }
        return removed
    }

    /// Inclusive bounding box of the nonzero voxels, or nil when there are none; `within` limits
    /// the search to a box known to hold them all.
    public static func boundingBox(_ labels: [Int32], size: [Int], within: (lo: [Int], hi: [Int])? = nil) -> (lo: [Int], hi: [Int])? {
        var lo = [Int.max, Int.max, Int.max], hi = [-1, -1, -1]
        let from = within?.lo ?? [0, 0, 0], to = within?.hi ?? size.map { $0 - 1 }
        labels.withUnsafeBufferPointer { l in
            for z in from[2]...to[2] { for y in from[1]...to[1] {
                let row = (z * size[1] + y) * size[0]
                var first = -1, last = -1
                for x in from[0]...to[0] where l[row + x] != 0 { if first < 0 { first = x }; last = x }
                if first < 0 { continue }
                lo[0] = min(lo[0], first); hi[0] = max(hi[0], last)
                lo[1] = min(lo[1], y); hi[1] = max(hi[1], y)
                lo[2] = min(lo[2], z); hi[2] = max(hi[2], z)
            } }
        }
        return hi[0] < 0 ? nil : (lo, hi)
    }
}
