import Foundation
import Imaging

/// A normalised 2D slice ready for the shards: `size`×`size` pixels (content at the top left,
/// zero padding right and bottom, as SAM pads) and its masks.
struct PreparedImage {
    var axis: SliceAxis, slice: Int
    var pixels: [UInt8], channels: Int, size: Int
    var contentWidth: Int, contentHeight: Int
    var origWidth: Int, origHeight: Int
    var spacing: [Double]
    var transform: String
    var hash: String
    var masks: [PreparedMask]
}

struct PreparedMask {
    var className: String, instance: Int, area: Int
    var box: (x0: Int, y0: Int, x1: Int, y1: Int)
    /// Full-size 0/1 mask (size×size).
    var pixels: [UInt8]
}

/// What one unit became, the content hash of its image file(s), and remarks for the log.
struct BuiltUnit {
    var images: [PreparedImage]
    var contentHash: String
    var notes: [String] = []
}

/// A unit's image with its labels as class indices (1-based into `classNames`, 0 = background).
/// Labels come in layers: one for a label map, more where DICOM structures overlap.
struct LabelledVolume {
    var image: Volume
    var layers: [[Int32]]
    var classNames: [String]
    var notes: [String] = []
}

/// Why a unit was rejected, and at which step.
struct IngestFailure: Error {
    var stage: String, message: String
}

/// Turns one work item (an image and its label file) into normalised slices with binary masks.
struct SampleBuilder {
    var manifest: Manifest
    var vocabulary: ClassVocabulary
    var options: IngestOptions

    func build(_ item: WorkItem) throws -> BuiltUnit {
        // Mapped, a file is read once more from the page cache: cheap next to decoding it.
        func hash(_ url: URL) -> String { (try? Data(contentsOf: url, options: .alwaysMapped)).map(Checksum.xxh128) ?? "" }
        let input = try item.dicom.map(dicomInput) ?? fileInput(item)
        let contentHash = item.dicom.map { Checksum.xxh128(Data($0.files.map(hash).joined().utf8)) } ?? hash(item.image)
        let notes = input.notes
        return BuiltUnit(images: try slices(input, item: item), contentHash: contentHash, notes: notes)
    }

    /// An image file and its label map.
    private func fileInput(_ item: WorkItem) throws -> LabelledVolume {
        let image = try read(item.image, frame: item.frame, what: "image")
        guard let maskURL = item.mask else { throw IngestFailure(stage: "pair", message: "no label file") }
        let mask = try read(maskURL, frame: nil, what: "mask")
        guard image.size == mask.size else {
            throw IngestFailure(stage: "geometry", message: "mask grid \(mask.size.map(String.init).joined(separator: "×")) differs from image grid \(image.size.map(String.init).joined(separator: "×"))")
        }
        if !image.is2D && !image.sameGrid(as: mask) {
            throw IngestFailure(stage: "geometry", message: "mask and image have the same size but different spacing, origin or orientation (image spacing \(fmt(image.spacing)), mask spacing \(fmt(mask.spacing)))")
        }
        let (classMap, classNames) = try classes(mask)
        return LabelledVolume(image: image, layers: [classMap], classNames: classNames)
    }

    /// A DICOM series and the structures its SEG and RTSTRUCT objects draw on it. Structure names
    /// resolve through the manifest's `names`, then the class vocabulary; structures that overlap
    /// go to separate layers, so each keeps its full mask.
    private func dicomInput(_ unit: DicomUnit) throws -> LabelledVolume {
        let series: DICOMSeries, image: Volume
        do {
            series = try DICOMSeries(unit.planes)
            image = try series.volume()
        } catch let e as ImagingError { throw IngestFailure(stage: "read series", message: e.message) }
        // One unreadable annotation costs only its own structures.
        var segments: [DICOMSegment] = [], failures: [String] = []
        let annotations = unit.segmentations.map { ($0, "SEG") } + unit.structureSets.map { ($0, "RTSTRUCT") }
        for (n, (url, kind)) in annotations.enumerated() {
            do {
                segments += kind == "SEG" ? try DICOMLabels.segmentation(url, on: series) : try DICOMLabels.structureSet(url, on: series)
            } catch let e as ImagingError { failures.append("\(kind) \(n + 1) of \(annotations.count): \(e.message)") }
        }
        if failures.count == annotations.count { throw IngestFailure(stage: "read annotations", message: failures.joined(separator: "; ")) }
        var notes = failures.map { "annotation skipped, \($0)" }
        var resolved: [(cls: String, segment: DICOMSegment)] = []
        for s in segments {
            if s.names.contains(where: { manifest.ignoreNames.contains($0.lowercased()) }) { continue }
            guard let cls = s.names.lazy.compactMap({ manifest.names[$0.lowercased()] ?? vocabulary.resolveLoose($0) }).first else {
                notes.append("structure '\(s.names.first ?? "?")' matches no class; skipped (map it under `names:` in a manifest, or list it in `ignore_names:`)")
                continue
            }
            resolved.append((cls, s))
        }
        let classNames = Array(Set(resolved.map(\.cls))).sorted()
        let plane = series.columns * series.rows
        var layers: [[Int32]] = []
        for (cls, segment) in resolved {
            let value = Int32(classNames.firstIndex(of: cls)! + 1)
            // The first layer where this structure touches no other one.
            let target = layers.firstIndex { layer in
                segment.planes.allSatisfy { k, mask in !mask.indices.contains { mask[$0] != 0 && layer[k * plane + $0] != 0 && layer[k * plane + $0] != value } }
            } ?? { layers.append([Int32](repeating: 0, count: plane * series.planes.count)); return layers.count - 1 }()
            for (k, mask) in segment.planes { for i in mask.indices where mask[i] != 0 { layers[target][k * plane + i] = value } }
        }
        if layers.isEmpty { layers = [[Int32](repeating: 0, count: plane * series.planes.count)] }
        return LabelledVolume(image: image, layers: layers, classNames: classNames, notes: notes)
    }

    private func slices(_ input: consuming LabelledVolume, item: WorkItem) throws -> [PreparedImage] {
        let image = input.image, classNames = input.classNames
        // Taken out of `input`, so that cleaning them in place does not copy them first.
        var layers = input.layers
        input.layers = []
        if image.components == 3 && image.is2D == false { throw IngestFailure(stage: "read", message: "colour volumes are not supported") }
        // Connectivity does not depend on orientation: clean on the source grid, and read slices
        // through a canonical (LPS) view instead of copying both volumes into a new orientation.
        var box: (lo: [Int], hi: [Int])?
        for l in layers.indices {
            var b = Components.boundingBox(layers[l], size: image.size)
            if !image.is2D && b != nil {
                Components.removeSmall(&layers[l], size: image.size, minSize: options.minComponentVoxels, box: b)
                b = Components.boundingBox(layers[l], size: image.size, within: b)
            }
            if let b { box = box.map { (zip($0.lo, b.lo).map(min), zip($0.hi, b.hi).map(max)) } ?? b }
        }
        let view = CanonicalView(image)
        let policy = manifest.intensityPolicy(modality: item.modality, volume: image, override: options.intensity)
        let mapping = Intensity.mapping(for: image, policy: policy)
        // The labels' bounding box along each canonical axis (all of it when there are none).
        let extent: [Range<Int>] = (0..<3).map { k in
            let count = view.size[k]
            guard let box else { return 0..<count }
            let j = view.reorientation.permutation[k]
            let (lo, hi) = view.reorientation.flipped[k] ? (count - 1 - box.hi[j], count - 1 - box.lo[j]) : (box.lo[j], box.hi[j])
            return lo..<(hi + 1)
        }
        var out: [PreparedImage] = []
        if box == nil && !options.keepEmpty { return out }
        for axis in image.is2D ? [.axial] : options.axes {
            let k = axis == .axial ? 2 : axis == .coronal ? 1 : 0
            // Slices outside the bounding box hold no mask: skipped without reading.
            for index in options.keepEmpty ? 0..<view.size[k] : extent[k] {
                if let prepared = slice(image, view, layers, classNames, axis: axis, index: index, labelled: extent, mapping: mapping) {
                    out.append(prepared)
                }
            }
        }
        return out
    }

    private func fmt(_ v: [Double]) -> String { v.map { String(format: "%.3g", $0) }.joined(separator: "×") }

    private func read(_ url: URL, frame: Int?, what: String) throws -> Volume {
        do {
            if let f = frame {
                let frames = try NIfTI.readFrames(url, limit: f + 1)
                guard frames.count > f else { throw ImagingError("NIfTI: the file has \(frames.count) frames; channel \(f) is missing") }
                return frames[f]
            }
            return try ImageIO.read(url)
        } catch let e as ImagingError {
            throw IngestFailure(stage: "read \(what)", message: e.message)
        } catch {
            throw IngestFailure(stage: "read \(what)", message: "\(error.localizedDescription)")
        }
    }

    /// Label values → 1-based indices into the dataset's class list (labels of one class merge).
    private func classes(_ mask: Volume) throws -> ([Int32], [String]) {
        var values = mask.voxels
        if mask.components == 3 {
            // Grey masks saved as RGB: take the brightest channel.
            values = (0..<mask.voxelCount).map { max(mask.voxels[3 * $0], mask.voxels[3 * $0 + 1], mask.voxels[3 * $0 + 2]) }
        }
        if let t = manifest.binarize {
            let name = manifest.labels[1] ?? manifest.labels.values.first ?? "foreground"
            let threshold = Float(t)
            return (values.map { $0 >= threshold ? 1 : 0 }, [name])
        }
        var present = Set<Int32>()
        var bad: Float?
        var map = [Int32](unsafeUninitializedCapacity: values.count) { m, initialized in
            values.withUnsafeBufferPointer { v in
                var last: Int32 = 0
                var i = 0
                while i < v.count {
                    let end = min(i + 64, v.count)
                    // Label maps are mostly background: a run of 64 zeros (±0) is found by a branch-free
                    // OR of their bits, which vectorises, and stored as such.
                    var any: UInt32 = 0
                    for j in i..<end { any |= v[j].bitPattern & 0x7fff_ffff }
                    if any == 0 {
                        for j in i..<end { m[j] = 0 }
                        i = end
                        continue
                    }
                    for j in i..<end {
                        let x = v[j]
                        // Integral, non-negative and in range, checked without a libm call.
                        guard x > 0, x < 2_000_000_000, Float(Int32(x)) == x else {
                            if x != 0 { bad = x }
                            m[j] = 0
                            continue
                        }
                        let l = Int32(x)
                        m[j] = l
                        if l != last { present.insert(l); last = l }
                    }
                    i = end
                }
            }
            initialized = values.count
        }
        if let b = bad { throw IngestFailure(stage: "labels", message: "label map has a non-integer or negative value (\(b)); is it a probability map?") }
        let unknown = present.filter { manifest.labels[Int($0)] == nil && !manifest.ignore.contains(Int($0)) }.sorted()
        if !unknown.isEmpty {
            let known = manifest.labels.sorted { $0.key < $1.key }.prefix(8).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            throw IngestFailure(stage: "labels", message: "label value\(unknown.count > 1 ? "s" : "") \(unknown.prefix(10).map(String.init).joined(separator: ", ")) not in the '\(manifest.name)' manifest (it maps \(known.isEmpty ? "nothing" : known)\(manifest.labels.count > 8 ? ", …" : ""))")
        }
        let names = Array(Set(manifest.labels.values)).sorted()
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Int32($0 + 1)) })
        let classOf = Dictionary(uniqueKeysWithValues: present.map { ($0, manifest.labels[Int($0)].flatMap { index[$0] } ?? 0) })
        // Label values that already are their class indices (KiTS's are) need no second pass.
        if classOf.allSatisfy({ $0.key == $0.value }) { return (map, names) }
        // Label value → class index through a table (values are small in practice) or a dictionary.
        let top = Int(present.max() ?? 0)
        if top < 1 << 16 {
            var lut = [Int32](repeating: 0, count: top + 1)
            for (v, c) in classOf { lut[Int(v)] = c }
            map.withUnsafeMutableBufferPointer { m in for i in m.indices where m[i] != 0 { m[i] = lut[Int(m[i])] } }
        } else {
            map.withUnsafeMutableBufferPointer { m in for i in m.indices where m[i] != 0 { m[i] = classOf[m[i]] ?? 0 } }
        }
        return (map, names)
    }

    // MARK: One slice

    /// `labelled`: the labels' bounding box along the canonical axes; label planes are read only there.
    private func slice(_ image: Volume, _ view: CanonicalView, _ layers: [[Int32]], _ classNames: [String], axis: SliceAxis, index: Int,
                       labelled: [Range<Int>], mapping: Intensity.Mapping) -> PreparedImage? {
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
        let z = labelled[2], zRows = (nz - z.upperBound)..<(nz - z.lowerBound)
        let (cRange, rRange) = switch axis {
        case .axial: (labelled[0], labelled[1])
        case .coronal: (labelled[0], zRows)
        case .sagittal: (labelled[1], zRows)
        }
        var planes: [[Int32]] = []
        for layer in layers {
            var labels = [Int32](repeating: 0, count: cols * rows)
            var any = false
            layer.withUnsafeBufferPointer { m in
                labels.withUnsafeMutableBufferPointer { l in
                    for r in rRange {
                        var p = base + r * rowStep + cRange.lowerBound * colStep
                        for c in cRange { let v = m[p]; if v != 0 { l[r * cols + c] = v; any = true }; p += colStep }
                    }
                }
            }
            if any {
                Components.removeSmall(&labels, size: [cols, rows, 1], minSize: options.minMaskPixels,
                                       box: ([cRange.lowerBound, rRange.lowerBound, 0], [cRange.upperBound - 1, rRange.upperBound - 1, 0]))
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
                let (ids, _) = labels.withUnsafeBufferPointer { Components.label($0, size: [cols, rows, 1]) }
                for i in ids.indices where ids[i] != 0 && keyClass[ids[i]] == nil {
                    instancesOfClass[labels[i], default: 0] += 1
                    keyClass[ids[i]] = (labels[i], instancesOfClass[labels[i]]!)
                }
                keys = ids
            }
            var slot: [Int32: Int] = [:]
            var found: [(key: Int32, pixels: [UInt8], area: Int, box: (x0: Int, y0: Int, x1: Int, y1: Int))] = []
            keys.withUnsafeBufferPointer { kp in
                for y in yOut {
                    let row = ys[y] * cols
                    for x in xOut {
                        let k = kp[row + xs[x]]
                        if k == 0 { continue }
                        let j: Int
                        if let s = slot[k] { j = s } else {
                            j = found.count
                            slot[k] = j
                            found.append((k, [UInt8](repeating: 0, count: options.size * options.size), 0, (x, y, x, y)))
                        }
                        found[j].pixels[y * options.size + x] = 1
                        found[j].area += 1
                        found[j].box = (min(found[j].box.x0, x), min(found[j].box.y0, y), max(found[j].box.x1, x), max(found[j].box.y1, y))
                    }
                }
            }
            for f in found {
                let (cls, instance) = options.instances ? keyClass[f.key]! : (f.key, 0)
                masks.append((cls, instance, PreparedMask(className: classNames[Int(cls) - 1], instance: instance, area: f.area, box: f.box, pixels: f.pixels)))
            }
        }
        masks.sort { ($0.cls, $0.instance) < ($1.cls, $1.instance) }
        if masks.isEmpty && !options.keepEmpty { return nil }

        let channels = image.components
        var plane = [Float](repeating: 0, count: cols * rows * channels)
        image.voxels.withUnsafeBufferPointer { v in
            plane.withUnsafeMutableBufferPointer { out in
                if channels == 1 {
                    for r in 0..<rows {
                        mapping.apply(v.baseAddress! + base + r * rowStep, stride: colStep, count: cols, into: out.baseAddress! + r * cols)
                    }
                    return
                }
                for r in 0..<rows {
                    var p = (base + r * rowStep) * channels
                    for c in 0..<cols {
                        let dst = (r * cols + c) * channels
                        for q in 0..<channels { out[dst + q] = mapping.apply(v[p + q]) }
                        p += colStep * channels
                    }
                }
            }
        }
        let resized = plane.withUnsafeBufferPointer { Resize.bilinear($0, width: cols, height: rows, channels: channels, toWidth: cw, toHeight: ch) }
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
        let transform: [String: Any] = [
            "axis": axis.rawValue, "index": index, "plane": [cols, rows], "content": [cw, ch], "size": options.size,
            "permutation": view.reorientation.permutation, "flipped": view.reorientation.flipped,
            "rows_flipped": axis != .axial, "source_spacing": image.spacing,
        ]
        let hash = pixels.withUnsafeBytes { Checksum.xxh128($0) } + "-\(options.size)x\(channels)"
        return PreparedImage(
            axis: axis, slice: index, pixels: pixels, channels: channels, size: options.size,
            contentWidth: cw, contentHeight: ch, origWidth: cols, origHeight: rows,
            spacing: [colSpacing, rowSpacing, axis == .axial ? sp[2] : axis == .coronal ? sp[1] : sp[0]],
            transform: String(decoding: try! JSONSerialization.data(withJSONObject: transform, options: .sortedKeys), as: UTF8.self),
            hash: hash, masks: masks.map(\.mask))
    }
}
