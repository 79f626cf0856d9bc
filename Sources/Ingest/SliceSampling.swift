import Catalog
import Foundation
import Geometry
import Hashing
import Imaging

/// One slice of a labelled volume: its plane (PlaneGeometry.swift), its masks sampled on the output
/// grid (MaskSampling.swift), and its pixels resized and padded.
extension SampleBuilder {
    /// Fills a row of a plane, mapped to 0…255, into `dst`: `cols` pixels, from the voxel with index
    /// `base` in the volume on, `colStep` voxels apart; pixel c's components go to
    /// `dst[c * stride * components + q]`.
    typealias PlanePixels = (_ base: Int, _ colStep: Int, _ cols: Int, _ dst: UnsafeMutablePointer<Float>, _ stride: Int) -> Void

    /// `store`: layers over `box` as `LabelledVolume` holds them. `labelled`: the labels' bounding box
    /// along the canonical axes (nil: there are none); label planes are read only there.
    func slice(_ grid: Grid, _ view: CanonicalView, _ store: (layers: [[Int32]], box: Box3D?), _ classNames: [String], axis: SliceAxis, index: Int,
               labelled: [Range<Int>]?, channels: Int, pixels fill: PlanePixels) -> PreparedImage? {
        let plane = SlicePlane(view, axis: axis, index: index, labelled: labelled)
        let planes = plane.labelPlanes(store.layers, box: store.box, gridSize: grid.size, minPixels: options.minMaskPixels)
        if planes.isEmpty && !options.keepEmpty { return nil }

        // Physical aspect preserved: longest physical side → size.
        // Spacing is finite and positive for every reader; a zero would divide by zero here.
        let (cols, rows) = (plane.cols, plane.rows)
        let width = Double(cols) * max(plane.colSpacing, 1e-6), height = Double(rows) * max(plane.rowSpacing, 1e-6)
        let scale = Double(options.size) / max(width, height)
        let cw = max(1, min(options.size, Int((width * scale).rounded()))), ch = max(1, min(options.size, Int((height * scale).rounded())))
        let xs = (0..<cw).map { min(Int((Double($0) + 0.5) * Double(cols) / Double(cw)), cols - 1) }
        let ys = (0..<ch).map { min(Int((Double($0) + 0.5) * Double(rows) / Double(ch)), rows - 1) }
        let masks = MaskSampling(size: options.size, instances: options.instances).masks(planes, plane: plane, xs: xs, ys: ys, classNames: classNames)
        if masks.isEmpty && !options.keepEmpty { return nil }

        let (base, colStep, rowStep) = (plane.base, plane.colStep, plane.rowStep)
        let resized: [Float]
        if channels == 1 {
            resized = Resize.bilinear(width: cols, height: rows, toWidth: cw, toHeight: ch) { r, dst, stride in fill(base + r * rowStep, colStep, cols, dst, stride) }
        } else {
            let pixels = [Float](unsafeUninitializedCapacity: cols * rows * channels) { p, initialized in
                for r in 0..<rows { fill(base + r * rowStep, colStep, cols, p.baseAddress! + r * cols * channels, 1) }
                initialized = cols * rows * channels
            }
            resized = pixels.withUnsafeBufferPointer { Resize.bilinear($0, width: cols, height: rows, channels: channels, toWidth: cw, toHeight: ch) }
        }
        var pixels = [UInt8](repeating: 0, count: options.size * options.size * channels)
        resized.withUnsafeBufferPointer { r in
            pixels.withUnsafeMutableBufferPointer { p in
                let n = cw * channels
                for y in 0..<ch {
                    let src = r.baseAddress! + y * n, dst = p.baseAddress! + y * options.size * channels
                    for x in 0..<n { dst[x] = Intensity.byte(src[x]) }
                }
            }
        }
        let transform = SliceTransform(axis: axis.rawValue, content: [cw, ch], flipped: view.reorientation.flipped, index: index,
                                       permutation: view.reorientation.permutation, plane: [cols, rows], rowsFlipped: axis != .axial,
                                       size: options.size, sourceSpacing: grid.spacing)
        let hash = pixels.withUnsafeBytes { ContentHash.hex($0) } + "-\(options.size)x\(channels)"
        return PreparedImage(
            axis: axis, slice: index, pixels: pixels, channels: channels, size: options.size,
            contentWidth: cw, contentHeight: ch, origWidth: cols, origHeight: rows,
            spacing: [plane.colSpacing, plane.rowSpacing, plane.sliceSpacing], transform: transform, hash: hash, masks: masks)
    }
}
