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
        if ow == width && oh == height { return Array(src) }
        let tx = taps(from: width, to: ow), ty = taps(from: height, to: oh)
        // Every element is written below.
        let tmp = [Float](unsafeUninitializedCapacity: ow * height * channels) { t, initialized in
            initialized = ow * height * channels
            tx.weights.withUnsafeBufferPointer { weights in
                let src = src.baseAddress!, weights = weights.baseAddress!, t = t.baseAddress!
                let start = tx.start, count = tx.count
                if channels == 1 {
                    // Grey planes, the common case. Where all `tx.width` taps lie inside the row, every
                    // output sums that many (weights past its own count are zero), so the loop has a
                    // fixed length; adding 0 × a finite value leaves a sum unchanged.
                    let full = (0..<ow).lazy.filter { start[$0] + tx.width <= width }
                    let (first, last) = (full.first ?? ow, full.last ?? -1)
                    for y in 0..<height {
                        let row = src + y * width, orow = t + y * ow
                        func sum(_ x: Int, _ n: Int) {
                            let p = row + start[x], w = weights + x * tx.width
                            var acc: Float = 0
                            for k in 0..<n { acc += p[k] * w[k] }
                            orow[x] = acc
                        }
                        for x in 0..<min(first, ow) { sum(x, count[x]) }
                        if first <= last {
                            switch tx.width {
                            case 3: for x in first...last { sum(x, 3) }
                            case 5: for x in first...last { sum(x, 5) }
                            default: for x in first...last { sum(x, count[x]) }
                            }
                        }
                        for x in max(last + 1, first)..<ow { sum(x, count[x]) }
                    }
                    return
                }
                for y in 0..<height {
                    let row = src + y * width * channels, orow = t + y * ow * channels
                    for x in 0..<ow {
                        let s = tx.start[x], n = tx.count[x], w = weights + x * tx.width
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
        var out = [Float](repeating: 0, count: ow * oh * channels)
        tmp.withUnsafeBufferPointer { t in
            out.withUnsafeMutableBufferPointer { o in
                let stride = ow * channels
                for y in 0..<oh {
                    let s = ty.start[y], n = ty.count[y], wb = y * ty.width
                    let orow = y * stride
                    let out = o.baseAddress! + orow
                    for k in 0..<n {
                        let w = ty.weights[wb + k], input = t.baseAddress! + (s + k) * stride
                        for i in 0..<stride { out[i] += input[i] * w }
                    }
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
