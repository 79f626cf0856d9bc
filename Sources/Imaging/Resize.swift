import Foundation

/// Separable resampling of 2D planes.
///
/// Images use a triangle (bilinear) filter whose support widens when shrinking, so downsampling
/// averages instead of aliasing; this is the filter Pillow calls BILINEAR, which keeps medcat's
/// output comparable with Python pipelines. Label masks use nearest neighbour.
public enum Resize {
    struct Taps { var start: [Int]; var count: [Int]; var weights: [Float]; var width: Int }

    static func taps(from inSize: Int, to outSize: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1), support = filterScale
        let width = Int(support.rounded(.up)) * 2 + 1
        var start = [Int](repeating: 0, count: outSize), count = start
        var weights = [Float](repeating: 0, count: outSize * width)
        for o in 0..<outSize {
            let center = (Double(o) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0), hi = min(Int(center + support + 0.5), inSize)
            func tap(_ k: Int) -> Double { max(0, 1 - abs((Double(k) - center + 0.5) / filterScale)) }
            var total = 0.0
            for k in lo..<hi { total += tap(k) }
            start[o] = lo; count[o] = hi - lo
            for k in lo..<hi { weights[o * width + k - lo] = Float(total > 0 ? tap(k) / total : 0) }
        }
        return Taps(start: start, count: count, weights: weights, width: width)
    }

    /// Resamples an interleaved plane of `channels` components (finite values).
    public static func bilinear(_ src: UnsafeBufferPointer<Float>, width: Int, height: Int, channels: Int,
                                toWidth ow: Int, toHeight oh: Int) -> [Float] {
        if channels == 1 {
            return bilinear(width: width, height: height, toWidth: ow, toHeight: oh) { r, dst, stride in
                for x in 0..<width { dst[x * stride] = src[r * width + x] }
            }
        }
        if ow == width && oh == height { return Array(src) }
        let tx = taps(from: width, to: ow)
        // Every element is written below.
        let tmp = [Float](unsafeUninitializedCapacity: ow * height * channels) { t, initialized in
            initialized = ow * height * channels
            tx.weights.withUnsafeBufferPointer { weights in
                for y in 0..<height {
                    let row = src.baseAddress! + y * width * channels, orow = t.baseAddress! + y * ow * channels
                    for x in 0..<ow {
                        let s = tx.start[x], n = tx.count[x], w = weights.baseAddress! + x * tx.width
                        for c in 0..<channels {
                            var acc: Float = 0
                            var p = row + s * channels + c
                            for k in 0..<n { acc += p.pointee * w[k]; p += channels }
                            orow[x * channels + c] = acc
                        }
                    }
                }
            }
        }
        return tmp.withUnsafeBufferPointer { vertical($0, rowLength: ow * channels, height: height, toHeight: oh) }
    }

    /// Resamples a grey plane whose rows `row` hands over: `row(r, dst, stride)` writes row r's
    /// `width` values (finite) to `dst`, `stride` apart.
    ///
    /// Rows are filtered eight at a time, interleaved so that one vector holds a column of the eight
    /// and each tap is a vector multiply-add; each value is still the sum of its own taps in order,
    /// as the per-row loop would give it.
    public static func bilinear(width: Int, height: Int, toWidth ow: Int, toHeight oh: Int,
                                rows row: (_ r: Int, _ dst: UnsafeMutablePointer<Float>, _ stride: Int) -> Void) -> [Float] {
        if ow == width && oh == height {
            return [Float](unsafeUninitializedCapacity: width * height) { out, initialized in
                for r in 0..<height { row(r, out.baseAddress! + r * width, 1) }
                initialized = width * height
            }
        }
        let tx = taps(from: width, to: ow)
        let block = UnsafeMutablePointer<SIMD8<Float>>.allocate(capacity: width)
        defer { block.deallocate() }
        let lanes = UnsafeMutableRawPointer(block).assumingMemoryBound(to: Float.self)
        let tmp = [Float](unsafeUninitializedCapacity: ow * height) { t, initialized in
            tx.weights.withUnsafeBufferPointer { weights in tx.start.withUnsafeBufferPointer { start in tx.count.withUnsafeBufferPointer { count in
                let t = t.baseAddress!, weights = weights.baseAddress!
                for r0 in stride(from: 0, to: height, by: 8) {
                    let rows = min(8, height - r0)
                    // Lanes past the plane's last row hold zeros, which are summed and not kept.
                    if rows < 8 { block.initialize(repeating: .zero, count: width) }
                    for i in 0..<rows { row(r0 + i, lanes + i, 8) }
                    let (o1, o2, o3, o4, o5, o6, o7) = (ow, 2 * ow, 3 * ow, 4 * ow, 5 * ow, 6 * ow, 7 * ow)
                    for x in 0..<ow {
                        let (src, w) = (block + start[x], weights + x * tx.width)
                        var acc = SIMD8<Float>(repeating: 0)
                        for k in 0..<count[x] { acc += src[k] * SIMD8(repeating: w[k]) }
                        // Lanes back to rows, unrolled: a loop over lanes sends the vector through memory.
                        let d = t + r0 * ow + x
                        if rows == 8 {
                            (d[0], d[o1], d[o2], d[o3]) = (acc[0], acc[1], acc[2], acc[3])
                            (d[o4], d[o5], d[o6], d[o7]) = (acc[4], acc[5], acc[6], acc[7])
                        } else {
                            for i in 0..<rows { d[i * ow] = acc[i] }
                        }
                    }
                }
            } } }
            initialized = ow * height
        }
        return tmp.withUnsafeBufferPointer { vertical($0, rowLength: ow, height: height, toHeight: oh) }
    }

    /// The vertical pass: each output row the weighted sum of its taps' rows, taps in order.
    static func vertical(_ t: UnsafeBufferPointer<Float>, rowLength n: Int, height: Int, toHeight oh: Int) -> [Float] {
        let ty = taps(from: height, to: oh)
        var out = [Float](repeating: 0, count: n * oh)
        out.withUnsafeMutableBufferPointer { o in
            for y in 0..<oh {
                let out = o.baseAddress! + y * n
                for k in 0..<ty.count[y] {
                    let w = ty.weights[y * ty.width + k], input = t.baseAddress! + (ty.start[y] + k) * n
                    for i in 0..<n { out[i] += input[i] * w }
                }
            }
        }
        return out
    }

    /// Nearest-neighbour resampling of a single-channel plane (labels).
    @inlinable
    public static func nearest<T>(_ src: UnsafeBufferPointer<T>, width: Int, height: Int, toWidth ow: Int, toHeight oh: Int, zero: T) -> [T] {
        let sx = Double(width) / Double(ow), sy = Double(height) / Double(oh)
        let xs = (0..<ow).map { min(Int((Double($0) + 0.5) * sx), width - 1) }
        var out = [T](repeating: zero, count: ow * oh)
        out.withUnsafeMutableBufferPointer { o in
            for y in 0..<oh {
                let row = min(Int((Double(y) + 0.5) * sy), height - 1) * width
                for x in 0..<ow { o[y * ow + x] = src[row + xs[x]] }
            }
        }
        return out
    }
}
