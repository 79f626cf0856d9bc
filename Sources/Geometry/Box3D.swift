/// An axis-aligned box in a volume: inclusive voxel indices along the grid's axes 0, 1, 2 (x, y, z).
public struct Box3D: Hashable, Sendable {
    public var lo: SIMD3<Int>, hi: SIMD3<Int>

    public init(lo: SIMD3<Int>, hi: SIMD3<Int>) { self.lo = lo; self.hi = hi }

    /// The smallest box holding both.
    public func union(_ other: Box3D) -> Box3D { Box3D(lo: pointwiseMin(lo, other.lo), hi: pointwiseMax(hi, other.hi)) }
}
