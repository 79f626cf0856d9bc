import Foundation
import Imaging

/// A DICOM tree written by the tests: a CT series (files shuffled, no extensions) annotated by a
/// DICOM-SEG (liver, and a kidney that overlaps it) and an RTSTRUCT (spleen with a hole, an ignored
/// "External", an unknown name); an MR series with a missing slice; a broken file; a text file;
/// a DICOMDIR.
enum DICOMScene {
    static let patientID = "SECRET-PATIENT-42", patientName = "DOE^JANE", folder = "DOE_JANE_SECRET-42"
    static let studyUID = "1.2.826.0.1.3680043.10.1234.1", ctSeriesUID = "1.2.826.0.1.3680043.10.1234.2"
    static let frameUID = "1.2.826.0.1.3680043.10.1234.3"
    static let ctClass = "1.2.840.10008.5.1.4.1.1.2", mrClass = "1.2.840.10008.5.1.4.1.1.4"
    static let (size, slices, spacing, step, z0) = (64, 12, 0.8, 2.5, -10.0)
    static let origin = [-25.6, -30.0]

    static func ctUID(_ k: Int) -> String { "\(ctSeriesUID).\(k + 1)" }
    static func position(_ k: Int) -> [Double] { [origin[0], origin[1], z0 + Double(k) * step] }
    /// Stored value at (x, y) of slice k; HU = stored − 1024.
    static func stored(_ x: Int, _ y: Int, _ k: Int) -> Int { 900 + (x * 7 + y * 3 + k * 11) % 400 }

    /// Rectangles in pixels (x0, y0, x1, y1 inclusive) and the slices they are on.
    static let liver = (box: (10, 20, 29, 34), slices: 2...5)      // 20×15 = 300 px
    static let kidney = (box: (25, 25, 36, 36), slices: 4...10)    // 12×12 = 144 px, overlaps the liver on 4–5
    static let spleen = (box: (40, 40, 59, 59), slices: 8...10)    // 20×20 = 400 px, a 5×5 hole on slice 9

    typealias E = DICOMWriter.Element
    static func common(modality: String, series: String, number: Int) -> [E] {
        [
            DICOMWriter.text(0x0008, 0x0060, "CS", modality), DICOMWriter.text(0x0010, 0x0010, "PN", patientName),
            DICOMWriter.text(0x0010, 0x0020, "LO", patientID), DICOMWriter.text(0x0020, 0x000D, "UI", studyUID),
            DICOMWriter.text(0x0020, 0x000E, "UI", series), DICOMWriter.text(0x0020, 0x0011, "IS", "\(number)"),
            DICOMWriter.text(0x0020, 0x0052, "UI", frameUID),
        ]
    }

    static func image(modality: String, series: String, number: Int, uid: String, position: [Double], pixels: [Int]) -> [E] {
        common(modality: modality, series: series, number: number) + [
            DICOMWriter.text(0x0020, 0x0032, "DS", DICOMWriter.ds(position)),
            DICOMWriter.text(0x0020, 0x0037, "DS", DICOMWriter.ds([1, 0, 0, 0, 1, 0])),
            DICOMWriter.us(0x0028, 0x0002, 1), DICOMWriter.text(0x0028, 0x0004, "CS", "MONOCHROME2"),
            DICOMWriter.us(0x0028, 0x0010, size), DICOMWriter.us(0x0028, 0x0011, size),
            DICOMWriter.text(0x0028, 0x0030, "DS", DICOMWriter.ds([spacing, spacing])),
            DICOMWriter.us(0x0028, 0x0100, 16), DICOMWriter.us(0x0028, 0x0101, 16), DICOMWriter.us(0x0028, 0x0102, 15),
            DICOMWriter.us(0x0028, 0x0103, 0),
            DICOMWriter.text(0x0028, 0x1052, "DS", "-1024"), DICOMWriter.text(0x0028, 0x1053, "DS", "1"),
            E(0x7fe0, 0x0010, .bytes("OW", pixels.flatMap { DICOMWriter.le16($0) })),
        ]
    }

    /// A coded concept: scheme, value, meaning.
    typealias Code = (scheme: String, value: String, meaning: String)
    typealias Segment = (label: String, type: Code?, modifier: Code?)
    static let plainSegments: [Segment] = [("Liver", nil, nil), ("Kidney", nil, nil)]
    /// As a public collection codes them: generic labels, the meaning in the property type.
    static let codedSegments: [Segment] = [
        ("Segment_1", ("SCT", "86049000", "Neoplasm, Primary"), nil),
        ("Segment_2", ("SCT", "39607008", "Lung"), ("SCT", "7771000", "Left")),
    ]

    /// With `clinical`, the SEG is coded as `codedSegments` and the RTSTRUCT carries the names a
    /// treatment-planning system writes (see `writeClinicalStructures`).
    static func write(to root: URL, clinical: Bool = false) throws {
        let patient = root.appendingPathComponent(folder)
        // CT slices in shuffled order under opaque names.
        for (n, k) in [7, 2, 11, 0, 5, 9, 1, 4, 10, 3, 8, 6].enumerated() {
            let pixels = (0..<size * size).map { stored($0 % size, $0 / size, k) }
            try DICOMWriter.write(image(modality: "CT", series: ctSeriesUID, number: 2, uid: ctUID(k), position: position(k), pixels: pixels),
                                  sopClass: ctClass, sopInstance: ctUID(k), to: patient.appendingPathComponent("ct/IM\(String(format: "%04d", n * 37 % 1000))"))
        }
        try writeSEG(to: patient.appendingPathComponent("seg/segmentation.dcm"), segments: clinical ? codedSegments : plainSegments)
        if clinical { try writeClinicalStructures(to: patient.appendingPathComponent("rt/structures.dcm")) } else {
            try writeRTSTRUCT(to: patient.appendingPathComponent("rt/structures.dcm"))
        }

        // An MR series with slice 3 of 6 missing, annotated, so the gap is found when it is read.
        let mrSeries = "1.2.826.0.1.3680043.10.1234.20"
        for k in [0, 1, 2, 4, 5] {
            let pixels = (0..<size * size).map { 100 + ($0 + k) % 50 }
            try DICOMWriter.write(image(modality: "MR", series: mrSeries, number: 5, uid: "\(mrSeries).\(k + 1)", position: position(k), pixels: pixels),
                                  sopClass: mrClass, sopInstance: "\(mrSeries).\(k + 1)", to: patient.appendingPathComponent("mr/\(k).dcm"))
        }
        try writeRTSTRUCT(to: patient.appendingPathComponent("mr/rt.dcm"), series: mrSeries, uid: "\(mrSeries).99", roiSlices: 1...2, uidOf: { "\(mrSeries).\($0 + 1)" })
        // A file cut inside its header, and a stray text file.
        let whole = try Data(contentsOf: patient.appendingPathComponent("ct/IM0000"))
        try whole.prefix(300).write(to: patient.appendingPathComponent("ct/broken.dcm"))
        try Data("scanned with protocol 7".utf8).write(to: patient.appendingPathComponent("notes.txt"))
        // A media directory, as on exported discs: it indexes the files and is not ingested.
        try DICOMWriter.write([DICOMWriter.text(0x0004, 0x1130, "CS", "EXPORT")], sopClass: "1.2.840.10008.1.3.10",
                              sopInstance: "1.2.826.0.1.3680043.10.1234.50", to: root.appendingPathComponent("DICOMDIR"))
    }

    static func rectangle(_ b: (Int, Int, Int, Int)) -> [UInt8] {
        (0..<size * size).map { i in (b.0...b.2).contains(i % size) && (b.1...b.3).contains(i / size) ? 1 : 0 }
    }

    /// Binary (one bit per pixel) or fractional (one byte: 204 inside, 100 in a ring around, which
    /// is under half of the maximum 255 and must not count).
    /// ROI name → its box, on slices 8…10: anatomy in clinical spellings, an RT target, structures
    /// that are not anatomy, and names no vocabulary has.
    static let clinicalROIs: [(name: String, box: (Int, Int, Int, Int))] = [
        ("GTVp_1", (40, 40, 59, 59)), ("Lt Lung", (2, 2, 20, 20)), ("Nodes", (2, 40, 15, 55)), ("Tumor Bed", (22, 44, 35, 57)),
        ("Body", (0, 0, 63, 63)), ("Couch Surface", (0, 60, 63, 63)), ("zPTV_opt", (38, 38, 61, 61)), ("SpinalCord_PRV05", (28, 2, 40, 14)),
    ]

    static func writeClinicalStructures(to url: URL) throws {
        try writeStructureSet(to: url, series: ctSeriesUID, uid: "1.2.826.0.1.3680043.10.1234.41",
                              rois: clinicalROIs.map { roi in (roi.name, (8...10).map { (ctUID($0), contour(roi.box, slice: $0)) }) })
    }

    static func writeSEG(to url: URL, fractional: Bool = false, segments definitions: [Segment] = plainSegments) throws {
        var frames: [(segment: Int, slice: Int, mask: [UInt8])] = []
        for k in liver.slices { frames.append((1, k, rectangle(liver.box))) }
        for k in kidney.slices { frames.append((2, k, rectangle(kidney.box))) }
        // A frame on an image of another series (90 mm up, unknown SOP instance): left out.
        frames.append((1, 40, rectangle(liver.box)))
        let bits = frames.flatMap(\.mask)
        var packed: [UInt8]
        if fractional {
            packed = frames.flatMap { f -> [UInt8] in
                let b = f.segment == 1 ? liver.box : kidney.box
                let ring = rectangle((b.0 - 2, b.1 - 2, b.2 + 2, b.3 + 2))
                return zip(f.mask, ring).map { inside, near in inside != 0 ? 204 : near != 0 ? 100 : 0 }
            }
        } else {
            // One bit per pixel, frames packed back to back (64×64 frames stay byte-aligned anyway).
            packed = [UInt8](repeating: 0, count: (bits.count + 7) / 8)
            for i in bits.indices where bits[i] != 0 { packed[i >> 3] |= 1 << (i & 7) }
        }
        let depth = fractional ? 8 : 1
        let perFrame: [[E]] = frames.map { f in
            var groups: [E] = [
                DICOMWriter.seq(0x0062, 0x000A, [[DICOMWriter.us(0x0062, 0x000B, f.segment)]]),
                DICOMWriter.seq(0x0020, 0x9113, [[DICOMWriter.text(0x0020, 0x0032, "DS", DICOMWriter.ds(position(f.slice)))]]),
            ]
            // The kidney's last frame is placed by its position only.
            if !(f.segment == 2 && f.slice == 10) {
                groups.append(DICOMWriter.seq(0x0008, 0x9124, [[DICOMWriter.seq(0x0008, 0x2112, [[
                    DICOMWriter.text(0x0008, 0x1150, "UI", ctClass), DICOMWriter.text(0x0008, 0x1155, "UI", ctUID(f.slice)),
                ]])]]))
            }
            return groups
        }
        func code(_ c: Code) -> [E] {
            [DICOMWriter.text(0x0008, 0x0100, "SH", c.value), DICOMWriter.text(0x0008, 0x0102, "SH", c.scheme), DICOMWriter.text(0x0008, 0x0104, "LO", c.meaning)]
        }
        let segments: [[E]] = definitions.enumerated().map { n, d in
            var item = [DICOMWriter.us(0x0062, 0x0004, n + 1), DICOMWriter.text(0x0062, 0x0005, "LO", d.label), DICOMWriter.text(0x0062, 0x0008, "CS", "MANUAL")]
            if let t = d.type {
                item.append(DICOMWriter.seq(0x0062, 0x000F, [code(t) + (d.modifier.map { [DICOMWriter.seq(0x0062, 0x0011, [code($0)])] } ?? [])]))
            }
            return item
        }
        let uid = "1.2.826.0.1.3680043.10.1234.30"
        let elements = common(modality: "SEG", series: uid, number: 30) + [
            DICOMWriter.seq(0x0008, 0x1115, [[DICOMWriter.text(0x0020, 0x000E, "UI", ctSeriesUID)]]),
            DICOMWriter.text(0x0020, 0x0013, "IS", "1"),
            DICOMWriter.us(0x0028, 0x0002, 1), DICOMWriter.text(0x0028, 0x0004, "CS", "MONOCHROME2"),
            DICOMWriter.text(0x0028, 0x0008, "IS", "\(frames.count)"),
            DICOMWriter.us(0x0028, 0x0010, size), DICOMWriter.us(0x0028, 0x0011, size),
            DICOMWriter.us(0x0028, 0x0100, depth), DICOMWriter.us(0x0028, 0x0101, depth), DICOMWriter.us(0x0028, 0x0102, depth - 1),
            DICOMWriter.us(0x0028, 0x0103, 0),
            DICOMWriter.text(0x0062, 0x0001, "CS", fractional ? "FRACTIONAL" : "BINARY"), DICOMWriter.seq(0x0062, 0x0002, segments),
            DICOMWriter.text(0x0062, 0x0010, "CS", "PROBABILITY"), DICOMWriter.us(0x0062, 0x000E, 255),
            DICOMWriter.seq(0x5200, 0x9229, [[
                DICOMWriter.seq(0x0020, 0x9116, [[DICOMWriter.text(0x0020, 0x0037, "DS", DICOMWriter.ds([1, 0, 0, 0, 1, 0]))]]),
                DICOMWriter.seq(0x0028, 0x9110, [[DICOMWriter.text(0x0028, 0x0030, "DS", DICOMWriter.ds([spacing, spacing])),
                                                  DICOMWriter.text(0x0018, 0x0050, "DS", DICOMWriter.ds([step]))]]),
            ]]),
            DICOMWriter.seq(0x5200, 0x9230, perFrame),
            DICOMWriter.Element(0x7fe0, 0x0010, .bytes("OB", packed)),
        ]
        try DICOMWriter.write(elements, sopClass: SOPClass.segmentation, sopInstance: uid + ".1", to: url)
    }

    /// A closed contour around pixel rectangle `b` (edges half a pixel outside the pixel centres).
    static func contour(_ b: (Int, Int, Int, Int), slice k: Int) -> [Double] {
        let corners = [(b.0, b.1), (b.2 + 1, b.1), (b.2 + 1, b.3 + 1), (b.0, b.3 + 1)]
        return corners.flatMap { c, r in
            [origin[0] + (Double(c) - 0.5) * spacing, origin[1] + (Double(r) - 0.5) * spacing, position(k)[2]]
        }
    }

    /// Without `referencesSeries`, the optional Referenced Frame of Reference Sequence is left out and
    /// only the contours' image references tie the object to its series. With `brokenContour`, one
    /// contour's data is not x\y\z triplets.
    static func writeRTSTRUCT(to url: URL, series: String = ctSeriesUID, uid: String = "1.2.826.0.1.3680043.10.1234.40",
                              roiSlices: ClosedRange<Int> = spleen.slices, uidOf: (Int) -> String = ctUID,
                              referencesSeries: Bool = true, brokenContour: Bool = false) throws {
        var spleenContours = roiSlices.map { (uidOf($0), contour(spleen.box, slice: $0)) }
        if brokenContour { spleenContours[0].1.removeLast() }
        if roiSlices.contains(9) { spleenContours.append((uidOf(9), contour((47, 47, 51, 51), slice: 9))) }  // the hole
        let k = roiSlices.lowerBound
        try writeStructureSet(to: url, series: series, uid: uid, referencesSeries: referencesSeries, rois: [
            ("Spleen", spleenContours),
            ("External", [(uidOf(k), contour((0, 0, 63, 63), slice: k))]),
            ("Mystery Blob", [(uidOf(k), contour((2, 2, 20, 20), slice: k))]),
        ])
    }

    /// An RTSTRUCT on any series: per ROI, closed contours as (referenced image, x\y\z points in mm).
    static func writeStructureSet(to url: URL, series: String, uid: String, imageClass: String = ctClass, referencesSeries: Bool = true,
                                  rois: [(name: String, contours: [(image: String, points: [Double])])]) throws {
        func item(_ image: String, _ points: [Double]) -> [E] {
            [
                DICOMWriter.seq(0x3006, 0x0016, [[DICOMWriter.text(0x0008, 0x1150, "UI", imageClass), DICOMWriter.text(0x0008, 0x1155, "UI", image)]]),
                DICOMWriter.text(0x3006, 0x0042, "CS", "CLOSED_PLANAR"), DICOMWriter.text(0x3006, 0x0046, "IS", "\(points.count / 3)"),
                DICOMWriter.text(0x3006, 0x0050, "DS", DICOMWriter.ds(points)),
            ]
        }
        let references = referencesSeries ? [DICOMWriter.seq(0x3006, 0x0010, [[
            DICOMWriter.text(0x0020, 0x0052, "UI", frameUID),
            DICOMWriter.seq(0x3006, 0x0012, [[DICOMWriter.text(0x0008, 0x1155, "UI", studyUID),
                                              DICOMWriter.seq(0x3006, 0x0014, [[DICOMWriter.text(0x0020, 0x000E, "UI", series)]])]]),
        ]])] : []
        let numbered = Array(rois.enumerated())
        let elements = common(modality: "RTSTRUCT", series: uid, number: 40) + references + [
            DICOMWriter.seq(0x3006, 0x0020, numbered.map { n, roi in
                [DICOMWriter.text(0x3006, 0x0022, "IS", "\(n + 1)"), DICOMWriter.text(0x3006, 0x0024, "UI", frameUID), DICOMWriter.text(0x3006, 0x0026, "LO", roi.name)]
            }),
            DICOMWriter.seq(0x3006, 0x0039, numbered.map { n, roi in
                [DICOMWriter.text(0x3006, 0x0084, "IS", "\(n + 1)"), DICOMWriter.seq(0x3006, 0x0040, roi.contours.map { item($0.image, $0.points) })]
            }),
        ]
        try DICOMWriter.write(elements, sopClass: SOPClass.rtStructureSet, sopInstance: uid + ".1", to: url)
    }
}
