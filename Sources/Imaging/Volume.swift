import Foundation

/// An image on a physical grid: a 3D volume, or a 2D picture with `size[2] == 1`.
///
/// Voxels are stored as `Float` whatever the file's datatype, with x varying fastest, then y, then z,
/// and colour components interleaved. Float holds every integer label exactly up to 2^24, which covers
/// CT HU, 16-bit MR and all label maps seen in public datasets, and keeps every later step
/// (windowing, resampling) on one code path.
public struct Volume: Sendable {
    /// Voxels along x, y, z.
    public var size: [Int]
    /// 1 for grey, 3 for RGB.
    public var components: Int
    /// Millimetres between voxel centres along x, y, z.
    public var spacing: [Double]
    /// Physical position (LPS, mm) of the first voxel's centre.
    public var origin: [Double]
    /// 3×3, row-major; column j is the unit direction of array axis j in LPS space.
    public var direction: [Double]
    public var voxels: [Float]
    /// True when the file stored integers (labels must come from such files).
    public var isIntegral: Bool

    public init(
        size: [Int], components: Int = 1, spacing: [Double] = [1, 1, 1], origin: [Double] = [0, 0, 0],
        direction: [Double] = Volume.identity, voxels: [Float], isIntegral: Bool = true
    ) {
        precondition(size.count == 3 && spacing.count == 3 && origin.count == 3 && direction.count == 9)
        precondition(voxels.count == size[0] * size[1] * size[2] * components, "voxel count does not match size")
        self.size = size
        self.components = components
        self.spacing = spacing
        self.origin = origin
        self.direction = direction
        self.voxels = voxels
        self.isIntegral = isIntegral
    }

    public static let identity: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1]

    public var nx: Int { size[0] }
    public var ny: Int { size[1] }
    public var nz: Int { size[2] }
    public var voxelCount: Int { size[0] * size[1] * size[2] }
    public var is2D: Bool { size[2] == 1 }

    /// Where the voxels sit, without them.
    public var grid: Grid { Grid(size: size, spacing: spacing, origin: origin, direction: direction) }

    /// True when both volumes sample the same physical grid (within 1e-3 mm / 1e-4 direction cosine).
    public func sameGrid(as other: Volume) -> Bool { grid.sameGrid(as: other.grid) }
}

/// A volume's geometry without its voxels: what a file header says.
public struct Grid: Sendable {
    /// Voxels along x, y, z.
    public var size: [Int]
    /// Millimetres between voxel centres along x, y, z.
    public var spacing: [Double]
    /// Physical position (LPS, mm) of the first voxel's centre.
    public var origin: [Double]
    /// 3×3, row-major; column j is the unit direction of array axis j in LPS space.
    public var direction: [Double]

    public var is2D: Bool { size[2] == 1 }

    /// True when both grids are the same (within 1e-3 mm / 1e-4 direction cosine).
    public func sameGrid(as other: Grid) -> Bool {
        guard size == other.size else { return false }
        for i in 0..<3 where abs(spacing[i] - other.spacing[i]) > 1e-3 * max(1, abs(spacing[i])) { return false }
        for i in 0..<3 where abs(origin[i] - other.origin[i]) > 1e-2 * max(1, spacing[i]) { return false }
        for i in 0..<9 where abs(direction[i] - other.direction[i]) > 1e-3 { return false }
        return true
    }
}

/// How a volume was permuted and flipped into the canonical LPS+ orientation: canonical axis k is
/// source axis `permutation[k]`, reversed when `flipped[k]`.
public struct Reorientation: Codable, Equatable, Sendable {
    public var permutation: [Int]
    public var flipped: [Bool]
    public static let none = Reorientation(permutation: [0, 1, 2], flipped: [false, false, false])
    public var isIdentity: Bool { self == .none }
}

extension Grid {
    /// The orientation closest to LPS+ (array x → patient left, y → posterior, z → superior), reached
    /// by permuting and flipping axes only, so voxel values are never interpolated. Axial slices of
    /// the result show the patient in radiological convention: anterior at the top, patient's right
    /// on the image's left, whatever the file's storage order.
    public func reorientation() -> Reorientation {
        // A 2D picture is shown as stored: its rows and columns are the display's, whatever a
        // header's affine says (reorienting could make the single slice a column of 1-pixel strips).
        if is2D { return .none }
        // Greedy assignment: the most aligned (array axis, world axis) pairs first.
        var pairs: [(Double, Int, Int)] = []
        for j in 0..<3 { for k in 0..<3 { pairs.append((abs(direction[k * 3 + j]), j, k)) } }
        pairs.sort { $0.0 > $1.0 }
        var axisOfWorld = [-1, -1, -1], usedAxis = [false, false, false]
        for (_, j, k) in pairs where axisOfWorld[k] < 0 && !usedAxis[j] {
            axisOfWorld[k] = j
            usedAxis[j] = true
        }
        let flips = (0..<3).map { k in direction[k * 3 + axisOfWorld[k]] < 0 }
        return Reorientation(permutation: axisOfWorld, flipped: flips)
    }
}

extension Volume {
    public func reorientation() -> Reorientation { grid.reorientation() }

    /// This volume in the canonical LPS+ orientation, and how it got there.
    public func canonical() -> (Volume, Reorientation) {
        let r = reorientation()
        if r.isIdentity { return (self, r) }
        return (reoriented(r), r)
    }

    public func reoriented(_ r: Reorientation) -> Volume {
        let src = size, c = components
        let dst = r.permutation.map { src[$0] }
        var strides = [c, src[0] * c, src[0] * src[1] * c]  // source strides of each source axis
        // Per canonical axis: source stride and start offset.
        var step = [Int](repeating: 0, count: 3), start = 0
        for k in 0..<3 {
            let j = r.permutation[k]
            if r.flipped[k] {
                step[k] = -strides[j]
                start += (src[j] - 1) * strides[j]
            } else {
                step[k] = strides[j]
            }
        }
        strides = []
        var out = [Float](repeating: 0, count: voxels.count)
        voxels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                var o = 0
                for z in 0..<dst[2] {
                    let bz = start + z * step[2]
                    for y in 0..<dst[1] {
                        var p = bz + y * step[1]
                        if c == 1 {
                            for _ in 0..<dst[0] { d[o] = s[p]; o += 1; p += step[0] }
                        } else {
                            for _ in 0..<dst[0] {
                                for q in 0..<c { d[o + q] = s[p + q] }
                                o += c
                                p += step[0]
                            }
                        }
                    }
                }
            }
        }
        // New geometry: columns permuted and negated; origin moves to the new first voxel.
        var dir = [Double](repeating: 0, count: 9), org = origin
        for k in 0..<3 {
            let j = r.permutation[k], sign: Double = r.flipped[k] ? -1 : 1
            for w in 0..<3 { dir[w * 3 + k] = sign * direction[w * 3 + j] }
            if r.flipped[k] {
                for w in 0..<3 { org[w] += direction[w * 3 + j] * spacing[j] * Double(src[j] - 1) }
            }
        }
        return Volume(
            size: dst, components: c, spacing: r.permutation.map { spacing[$0] }, origin: org,
            direction: dir, voxels: out, isIntegral: isIntegral)
    }
}

/// Index arithmetic that reads a volume as if it had been reoriented to LPS+, without copying it.
public struct CanonicalView: Sendable {
    /// Size and spacing along the canonical axes.
    public let size: [Int], spacing: [Double]
    public let reorientation: Reorientation
    let start: Int, step: (Int, Int, Int)

    public init(_ v: Volume) { self.init(v.grid) }

    public init(_ v: Grid) {
        let r = v.reorientation()
        let strides = [1, v.size[0], v.size[0] * v.size[1]]
        var step = [0, 0, 0], start = 0
        for k in 0..<3 {
            let j = r.permutation[k]
            step[k] = r.flipped[k] ? -strides[j] : strides[j]
            if r.flipped[k] { start += (v.size[j] - 1) * strides[j] }
        }
        self.size = r.permutation.map { v.size[$0] }
        self.spacing = r.permutation.map { v.spacing[$0] }
        self.reorientation = r
        self.start = start
        self.step = (step[0], step[1], step[2])
    }

    /// Voxel index (not multiplied by components) in the source volume of canonical voxel (i, j, k).
    @inline(__always) public func index(_ i: Int, _ j: Int, _ k: Int) -> Int {
        start + i * step.0 + j * step.1 + k * step.2
    }
}
