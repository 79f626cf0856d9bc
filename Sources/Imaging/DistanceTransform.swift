import Foundation

/// Exact Euclidean distance transforms on 2D or 3D grids with anisotropic spacing, by
/// Felzenszwalb and Huttenlocher's separable lower-envelope algorithm: one 1D pass per axis, linear
/// in the number of voxels. Exact like scipy's `distance_transform_edt`, which the metric fixtures
/// are checked against.
public enum DistanceTransform {
    /// For every voxel, the distance (in the units of `spacing`) to the nearest voxel where
    /// `isSeed` is true; +infinity everywhere when there is no seed. Voxels are x-fastest
    /// (`(z * ny + y) * nx + x`), size = [nx, ny, nz].
    public static func distances(size: [Int], spacing: [Double], isSeed: (Int) -> Bool) -> [Double] {
        squaredDistances(size: size, spacing: spacing, isSeed: isSeed).map { $0.squareRoot() }
    }

    public static func squaredDistances(size: [Int], spacing: [Double], isSeed: (Int) -> Bool) -> [Double] {
        let n = size.reduce(1, *)
        var f = [Double](repeating: .infinity, count: n)
        for i in 0..<n where isSeed(i) { f[i] = 0 }
        let strides = [1, size[0], size[0] * size[1]]
        let longest = size.max() ?? 1
        var line = [Double](repeating: 0, count: longest), out = line
        var v = [Int](repeating: 0, count: longest), z = [Double](repeating: 0, count: longest + 1)
        for axis in 0..<size.count where size[axis] > 1 {
            let len = size[axis], stride = strides[axis], w = spacing[axis] * spacing[axis]
            // Every line along `axis` starts at a voxel whose coordinate on `axis` is 0.
            for start in 0..<n where (start / stride) % len == 0 {
                for k in 0..<len { line[k] = f[start + k * stride] }
                envelope(line, count: len, weight: w, out: &out, v: &v, z: &z)
                for k in 0..<len { f[start + k * stride] = out[k] }
            }
        }
        return f
    }

    /// out[p] = min over q of (w·(p − q)² + f[q]).
    private static func envelope(_ f: [Double], count len: Int, weight w: Double, out: inout [Double], v: inout [Int], z: inout [Double]) {
        var k = -1
        func meet(_ q: Int, _ p: Int) -> Double {  // where the parabolas rooted at q and p cross
            ((f[q] + w * Double(q * q)) - (f[p] + w * Double(p * p))) / (2 * w * Double(q - p))
        }
        for q in 0..<len where f[q].isFinite {
            if k < 0 { k = 0; v[0] = q; z[0] = -.infinity; z[1] = .infinity; continue }
            var s = meet(q, v[k])
            while s <= z[k] { k -= 1; s = meet(q, v[k]) }  // z[0] = -inf ends the loop
            k += 1; v[k] = q; z[k] = s; z[k + 1] = .infinity
        }
        if k < 0 { for p in 0..<len { out[p] = .infinity }; return }
        var j = 0
        for p in 0..<len {
            while z[j + 1] < Double(p) { j += 1 }
            let d = Double(p - v[j])
            out[p] = w * d * d + f[v[j]]
        }
    }
}
