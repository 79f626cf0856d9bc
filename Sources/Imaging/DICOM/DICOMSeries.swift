import Foundation

/// One 2D plane of a series: a single-frame file, or one frame of a multi-frame file.
public struct DICOMPlane: Sendable {
    public var url: URL
    /// 0-based frame in the file.
    public var frame: Int
    public var sopInstanceUID: String
    /// Image Position (Patient) of the first pixel's centre, LPS mm; nil for pictures without geometry.
    public var position: [Double]?
    /// Image Orientation (Patient): row direction then column direction.
    public var orientation: [Double]
    /// Pixel Spacing: between rows, then between columns (DICOM's order).
    public var pixelSpacing: [Double]
    public var rows: Int, columns: Int
    public var slope: Double, intercept: Double
    public var sliceThickness: Double?
}

/// What medcat needs from a DICOM file's header, read without decoding pixels.
public struct DICOMHeader: Sendable {
    public var url: URL
    public var sopClassUID: String, sopInstanceUID: String
    public var seriesInstanceUID: String, studyInstanceUID: String, frameOfReferenceUID: String
    public var modality: String, patientID: String
    public var seriesNumber: Int?
    public var planes: [DICOMPlane]
    public var hasPixels: Bool
    public var isSegmentation: Bool { sopClassUID == SOPClass.segmentation }
    public var isStructureSet: Bool { sopClassUID == SOPClass.rtStructureSet }
    /// Series an annotation object (SEG, RTSTRUCT) refers to.
    public var referencedSeries: [String]
    /// Images an RTSTRUCT's contours lie on, and the frames of reference it names: how to find its
    /// series when the (optional) series references are absent.
    public var referencedImages: Set<String> = []
    public var referencedFramesOfReference: Set<String> = []

    public static func read(_ url: URL) throws -> DICOMHeader {
        let file = try DICOMFile(url, headerOnly: true)
        let d = file.root
        guard let sop = d.string(.sopClassUID) else { throw ImagingError("no SOP Class UID: not a DICOM object medcat can use") }
        var header = DICOMHeader(
            url: url, sopClassUID: sop, sopInstanceUID: d.string(.sopInstanceUID) ?? "",
            seriesInstanceUID: d.string(.seriesInstanceUID) ?? "", studyInstanceUID: d.string(.studyInstanceUID) ?? "",
            frameOfReferenceUID: d.string(.frameOfReferenceUID) ?? "", modality: d.string(.modality) ?? "",
            patientID: d.string(.patientID) ?? "", seriesNumber: d.int(.seriesNumber), planes: [],
            hasPixels: d.int(.rows) != nil && d.int(.columns) != nil, referencedSeries: [])
        if header.isStructureSet {
            for frame in d.items(.referencedFrameOfReferenceSequence) {
                if let uid = frame.string(.frameOfReferenceUID) { header.referencedFramesOfReference.insert(uid) }
                for study in frame.items(.rtReferencedStudySequence) {
                    header.referencedSeries += study.items(.rtReferencedSeriesSequence).compactMap { $0.string(.seriesInstanceUID) }
                }
            }
            for roi in d.items(.structureSetROISequence) {
                if let uid = roi.string(.referencedFrameOfReferenceUID) { header.referencedFramesOfReference.insert(uid) }
            }
            for roi in d.items(.roiContourSequence) {
                for contour in roi.items(.contourSequence) {
                    for image in contour.items(.contourImageSequence) {
                        if let uid = image.string(.referencedSOPInstanceUID) { header.referencedImages.insert(uid) }
                    }
                }
            }
        } else if header.isSegmentation {
            header.referencedSeries = d.items(.referencedSeriesSequence).compactMap { $0.string(.seriesInstanceUID) }
        }
        if header.hasPixels { header.planes = try planes(d, url: url, sop: header.sopInstanceUID) }
        return header
    }

    /// Plane geometry, from the classic attributes or, for enhanced multi-frame objects, from the
    /// shared and per-frame functional groups (per-frame values win).
    static func planes(_ d: DICOMItem, url: URL, sop: String) throws -> [DICOMPlane] {
        let rows = d.int(.rows) ?? 0, columns = d.int(.columns) ?? 0
        let shared = d.item(.sharedFunctionalGroupsSequence)
        let perFrame = d.items(.perFrameFunctionalGroupsSequence)
        let count = max(1, d.int(.numberOfFrames) ?? 1)
        // A corrupt frame count must not make billions of planes.
        guard count <= 1 << 20 else { throw ImagingError("Number of Frames is \(count)") }
        func lookup<T>(_ frame: Int, _ group: Tag, _ read: (DICOMItem) -> T?) -> T? {
            if frame < perFrame.count, let g = perFrame[frame].item(group), let v = read(g) { return v }
            if let s = shared?.item(group), let v = read(s) { return v }
            return nil
        }
        var out: [DICOMPlane] = []
        for f in 0..<count {
            let position = lookup(f, .planePositionSequence) { $0.doubles(.imagePositionPatient) } ?? (count == 1 ? d.doubles(.imagePositionPatient) : nil)
            let orientation = lookup(f, .planeOrientationSequence) { $0.doubles(.imageOrientationPatient) } ?? d.doubles(.imageOrientationPatient)
            let spacing = lookup(f, .pixelMeasuresSequence) { $0.doubles(.pixelSpacing) } ?? d.doubles(.pixelSpacing)
            let thickness = lookup(f, .pixelMeasuresSequence) { $0.double(.sliceThickness) } ?? d.double(.sliceThickness)
            let slope = lookup(f, .pixelValueTransformationSequence) { $0.double(.rescaleSlope) } ?? d.double(.rescaleSlope) ?? 1
            let intercept = lookup(f, .pixelValueTransformationSequence) { $0.double(.rescaleIntercept) } ?? d.double(.rescaleIntercept) ?? 0
            if let p = position, p.count != 3 { throw ImagingError("Image Position (Patient) has \(p.count) values, not 3") }
            if let o = orientation, o.count != 6 { throw ImagingError("Image Orientation (Patient) has \(o.count) values, not 6") }
            if let s = spacing, s.count != 2 || s.contains(where: { !($0 > 0) }) { throw ImagingError("Pixel Spacing \(s) is not two positive values") }
            out.append(DICOMPlane(url: url, frame: f, sopInstanceUID: sop, position: position,
                                  orientation: orientation ?? [1, 0, 0, 0, 1, 0], pixelSpacing: spacing ?? [1, 1],
                                  rows: rows, columns: columns, slope: slope == 0 ? 1 : slope, intercept: intercept, sliceThickness: thickness))
        }
        return out
    }
}

/// Planes of one series ordered along the slice normal, checked to form a regular volume.
public struct DICOMSeries: Sendable {
    public var planes: [DICOMPlane]
    /// Unit normal of the planes (row direction × column direction).
    public var normal: [Double]
    /// Millimetres between consecutive planes (the plane's slice thickness, or 1, for one plane).
    public var step: Double

    /// Orders `planes` by their position along the normal and checks the geometry: one orientation
    /// and size, no duplicate positions, no gaps (missing slices), no gantry tilt.
    public init(_ planes: [DICOMPlane]) throws {
        guard let first = planes.first else { throw ImagingError("series has no images") }
        let o = first.orientation
        normal = cross(Array(o[0..<3]), Array(o[3..<6]))
        for p in planes {
            guard p.rows == first.rows, p.columns == first.columns else {
                throw ImagingError("series mixes image sizes (\(first.columns)×\(first.rows) and \(p.columns)×\(p.rows))")
            }
            guard zip(p.orientation, o).allSatisfy({ abs($0 - $1) < 1e-3 }) else { throw ImagingError("series mixes image orientations") }
            guard zip(p.pixelSpacing, first.pixelSpacing).allSatisfy({ abs($0 - $1) < 1e-3 * $1 }) else { throw ImagingError("series mixes pixel spacings") }
        }
        if planes.count == 1 {
            self.planes = planes
            step = first.sliceThickness.flatMap { $0 > 0 ? $0 : nil } ?? 1
            return
        }
        guard planes.allSatisfy({ $0.position != nil }) else {
            throw ImagingError("\(planes.count) images without Image Position (Patient) cannot be stacked into a volume")
        }
        let n = normal
        let sorted = planes.map { (dot($0.position!, n), $0) }.sorted { $0.0 < $1.0 }
        let distances = zip(sorted.dropFirst(), sorted).map { $0.0 - $1.0 }
        let median = distances.sorted()[distances.count / 2]
        if let i = distances.firstIndex(where: { $0 < 1e-3 }) {
            throw ImagingError("\(distances.filter { $0 < 1e-3 }.count + 1) images share the position \(fmt(sorted[i].0)) mm along the normal: the series holds several volumes (time points, echoes), which are not separated")
        }
        if let i = distances.firstIndex(where: { $0 > 1.5 * median }) {
            let missing = Int((distances[i] / median).rounded()) - 1
            throw ImagingError("missing slice: \(max(1, missing)) image\(missing > 1 ? "s" : "") absent between \(fmt(sorted[i].0)) and \(fmt(sorted[i + 1].0)) mm along the normal (spacing \(fmt(median)) mm)")
        }
        if let i = distances.firstIndex(where: { abs($0 - median) > 0.1 * median }) {
            throw ImagingError("irregular slice spacing: \(fmt(distances[i])) mm between \(fmt(sorted[i].0)) and \(fmt(sorted[i + 1].0)) mm, \(fmt(median)) mm elsewhere")
        }
        // Positions must advance along the normal; a sideways drift is a tilted gantry (CT) and
        // would shear the volume.
        let a = sorted.first!.1.position!, b = sorted.last!.1.position!
        let along = zip(b, a).map { $0 - $1 }
        let cosine = dot(along, n) / max(1e-9, sqrt(dot(along, along)))
        if cosine < cos(0.5 * .pi / 180) {
            throw ImagingError(String(format: "gantry tilt of %.1f°: slices are offset sideways along the stack; tilted series are not resampled", acos(min(1, cosine)) * 180 / .pi))
        }
        self.planes = sorted.map(\.1)
        step = (sorted.last!.0 - sorted.first!.0) / Double(planes.count - 1)
    }

    public var columns: Int { planes[0].columns }
    public var rows: Int { planes[0].rows }

    /// The index of the plane at `position` (within a quarter of the step), projected on the normal.
    public func index(at position: [Double]) -> Int? {
        guard let p0 = planes[0].position else { return nil }
        let d = (dot(position, normal) - dot(p0, normal)) / step
        guard d.isFinite, d > -0.25, d < Double(planes.count) - 0.75 else { return nil }
        let i = Int(d.rounded())
        return abs(d - Double(i)) < 0.25 ? i : nil
    }

    /// The plane of an image (and frame, 1-based as DICOM counts). Without a frame number a
    /// multi-frame image names no single plane: nil, so that callers fall back to the position.
    public func index(sop: String, frame: Int? = nil) -> Int? {
        let matches = planes.indices.filter { planes[$0].sopInstanceUID == sop }
        guard let frame else { return matches.count == 1 ? matches[0] : nil }
        return matches.first { planes[$0].frame == frame - 1 }
    }

    /// Pixel coordinates (column, row) of a patient-space point in the plane geometry.
    public func pixel(_ point: [Double], plane: Int) -> (x: Double, y: Double) {
        let p = planes[plane], o = p.orientation
        let origin = p.position ?? [0, 0, 0]
        let d = zip(point, origin).map { $0 - $1 }
        return (dot(d, Array(o[0..<3])) / p.pixelSpacing[1], dot(d, Array(o[3..<6])) / p.pixelSpacing[0])
    }

    /// Decodes the planes into one volume: x along rows (the row direction), y down the columns,
    /// z along the normal; values after the modality rescale (CT in HU).
    public func volume() throws -> Volume {
        let (cols, rows) = (columns, rows)
        var samples = 0
        var voxels: [Float] = []
        var decoded: [URL: [[Float]]] = [:]
        for p in planes {
            // Frames of one file decode with its first plane's rescale, corrected per frame below.
            let first = planes.first { $0.url == p.url }!
            if decoded[p.url] == nil {
                let file = try DICOMFile(p.url)
                let f = try file.frames(slope: first.slope, intercept: first.intercept)
                guard f.columns == cols, f.rows == rows else { throw ImagingError("pixel data is \(f.columns)×\(f.rows), the header says \(cols)×\(rows)") }
                if samples == 0 {
                    samples = f.samples
                    voxels.reserveCapacity(cols * rows * samples * planes.count)
                } else if f.samples != samples { throw ImagingError("series mixes grey and colour images") }
                decoded = [p.url: f.frames]
            }
            guard let frames = decoded[p.url], p.frame < frames.count else { throw ImagingError("frame \(p.frame + 1) is missing from its file") }
            if p.slope == first.slope && p.intercept == first.intercept { voxels += frames[p.frame] } else {
                voxels += frames[p.frame].map { (($0 - Float(first.intercept)) / Float(first.slope)) * Float(p.slope) + Float(p.intercept) }
            }
        }
        let o = planes[0].orientation
        let direction = [o[0], o[3], normal[0], o[1], o[4], normal[1], o[2], o[5], normal[2]]
        return Volume(size: [cols, rows, planes.count], components: samples,
                      spacing: [planes[0].pixelSpacing[1], planes[0].pixelSpacing[0], step],
                      origin: planes[0].position ?? [0, 0, 0], direction: direction, voxels: voxels,
                      isIntegral: planes.allSatisfy { $0.slope == 1 && $0.intercept == $0.intercept.rounded() })
    }
}

func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
func cross(_ a: [Double], _ b: [Double]) -> [Double] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
private func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
