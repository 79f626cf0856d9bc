import Foundation
import Imaging
import Yams

public struct ManifestError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// A dataset's description: what the files themselves do not say. See manifests/README.md.
public struct Manifest: Sendable {
    public enum Layout: String, CaseIterable, Sendable {
        case msd, nnunet, kits, brats, acdc, camus, isic, kvasir, drive, paired, dicom
    }

    public var name: String
    public var title: String?
    public var layout: Layout
    public var modality: String?
    /// Label value → class name (canonical, resolved through the vocabulary).
    public var labels: [Int: String]
    public var ignore: Set<Int>
    /// DICOM segment labels and ROI names (lowercased) → class, before the vocabulary's own names.
    public var names: [String: String] = [:]
    /// DICOM segment labels and ROI names (lowercased) deliberately not ingested ("external", "couch").
    public var ignoreNames: Set<String> = []
    public var binarize: Double?
    public var intensity: IntensityPolicy?
    /// Channel key (file suffix or MSD channel index) → modality, in file order.
    public var channels: [(key: String, modality: String)]
    public var detectFolder: String?
    /// Regex on the names of the files in the dataset folder (two levels): tells editions of one
    /// layout apart by their file naming (BraTS 2023's `-t1n`, KiTS21's `aggregated_MAJ_seg`).
    public var detectFile: String?
    public var isLayoutDefault: Bool
    /// For datasets that no manifest describes: label values are kept as they are, 1 and 255 (the
    /// binary conventions) as the class `foreground`, any other value v as `foreground_v`.
    public var foreground: String?
    public var casePattern: String?
    public var licence: String?, citation: String?, homepage: String?
    /// The YAML text, stored in the catalog with the dataset.
    public var source: String

    public static let modalities: Set<String> = [
        "ct", "mr_t1", "mr_t1ce", "mr_t2", "mr_flair", "mr_adc", "mr_dwi", "mr_pd", "mr", "pet", "x_ray",
        "ultrasound", "dermoscopy", "endoscopy", "fundus", "oct", "histology", "microscopy",
    ]

    public static func parse(_ yaml: String, file: String, vocabulary: ClassVocabulary) throws -> Manifest {
        func bad(_ what: String) -> ManifestError { ManifestError("\(file): \(what)") }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: yaml) } catch { throw bad("not valid YAML (\(error))") }
        guard let map = loaded as? [String: Any] else { throw bad("expected a mapping at the top level") }
        func string(_ key: String) -> String? { (map[key] as? String) ?? (map[key].flatMap { $0 is NSNull ? nil : "\($0)" }) }
        guard let name = string("name"), name.range(of: "^[a-z0-9][a-z0-9_-]*$", options: .regularExpression) != nil else {
            throw bad("'name' is missing or not lowercase [a-z0-9_-]")
        }
        guard let layoutName = string("layout"), let layout = Layout(rawValue: layoutName) else {
            throw bad("'layout' must be one of \(Layout.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let modality = string("modality")
        if let m = modality, !modalities.contains(m) {
            throw bad("unknown modality '\(m)'; use one of \(modalities.sorted().joined(separator: ", "))")
        }
        var labels: [Int: String] = [:]
        for (k, v) in (map["labels"] as? [AnyHashable: Any]) ?? [:] {
            let key = "\(k.base)", raw = "\(v)"
            guard let cls = vocabulary.resolve(raw) else {
                throw bad("label \(key): class '\(raw)' is not in classes.yaml (add it, or one of its aliases)")
            }
            let bounds = key.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let lo = bounds.first ?? nil, let hi = bounds.last ?? nil, bounds.count <= 2, lo <= hi, lo > 0 else {
                throw bad("label key '\(key)' must be a positive value or a range 'a-b'")
            }
            for value in lo...hi {
                if labels[value] != nil { throw bad("label value \(value) is mapped twice") }
                labels[value] = cls
            }
        }
        var names: [String: String] = [:]
        for (k, v) in (map["names"] as? [AnyHashable: Any]) ?? [:] {
            guard let cls = vocabulary.resolve("\(v)") else { throw bad("names: '\(k.base)' maps to '\(v)', which is not in classes.yaml") }
            names["\(k.base)".lowercased()] = cls
        }
        var channels: [(String, String)] = []
        if let c = map["channels"] as? [AnyHashable: Any] {
            channels = c.map { ("\($0.key.base)", "\($0.value)") }.sorted { $0.0 < $1.0 }
        } else if let c = map["channels"] as? [Any] {
            channels = c.enumerated().map { (String($0.offset), "\($0.element)") }
        }
        for (_, m) in channels where !modalities.contains(m) { throw bad("channel modality '\(m)' is unknown") }
        var intensity: IntensityPolicy?
        if let i = map["intensity"] as? [String: Any] {
            func num(_ k: String, _ d: Double) throws -> Double {
                guard let v = i[k] else { return d }
                guard let x = Double("\(v)") else { throw bad("intensity.\(k) must be a number") }
                return x
            }
            switch i["policy"] as? String {
            case "window": intensity = .window(width: try num("width", 400), level: try num("level", 40))
            case "percentile": intensity = .percentile(lower: try num("lower", 0.5), upper: try num("upper", 99.5))
            case "minmax": intensity = .minMax
            case "none": intensity = IntensityPolicy.none
            default: throw bad("intensity.policy must be window, percentile, minmax or none")
            }
            if let p = intensity?.problem { throw bad("intensity: \(p)") }
        }
        let detect = map["detect"] as? [String: Any] ?? [:]
        for key in ["folder", "file"] {
            if let re = detect[key] as? String, (try? NSRegularExpression(pattern: re)) == nil { throw bad("detect.\(key) is not a valid regex") }
        }
        return Manifest(
            name: name, title: string("title"), layout: layout, modality: modality, labels: labels,
            ignore: Set(((map["ignore"] as? [Any]) ?? []).compactMap { Int("\($0)") }),
            names: names, ignoreNames: Set(((map["ignore_names"] as? [Any]) ?? []).map { "\($0)".lowercased() }),
            binarize: map["binarize"].flatMap { Double("\($0)") }, intensity: intensity, channels: channels,
            detectFolder: detect["folder"] as? String, detectFile: detect["file"] as? String, isLayoutDefault: (detect["default"] as? Bool) ?? false,
            casePattern: string("case_pattern"), licence: string("licence"), citation: string("citation"),
            homepage: string("homepage"), source: yaml)
    }

    func matchesFolder(_ name: String) -> Bool {
        guard let re = detectFolder else { return false }
        return name.range(of: re, options: .regularExpression) != nil
    }

    func matchesFiles(_ names: [String]) -> Bool {
        guard let re = detectFile else { return false }
        return names.contains { $0.range(of: re, options: .regularExpression) != nil }
    }

    /// The class of a label value when no manifest names it (see `foreground`).
    func keptClass(_ value: Int) -> String? {
        guard let fg = foreground else { return nil }
        return value == 1 || value == 255 ? fg : "\(fg)_\(value)"
    }

    /// The intensity policy for an image: the manifest's, else the modality default
    /// (CT: soft-tissue window; 8-bit 2D pictures: unchanged; everything else: percentile clip).
    /// `isBytePicture`: whether the image is a 2D picture of integers 0…255; asked only when nothing
    /// else decides, since it may have to look at every pixel.
    func intensityPolicy(modality: String, override: IntensityPolicy?, isBytePicture: () -> Bool) -> IntensityPolicy {
        if let o = override { return o }
        if let i = intensity { return i }
        if modality == "ct" { return .ctSoftTissue }
        if isBytePicture() { return IntensityPolicy.none }
        return .defaultPercentile
    }
}

/// The manifests compiled into the binary (generated from manifests/ by tools/embed-manifests.py).
public struct ManifestLibrary: Sendable {
    public let vocabulary: ClassVocabulary
    public let manifests: [Manifest]

    public static func builtin() throws -> ManifestLibrary {
        guard let classes = BuiltinManifests.files["classes.yaml"] else { throw ManifestError("classes.yaml is not embedded") }
        let vocabulary = try ClassVocabulary(yaml: classes)
        let manifests = try BuiltinManifests.files.filter { $0.key != "classes.yaml" }.sorted { $0.key < $1.key }
            .map { try Manifest.parse($0.value, file: "manifests/\($0.key)", vocabulary: vocabulary) }
        return ManifestLibrary(vocabulary: vocabulary, manifests: manifests)
    }

    public func manifest(named name: String) -> Manifest? { manifests.first { $0.name == name } }

    /// The built-in manifest that names a folder recognised as `layout`: one whose file regex
    /// matches its files, else one whose folder regex matches its name or, nearest first, one of
    /// the folders above it (`folders`); with the folder it matched (nil: matched by files).
    func named(layout: Manifest.Layout, folders: [String], files: [String]) -> (manifest: Manifest, folder: Int?)? {
        let candidates = manifests.filter { $0.layout == layout }
        if let m = candidates.first(where: { $0.matchesFiles(files) }) { return (m, nil) }
        for (i, f) in folders.enumerated() {
            if let m = candidates.first(where: { $0.matchesFolder(f) }) { return (m, i) }
        }
        return nil
    }

    func layoutDefault(_ layout: Manifest.Layout) -> Manifest? { manifests.first { $0.layout == layout && $0.isLayoutDefault } }
}
