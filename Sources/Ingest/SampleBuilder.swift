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
    /// DICOM structures not ingested because they are not anatomy, by reason.
    var structuresSkipped: [String: Int] = [:]
}

/// A unit's image: read whole, or a 3D NIfTI file still to be read plane by plane (most public CT
/// and MR), so that only the planes that hold labels are converted, each while it is in cache.
enum ImageSource {
    case volume(Volume)
    case planes(NIfTIPlanes)

    var grid: Grid {
        switch self {
        case let .volume(v): v.grid
        case let .planes(p): p.grid
        }
    }
}

/// A unit's image with its labels as class indices (1-based into `classNames`, 0 = background).
/// Labels come in layers: one for a label map, more where DICOM structures overlap. Layers hold only
/// `box`, which holds every label (x fastest, then y, z); no box, no layers: there are no labels.
struct LabelledVolume {
    var image: ImageSource
    var layers: [[Int32]]
    var box: Box?
    var classNames: [String]
    var notes: [String] = []
    var structuresSkipped: [String: Int] = [:]
}

extension LabelledVolume {
    /// An image and the one label map `SampleBuilder.classes` made of its label file.
    init(image: ImageSource, labels: (map: [Int32], names: [String], box: Box?)) {
        self.init(image: image, layers: labels.box == nil ? [] : [labels.map], box: labels.box, classNames: labels.names)
    }
}

/// A label map's values as a reader hands them over: the stored bytes of an 8-bit file, else `Float`.
protocol LabelValue {
    /// The label (0: background), or nil when the value is no integer in 0..<2^31 (a probability map?).
    var label: Int32? { get }
    /// Zero exactly when the value is (either) zero, without a branch, so that a loop over values vectorises.
    var nonzeroBits: UInt32 { get }
    var value: Float { get }
    /// True when every value in `range` is (either) zero.
    static func allZero(_ v: UnsafeBufferPointer<Self>, _ range: Range<Int>) -> Bool
}

extension LabelValue {
    static func allZero(_ v: UnsafeBufferPointer<Self>, _ range: Range<Int>) -> Bool {
        // A branch-free OR of the bits, which vectorises.
        var any: UInt32 = 0
        for j in range { any |= v[j].nonzeroBits }
        return any == 0
    }
}

extension Float: LabelValue {
    var label: Int32? {
        if self == 0 { return 0 }
        // Integral, positive and in range, checked without a libm call.
        return self > 0 && self < 2_000_000_000 && Float(Int32(self)) == self ? Int32(self) : nil
    }
    var nonzeroBits: UInt32 { bitPattern & 0x7fff_ffff }
    var value: Float { self }
}

extension UInt8: LabelValue {
    var label: Int32? { Int32(self) }
    var nonzeroBits: UInt32 { UInt32(self) }
    var value: Float { Float(self) }

    /// Eight bytes at a time: most of an 8-bit label map is zeros, and every byte of it is looked at.
    static func allZero(_ v: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        let p = UnsafeRawPointer(v.baseAddress! + range.lowerBound), words = range.count / 8
        var any: UInt64 = 0
        for k in 0..<words { any |= p.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self) }
        for j in (range.lowerBound + 8 * words)..<range.upperBound { any |= UInt64(v[j]) }
        return any == 0
    }
}

/// Inclusive voxel bounds along x, y, z.
typealias Box = (lo: [Int], hi: [Int])

/// The smallest box holding `b` and, when there is one, `a`.
func union(_ a: Box?, _ b: Box) -> Box {
    a.map { (zip($0.lo, b.lo).map(min), zip($0.hi, b.hi).map(max)) } ?? b
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
        let (notes, skipped) = (input.notes, input.structuresSkipped)
        return BuiltUnit(images: try slices(input, item: item), contentHash: contentHash, notes: notes, structuresSkipped: skipped)
    }

    /// An image file and its label map.
    private func fileInput(_ item: WorkItem) throws -> LabelledVolume {
        let planes = (item.frame ?? 0) == 0 && ImageIO.format(of: item.image) == .nifti ? NIfTIPlanes(item.image) : nil
        let source = try planes.map(ImageSource.planes) ?? .volume(read(item.image, frame: item.frame, what: "image"))
        let image = source.grid
        guard let maskURL = item.mask else { throw IngestFailure(stage: "pair", message: "no label file") }
        let maskPlanes = ImageIO.format(of: maskURL) == .nifti ? NIfTIPlanes(maskURL) : nil
        var maskVolume = try maskPlanes == nil ? read(maskURL, frame: nil, what: "mask") : nil
        let mask = maskPlanes?.grid ?? maskVolume!.grid
        // Masks of a dataset no manifest describes, saved lossily (JPEG), are grey pictures: cut at half.
        let threshold = (manifest.binarize ?? (manifest.foreground != nil && ImageIO.format(of: maskURL) == .jpeg ? 128 : nil)).map(Float.init)
        guard image.size == mask.size else {
            throw IngestFailure(stage: "geometry", message: "mask grid \(mask.size.map(String.init).joined(separator: "×")) differs from image grid \(image.size.map(String.init).joined(separator: "×"))")
        }
        if !image.is2D && !image.sameGrid(as: mask) {
            throw IngestFailure(stage: "geometry", message: "mask and image have the same size but different spacing, origin or orientation (image spacing \(fmt(image.spacing)), mask spacing \(fmt(mask.spacing)))")
        }
        // Label planes are checked and mapped while in cache (8-bit ones as they are stored); a damaged
        // file is read whole, which says why.
        if let planes = maskPlanes {
            let n = mask.size[0] * mask.size[1]
            let result = try planes.holdsBytes
                ? classes(size: mask.size, threshold: threshold) { body in
                    planes.forEach { z, raw in body(UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: n), z * n) }
                }
                : classes(size: mask.size, threshold: threshold) { body in
                    let plane = UnsafeMutablePointer<Float>.allocate(capacity: n)
                    defer { plane.deallocate() }
                    return planes.forEach { z, raw in
                        planes.values(raw, into: plane)
                        body(UnsafeBufferPointer(start: plane, count: n), z * n)
                    }
                }
            if let result { return LabelledVolume(image: source, labels: result) }
        }
        if maskVolume == nil { maskVolume = try read(maskURL, frame: nil, what: "mask") }
        return LabelledVolume(image: source, labels: try classes(maskVolume!, threshold: threshold))
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
        var skipped: [String: Int] = [:]
        var resolved: [(cls: String, segment: DICOMSegment)] = []
        let naming = StructureNames(manifest: manifest, vocabulary: vocabulary)
        for s in segments {
            switch naming.structure(s) {
            case let .mapped(cls): resolved.append((cls, s))
            case let .unmapped(cls):
                notes.append("structure '\(s.names.first ?? "?")' is not in classes.yaml; kept as unmapped class '\(cls)'")
                resolved.append((cls, s))
            case let .skipped(why):
                skipped[why, default: 0] += 1
                notes.append("structure '\(s.names.first ?? "?")' not ingested: \(why) (name it under `names:` in a manifest to keep it)")
            }
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
        let (cut, box) = Self.cropped(layers, size: image.size)
        return LabelledVolume(image: .volume(image), layers: cut, box: box, classNames: classNames, notes: notes, structuresSkipped: skipped)
    }

    /// Layers cut down to the box that holds all of their labels (none when they hold none).
    static func cropped(_ layers: [[Int32]], size: [Int]) -> (layers: [[Int32]], box: Box?) {
        var box: Box?
        for layer in layers {
            guard let b = Components.boundingBox(layer, size: size) else { continue }
            box = union(box, b)
        }
        guard let box else { return ([], nil) }
        let (bx, by, bz) = (box.hi[0] - box.lo[0] + 1, box.hi[1] - box.lo[1] + 1, box.hi[2] - box.lo[2] + 1)
        let cut = layers.map { layer in
            (0..<(by * bz)).flatMap { row in
                let start = ((row / by + box.lo[2]) * size[1] + row % by + box.lo[1]) * size[0] + box.lo[0]
                return layer[start..<(start + bx)]
            }
        }
        return (cut, box)
    }

    private func slices(_ input: consuming LabelledVolume, item: WorkItem) throws -> [PreparedImage] {
        let grid = input.image.grid, classNames = input.classNames
        // Taken out of `input`, so that cleaning them in place does not copy them first.
        var layers = input.layers
        input.layers = []
        if case let .volume(v) = input.image, v.components == 3 && !v.is2D { throw IngestFailure(stage: "read", message: "colour volumes are not supported") }
        // Connectivity does not depend on orientation: clean on the source grid, and read slices
        // through a canonical (LPS) view instead of copying both volumes into a new orientation.
        // `box`: what is left of the labels after cleaning, in source voxels.
        var box: Box?
        let stored = input.box
        if let stored {
            let size = (0..<3).map { stored.hi[$0] - stored.lo[$0] + 1 }
            for l in layers.indices {
                if !grid.is2D { Components.removeSmall(&layers[l], size: size, minSize: options.minComponentVoxels) }
                guard let b = Components.boundingBox(layers[l], size: size) else { continue }
                box = union(box, (zip(b.lo, stored.lo).map(+), zip(b.hi, stored.lo).map(+)))
            }
        }
        if box == nil && !options.keepEmpty { return [] }
        let view = CanonicalView(grid)
        // The labels' bounding box along each canonical axis (all of it when there are none).
        let extent: [Range<Int>] = (0..<3).map { k in
            let count = view.size[k]
            guard let box else { return 0..<count }
            let j = view.reorientation.permutation[k]
            let (lo, hi) = view.reorientation.flipped[k] ? (count - 1 - box.hi[j], count - 1 - box.lo[j]) : (box.lo[j], box.hi[j])
            return lo..<(hi + 1)
        }
        // Slices outside the bounding box hold no mask: skipped without reading.
        let wanted = { (k: Int) in options.keepEmpty ? 0..<view.size[k] : extent[k] }
        let cut = { (axis: SliceAxis, index: Int, channels: Int, pixels: PlanePixels) in
            slice(grid, view, (layers, stored), classNames, axis: axis, index: index, labelled: box == nil ? nil : extent, channels: channels, pixels: pixels)
        }

        let policy = manifest.intensityPolicy(modality: item.modality, override: options.intensity) {
            guard case let .volume(v) = input.image, v.is2D, v.isIntegral else { return false }
            return v.voxels.allSatisfy { $0 >= 0 && $0 <= 255 }
        }
        let image: Volume
        switch input.image {
        case let .volume(v): image = v
        case let .planes(planes):
            // Axial slices of a file stored in axial planes, under a policy that needs no statistics
            // of the volume: one pass over the file's planes.
            if let mapping = Intensity.mapping(for: policy), options.axes == [.axial], view.reorientation.permutation[2] == 2 {
                let planeSize = grid.size[0] * grid.size[1], nz = grid.size[2], flipped = view.reorientation.flipped[2]
                let windowing = planes.windowing(mapping)
                var out: [PreparedImage] = []
                // Planes past the last wanted one (in file order) need not be inflated.
                let last = flipped ? nz - 1 - wanted(2).lowerBound : wanted(2).upperBound - 1
                let complete = planes.forEach(through: options.verifyCRC ? nil : last) { z, plane in
                    let index = flipped ? nz - 1 - z : z
                    guard wanted(2).contains(index) else { return }
                    let pixels: PlanePixels = { base, colStep, cols, dst, stride in
                        planes.window(plane, offset: base - z * planeSize, stride: colStep, count: cols, with: windowing, into: dst, outStride: stride)
                    }
                    if let prepared = cut(.axial, index, 1, pixels) { out.append(prepared) }
                }
                if complete { return flipped ? out.reversed() : out }
            }
            // Read whole: other cuts, statistics, or a damaged file, whose reading names the problem.
            image = try read(planes.url, frame: nil, what: "image")
        }
        let mapping = Intensity.mapping(for: image, policy: policy)
        let channels = image.components
        let pixels: PlanePixels = { base, colStep, cols, dst, stride in
            image.voxels.withUnsafeBufferPointer { v in
                if channels == 1 {
                    mapping.apply(v.baseAddress! + base, stride: colStep, count: cols, into: dst, outStride: stride)
                    return
                }
                for c in 0..<cols {
                    for q in 0..<channels { dst[c * stride * channels + q] = mapping.apply(v[(base + c * colStep) * channels + q]) }
                }
            }
        }
        var out: [PreparedImage] = []
        for axis in image.is2D ? [.axial] : options.axes {
            let k = axis == .axial ? 2 : axis == .coronal ? 1 : 0
            for index in wanted(k) {
                if let prepared = cut(axis, index, channels, pixels) { out.append(prepared) }
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
    private func classes(_ mask: Volume, threshold: Float?) throws -> (map: [Int32], names: [String], box: Box?) {
        var values = mask.voxels
        if mask.components == 3 {
            // Grey masks saved as RGB: take the brightest channel.
            values = (0..<mask.voxelCount).map { max(mask.voxels[3 * $0], mask.voxels[3 * $0 + 1], mask.voxels[3 * $0 + 2]) }
        }
        return try classes(size: mask.size, threshold: threshold) { body in values.withUnsafeBufferPointer { body($0, 0) }; return true }!
    }

    /// The label map of a volume whose values `runs` hands over, a run at a time with the index of
    /// its first voxel, over the box that holds every voxel with a label (nil: none). `runs` returns
    /// false when it could not read them all (nil then).
    private func classes<V: LabelValue>(size: [Int], threshold: Float?, _ runs: ((UnsafeBufferPointer<V>, Int) -> Void) -> Bool) throws -> (map: [Int32], names: [String], box: Box?)? {
        let (nx, nxy) = (size[0], size[0] * size[1])
        var lo = (x: Int.max, y: Int.max, z: Int.max), hi = (x: -1, y: -1, z: -1)
        var present = Set<Int32>()
        var bad: Float?
        // Label maps are mostly background, which is never stored: the labels of each 64-voxel block
        // that holds any go to `stash`, and the block to `blocks` (its first voxel, its length).
        var stash: [Int32] = [], blocks: [(offset: Int, count: Int)] = []
        let skipsZeros = (threshold ?? 1) > 0
        let block = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        defer { block.deallocate() }
        let complete = runs { v, offset in
            var last: Int32 = 0
            var i = 0
            while i < v.count {
                let end = min(i + 64, v.count)
                if skipsZeros && V.allZero(v, i..<end) { i = end; continue }
                var first = end, final = -1
                for j in i..<end {
                    let l: Int32
                    if let threshold { l = v[j].value >= threshold ? 1 : 0 } else if let label = v[j].label { l = label } else {
                        bad = v[j].value
                        l = 0
                    }
                    block[j - i] = l
                    if l == 0 { continue }
                    if l != last { present.insert(l); last = l }
                    (first, final) = (min(first, j), j)
                }
                guard final >= 0 else { i = end; continue }
                let at = stash.count - i
                stash.append(contentsOf: UnsafeBufferPointer(start: block, count: end - i))
                blocks.append((offset + i, end - i))
                // The box grows by the block's first and last labelled voxels, which share a row
                // unless the block wraps one; then by each labelled voxel.
                func grow(_ j: Int) {
                    let f = offset + j, (c, r, p) = (f % nx, f % nxy / nx, f / nxy)
                    (lo.x, lo.y, lo.z) = (min(lo.x, c), min(lo.y, r), min(lo.z, p))
                    (hi.x, hi.y, hi.z) = (max(hi.x, c), max(hi.y, r), max(hi.z, p))
                }
                if (offset + first) / nx == (offset + final) / nx {
                    grow(first)
                    grow(final)
                } else {
                    for j in first...final where stash[at + j] != 0 { grow(j) }
                }
                i = end
            }
        }
        guard complete else { return nil }
        if let b = bad { throw IngestFailure(stage: "labels", message: "label map has a non-integer or negative value (\(b)); is it a probability map?") }
        let box: Box? = hi.x < 0 ? nil : ([lo.x, lo.y, lo.z], [hi.x, hi.y, hi.z])
        // The stashed blocks, row piece by row piece, into a map of the box.
        var map: [Int32] = []
        if let box {
            let (bx, by) = (box.hi[0] - box.lo[0] + 1, box.hi[1] - box.lo[1] + 1)
            map = [Int32](repeating: 0, count: bx * by * (box.hi[2] - box.lo[2] + 1))
            map.withUnsafeMutableBufferPointer { m in
                stash.withUnsafeBufferPointer { s in
                    var at = 0
                    for (offset, count) in blocks {
                        var k = 0
                        while k < count {
                            let f = offset + k, (c, r, p) = (f % nx, f % nxy / nx, f / nxy)
                            let n = min(count - k, nx - c), (c0, c1) = (max(c, lo.x), min(c + n, hi.x + 1))
                            // Rows outside the box, and columns, hold no labels.
                            if c0 < c1 && (lo.y...hi.y).contains(r) && (lo.z...hi.z).contains(p) {
                                (m.baseAddress! + ((p - lo.z) * by + r - lo.y) * bx + c0 - lo.x)
                                    .update(from: s.baseAddress! + at + k + c0 - c, count: c1 - c0)
                            }
                            k += n
                        }
                        at += count
                    }
                }
            }
        }
        if threshold != nil { return (map, [manifest.labels[1] ?? manifest.labels.values.first ?? manifest.keptClass(1) ?? "foreground"], box) }
        var labels = manifest.labels
        for v in present where labels[Int(v)] == nil && !manifest.ignore.contains(Int(v)) { labels[Int(v)] = manifest.keptClass(Int(v)) }
        let unknown = present.filter { labels[Int($0)] == nil && !manifest.ignore.contains(Int($0)) }.sorted()
        if !unknown.isEmpty {
            let known = manifest.labels.sorted { $0.key < $1.key }.prefix(8).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            throw IngestFailure(stage: "labels", message: "label value\(unknown.count > 1 ? "s" : "") \(unknown.prefix(10).map(String.init).joined(separator: ", ")) not in the '\(manifest.name)' manifest (it maps \(known.isEmpty ? "nothing" : known)\(manifest.labels.count > 8 ? ", …" : ""))")
        }
        let names = Array(Set(labels.values)).sorted()
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Int32($0 + 1)) })
        let classOf = Dictionary(uniqueKeysWithValues: present.map { ($0, labels[Int($0)].flatMap { index[$0] } ?? 0) })
        // Label values that already are their class indices (KiTS's are) need no second pass.
        if classOf.allSatisfy({ $0.key == $0.value }) { return (map, names, box) }
        // Label value → class index through a table (values are small in practice) or a dictionary.
        let top = Int(present.max() ?? 0)
        if top < 1 << 16 {
            var lut = [Int32](repeating: 0, count: top + 1)
            for (v, c) in classOf { lut[Int(v)] = c }
            map.withUnsafeMutableBufferPointer { m in for i in m.indices where m[i] != 0 { m[i] = lut[Int(m[i])] } }
        } else {
            map.withUnsafeMutableBufferPointer { m in for i in m.indices where m[i] != 0 { m[i] = classOf[m[i]] ?? 0 } }
        }
        return (map, names, box)
    }

    // MARK: One slice

    /// Fills a row of a plane, mapped to 0…255, into `dst`: `cols` pixels, from the voxel with index
    /// `base` in the volume on, `colStep` voxels apart; pixel c's components go to
    /// `dst[c * stride * components + q]`.
    typealias PlanePixels = (_ base: Int, _ colStep: Int, _ cols: Int, _ dst: UnsafeMutablePointer<Float>, _ stride: Int) -> Void

    /// `store`: layers over `box` as `LabelledVolume` holds them. `labelled`: the labels' bounding box
    /// along the canonical axes (nil: there are none); label planes are read only there.
    private func slice(_ grid: Grid, _ view: CanonicalView, _ store: (layers: [[Int32]], box: Box?), _ classNames: [String], axis: SliceAxis, index: Int,
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
