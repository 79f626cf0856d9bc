import Foundation
import Yams

/// The shared class vocabulary (manifests/classes.yaml): canonical names, their aliases and the
/// codes (SNOMED CT, DICOM) that DICOM-SEG segments carry.
///
/// Names are matched the way clinicians write them: case, spaces, underscores, hyphens, brackets and
/// camel case do not matter, laterality may come first or last and abbreviated (`Lung_L`, `Lt Lung`,
/// `LUNG LEFT`, `lung (left)`), and plurals match their singular (`Lungs`, `Nodes`).
public struct ClassVocabulary: Sendable {
    public private(set) var names: [String] = []
    public private(set) var descriptions: [String: String] = [:]
    private var known = Set<String>()
    private var lookup: [String: String] = [:]
    /// Matching key (see `key`) → class; nil where two classes share a key.
    private var keyed: [String: String?] = [:]
    /// "SCT:10200004" → class.
    private var codes: [String: String] = [:]

    public init(yaml: String) throws {
        guard let top = try Yams.load(yaml: yaml) as? [String: Any], let list = top["classes"] as? [[String: Any]] else {
            throw ManifestError("classes.yaml: expected 'classes:' with a list of {name, aliases, description}")
        }
        for entry in list {
            guard let name = entry["name"] as? String else { throw ManifestError("classes.yaml: an entry has no name") }
            names.append(name)
            known.insert(name)
            descriptions[name] = entry["description"] as? String
            for key in [name] + ((entry["aliases"] as? [Any]) ?? []).map({ "\($0)" }) {
                if let other = lookup[key.lowercased()], other != name {
                    throw ManifestError("classes.yaml: '\(key)' names both \(other) and \(name)")
                }
                lookup[key.lowercased()] = name
                let k = Self.key(key)
                if let other = keyed[k], other != name { keyed[k] = .some(nil) } else { keyed[k] = name }
            }
            for code in ((entry["codes"] as? [Any]) ?? []).map({ "\($0)" }) {
                guard Self.codeKey(code) == code else { throw ManifestError("classes.yaml: \(name): code '\(code)' is not SCHEME:VALUE") }
                if let other = codes[code], other != name { throw ManifestError("classes.yaml: code \(code) names both \(other) and \(name)") }
                codes[code] = name
            }
        }
    }

    public func contains(_ name: String) -> Bool { known.contains(name) }

    /// A canonical name or alias, as written (case aside).
    public func resolve(_ name: String) -> String? { lookup[name.lowercased()] }

    /// A free-text structure or label name, matched loosely (see the type's comment).
    public func match(_ name: String) -> String? {
        if let c = resolve(name.trimmingCharacters(in: .whitespaces)) { return c }
        let k = Self.key(name)
        return k.isEmpty ? nil : keyed[k] ?? nil
    }

    /// The class of a coded concept (scheme designator and code value, e.g. SCT 10200004). SRT, the
    /// designator older DICOM-SEG files use for SNOMED, is read as SCT.
    public func match(scheme: String, code: String) -> String? { codes[Self.codeKey("\(scheme):\(code)")] }

    static func codeKey(_ code: String) -> String {
        let parts = code.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return "" }
        let scheme = parts[0].uppercased()
        return "\(scheme == "SRT" ? "SCT" : scheme):\(parts[1])"
    }

    /// The name under which an unknown label is kept: lower case, words joined by "_"
    /// ("Tumor Bed" → tumor_bed, "SpinalCord" → spinal_cord).
    public static func normalise(_ name: String) -> String { words(name).joined(separator: "_") }

    static func words(_ name: String) -> [String] {
        var out: [String] = [], word = ""
        var previous: Character?
        for ch in name {
            if ch.isLetter || ch.isNumber {
                // camelCase splits words ("SpinalCord"); letters and digits stay together ("PTV5400").
                if let p = previous, p.isLowercase && ch.isUppercase { out.append(word); word = "" }
                word.append(contentsOf: ch.lowercased())
            } else if !word.isEmpty {
                out.append(word)
                word = ""
            }
            previous = ch
        }
        if !word.isEmpty { out.append(word) }
        return out.filter { !$0.isEmpty }
    }

    /// Order-free matching key: words, laterality spelled out, plurals singular, fillers dropped.
    static func key(_ name: String) -> String {
        let laterality = ["l": "left", "lt": "left", "left": "left", "r": "right", "rt": "right", "right": "right"]
        let fillers: Set<String> = ["the", "of"]
        return words(name).filter { !fillers.contains($0) }.map { w in
            if let side = laterality[w] { return side }
            return singular(w)
        }.sorted().joined(separator: "_")
    }

    static func singular(_ w: String) -> String {
        guard w.count > 3, w.allSatisfy(\.isLetter) else { return w }
        if w.hasSuffix("ies") { return String(w.dropLast(3)) + "y" }
        if w.hasSuffix("ae") { return String(w.dropLast()) }
        if w.hasSuffix("s") && !w.hasSuffix("ss") && !w.hasSuffix("us") && !w.hasSuffix("is") { return String(w.dropLast()) }
        return w
    }
}
