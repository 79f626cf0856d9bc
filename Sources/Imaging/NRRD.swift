import Foundation

/// NRRD (NRRD0001–NRRD0005): attached (.nrrd) and detached (.nhdr + data file) images.
///
/// Supported: raw, gzip and ascii encodings; every scalar type; 2D and 3D images, optionally with a
/// leading 3-component (or RGBA, alpha dropped) axis; geometry from `space directions` /
/// `space origin` (or bare `spacings`). World coordinates are converted to LPS.
public enum NRRD {
    public enum Encoding: String, Sendable { case raw, gzip }

    public static func read(_ url: URL) throws -> Volume {
        let file = try readFile(url, "NRRD")
        guard file.starts(with: Array("NRRD000".utf8)) else { throw ImagingError("NRRD: not a NRRD file (no NRRD000x magic)") }
        let (header, dataStart) = try parseHeader(file)
        return try decode(header, attached: dataStart.map { file[($0 + file.startIndex)...] }, base: url.deletingLastPathComponent())
    }

    struct Header {
        var fields: [String: String] = [:]
        var listedFiles: [String] = []  // the lines after `data file: LIST`
    }

    /// Header lines up to the first blank line; returns the offset of the attached data, if any.
    static func parseHeader(_ file: Data) throws -> (Header, Int?) {
        var h = Header()
        var inList = false
        var first = true
        var dataStart: Int?
        try file.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var pos = 0
            while pos < raw.count {
                var end = pos
                while end < raw.count && raw[end] != 0x0A { end += 1 }
                var lineEnd = end
                if lineEnd > pos && raw[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let line = String(decoding: raw[pos..<lineEnd], as: UTF8.self)
                pos = end + 1
                if first { first = false; continue }  // magic
                if line.isEmpty {
                    if end < raw.count { dataStart = pos }
                    return
                }
                if inList { h.listedFiles.append(line.trimmingCharacters(in: .whitespaces)); continue }
                if line.hasPrefix("#") { continue }
                let colon = line.range(of: ": ") ?? (line.hasSuffix(":") ? line.range(of: ":", options: .backwards) : nil)
                let keyValue = line.range(of: ":=")
                if let kv = keyValue, colon == nil || kv.lowerBound <= colon!.lowerBound { continue }  // key:=value pairs
                guard let c = colon else { throw ImagingError("NRRD: malformed header line '\(line.prefix(60))'") }
                let key = line[..<c.lowerBound].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[c.upperBound...].trimmingCharacters(in: .whitespaces)
                h.fields[key == "datafile" ? "data file" : key] = value
                if key == "data file" || key == "datafile", value.split(separator: " ").first?.uppercased() == "LIST" { inList = true }
            }
        }
        return (h, dataStart)
    }

    static func decode(_ h: Header, attached: Data?, base: URL) throws -> Volume {
        func field(_ k: String) throws -> String {
            guard let v = h.fields[k] else { throw ImagingError("NRRD: header has no '\(k)' field") }
            return v
        }
        let type = try dataType(try field("type"))
        guard let dim = Int(try field("dimension")), dim >= 1 else { throw ImagingError("NRRD: bad dimension '\(h.fields["dimension"]!)'") }
        let sizes = try field("sizes").split(separator: " ").map { s -> Int in
            guard let n = Int(s), n > 0 else { throw ImagingError("NRRD: bad size '\(s)'") }
            return n
        }
        guard sizes.count == dim else { throw ImagingError("NRRD: 'sizes' lists \(sizes.count) values for dimension \(dim)") }
        let kinds = h.fields["kinds"].map { $0.split(separator: " ").map { $0.lowercased() } }
        let directions = try h.fields["space directions"].map(vectors)

        // A leading non-spatial axis holds the colour components (kinds says so, or it has no direction).
        var channels = 1
        var axes = Array(0..<dim)
        let spatialKinds: Set<String> = ["domain", "space", "time", "???", "none"]
        let leadingKind = kinds?.first
        let leadingUndirected: Bool = { if let d = directions, let f = d.first { return f == nil }; return false }()
        if dim > 2, leadingKind.map({ !spatialKinds.contains($0) }) ?? false || leadingUndirected {
            channels = sizes[0]
            let kind = leadingKind ?? "none"
            guard channels == 1 || channels == 3 || (channels == 4 && (kind == "rgba-color" || kind == "4-color")) else {
                throw ImagingError("NRRD: a \(channels)-component axis (kind \(kind)) is not supported; only 1 or 3 components (or RGBA)")
            }
            axes.removeFirst()
        }
        while axes.count > 3, sizes[axes.last!] == 1 { axes.removeLast() }
        guard axes.count == 2 || axes.count == 3 else {
            throw ImagingError("NRRD: \(axes.count)-dimensional images are not supported (only 2D and 3D)")
        }

        // Geometry.
        let sign = try spaceSign(h.fields["space"])
        let spaceDim = h.fields["space"] != nil ? 3 : Int(h.fields["space dimension"] ?? "") ?? 3
        var spacing = [1.0, 1, 1], direction = Volume.identity, origin = [0.0, 0, 0]
        if let dirs = directions {
            guard dirs.count == dim else { throw ImagingError("NRRD: 'space directions' lists \(dirs.count) vectors for dimension \(dim)") }
            for (j, axis) in axes.enumerated() {
                guard let vec = dirs[axis] else { throw ImagingError("NRRD: spatial axis \(axis) has no space direction") }
                let w = (0..<3).map { $0 < vec.count ? vec[$0] * sign[$0] : 0 }
                let norm = (w.map { $0 * $0 }.reduce(0, +)).squareRoot()
                guard norm > 0, norm.isFinite else { throw ImagingError("NRRD: space direction of axis \(axis) is zero") }
                spacing[j] = norm
                for i in 0..<3 { direction[i * 3 + j] = w[i] / norm }
            }
            if axes.count == 2 && spaceDim == 3 {  // a slice in 3D space: complete a right-handed frame
                let a = direction, c = [a[3] * a[7] - a[6] * a[4], a[6] * a[1] - a[0] * a[7], a[0] * a[4] - a[3] * a[1]]
                let n = (c.map { $0 * $0 }.reduce(0, +)).squareRoot()
                if n > 1e-6 { for i in 0..<3 { direction[i * 3 + 2] = c[i] / n } }
            }
        } else if let sp = h.fields["spacings"] {
            let values = sp.split(separator: " ").map { Double($0) ?? .nan }
            for (j, axis) in axes.enumerated() where axis < values.count && values[axis].isFinite && values[axis] != 0 {
                spacing[j] = abs(values[axis])
            }
        }
        if let o = h.fields["space origin"] {
            guard let vec = try vectors(o).first ?? nil else { throw ImagingError("NRRD: bad space origin '\(o)'") }
            for i in 0..<min(3, vec.count) { origin[i] = vec[i] * sign[i] }
        }

        // Data.
        let count = sizes.reduce(1, *)
        let encoding = (h.fields["encoding"] ?? "").lowercased()
        let bigEndian = (h.fields["endian"] ?? "little").lowercased() == "big"
        let lineSkip = Int(h.fields["line skip"] ?? h.fields["lineskip"] ?? "0") ?? 0
        let byteSkip = Int(h.fields["byte skip"] ?? h.fields["byteskip"] ?? "0") ?? 0
        var parts: [Data] = []
        if let spec = h.fields["data file"] {
            for u in try HeaderedRaw.dataFiles(spec, listed: h.listedFiles, base: base, format: "NRRD") {
                parts.append(try readFile(u, "NRRD"))
            }
        } else {
            guard let a = attached else { throw ImagingError("NRRD: data is truncated (expected \(count * type.bytes) bytes, found 0)") }
            parts = [a]
        }
        var voxels: [Float]
        let partBytes = count * type.bytes / parts.count
        switch encoding {
        case "raw", "gzip", "gz":
            var processed: [Data] = []
            for var part in parts {
                part = HeaderedRaw.skipLines(part, lineSkip)
                if encoding != "raw" {
                    do { part = try Compression.gunzip(part) } catch let e as ImagingError { throw ImagingError("NRRD: \(e.message)") }
                }
                if byteSkip == -1 && encoding == "raw" {
                    part = part.suffix(partBytes)
                } else if byteSkip > 0 {
                    part = part.dropFirst(byteSkip)
                }
                processed.append(part)
            }
            let payload = processed.count == 1 ? processed[0] : processed.reduce(into: Data()) { $0.append($1) }
            guard payload.count >= count * type.bytes else {
                throw ImagingError("NRRD: data is truncated (expected \(count * type.bytes) bytes, found \(payload.count))")
            }
            voxels = payload.withUnsafeBytes { Voxels.convert($0, offset: 0, count: count, type: type, bigEndian: bigEndian) }
        case "ascii", "text", "txt":
            voxels = parts.flatMap { HeaderedRaw.ascii(HeaderedRaw.skipLines($0, lineSkip)) }
            guard voxels.count >= count else { throw ImagingError("NRRD: data is truncated (expected \(count) values, found \(voxels.count))") }
            voxels.removeLast(voxels.count - count)
        case "":
            throw ImagingError("NRRD: header has no 'encoding' field")
        default:
            throw ImagingError("NRRD: encoding '\(encoding)' is not supported (only raw, gzip and ascii)")
        }
        if channels == 4 { voxels = HeaderedRaw.dropAlpha(voxels) }
        let size = axes.count == 3 ? axes.map { sizes[$0] } : axes.map { sizes[$0] } + [1]
        return Volume(size: size, components: min(channels, 3), spacing: spacing, origin: origin, direction: direction,
                      voxels: voxels, isIntegral: type.isIntegral)
    }

    static func dataType(_ name: String) throws -> VoxelType {
        switch name.lowercased().split(separator: " ").joined(separator: " ") {
        case "signed char", "int8", "int8_t": return .int8
        case "uchar", "unsigned char", "uint8", "uint8_t": return .uint8
        case "short", "short int", "signed short", "signed short int", "int16", "int16_t": return .int16
        case "ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t": return .uint16
        case "int", "signed int", "int32", "int32_t": return .int32
        case "uint", "unsigned int", "uint32", "uint32_t": return .uint32
        case "longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t": return .int64
        case "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t": return .uint64
        case "float": return .float32
        case "double": return .float64
        default: throw ImagingError("NRRD: type '\(name)' is not supported")
        }
    }

    static func typeName(_ t: VoxelType) -> String {
        switch t {
        case .uint8, .rgb24: "unsigned char"
        case .int8: "signed char"
        case .int16: "short"
        case .uint16: "unsigned short"
        case .int32: "int"
        case .uint32: "unsigned int"
        case .int64: "long long"
        case .uint64: "unsigned long long"
        case .float32: "float"
        case .float64: "double"
        }
    }

    /// Multiplier turning the file's world coordinates into LPS.
    static func spaceSign(_ space: String?) throws -> [Double] {
        guard let s = space?.lowercased() else { return [1, 1, 1] }
        switch s {
        case "right-anterior-superior", "ras", "right-anterior-superior-time", "rast": return [-1, -1, 1]
        case "left-anterior-superior", "las", "left-anterior-superior-time", "last": return [1, -1, 1]
        case "left-posterior-superior", "lps", "left-posterior-superior-time", "lpst": return [1, 1, 1]
        // No anatomical meaning: kept as-is, i.e. read as if it were LPS.
        case "scanner-xyz", "scanner-xyz-time", "3d-right-handed", "3d-left-handed", "3d-right-handed-time", "3d-left-handed-time":
            return [1, 1, 1]
        default: throw ImagingError("NRRD: space '\(space!)' is not supported")
        }
    }

    /// `(1,0,0) none (0,1,0)` → vectors, nil for `none`.
    static func vectors(_ s: String) throws -> [[Double]?] {
        var out: [[Double]?] = []
        var rest = Substring(s)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            if rest.isEmpty { return out }
            if rest.hasPrefix("(") {
                guard let close = rest.firstIndex(of: ")") else { throw ImagingError("NRRD: unclosed vector in '\(s)'") }
                let comps = rest[rest.index(after: rest.startIndex)..<close].split(separator: ",").map {
                    Double($0.trimmingCharacters(in: .whitespaces))
                }
                guard !comps.isEmpty, comps.allSatisfy({ $0 != nil }) else { throw ImagingError("NRRD: bad vector in '\(s)'") }
                out.append(comps.map { $0! })
                rest = rest[rest.index(after: close)...]
            } else {
                let word = rest.prefix { $0 != " " && $0 != "\t" }
                guard word.lowercased() == "none" else { throw ImagingError("NRRD: bad vector '\(word)'") }
                out.append(nil)
                rest = rest.dropFirst(word.count)
            }
        }
    }

    // MARK: Writing

    /// Writes a 3D NRRD in LPS space. `type` defaults to the smallest type holding the voxels exactly.
    /// Detached: the header goes to `url` (conventionally .nhdr), the data beside it as
    /// `<name>.raw` or `<name>.raw.gz`, referenced by a relative path.
    public static func write(_ v: Volume, to url: URL, encoding: Encoding = .gzip, detached: Bool = false,
                             type: VoxelType? = nil) throws {
        let t = type == .rgb24 ? .uint8 : type ?? HeaderedRaw.bestType(for: v)
        let rgb = v.components == 3
        let n = HeaderedRaw.number
        let dirs = (0..<3).map { j in "(\(n(v.direction[j] * v.spacing[j])),\(n(v.direction[3 + j] * v.spacing[j])),\(n(v.direction[6 + j] * v.spacing[j])))" }
        var lines = [
            "NRRD0004", "# Complete NRRD file format specification at:", "# http://teem.sourceforge.net/nrrd/format.html",
            "type: \(typeName(t))", "dimension: \(rgb ? 4 : 3)", "space: left-posterior-superior",
            "sizes: " + ((rgb ? [3] : []) + v.size).map(String.init).joined(separator: " "),
            "space directions: \(rgb ? "none " : "")\(dirs.joined(separator: " "))",
            "kinds: \(rgb ? "RGB-color " : "")domain domain domain",
            "endian: little", "encoding: \(encoding.rawValue)",
            "space origin: (\(v.origin.map(n).joined(separator: ",")))",
        ]
        var data = Voxels.encode(v.voxels, type: t)
        if encoding == .gzip { data = Compression.gzip(data) }
        if detached {
            let name = url.deletingPathExtension().lastPathComponent + (encoding == .gzip ? ".raw.gz" : ".raw")
            lines.append("data file: \(name)")
            try data.write(to: url.deletingLastPathComponent().appendingPathComponent(name))
            try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
        } else {
            var file = Data((lines.joined(separator: "\n") + "\n\n").utf8)
            file.append(data)
            try file.write(to: url)
        }
    }

    static func readFile(_ url: URL, _ format: String) throws -> Data {
        let d: Data
        do { d = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ImagingError("\(format): cannot read '\(url.lastPathComponent)' (\(FileManager.default.fileExists(atPath: url.path) ? "unreadable" : "no such file"))")
        }
        if d.isEmpty { throw ImagingError("file is empty") }
        return d
    }
}

/// Helpers shared by the two "text header + raw data" formats, NRRD and MetaImage.
enum HeaderedRaw {
    /// The data files named by a header: one path, `LIST` (names on the following lines), or a
    /// printf-style pattern `name%03d.raw min max step [subdim]`. Relative paths start at `base`.
    static func dataFiles(_ spec: String, listed: [String], base: URL, format: String) throws -> [URL] {
        func resolve(_ p: String) -> URL { p.hasPrefix("/") ? URL(fileURLWithPath: p) : base.appendingPathComponent(p) }
        let words = spec.split(separator: " ").map(String.init)
        if words.first?.uppercased() == "LIST" {
            let names = listed.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ImagingError("\(format): data file LIST names no files") }
            return names.map(resolve)
        }
        if words.count >= 4, words[0].contains("%"), let lo = Int(words[1]), let hi = Int(words[2]), let step = Int(words[3]), step != 0 {
            return try stride(from: lo, through: hi, by: step).map { resolve(try expand(words[0], $0, format)) }
        }
        return [resolve(spec)]
    }

    /// `%d`, `%i`, `%u`, with optional zero padding and width; other conversions are refused
    /// rather than handed to printf.
    static func expand(_ pattern: String, _ i: Int, _ format: String) throws -> String {
        guard let pct = pattern.firstIndex(of: "%") else { return pattern }
        var j = pattern.index(after: pct)
        let zero = j < pattern.endIndex && pattern[j] == "0"
        let digits = pattern[j...].prefix { $0.isNumber }
        j = pattern.index(j, offsetBy: digits.count)
        guard j < pattern.endIndex, "diu".contains(pattern[j]) else { throw ImagingError("\(format): unsupported file name pattern '\(pattern)'") }
        var s = String(i)
        let width = Int(digits) ?? 0
        if s.count < width { s = String(repeating: zero ? "0" : " ", count: width - s.count) + s }
        return String(pattern[..<pct]) + s + String(pattern[pattern.index(after: j)...])
    }

    static func skipLines(_ d: Data, _ n: Int) -> Data {
        guard n > 0 else { return d }
        var seen = 0
        for i in d.indices where d[i] == 0x0A {
            seen += 1
            if seen == n { return d[(i + 1)...] }
        }
        return Data()
    }

    static func ascii(_ d: Data) -> [Float] {
        String(decoding: d, as: UTF8.self).split { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" || $0 == "," }.compactMap { Float($0) }
    }

    static func dropAlpha(_ v: [Float]) -> [Float] {
        var out = [Float](); out.reserveCapacity(v.count / 4 * 3)
        for i in stride(from: 0, to: v.count - 3, by: 4) { out += v[i..<i + 3] }
        return out
    }

    /// The smallest type that stores every voxel exactly.
    static func bestType(for v: Volume) -> VoxelType {
        guard v.isIntegral, let lo = v.voxels.min(), let hi = v.voxels.max(), v.voxels.allSatisfy({ $0.rounded() == $0 }) else { return .float32 }
        if lo >= 0 && hi <= 255 { return .uint8 }
        if lo >= -32768 && hi <= 32767 { return .int16 }
        if lo >= 0 && hi <= 65535 { return .uint16 }
        if lo >= -2_147_483_648 && hi < 2_147_483_648 { return .int32 }
        return .float32
    }

    /// Shortest text that reads back as the same Double (and "1" rather than "1.0").
    static func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
    }
}
