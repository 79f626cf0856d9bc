import Foundation
import Imaging

/// How a label or structure name becomes a class.
enum ClassChoice: Equatable {
    /// A classes.yaml class.
    case mapped(String)
    /// A name classes.yaml does not know, kept under its normalised form.
    case unmapped(String)
    /// A DICOM structure that is not anatomy (documented default: not ingested, named in the log).
    case skipped(String)

    var className: String? {
        switch self {
        case let .mapped(c), let .unmapped(c): c
        case .skipped: nil
        }
    }
}

/// Names of labels (dataset.json) and DICOM structures (RTSTRUCT ROIs, SEG segments) → classes.
///
/// Order for a structure: the manifest's `ignore_names` and `names`; a SEG segment's coded property
/// type (SNOMED CT, DICOM codes; with its Left/Right modifier); structures that are not anatomy;
/// RT target volumes by prefix; the vocabulary's loose name match; else the name itself, unmapped.
struct StructureNames {
    var manifest: Manifest
    var vocabulary: ClassVocabulary

    /// A dataset.json label name. Labels are data: none is skipped.
    func label(_ name: String) -> ClassChoice {
        if let c = Self.target(name) ?? vocabulary.match(name) { return .mapped(c) }
        return .unmapped(ClassVocabulary.normalise(name))
    }

    func structure(_ s: DICOMSegment) -> ClassChoice {
        let names = s.names.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        if names.contains(where: { manifest.ignoreNames.contains($0.lowercased()) }) { return .skipped("ignored by the manifest") }
        if let c = names.lazy.compactMap({ manifest.names[$0.lowercased()] }).first { return .mapped(c) }
        if let type = s.type, let c = vocabulary.match(scheme: type.scheme, code: type.value) {
            let side = s.modifier.flatMap { ["SCT:7771000": "left", "SCT:24028007": "right"][ClassVocabulary.codeKey("\($0.scheme):\($0.value)")] }
            if let side, vocabulary.contains("\(c)_\(side)") { return .mapped("\(c)_\(side)") }
            return .mapped(c)
        }
        guard let label = names.first else { return .unmapped("unnamed_structure") }
        if let why = Self.notAnatomy(label) { return .skipped(why) }
        if let c = Self.target(label) { return .mapped(c) }
        if let c = names.lazy.compactMap(vocabulary.match).first { return .mapped(c) }
        return .unmapped(ClassVocabulary.normalise(label))
    }

    /// RT target volumes, named as TG-263 writes them: GTV, IGTV, CTV, PTV, then an optional class
    /// (p primary, n nodal) and any suffix (`GTVp_1`, `GTV-2`, `CTV_High`, `PTV_5400`).
    static func target(_ name: String) -> String? {
        let words = ClassVocabulary.words(name)
        guard let first = words.first, let m = first.range(of: #"^(i?gtv|ctv|ptv)"#, options: .regularExpression) else { return nil }
        let rest = String(first[m.upperBound...])
        // A word that merely starts like one ("ptvsomething") is not a target unless a class letter or digits follow.
        guard rest.isEmpty || rest.range(of: #"^(p|n|sb|par|v|vas)?\d*$"#, options: .regularExpression) != nil else { return nil }
        let kind = first[m]
        if kind.hasSuffix("gtv") {
            let nodal = rest.hasPrefix("n") || words.dropFirst().contains { ["n", "ln", "node", "nodes", "nodal"].contains($0) }
            return nodal ? "tumor_nodal" : "tumor"
        }
        return kind == "ctv" ? "clinical_target_volume" : "planning_target_volume"
    }

    /// Why a structure is not anatomy to segment, if it is not: the body outline, equipment,
    /// markers and planning helpers (TG-263's `z` and `_` prefixes, optimisation and dose
    /// structures, rings, PRV margins).
    static func notAnatomy(_ name: String) -> String? {
        let words = ClassVocabulary.words(name), joined = words.joined(separator: "_")
        if ["external", "body", "outline", "patient", "ext", "external_contour", "body_contour", "bodycontour", "skin_contour"].contains(joined) {
            return "body outline"
        }
        let equipment: Set<String> = ["couch", "couchsurface", "couchinterior", "table", "support", "immobilization", "immobilisation",
                                      "headrest", "bolus", "board", "foley", "pacemaker", "leads", "mask"]
        if words.contains(where: equipment.contains) { return "equipment" }
        let markers: Set<String> = ["marker", "markers", "bb", "fiducial", "fiducials", "iso", "isocenter", "isocentre", "poi", "seed", "seeds", "clip", "clips"]
        if let w = words.first, markers.contains(w) { return "marker" }
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("_") || trimmed.range(of: #"^[zZ]([A-Z_\-\d]|$)"#, options: .regularExpression) != nil { return "planning helper" }
        let helpers: Set<String> = ["opt", "optimization", "optimisation", "dose", "ring", "avoid", "avoidance", "hot", "cold", "nt", "eval",
                                    "override", "density", "artifact", "artefact", "dummy", "help", "helper", "temp", "ctrl", "control", "crop", "isodose"]
        if words.contains(where: { helpers.contains($0) || $0.hasPrefix("prv") || $0.hasSuffix("opt") || ($0.hasPrefix("opt") && $0.dropFirst(3).allSatisfy(\.isNumber)) }) {
            return "planning helper"
        }
        return nil
    }
}
