import Foundation
import Imaging

/// One slice of a labelled volume: its plane geometry (display order, spacing, the labels' box on
/// it), its masks sampled on the output grid, and its pixels resized and padded.
extension SampleBuilder {
    /// Fills a row of a plane, mapped to 0…255, into `dst`: `cols` pixels, from the voxel with index
    /// `base` in the volume on, `colStep` voxels apart; pixel c's components go to
    /// `dst[c * stride * components + q]`.
    typealias PlanePixels = (_ base: Int, _ colStep: Int, _ cols: Int, _ dst: UnsafeMutablePointer<Float>, _ stride: Int) -> Void

    /// `store`: layers over `box` as `LabelledVolume` holds them. `labelled`: the labels' bounding box
    /// along the canonical axes (nil: there are none); label planes are read only there.
    func slice(_ grid: Grid, _ view: CanonicalView, _ store: (layers: [[Int32]], box: Box?), _ classNames: [String], axis: SliceAxis, index: Int,
                       labelled: [Range<Int>]?, channels: Int, pixels fill: PlanePixels) -> PreparedImage? {
        let (nz, sp) = (view.size[2], view.spacing)
        // Plane geometry: columns and rows in display order (superior at the top for x/y planes).
        let (cols, rows, colSpacing, rowSpacing): (Int, Int, Double, Double) = switch axis {
        case .axial: (view.size[0], view.size[1], sp[0], sp[1])
        case .coronal: (view.size[0], nz, sp[0], sp[2])
        case .sagittal: (view.size[1], nz, sp[1], sp[2])
        }
        func voxel(_ c: Int, _ r: Int) -> Int {
            switch axis {
            case .axial: view.index(c, r, index)
            case .coronal: view.index(c, index, nz - 1 - r)
            case .sagittal: view.index(index, c, nz - 1 - r)
            }
        }
        // The plane is linear in (c, r): walk it with two strides.
        let base = voxel(0, 0), colStep = voxel(1, 0) - base, rowStep = voxel(0, 1) - base
        // Columns and rows of the plane inside the labels' box; rows count z downwards in x/y planes.
        let box = labelled ?? [0..<0, 0..<0, 0..<0]
        let z = box[2], zRows = (nz - z.upperBound)..<(nz - z.lowerBound)
        let (cRange, rRange) = switch axis {
        case .axial: (box[0], box[1])
        case .coronal: (box[0], zRows)
        case .sagittal: (box[1], zRows)
        }
        // Label planes hold just that box (bw×bh): outside it there are no labels.
        let (bw, bh) = (cRange.count, rRange.count)
        let crossed = box[axis == .axial ? 2 : axis == .coronal ? 1 : 0].contains(index)
        // Where voxel (c, r) of the plane is in the layers, which hold only their box.
        let local = { (c: Int, r: Int) -> Int in
            let (i, nx, ny, lo, hi) = (voxel(c, r), grid.size[0], grid.size[1], store.box!.lo, store.box!.hi)
            return i % nx - lo[0] + (hi[0] - lo[0] + 1) * (i / nx % ny - lo[1] + (hi[1] - lo[1] + 1) * (i / (nx * ny) - lo[2]))
        }
        var planes: [[Int32]] = []
        for layer in crossed ? store.layers : [] {
            var any = false
            let start = local(cRange.lowerBound, rRange.lowerBound)
            let (step, rowStep) = (bw > 1 ? local(cRange.lowerBound + 1, rRange.lowerBound) - start : 0,
                                   bh > 1 ? local(cRange.lowerBound, rRange.lowerBound + 1) - start : 0)
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
                Components.removeSmall(&labels, size: [bw, bh, 1], minSize: options.minMaskPixels)
                planes.append(labels)
            }
        }
        if planes.isEmpty && !options.keepEmpty { return nil }

        // Physical aspect preserved: longest physical side → size.
        // Spacing is finite and positive for every reader; a zero would divide by zero here.
        let width = Double(cols) * max(colSpacing, 1e-6), height = Double(rows) * max(rowSpacing, 1e-6)
        let scale = Double(options.size) / max(width, height)
        let cw = max(1, min(options.size, Int((width * scale).rounded()))), ch = max(1, min(options.size, Int((height * scale).rounded())))
        let xs = (0..<cw).map { min(Int((Double($0) + 0.5) * Double(cols) / Double(cw)), cols - 1) }
        let ys = (0..<ch).map { min(Int((Double($0) + 0.5) * Double(rows) / Double(ch)), rows - 1) }

        // Masks straight from each label plane by nearest-neighbour lookup, one pass over the output
        // grid for all classes (or, with --instances, all connected components) at once, over the
        // output rows and columns that sample the labels' box.
        func sampling(_ source: [Int], _ r: Range<Int>) -> Range<Int> {
            let lo = source.firstIndex { $0 >= r.lowerBound } ?? source.count, hi = source.lastIndex { $0 < r.upperBound }.map { $0 + 1 } ?? 0
            return lo..<max(lo, hi)
        }
        let xOut = sampling(xs, cRange), yOut = sampling(ys, rRange)
        var masks: [(cls: Int32, instance: Int, mask: PreparedMask)] = []
        var instancesOfClass: [Int32: Int] = [:]
        for labels in planes {
            var keys = labels
            var keyClass: [Int32: (cls: Int32, instance: Int)] = [:]
            if options.instances {
                let (ids, _) = labels.withUnsafeBufferPointer { Components.label($0, size: [bw, bh, 1]) }
                for i in ids.indices where ids[i] != 0 && keyClass[ids[i]] == nil {
                    instancesOfClass[labels[i], default: 0] += 1
                    keyClass[ids[i]] = (labels[i], instancesOfClass[labels[i]]!)
                }
                keys = ids
            }
            // Each key's first sample gives it a slot; keys are class indices or component ids, both small.
            var slot = [Int](repeating: -1, count: Int(keys.max() ?? 0) + 1)
            var found: [(key: Int32, area: Int, box: (x0: Int, y0: Int, x1: Int, y1: Int))] = []
            let (sw, sh) = (xOut.count, yOut.count)
            var sampled = [Int32](repeating: 0, count: sw * sh)
            keys.withUnsafeBufferPointer { kp in
                for (sy, y) in yOut.enumerated() {
                    let row = (ys[y] - rRange.lowerBound) * bw - cRange.lowerBound
                    for (sx, x) in xOut.enumerated() {
                        let k = kp[row + xs[x]]
                        if k == 0 { continue }
                        sampled[sy * sw + sx] = k
                        var j = slot[Int(k)]
                        if j < 0 {
                            j = found.count
                            slot[Int(k)] = j
                            found.append((k, 0, (x, y, x, y)))
                        }
                        found[j].area += 1
                        found[j].box = (min(found[j].box.x0, x), min(found[j].box.y0, y), max(found[j].box.x1, x), max(found[j].box.y1, y))
                    }
                }
            }
            for f in found {
                let (cls, instance) = options.instances ? keyClass[f.key]! : (f.key, 0)
                var pixels = [UInt8](repeating: 0, count: options.size * options.size)
                for sy in 0..<sh {
                    for sx in 0..<sw { pixels[(yOut.lowerBound + sy) * options.size + xOut.lowerBound + sx] = sampled[sy * sw + sx] == f.key ? 1 : 0 }
                }
                masks.append((cls, instance, PreparedMask(className: classNames[Int(cls) - 1], instance: instance, area: f.area, box: f.box, pixels: pixels)))
            }
        }
        masks.sort { ($0.cls, $0.instance) < ($1.cls, $1.instance) }
        if masks.isEmpty && !options.keepEmpty { return nil }

        let resized: [Float]
        if channels == 1 {
            resized = Resize.bilinear(width: cols, height: rows, toWidth: cw, toHeight: ch) { r, dst, stride in fill(base + r * rowStep, colStep, cols, dst, stride) }
        } else {
            let plane = [Float](unsafeUninitializedCapacity: cols * rows * channels) { p, initialized in
                for r in 0..<rows { fill(base + r * rowStep, colStep, cols, p.baseAddress! + r * cols * channels, 1) }
                initialized = cols * rows * channels
            }
            resized = plane.withUnsafeBufferPointer { Resize.bilinear($0, width: cols, height: rows, channels: channels, toWidth: cw, toHeight: ch) }
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
        // JSON with sorted keys, written out: JSONSerialization's dynamic casts took 4 % of an ingest.
        // Numbers print as JSONSerialization prints them (shortest round trip, integers bare).
        func list(_ values: [some CustomStringConvertible]) -> String { "[" + values.map(\.description).joined(separator: ",") + "]" }
        let spacing = grid.spacing.map { $0.rounded() == $0 && abs($0) < 1e15 ? String(Int64($0)) : "\($0)" }
        let transform = "{\"axis\":\"\(axis.rawValue)\",\"content\":[\(cw),\(ch)],\"flipped\":\(list(view.reorientation.flipped)),"
            + "\"index\":\(index),\"permutation\":\(list(view.reorientation.permutation)),\"plane\":[\(cols),\(rows)],"
            + "\"rows_flipped\":\(axis != .axial),\"size\":\(options.size),\"source_spacing\":\(list(spacing))}"
        let hash = pixels.withUnsafeBytes { Checksum.xxh128($0) } + "-\(options.size)x\(channels)"
        return PreparedImage(
            axis: axis, slice: index, pixels: pixels, channels: channels, size: options.size,
            contentWidth: cw, contentHeight: ch, origWidth: cols, origHeight: rows,
            spacing: [colSpacing, rowSpacing, axis == .axial ? sp[2] : axis == .coronal ? sp[1] : sp[0]],
            transform: transform,
            hash: hash, masks: masks.map(\.mask))
    }
}
