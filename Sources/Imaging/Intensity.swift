import Foundation

/// How raw intensities become 8-bit pixels.
public enum IntensityPolicy: Equatable, Sendable, CustomStringConvertible {
    /// CT: clip to [level − width/2, level + width/2] HU and scale to 0…255.
    case window(width: Double, level: Double)
    /// MR, US, OCT, X-ray…: clip to the given percentiles of the foreground (voxels above the
    /// volume's minimum) and scale to 0…255; background stays 0. MedSAM's pre_CT_MR.py does this.
    case percentile(lower: Double, upper: Double)
    /// Scale the volume's min…max to 0…255.
    case minMax
    /// Values already 0…255 (8-bit photographs): clamp only.
    case none

    public static let ctSoftTissue = IntensityPolicy.window(width: 400, level: 40)

    /// Why a policy's numbers cannot work, or nil when they can.
    public var problem: String? {
        switch self {
        case let .window(w, l) where !(w.isFinite && l.isFinite && w > 0): "window width must be positive and both numbers finite"
        case let .percentile(lo, hi) where !(lo.isFinite && hi.isFinite && lo >= 0 && lo < hi && hi <= 100): "percentiles must satisfy 0 ≤ low < high ≤ 100"
        default: nil
        }
    }
    public static let defaultPercentile = IntensityPolicy.percentile(lower: 0.5, upper: 99.5)

    public var description: String {
        switch self {
        case let .window(w, l): "window W\(fmt(w))/L\(fmt(l))"
        case let .percentile(lo, hi): "percentile \(fmt(lo))–\(fmt(hi))"
        case .minMax: "min-max"
        case .none: "none"
        }
    }
    private func fmt(_ x: Double) -> String { x.rounded() == x ? String(Int(x)) : String(x) }
}

public enum Intensity {
    /// The affine map from raw intensities to 0…255 chosen by `policy` for this volume.
    public struct Mapping: Sendable {
        public var low: Float, high: Float
        /// Voxels at or below this value are background and map to 0 (percentile policy).
        public var background: Float?

        public init(low: Float, high: Float, background: Float?) { self.low = low; self.high = high; self.background = background }

        @inlinable public func apply(_ x: Float) -> Float {
            let scale: Float = high > low ? 255 / (high - low) : 0
            // Non-negative, so floor(y + 0.5) rounds half up. Written without branches or integer
            // conversions, so that loops over pixels vectorise.
            let v = Intensity.floorSmall((min(max(x, low), high) - low) * scale + 0.5)
            // NaN and infinities (float images outside their field of view) become background.
            return x.isFinite && x > (background ?? -.infinity) ? v : 0
        }

        /// `apply` over `count` values `stride` apart, written `outStride` apart to `out`: every pixel
        /// of every slice goes through here.
        public func apply(_ src: UnsafePointer<Float>, stride: Int, count: Int, into out: UnsafeMutablePointer<Float>, outStride: Int = 1) {
            if stride == 1 && outStride == 1 {
                for i in 0..<count { out[i] = apply(src[i]) }
            } else {
                for i in 0..<count { out[i * outStride] = apply(src[i * stride]) }
            }
        }
    }

    /// floor(y) for 0 ≤ y < 2^23 in float arithmetic alone: adding and removing 2^23 rounds to the
    /// nearest integer, and a result above y steps down by one. A conversion to an integer type
    /// checks its range and branches, which keeps a loop from vectorising.
    @usableFromInline @inline(__always) static func floorSmall(_ y: Float) -> Float {
        let r = (y + 8_388_608) - 8_388_608
        return r > y ? r - 1 : r
    }

    /// `x` clamped to 0…255 and rounded half up (as `rounded()` does), in a form that vectorises.
    @inlinable public static func byte(_ x: Float) -> UInt8 {
        let c = min(max(x, 0), 255)
        let r = (c + 8_388_608) - 8_388_608  // nearest integer, ties to even
        // Ties go up; the low bits of the float 2^23 + n are the integer n.
        return UInt8(truncatingIfNeeded: ((c - r == 0.5 ? r + 1 : r) + 8_388_608).bitPattern)
    }

    /// The mapping of a policy that needs no statistics of the volume (window, none), else nil.
    public static func mapping(for policy: IntensityPolicy) -> Mapping? {
        switch policy {
        case let .window(w, l): Mapping(low: Float(l - w / 2), high: Float(l + w / 2), background: nil)
        case .none: Mapping(low: 0, high: 255, background: nil)
        case .percentile, .minMax: nil
        }
    }

    public static func mapping(for v: Volume, policy: IntensityPolicy) -> Mapping {
        switch policy {
        case .window, .none:
            return mapping(for: policy)!
        case let .percentile(pl, ph):
            var minimum = Float.infinity
            for x in v.voxels where x.isFinite { minimum = min(minimum, x) }
            if !minimum.isFinite { minimum = 0 }
            let b = percentiles(v.voxels, of: [pl, ph], above: minimum, integral: v.isIntegral)
            return Mapping(low: Float(b[0]), high: Float(b[1]), background: minimum)
        case .minMax:
            var lo = Float.infinity, hi = -Float.infinity
            for x in v.voxels where x.isFinite { lo = min(lo, x); hi = max(hi, x) }
            return lo <= hi ? Mapping(low: lo, high: hi, background: nil) : Mapping(low: 0, high: 0, background: nil)
        }
    }

    /// Maps every voxel to 0…255 (still `Float`, rounded) according to `policy`.
    @discardableResult
    public static func normalise(_ v: inout Volume, policy: IntensityPolicy) -> Mapping {
        let m = mapping(for: v, policy: policy)
        v.voxels.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = m.apply(p[i]) } }
        return m
    }

    /// numpy-style (linear interpolation) percentiles of the values strictly above `above`.
    /// Integer data with a modest range goes through a histogram (exact, O(n)); other data is sorted.
    public static func percentiles(_ values: [Float], of ps: [Double], above: Float = -.infinity, integral: Bool) -> [Double] {
        var lo = Float.infinity, hi = -Float.infinity, n = 0
        for x in values where x > above && x.isFinite { lo = min(lo, x); hi = max(hi, x); n += 1 }
        if n == 0 { return ps.map { _ in Double(above.isFinite ? above : 0) } }
        func ranks(_ p: Double) -> (Int, Int, Double) {
            let r = min(max(p, 0), 100) / 100 * Double(n - 1)
            let f = Int(r.rounded(.down))
            return (f, min(f + 1, n - 1), r - Double(f))
        }
        if integral && hi - lo < 4_000_000 {
            let base = Int(lo)
            var hist = [Int](repeating: 0, count: Int(hi) - base + 1)
            hist.withUnsafeMutableBufferPointer { h in for x in values where x > above && x.isFinite { h[Int(x) - base] += 1 } }
            func orderStat(_ k: Int) -> Double {
                var acc = 0
                for (i, c) in hist.enumerated() { acc += c; if acc > k { return Double(base + i) } }
                return Double(hi)
            }
            return ps.map { p in let (a, b, t) = ranks(p); let va = orderStat(a); return va + (orderStat(b) - va) * t }
        }
        var sorted = values.filter { $0 > above && $0.isFinite }
        sorted.sort()
        return ps.map { p in let (a, b, t) = ranks(p); return Double(sorted[a]) + Double(sorted[b] - sorted[a]) * t }
    }
}
