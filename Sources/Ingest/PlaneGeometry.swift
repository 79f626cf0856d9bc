import Geometry
import Imaging

/// Where one slice of a volume lies: its columns and rows in display order (superior at the top of
/// coronal and sagittal planes), their spacing, the voxel each pixel reads, and the part of the
/// plane that the labels' bounding box covers.
struct SlicePlane {
    let view: CanonicalView, axis: SliceAxis, index: Int
    let cols: Int, rows: Int
    /// Millimetres between columns, between rows, and between this plane and the next.
    let colSpacing: Double, rowSpacing: Double, sliceSpacing: Double
    /// The plane is linear in (c, r): voxel(c, r) = base + c·colStep + r·rowStep.
    let base: Int, colStep: Int, rowStep: Int
    /// Columns and rows inside the labels' box (rows count z downwards in coronal and sagittal
    /// planes), and whether the plane crosses the box at all.
    let labelColumns: Range<Int>, labelRows: Range<Int>, crossesLabels: Bool

    /// `labelled`: the labels' bounding box along the canonical axes, nil when there are none.
    init(_ view: CanonicalView, axis: SliceAxis, index: Int, labelled: [Range<Int>]?) {
        self.view = view; self.axis = axis; self.index = index
        let (nz, sp) = (view.size[2], view.spacing)
        (cols, rows, colSpacing, rowSpacing, sliceSpacing) = switch axis {
        case .axial: (view.size[0], view.size[1], sp[0], sp[1], sp[2])
        case .coronal: (view.size[0], nz, sp[0], sp[2], sp[1])
        case .sagittal: (view.size[1], nz, sp[1], sp[2], sp[0])
        }
        let box = labelled ?? [0..<0, 0..<0, 0..<0]
        let zRows = (nz - box[2].upperBound)..<(nz - box[2].lowerBound)
        (labelColumns, labelRows) = switch axis {
        case .axial: (box[0], box[1])
        case .coronal: (box[0], zRows)
        case .sagittal: (box[1], zRows)
        }
        crossesLabels = box[axis == .axial ? 2 : axis == .coronal ? 1 : 0].contains(index)
        base = Self.voxel(view, axis, index, 0, 0)
        colStep = Self.voxel(view, axis, index, 1, 0) - base
        rowStep = Self.voxel(view, axis, index, 0, 1) - base
    }

    private static func voxel(_ view: CanonicalView, _ axis: SliceAxis, _ index: Int, _ c: Int, _ r: Int) -> Int {
        let nz = view.size[2]
        return switch axis {
        case .axial: view.index(c, r, index)
        case .coronal: view.index(c, index, nz - 1 - r)
        case .sagittal: view.index(index, c, nz - 1 - r)
        }
    }

    /// The box along each canonical axis of `view` (the whole axis without a box).
    static func extent(of box: Box3D?, in view: CanonicalView) -> [Range<Int>] {
        (0..<3).map { k in
            let count = view.size[k]
            guard let box else { return 0..<count }
            let j = view.reorientation.permutation[k]
            let (lo, hi) = view.reorientation.flipped[k] ? (count - 1 - box.hi[j], count - 1 - box.lo[j]) : (box.lo[j], box.hi[j])
            return lo..<(hi + 1)
        }
    }

    /// Voxel index in the source volume of pixel (c, r).
    func voxel(_ c: Int, _ r: Int) -> Int { Self.voxel(view, axis, index, c, r) }

    /// The plane's labels over `labelColumns` × `labelRows` from each layer that has some there,
    /// specks under `minPixels` removed. `layers` hold only `box` of a grid of `gridSize`, x fastest.
    func labelPlanes(_ layers: [[Int32]], box: Box3D?, gridSize: [Int], minPixels: Int) -> [[Int32]] {
        guard crossesLabels, let box else { return [] }
        let (bw, bh) = (labelColumns.count, labelRows.count)
        // Where voxel (c, r) of the plane is in the layers.
        let local = { (c: Int, r: Int) -> Int in
            let (i, nx, ny, lo, hi) = (voxel(c, r), gridSize[0], gridSize[1], box.lo, box.hi)
            return i % nx - lo[0] + (hi[0] - lo[0] + 1) * (i / nx % ny - lo[1] + (hi[1] - lo[1] + 1) * (i / (nx * ny) - lo[2]))
        }
        var planes: [[Int32]] = []
        for layer in layers {
            var any = false
            let start = local(labelColumns.lowerBound, labelRows.lowerBound)
            let (step, rowStep) = (bw > 1 ? local(labelColumns.lowerBound + 1, labelRows.lowerBound) - start : 0,
                                   bh > 1 ? local(labelColumns.lowerBound, labelRows.lowerBound + 1) - start : 0)
            var labels = [Int32](unsafeUninitializedCapacity: bw * bh) { l, initialized in
                layer.withUnsafeBufferPointer { m in
                    for r in 0..<bh {
                        var p = start + r * rowStep
                        for c in 0..<bw { let v = m[p]; l[r * bw + c] = v; any = any || v != 0; p += step }
                    }
                }
                initialized = bw * bh
            }
            if any {
                Components.removeSmall(&labels, size: [bw, bh, 1], minSize: minPixels)
                planes.append(labels)
            }
        }
        return planes
    }
}
