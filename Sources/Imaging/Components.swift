import Foundation

/// Connected components of label maps, for dropping specks (MedSAM removes 3D components under
/// 1000 voxels and 2D ones under 100 pixels) and for splitting masks into instances.
public enum Components {
    /// Labels the connected components of equal nonzero values. 3D uses 26-connectivity, 2D
    /// (depth 1) 8-connectivity. Returns per-voxel component ids (0 = background, 1…n) and each
    /// component's size.
    public static func label(_ labels: UnsafeBufferPointer<Int32>, size: [Int]) -> (ids: [Int32], sizes: [Int]) {
        let nx = size[0], ny = size[1], nz = size[2], n = labels.count
        // Neighbours already visited in raster order: half of the 26 (or 8) neighbourhood.
        var offsets: [(dx: Int, dy: Int, dz: Int)] = [(-1, 0, 0), (-1, -1, 0), (0, -1, 0), (1, -1, 0)]
        if nz > 1 { for dy in -1...1 { for dx in -1...1 { offsets.append((dx, dy, -1)) } } }
        // Those at x + 1 last.
        offsets.sort { $0.dx < $1.dx }
        let rightFirst = offsets.firstIndex { $0.dx > 0 }!
        let steps = offsets.map { $0.dx + nx * ($0.dy + ny * $0.dz) }
        var ids = [Int32](repeating: 0, count: n)
        // Provisional labels: at most one per voxel. Only the first `next` entries are ever read.
        var parent = [Int32](unsafeUninitializedCapacity: n + 1) { _, count in count = n + 1 }
        var next = 1
        ids.withUnsafeMutableBufferPointer { id in
            parent.withUnsafeMutableBufferPointer { p in
                steps.withUnsafeBufferPointer { steps in
                    offsets.withUnsafeBufferPointer { offsets in
                        for z in 0..<nz { for y in 0..<ny {
                            let row = (z * ny + y) * nx
                            var x = -1
                            while true {
                                x = nextForeground(labels, row, from: x + 1, to: nx)
                                if x == nx { break }
                                let i = row + x, v = labels[i]
                                var mine: Int32 = 0, first = 0
                                // Inside a run, the left neighbour has already joined every neighbour
                                // that this voxel shares with it: only those at x + 1 are left.
                                if x > 0 && labels[i - 1] == v {
                                    mine = find(id[i - 1], p)
                                    first = rightFirst
                                }
                                for k in first..<steps.count {
                                    let o = offsets[k]
                                    if (o.dx < 0 && x == 0) || (o.dx > 0 && x == nx - 1) || (o.dy < 0 && y == 0) || (o.dy > 0 && y == ny - 1) || (o.dz < 0 && z == 0) { continue }
                                    let j = i + steps[k]
                                    if labels[j] != v { continue }
                                    let other = find(id[j], p)
                                    if mine == 0 { mine = other } else if other != mine {
                                        let (a, b) = (min(mine, other), max(mine, other))
                                        p[Int(b)] = a
                                        mine = a
                                    }
                                }
                                if mine == 0 {
                                    mine = Int32(next)
                                    p[next] = mine
                                    next += 1
                                }
                                id[i] = mine
                            }
                        } }
                    }
                }
            }
        }
        // Compact roots to 1…n and count sizes.
        var compact = [Int32](repeating: 0, count: next)
        var sizes: [Int] = [0]
        parent.withUnsafeMutableBufferPointer { p in
            for r in 1..<next where find(Int32(r), p) == Int32(r) {
                compact[r] = Int32(sizes.count)
                sizes.append(0)
            }
            ids.withUnsafeMutableBufferPointer { id in
                sizes.withUnsafeMutableBufferPointer { sizes in
                    var i = -1
                    while true {
                        i = nextForeground(UnsafeBufferPointer(id), 0, from: i + 1, to: id.count)
                        if i == id.count { break }
                        let c = compact[Int(find(id[i], p))]
                        id[i] = c
                        sizes[Int(c)] += 1
                    }
                }
            }
        }
        return (ids, sizes)
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

    /// Sets to 0 every component smaller than `minSize`. Returns how many voxels were removed.
    /// `box`: a box known to hold all of the foreground, when the caller has one.
    @discardableResult
    public static func removeSmall(_ labels: inout [Int32], size: [Int], minSize: Int, box known: (lo: [Int], hi: [Int])? = nil) -> Int {
        if minSize <= 1 { return 0 }
        // Labels are sparse in medical volumes: work inside the bounding box of the foreground.
        guard let box = known ?? boundingBox(labels, size: size) else { return 0 }
        let bx = box.hi[0] - box.lo[0] + 1, by = box.hi[1] - box.lo[1] + 1, bz = box.hi[2] - box.lo[2] + 1
        let whole = bx == size[0] && by == size[1] && bz == size[2]
        // Box rows: offset in `labels` and in the box.
        func rows(_ body: (_ src: Int, _ dst: Int) -> Void) {
            for z in 0..<bz { for y in 0..<by {
                body(((z + box.lo[2]) * size[1] + y + box.lo[1]) * size[0] + box.lo[0], (z * by + y) * bx)
            } }
        }
        let (ids, sizes) = labels.withUnsafeBufferPointer { l in
            if whole { return label(l, size: size) }
            let sub = [Int32](unsafeUninitializedCapacity: bx * by * bz) { s, count in
                rows { src, dst in (s.baseAddress! + dst).initialize(from: l.baseAddress! + src, count: bx) }
                count = bx * by * bz
            }
            return sub.withUnsafeBufferPointer { label($0, size: [bx, by, bz]) }
        }
        if !sizes.dropFirst().contains(where: { $0 < minSize }) { return 0 }
        var removed = 0
        labels.withUnsafeMutableBufferPointer { l in
            ids.withUnsafeBufferPointer { id in
                rows { src, dst in
                    for x in 0..<bx where id[dst + x] != 0 && sizes[Int(id[dst + x])] < minSize {
                        l[src + x] = 0
                        removed += 1
                    }
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
            guard let base = l.baseAddress else { return }
            for z in from[2]..<(to[2] + 1) { for y in from[1]..<(to[1] + 1) {
                let row = base + (z * size[1] + y) * size[0]
                // Most rows of a label map are empty: a branch-free OR over the row (vectorised)
                // rules them out before any search.
                var any: Int32 = 0
                for x in from[0]..<(to[0] + 1) { any |= row[x] }
                if any == 0 { continue }
                var first = from[0], last = to[0]
                while row[first] == 0 { first += 1 }
                while row[last] == 0 { last -= 1 }
                lo[0] = min(lo[0], first); hi[0] = max(hi[0], last)
                lo[1] = min(lo[1], y); hi[1] = max(hi[1], y)
                lo[2] = min(lo[2], z); hi[2] = max(hi[2], z)
            } }
        }
        return hi[0] < 0 ? nil : (lo, hi)
    }
}
