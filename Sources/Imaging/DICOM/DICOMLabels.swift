import Foundation

/// One annotated structure (a SEG segment or an RTSTRUCT ROI) on a series' grid.
public struct DICOMSegment: Sendable {
    /// A coded concept: scheme designator (SCT, DCM, …), code value, meaning.
    public struct Code: Sendable, Equatable {
        public var scheme: String, value: String, meaning: String
        public init(scheme: String, value: String, meaning: String) { self.scheme = scheme; self.value = value; self.meaning = meaning }
    }
    /// Names to resolve to a class, most specific first (segment label, then its coded meaning).
    public var names: [String]
    /// A SEG segment's Segmented Property Type, and its modifier (laterality) if any.
    public var type: Code?
    public var modifier: Code?
    /// Plane index in the series → columns×rows mask of 0/1.
    public var planes: [Int: [UInt8]]

    public init(names: [String], type: Code? = nil, modifier: Code? = nil, planes: [Int: [UInt8]]) {
        self.names = names; self.type = type; self.modifier = modifier; self.planes = planes
    }
}

/// Masks from DICOM annotation objects, placed on the planes of the series they annotate.
public enum DICOMLabels {
    /// DICOM-SEG: each frame belongs to one segment (Segment Identification) and one source plane,
    /// found through the frame's source image reference or, failing that, its position (frames on
    /// images outside the series are left out; none at all on it is an error). Fractional
    /// segmentations count a pixel as inside at half the maximum fractional value or more.
    public static func segmentation(_ url: URL, on series: DICOMSeries) throws -> [DICOMSegment] {
        let file = try DICOMFile(url)
        let d = file.root
        guard d.int(.rows) == series.rows, d.int(.columns) == series.columns else {
            throw ImagingError("segmentation frames are \(d.int(.columns) ?? 0)×\(d.int(.rows) ?? 0), the referenced series \(series.columns)×\(series.rows)")
        }
        var segments: [Int: DICOMSegment] = [:]
        for s in d.items(.segmentSequence) {
            guard let number = s.int(.segmentNumber) else { continue }
            let type = s.item(.segmentedPropertyTypeCodeSequence)
            let names = [s.string(.segmentLabel), type?.string(.codeMeaning)].compactMap { $0 }
            func code(_ item: DICOMItem?) -> DICOMSegment.Code? {
                guard let item, let scheme = item.string(.codingSchemeDesignator), let value = item.string(.codeValue) else { return nil }
                return DICOMSegment.Code(scheme: scheme, value: value, meaning: item.string(.codeMeaning) ?? "")
            }
            segments[number] = DICOMSegment(names: names, type: code(type), modifier: code(type?.item(.segmentedPropertyTypeModifierCodeSequence)), planes: [:])
        }
        let fractional = d.string(.segmentationType)?.uppercased() == "FRACTIONAL"
        let threshold = Float(fractional ? (d.double(.maximumFractionalValue) ?? 255) / 2 : 0.5)
        let shared = d.item(.sharedFunctionalGroupsSequence)
        if let o = shared?.item(.planeOrientationSequence)?.doubles(.imageOrientationPatient),
           !zip(o, series.planes[0].orientation).allSatisfy({ abs($0 - $1) < 1e-3 }) {
            throw ImagingError("segmentation planes are oriented differently from the referenced series")
        }
        let perFrame = d.items(.perFrameFunctionalGroupsSequence)
        let frames = try file.frames().frames
        guard perFrame.count == frames.count else {
            throw ImagingError("segmentation has \(frames.count) frames but \(perFrame.count) per-frame descriptions")
        }
        var unplaced = 0
        for (f, group) in perFrame.enumerated() {
            let number = group.item(.segmentIdentificationSequence)?.int(.referencedSegmentNumber)
                ?? shared?.item(.segmentIdentificationSequence)?.int(.referencedSegmentNumber)
            guard let number, segments[number] != nil else { throw ImagingError("frame \(f + 1) names no known segment") }
            var plane: Int?
            for derivation in group.items(.derivationImageSequence) {
                for source in derivation.items(.sourceImageSequence) {
                    if let uid = source.string(.referencedSOPInstanceUID) { plane = plane ?? series.index(sop: uid, frame: source.int(.referencedFrameNumber)) }
                }
            }
            if plane == nil, let p = group.item(.planePositionSequence)?.doubles(.imagePositionPatient) { plane = series.index(at: p) }
            // A SEG may cover several series (or pictures ingested one by one): frames of others are not ours.
            guard let k = plane else { unplaced += 1; continue }
            let values = frames[f]
            var mask = segments[number]!.planes[k] ?? [UInt8](repeating: 0, count: values.count)
            for i in values.indices where values[i] >= threshold { mask[i] = 1 }
            segments[number]!.planes[k] = mask
        }
        if unplaced == frames.count { throw ImagingError("none of the \(frames.count) segmentation frames matches an image of the series, by reference or position") }
        return segments.sorted { $0.key < $1.key }.map(\.value)
    }

    /// RTSTRUCT: closed planar contours filled on the plane they lie in (even-odd, so a contour
    /// inside another of the same ROI is a hole); pixel centres inside the polygon are set. Contours
    /// on images outside the series are left out; none at all on it is an error.
    public static func structureSet(_ url: URL, on series: DICOMSeries) throws -> [DICOMSegment] {
        let file = try DICOMFile(url)
        let d = file.root
        var names: [Int: String] = [:]
        for roi in d.items(.structureSetROISequence) {
            if let n = roi.int(.roiNumber) { names[n] = roi.string(.roiName) ?? "roi \(n)" }
        }
        var out: [DICOMSegment] = []
        var placed = 0, unplaced = 0
        for roi in d.items(.roiContourSequence) {
            guard let number = roi.int(.referencedROINumber), let name = names[number] else { continue }
            var segment = DICOMSegment(names: [name], planes: [:])
            for contour in roi.items(.contourSequence) {
                guard contour.string(.contourGeometricType)?.uppercased() == "CLOSED_PLANAR" else { continue }
                guard let data = contour.doubles(.contourData), data.count >= 9, data.count % 3 == 0 else {
                    throw ImagingError("ROI '\(name)': a contour's Contour Data is not x\\y\\z triplets")
                }
                let points = stride(from: 0, to: data.count, by: 3).map { Array(data[$0..<$0 + 3]) }
                let image = contour.item(.contourImageSequence)
                var plane = image?.string(.referencedSOPInstanceUID).flatMap { series.index(sop: $0, frame: image?.int(.referencedFrameNumber)) }
                if plane == nil { plane = series.index(at: points[0]) }
                // Contours on images of another series (or not ingested in this unit) are not ours.
                guard let k = plane else { unplaced += 1; continue }
                placed += 1
                let polygon = points.map { series.pixel($0, plane: k) }
                var mask = segment.planes[k] ?? [UInt8](repeating: 0, count: series.columns * series.rows)
                fill(polygon, into: &mask, columns: series.columns, rows: series.rows)
                segment.planes[k] = mask
            }
            out.append(segment)
        }
        if placed == 0 && unplaced > 0 { throw ImagingError("none of the \(unplaced) contours lies on an image of the series, by reference or position") }
        return out
    }

    /// Toggles the pixels whose centres lie inside the polygon (even-odd rule, half-open spans).
    static func fill(_ polygon: [(x: Double, y: Double)], into mask: inout [UInt8], columns: Int, rows: Int) {
        let ys = polygon.map(\.y)
        guard let lo = ys.min(), let hi = ys.max() else { return }
        guard lo.isFinite, hi.isFinite, hi >= 0, lo <= Double(rows - 1) else { return }
        let first = max(0, Int(max(lo, -1).rounded(.up))), last = min(rows - 1, Int(min(hi, Double(rows)).rounded(.down)))
        guard first <= last else { return }
        var xs: [Double] = []
        for row in first...last {
            let y = Double(row)
            xs.removeAll(keepingCapacity: true)
            for i in polygon.indices {
                let a = polygon[i], b = polygon[(i + 1) % polygon.count]
                if (a.y <= y && y < b.y) || (b.y <= y && y < a.y) {
                    xs.append(a.x + (y - a.y) / (b.y - a.y) * (b.x - a.x))
                }
            }
            xs.sort()
            for pair in stride(from: 0, to: xs.count - 1, by: 2) {
                // Clamped as Doubles first: a point far outside the image must not overflow Int.
                let a = min(max(xs[pair], -1), Double(columns)), b = min(max(xs[pair + 1], -1), Double(columns))
                let start = max(0, Int(a.rounded(.up))), end = min(columns - 1, Int(b.rounded(.up)) - 1)
                if start <= end { for c in start...end { mask[row * columns + c] ^= 1 } }
            }
        }
    }
}
