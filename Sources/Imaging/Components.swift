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
        func find(_ x: Int32) -> Int32 {
            var r = x
            while parent[Int(r)] != r { r = parent[Int(r)] }
            var c = x
            while parent[Int(c)] != r { let n = parent[Int(c)]; parent[Int(c)] = r; c = n }
            return r
        }
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
                            let other = find(id[j])
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
        for r in 1..<parent.count where find(Int32(r)) == Int32(r) {
            compact[r] = Int32(sizes.count)
            sizes.append(0)
        }
        ids.withUnsafeMutableBufferPointer { id in
            for i in id.indices where id[i] != 0 {
                let c = compact[Int(find(id[i]))]
                id[i] = c
                sizes[Int(c)] += 1
            }
        }
        return (ids, sizes)
    }

    /// Sets to 0 every component smaller than `minSize`. Returns how many voxels were removed.
    @discardableResult
    public static func removeSmall(_ labels: inout [Int32], size: [Int], minSize: Int) -> Int {
        if minSize <= 1 { return 0 }
        let (ids, sizes) = labels.withUnsafeBufferPointer { label($0, size: size) }
        var removed = 0
        for i in labels.indices where ids[i] != 0 && sizes[Int(ids[i])] < minSize {
            labels[i] = 0
            removed += 1
        }
        return removed
    }
}
