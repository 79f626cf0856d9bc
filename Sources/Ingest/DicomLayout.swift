import Foundation
import Hashing
import Imaging

/// One DICOM unit: the planes of a series (or one plane of a series without geometry) and the
/// SEG and RTSTRUCT objects that annotate it.
public struct DicomUnit: Sendable {
    public var planes: [DICOMPlane]
    public var segmentations: [URL]
    public var structureSets: [URL]
    /// Every file the unit reads, for change detection and the content hash.
    public var files: [URL] { Array(Set(planes.map(\.url))).sorted { $0.path < $1.path } + segmentations + structureSets }
}

/// DICOM folders: any tree of DICOM files, grouped into series by Series Instance UID. Nothing that
/// identifies a patient or a file enters the catalog or the logs: units, cases and rejected files
/// are named by hashes salted with the catalog's secret.
enum DicomLayout {
    /// A folder holds DICOM when one of its first files (up to five levels down) has the DICM
    /// preamble or a .dcm extension.
    static func contains(_ dir: URL) -> Bool {
        var looked = 0
        func search(_ d: URL, _ depth: Int) -> Bool {
            for c in FS.children(d) where !FS.isHidden(c) {
                if looked >= 200 { return false }
                if FS.isDirectory(c) {
                    if depth > 1 && search(c, depth - 1) { return true }
                } else {
                    looked += 1
                    if isDICOM(c) { return true }
                }
            }
            return false
        }
        return search(dir, 5)
    }

    static func isDICOM(_ url: URL) -> Bool {
        if url.pathExtension.lowercased() == "dcm" { return true }
        guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 132)) ?? Data()
        return head.count == 132 && head.suffix(4) == Data("DICM".utf8)
    }

    /// "prefix-" and 16 hex digits of XXH3-128 over salt and value.
    static func anonymous(_ prefix: String, _ value: String, salt: String) -> String {
        "\(prefix)-\(ContentHash.hex(Data((salt + "\u{0}" + value).utf8)).prefix(16))"
    }

    static func modality(tag: String) -> String? {
        switch tag.uppercased() {
        case "CT": "ct"
        case "MR": "mr"
        case "PT": "pet"
        case "US": "ultrasound"
        case "CR", "DX", "DR", "RF", "XA", "MG", "IO", "PX": "x_ray"
        case "OCT", "OPT": "oct"
        case "OP": "fundus"
        case "ES": "endoscopy"
        case "SM": "histology"
        case "XC": "dermoscopy"
        default: nil
        }
    }

    static func pair(_ plan: inout DatasetPlan, salt: String, keepPaths: Bool) {
        let root = plan.root
        // A DICOMDIR (the standard fixes its name) only indexes the other files.
        let files = FS.files(root, depth: 12).filter { !FS.isHidden($0) && $0.lastPathComponent.uppercased() != "DICOMDIR" }
        func key(_ prefix: String, _ value: String) -> String { anonymous(prefix, value, salt: salt) }
        func fileKey(_ url: URL) -> String { keepPaths ? FS.relative(url, to: root) : key("file", FS.relative(url, to: root)) }

        // Headers in parallel: scanning is I/O and parsing, one file at a time.
        var headers = [Result<DICOMHeader, Error>?](repeating: nil, count: files.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: files.count) { i in
            let r = Result { try DICOMHeader.read(files[i]) }
            lock.lock(); headers[i] = r; lock.unlock()
        }
        var series: [String: [DICOMHeader]] = [:]
        var annotations: [DICOMHeader] = []
        for (url, result) in zip(files, headers) {
            switch result! {
            case .failure(let e):
                let reason = isDICOM(url) ? "unreadable DICOM file: \((e as? ImagingError)?.message ?? "\(e)")" : "not a DICOM file"
                plan.problems.append((fileKey(url), reason))
            case .success(let h):
                // Dose grids and waveforms carry numbers, not pictures to segment.
                if h.isSegmentation || h.isStructureSet { annotations.append(h) } else if h.hasPixels && !h.planes.isEmpty && !["RTDOSE", "ECG"].contains(h.modality) {
                    series[h.seriesInstanceUID, default: []].append(h)
                } else {
                    plan.problems.append((fileKey(url), "DICOM \(h.modality.isEmpty ? "object" : h.modality + " object") that is neither an image to segment nor a SEG or RTSTRUCT"))
                }
            }
        }
        var annotating: [String: [DICOMHeader]] = [:]
        var seriesOfImage: [String: String] = [:]
        for (uid, members) in series { for m in members { seriesOfImage[m.sopInstanceUID] = uid } }
        for a in annotations {
            // The series references, else the series of the images its contours name, else the
            // series in its frame of reference (all optional in an RTSTRUCT).
            var targets = a.referencedSeries.filter { series[$0] != nil }
            if targets.isEmpty { targets = Set(a.referencedImages.compactMap { seriesOfImage[$0] }).sorted() }
            if targets.isEmpty {
                let frames = a.isSegmentation ? [a.frameOfReferenceUID] : a.referencedFramesOfReference
                targets = series.filter { frames.contains($0.value[0].frameOfReferenceUID) && !$0.value[0].frameOfReferenceUID.isEmpty }.keys.sorted()
            }
            if targets.isEmpty {
                plan.problems.append((fileKey(a.url), "\(a.isSegmentation ? "SEG" : "RTSTRUCT") refers to no image series in this folder"))
            }
            for t in targets { annotating[t, default: []].append(a) }
        }
        for (uid, members) in series.sorted(by: { $0.key < $1.key }) {
            let seriesKey = keepPaths ? "series \(members[0].seriesNumber.map(String.init) ?? "?") \(uid)" : key("series", uid)
            guard let notes = annotating[uid] else {
                plan.problems.append((seriesKey, "no SEG or RTSTRUCT in the folder refers to this series (\(members.count) image\(members.count == 1 ? "" : "s"))"))
                continue
            }
            let first = members[0]
            let patient = first.patientID.isEmpty ? first.studyInstanceUID : first.patientID
            let modality = plan.manifest.modality ?? modality(tag: first.modality) ?? plan.fallbackModality ?? "unknown"
            let planes = members.flatMap(\.planes)
            let segs = notes.filter(\.isSegmentation).map(\.url), structs = notes.filter(\.isStructureSet).map(\.url)
            // Pictures without a position (radiographs, ultrasound loops) are separate 2D images.
            let groups = planes.count > 1 && planes.contains(where: { $0.position == nil }) ? planes.map { [$0] } : [planes]
            for (g, group) in groups.enumerated() {
                let unit = DicomUnit(planes: group, segmentations: segs, structureSets: structs)
                plan.items.append(WorkItem(
                    dataset: plan.manifest.name, caseName: plan.prefix + key("patient", patient), image: group[0].url,
                    key: plan.prefix + seriesKey + (groups.count > 1 ? "#\(g)" : ""), mask: notes[0].url,
                    maskKey: notes.map { fileKey($0.url) }.joined(separator: ","), modality: modality, dicom: unit))
            }
        }
    }
}
