import Catalog
import Foundation
import Geometry
import Hashing
import Imaging

/// A normalised 2D slice ready for the shards: `size`×`size` pixels (content at the top left,
/// zero padding right and bottom, as SAM pads) and its masks.
struct PreparedImage {
    var axis: SliceAxis, slice: Int
    var pixels: [UInt8], channels: Int, size: Int
    var contentWidth: Int, contentHeight: Int
    var origWidth: Int, origHeight: Int
    var spacing: [Double]
    var transform: SliceTransform
    var hash: String
    var masks: [PreparedMask]
}

struct PreparedMask {
    var className: String, instance: Int, area: Int
    var box: Box2D
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
    var box: Box3D?
    var classNames: [String]
    var notes: [String] = []
    var structuresSkipped: [String: Int] = [:]
}

extension LabelledVolume {
    /// An image and the one label map `SampleBuilder.classes` made of its label file.
    init(image: ImageSource, labels: (map: [Int32], names: [String], box: Box3D?)) {
        self.init(image: image, layers: labels.box == nil ? [] : [labels.map], box: labels.box, classNames: labels.names)
    }
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
        func hash(_ url: URL) -> String { (try? Data(contentsOf: url, options: .alwaysMapped)).map(ContentHash.hex) ?? "" }
        let input = try item.dicom.map(dicomInput) ?? fileInput(item)
        let contentHash = item.dicom.map { ContentHash.hex(Data($0.files.map(hash).joined().utf8)) } ?? hash(item.image)
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
    static func cropped(_ layers: [[Int32]], size: [Int]) -> (layers: [[Int32]], box: Box3D?) {
        var box: Box3D?
        for layer in layers {
            guard let b = Components.boundingBox(layer, size: size) else { continue }
            box = box.map { $0.union(b) } ?? b
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
        let stored = input.box
        let box = cleaned(&layers, over: stored, is2D: grid.is2D)
        if box == nil && !options.keepEmpty { return [] }
        let view = CanonicalView(grid)
        let extent = SlicePlane.extent(of: box, in: view)
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

    /// Removes 3D components under `minComponentVoxels` from layers that hold `stored` of the grid;
    /// returns the box of what is left, in source voxels (nil: nothing).
    private func cleaned(_ layers: inout [[Int32]], over stored: Box3D?, is2D: Bool) -> Box3D? {
        guard let stored else { return nil }
        var box: Box3D?
        let size = (0..<3).map { stored.hi[$0] - stored.lo[$0] + 1 }
        for l in layers.indices {
            if !is2D { Components.removeSmall(&layers[l], size: size, minSize: options.minComponentVoxels) }
            guard let b = Components.boundingBox(layers[l], size: size) else { continue }
            let source = Box3D(lo: b.lo &+ stored.lo, hi: b.hi &+ stored.lo)
            box = box.map { $0.union(source) } ?? source
        }
        return box
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
}
