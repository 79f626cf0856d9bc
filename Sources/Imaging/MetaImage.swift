import Foundation

/// ITK MetaImage: .mha (header and data in one file) and .mhd (header + separate data file).
///
/// MetaImage world coordinates are LPS already. `TransformMatrix` lists the direction of array
/// axis 0, then of axis 1, … (ITK's MetaImageIO writes `matrix[i*N + j] = GetDirection(i)[j]`), so
/// the file holds the transpose of our row-major direction matrix.
public enum MetaImage {
    public static func read(_ url: URL) throws -> Volume {
        let file = try NRRD.readFile(url, "MetaImage")
        var fields: [String: String] = [:]
        var listed: [String] = []
        let dataStart = try file.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int in
            var pos = 0
            var inList = false
            while pos < raw.count {
                var end = pos
                while end < raw.count && raw[end] != 0x0A { end += 1 }
                var lineEnd = end
                if lineEnd > pos && raw[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let line = String(decoding: raw[pos..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                pos = end + 1
                if inList { if !line.isEmpty { listed.append(line) }; continue }
                if line.isEmpty || line.hasPrefix("#") { continue }
                guard let eq = line.firstIndex(of: "=") else {
                    throw ImagingError(fields.isEmpty ? "MetaImage: not a MetaImage header" : "MetaImage: malformed header line '\(line.prefix(60))'")
                }
                let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                fields[key] = value
                if key == "elementdatafile" {  // always the last field; LOCAL data starts on the next line
                    if value.split(separator: " ").first?.uppercased() == "LIST" { inList = true; continue }
                    return min(pos, raw.count)
                }
                if pos > 1 << 20 { break }
            }
            if inList { return raw.count }
            throw ImagingError("MetaImage: header has no ElementDataFile field")
        }

        func field(_ k: String) throws -> String {
            guard let v = fields[k.lowercased()] else { throw ImagingError("MetaImage: header has no \(k) field") }
            return v
        }
        func numbers(_ k: String) throws -> [Double]? {
            guard let s = fields[k.lowercased()] else { return nil }
            let v = s.split { $0 == " " || $0 == "\t" }.map { Double($0) }
            guard v.allSatisfy({ $0 != nil }) else { throw ImagingError("MetaImage: bad \(k) '\(s)'") }
            return v.map { $0! }
        }
        func flag(_ k: String) -> Bool? { fields[k.lowercased()].map { $0.lowercased() == "true" || $0 == "1" } }

        if let kind = fields["objecttype"], kind.lowercased() != "image" { throw ImagingError("MetaImage: ObjectType '\(kind)' is not an image") }
        guard let ndims = Int(try field("NDims")), (1...8).contains(ndims) else { throw ImagingError("MetaImage: bad NDims '\(fields["ndims"]!)'") }
        guard let dimSize = try numbers("DimSize")?.map({ Int($0) }), dimSize.count == ndims, dimSize.allSatisfy({ $0 > 0 }) else {
            throw ImagingError("MetaImage: DimSize must list \(ndims) positive sizes")
        }
        var n = ndims
        while n > 3 && dimSize[n - 1] == 1 { n -= 1 }
        guard n == 2 || n == 3 else { throw ImagingError("MetaImage: \(n)-dimensional images are not supported (only 2D and 3D)") }
        let type = try elementType(try field("ElementType"))
        let channels = Int(fields["elementnumberofchannels"] ?? "1") ?? 0
        guard channels == 1 || channels == 3 else {
            throw ImagingError("MetaImage: \(channels) channels per element are not supported (only 1 or 3)")
        }

        var spacing = [1.0, 1, 1], origin = [0.0, 0, 0], direction = Volume.identity
        if let s = try numbers("ElementSpacing") ?? numbers("ElementSize") {
            for i in 0..<min(n, s.count) where s[i] != 0 && s[i].isFinite { spacing[i] = abs(s[i]) }
        }
        if let o = try numbers("Offset") ?? numbers("Position") ?? numbers("Origin") {
            for i in 0..<min(n, o.count) { origin[i] = o[i] }
        }
        if let m = try numbers("TransformMatrix") ?? numbers("Rotation") ?? numbers("Orientation") {
            guard m.count == ndims * ndims else { throw ImagingError("MetaImage: TransformMatrix needs \(ndims * ndims) values, found \(m.count)") }
            for axis in 0..<n {
                let col = (0..<3).map { $0 < n ? m[axis * ndims + $0] : 0 }
                let norm = (col.map { $0 * $0 }.reduce(0, +)).squareRoot()
                guard norm > 0, norm.isFinite else { throw ImagingError("MetaImage: TransformMatrix has a zero axis") }
                for r in 0..<3 { direction[r * 3 + axis] = col[r] / norm }
            }
        }

        // Data.
        let count = dimSize.reduce(1, *) * channels, expected = count * type.bytes
        let bigEndian = flag("BinaryDataByteOrderMSB") ?? flag("ElementByteOrderMSB") ?? false
        let compressed = flag("CompressedData") ?? false
        let spec = try field("ElementDataFile")
        var parts: [Data]
        if spec.uppercased() == "LOCAL" {
            var local = file.dropFirst(dataStart)
            if compressed, let size = Int(fields["compresseddatasize"] ?? ""), size > 0, size <= local.count { local = local.prefix(size) }
            parts = [local]
        } else {
            let urls = try HeaderedRaw.dataFiles(spec, listed: listed, base: url.deletingLastPathComponent(), format: "MetaImage")
            parts = try urls.map { try NRRD.readFile($0, "MetaImage") }
            let skip = Int(fields["headersize"] ?? "0") ?? 0
            if !compressed && skip == -1 {
                parts = parts.map { $0.suffix(expected / parts.count) }
            } else if skip > 0 {
                parts = parts.map { $0.dropFirst(skip) }
            }
        }
        if flag("BinaryData") == false {
            var values = parts.flatMap(HeaderedRaw.ascii)
            guard values.count >= count else { throw ImagingError("MetaImage: data is truncated (expected \(count) values, found \(values.count))") }
            values.removeLast(values.count - count)
            return Volume(size: size3(dimSize, n), components: channels, spacing: spacing, origin: origin, direction: direction,
                          voxels: values, isIntegral: type.isIntegral)
        }
        if compressed {
            parts = try parts.map { part in
                do {
                    if Compression.isGzip(part) { return try Compression.gunzip(part) }
                    return try part.withUnsafeBytes { try Compression.zlibDecompress($0, expected: parts.count == 1 ? expected : 0) }
                } catch let e as ImagingError {
                    throw ImagingError("MetaImage: \(e.message)")
                }
            }
        }
        let payload = parts.count == 1 ? parts[0] : parts.reduce(into: Data()) { $0.append($1) }
        guard payload.count >= expected else {
            throw ImagingError("MetaImage: data is truncated (expected \(expected) bytes, found \(payload.count))")
        }
        let voxels = payload.withUnsafeBytes { Voxels.convert($0, offset: 0, count: count, type: type, bigEndian: bigEndian) }
        return Volume(size: size3(dimSize, n), components: channels, spacing: spacing, origin: origin, direction: direction,
                      voxels: voxels, isIntegral: type.isIntegral)
    }

    private static func size3(_ dims: [Int], _ n: Int) -> [Int] { n == 3 ? Array(dims[0..<3]) : [dims[0], dims[1], 1] }

    static func elementType(_ name: String) throws -> VoxelType {
        var s = name.uppercased()
        if s.hasSuffix("_ARRAY") { s.removeLast(6) }
        switch s {
        case "MET_UCHAR": return .uint8
        case "MET_CHAR", "MET_ASCII_CHAR": return .int8
        case "MET_USHORT": return .uint16
        case "MET_SHORT": return .int16
        case "MET_UINT", "MET_ULONG": return .uint32  // MetaIO's LONG is 32-bit
        case "MET_INT", "MET_LONG": return .int32
        case "MET_ULONG_LONG": return .uint64
        case "MET_LONG_LONG": return .int64
        case "MET_FLOAT": return .float32
        case "MET_DOUBLE": return .float64
        default: throw ImagingError("MetaImage: ElementType '\(name)' is not supported")
        }
    }

    static func elementTypeName(_ t: VoxelType) -> String {
        switch t {
        case .uint8, .rgb24: "MET_UCHAR"
        case .int8: "MET_CHAR"
        case .uint16: "MET_USHORT"
        case .int16: "MET_SHORT"
        case .uint32: "MET_UINT"
        case .int32: "MET_INT"
        case .uint64: "MET_ULONG_LONG"
        case .int64: "MET_LONG_LONG"
        case .float32: "MET_FLOAT"
        case .float64: "MET_DOUBLE"
        }
    }

    /// Writes a 3D MetaImage. A `.mhd` URL gets its data beside it (`<name>.raw` or `<name>.zraw`);
    /// anything else gets the data appended (LOCAL). `type` defaults to the smallest exact type.
    public static func write(_ v: Volume, to url: URL, compressed: Bool = true, type: VoxelType? = nil) throws {
        let t = type == .rgb24 ? .uint8 : type ?? HeaderedRaw.bestType(for: v)
        let num = { (a: [Double]) in a.map(HeaderedRaw.number).joined(separator: " ") }
        var data = Voxels.encode(v.voxels, type: t)
        if compressed { data = data.withUnsafeBytes { Compression.zlibCompress($0, level: 6) } }
        let detached = url.pathExtension.lowercased() == "mhd"
        let dataName = url.deletingPathExtension().lastPathComponent + (compressed ? ".zraw" : ".raw")
        var lines = [
            "ObjectType = Image", "NDims = 3", "BinaryData = True", "BinaryDataByteOrderMSB = False",
            "CompressedData = \(compressed ? "True" : "False")",
        ]
        if compressed { lines.append("CompressedDataSize = \(data.count)") }
        lines += [
            "TransformMatrix = " + num((0..<3).flatMap { axis in (0..<3).map { v.direction[$0 * 3 + axis] } }),
            "Offset = " + num(v.origin), "CenterOfRotation = 0 0 0", "AnatomicalOrientation = ???",
            "ElementSpacing = " + num(v.spacing), "DimSize = " + v.size.map(String.init).joined(separator: " "),
        ]
        if v.components != 1 { lines.append("ElementNumberOfChannels = \(v.components)") }
        lines += ["ElementType = \(elementTypeName(t))", "ElementDataFile = \(detached ? dataName : "LOCAL")"]
        var file = Data((lines.joined(separator: "\n") + "\n").utf8)
        if detached {
            try data.write(to: url.deletingLastPathComponent().appendingPathComponent(dataName))
        } else {
            file.append(data)
        }
        try file.write(to: url)
    }
}
