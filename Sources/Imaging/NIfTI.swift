import Foundation

/// NIfTI-1 and NIfTI-2 single-file images (.nii, .nii.gz).
///
/// Geometry follows the standard's precedence: sform when sform_code > 0, else qform when
/// qform_code > 0, else the bare pixdim scaling ("method 1"). NIfTI world space is RAS; it is
/// converted to LPS here so every format shares one convention (DICOM's and ITK's).
public enum NIfTI {
    /// NIfTI's datatype codes.
    static func code(_ t: VoxelType) -> Int16 {
        switch t {
        case .uint8: 2
        case .int16: 4
        case .int32: 8
        case .float32: 16
        case .float64: 64
        case .rgb24: 128
        case .int8: 256
        case .uint16: 512
        case .uint32: 768
        case .int64: 1024
        case .uint64: 1280
        }
    }

    /// The first frame of the file (3D, or 2D as nz = 1).
    public static func read(_ url: URL) throws -> Volume {
        try readFrames(url, limit: 1)[0]
    }

    /// Every frame along the 4th dimension (MSD stores multi-channel MR as 4D files).
    public static func readFrames(_ url: URL, limit: Int = .max) throws -> [Volume] {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        if data.isEmpty { throw ImagingError("file is empty") }
        guard Compression.isGzip(data) else { return try decode(data, limit: limit) }
        if let frames = data.withUnsafeBytes({ decodeStreaming($0, limit: limit) }) { return frames }
        let inflated: Data
        do { inflated = try Compression.gunzip(data) } catch let e as ImagingError { throw ImagingError("NIfTI: \(e.message)") }
        return try decode(inflated, limit: limit)
    }

    struct Header {
        var dims: [Int] = []
        var datatype: VoxelType = .uint8
        var pixdim: [Double] = []
        var voxOffset = 0
        var slope = 0.0, inter = 0.0
        var qformCode = 0, sformCode = 0
        var quatern: [Double] = []  // b, c, d
        var qoffset: [Double] = []
        var srow: [Double] = []  // 12 values, row-major
        var units = 0
        var bigEndian = false
    }

    /// What the header says about the voxel data of the frames to read.
    struct Layout {
        var size: [Int], count: Int, components: Int, frames: Int, bytesPerFrame: Int
        var geometry: Geometry
        var slope: Float?, inter: Float, integral: Bool

        init(_ h: Header, limit: Int) throws {
            let (n, o1) = h.dims[1].multipliedReportingOverflow(by: h.dims[2] * h.dims[3])
            guard !o1, n < 1 << 34, h.dims[1...4].allSatisfy({ $0 < 1 << 20 }) else {
                throw ImagingError("NIfTI: dimensions \(h.dims[1...4].map(String.init).joined(separator: "×")) are implausible")
            }
            size = Array(h.dims[1...3])
            components = h.datatype == .rgb24 ? 3 : 1
            count = n * components
            frames = min(h.dims[4], limit)
            bytesPerFrame = n * h.datatype.bytes
            geometry = NIfTI.geometry(h)
            let scale = h.slope != 0 && !(h.slope == 1 && h.inter == 0)
            slope = scale && h.datatype != .rgb24 ? Float(h.slope) : nil
            inter = Float(h.inter)
            integral = h.datatype.isIntegral && (!scale || (h.slope.rounded() == h.slope && h.inter.rounded() == h.inter))
        }

        /// `scl_slope` and `scl_inter` applied to converted values, in place.
        func scale(_ v: UnsafeMutablePointer<Float>, count: Int) {
            guard let s = slope else { return }
            let i = inter
            for k in 0..<count { v[k] = v[k] * s + i }
        }

        /// A frame whose raw values `fill` converts into the buffer it is given; nil when it fails.
        func volume(fill: (UnsafeMutablePointer<Float>) -> Bool) -> Volume? {
            var ok = false
            var voxels = [Float](unsafeUninitializedCapacity: count) { out, initialized in
                ok = fill(out.baseAddress!)
                initialized = ok ? count : 0
            }
            guard ok else { return nil }
            voxels.withUnsafeMutableBufferPointer { scale($0.baseAddress!, count: count) }
            return Volume(size: size, components: components, spacing: geometry.spacing,
                          origin: geometry.origin, direction: geometry.direction, voxels: voxels, isIntegral: integral)
        }
    }

    public static func decode(_ data: Data, limit: Int = .max) throws -> [Volume] {
        guard data.count >= 348 else { throw ImagingError("NIfTI: file too short for a header (\(data.count) bytes)") }
        let h = try data.withUnsafeBytes { try parseHeader($0) }
        let layout = try Layout(h, limit: limit)
        let needed = h.voxOffset + layout.bytesPerFrame * layout.frames
        guard data.count >= needed else {
            throw ImagingError("NIfTI: data is truncated (expected \(needed) bytes, found \(data.count))")
        }
        return data.withUnsafeBytes { raw in
            (0..<layout.frames).map { f in
                layout.volume { out in
                    Voxels.convert(raw.baseAddress! + h.voxOffset + f * layout.bytesPerFrame, count: layout.count,
                                   type: h.datatype, bigEndian: h.bigEndian, into: out)
                    return true
                }!
            }
        }
    }

    /// Inflates a .nii.gz a piece at a time, converting each piece while it is in cache: the whole
    /// file is never held inflated. Nil on any problem, which the one-shot path then names.
    static func decodeStreaming(_ gz: UnsafeRawBufferPointer, limit: Int) -> [Volume]? {
        guard let stream = GzipStream(gz) else { return nil }
        // A multiple of every voxel size (1, 2, 3, 4, 8 bytes), so pieces hold whole voxels.
        let pieceSize = 3 << 17
        let piece = UnsafeMutableRawBufferPointer.allocate(byteCount: pieceSize, alignment: 16)
        defer { piece.deallocate() }
        guard let h = streamHeader(stream, scratch: piece), let layout = try? Layout(h, limit: limit) else { return nil }
        let size = h.datatype == .rgb24 ? 1 : h.datatype.bytes
        var frames: [Volume] = []
        for _ in 0..<layout.frames {
            guard let v = layout.volume(fill: { out in
                var done = 0
                while done < layout.count {
                    let want = min((layout.count - done) * size, pieceSize)
                    guard stream.read(into: UnsafeMutableRawBufferPointer(rebasing: piece[0..<want])) == want else { return false }
                    Voxels.convert(piece.baseAddress!, count: want / size, type: h.datatype, bigEndian: h.bigEndian, into: out + done)
                    done += want / size
                }
                return true
            }) else { return nil }
            frames.append(v)
        }
        return drain(stream, scratch: piece) ? frames : nil
    }

    /// Reads the header from the start of a stream and skips its extensions, so that the voxels come
    /// next. `scratch` must hold at least 540 bytes.
    static func streamHeader(_ stream: GzipStream, scratch: UnsafeMutableRawBufferPointer) -> Header? {
        // 348 bytes of NIfTI-1 header, or 540 when sizeof_hdr (in either byte order) says NIfTI-2.
        guard var got = stream.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<348])), got == 348 else { return nil }
        let first = scratch.load(as: Int32.self)
        if first == 540 || first.byteSwapped == 540 {
            guard stream.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[348..<540])) == 192 else { return nil }
            got = 540
        }
        guard let h = try? parseHeader(UnsafeRawBufferPointer(rebasing: scratch[0..<got])) else { return nil }
        var skip = h.voxOffset - got
        while skip > 0 {
            guard let n = stream.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<min(skip, scratch.count)])), n > 0 else { return nil }
            skip -= n
        }
        return h
    }

    /// Reads a stream to its end, so that the CRC and length in its trailer are checked.
    static func drain(_ stream: GzipStream, scratch: UnsafeMutableRawBufferPointer) -> Bool {
        while true {
            guard let n = stream.read(into: scratch) else { return false }
            if n < scratch.count { return true }
        }
    }

    static func parseHeader(_ raw: UnsafeRawBufferPointer) throws -> Header {
        func i32(_ o: Int, _ swap: Bool) -> Int32 { let v = raw.loadUnaligned(fromByteOffset: o, as: Int32.self); return swap ? v.byteSwapped : v }
        var swap = false
        var version = 0
        switch i32(0, false) {
        case 348: version = 1
        case 540: version = 2
        default:
            swap = true
            switch i32(0, true) {
            case 348: version = 1
            case 540: version = 2
            default: throw ImagingError("NIfTI: not a NIfTI file (sizeof_hdr is \(i32(0, false)))")
            }
        }
        func i16(_ o: Int) -> Int { let v = raw.loadUnaligned(fromByteOffset: o, as: Int16.self); return Int(swap ? v.byteSwapped : v) }
        func i64(_ o: Int) -> Int { let v = raw.loadUnaligned(fromByteOffset: o, as: Int64.self); return Int(swap ? v.byteSwapped : v) }
        func f32(_ o: Int) -> Double { let b = raw.loadUnaligned(fromByteOffset: o, as: UInt32.self); return Double(Float(bitPattern: swap ? b.byteSwapped : b)) }
        func f64(_ o: Int) -> Double { let b = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self); return Double(bitPattern: swap ? b.byteSwapped : b) }
        var h = Header()
        h.bigEndian = swap != (1.littleEndian != 1)
        let dtype: Int
        if version == 1 {
            let magic = String(decoding: raw[344..<347], as: UTF8.self)
            guard magic == "n+1" else {
                throw ImagingError(magic == "ni1" ? "NIfTI: header/image pairs (.hdr/.img) are not supported; convert to .nii" : "NIfTI: bad magic '\(magic)'")
            }
            h.dims = (0..<8).map { i16(40 + 2 * $0) }
            dtype = i16(70)
            h.pixdim = (0..<8).map { f32(76 + 4 * $0) }
            let offset = f32(108)
            guard offset.isFinite, offset >= 0, offset < 1e9 else { throw ImagingError("NIfTI: vox_offset \(offset) is invalid") }
            h.voxOffset = Int(offset)
            h.slope = f32(112); h.inter = f32(116)
            h.units = Int(raw[123])
            h.qformCode = i16(252); h.sformCode = i16(254)
            h.quatern = (0..<3).map { f32(256 + 4 * $0) }
            h.qoffset = (0..<3).map { f32(268 + 4 * $0) }
            h.srow = (0..<12).map { f32(280 + 4 * $0) }
        } else {
            guard raw.count >= 540 else { throw ImagingError("NIfTI-2: file too short for a header") }
            let magic = String(decoding: raw[4..<7], as: UTF8.self)
            guard magic == "n+2" else { throw ImagingError("NIfTI-2: bad magic '\(magic)'") }
            dtype = i16(12)
            h.dims = (0..<8).map { i64(16 + 8 * $0) }
            h.pixdim = (0..<8).map { f64(104 + 8 * $0) }
            h.voxOffset = i64(168)
            h.slope = f64(176); h.inter = f64(184)
            h.qformCode = Int(i32(344, swap)); h.sformCode = Int(i32(348, swap))
            h.quatern = (0..<3).map { f64(352 + 8 * $0) }
            h.qoffset = (0..<3).map { f64(376 + 8 * $0) }
            h.srow = (0..<12).map { f64(400 + 8 * $0) }
            h.units = Int(i32(500, swap))
        }
        guard let dt = VoxelType.allCases.first(where: { code($0) == Int16(truncatingIfNeeded: dtype) }) else {
            throw ImagingError("NIfTI: datatype \(dtype) is not supported")
        }
        h.datatype = dt
        let ndim = h.dims[0]
        guard (1...7).contains(ndim) else { throw ImagingError("NIfTI: dim[0] = \(ndim) is out of range") }
        for i in 1...7 where i > ndim || h.dims[i] <= 0 { h.dims[i] = 1 }
        if ndim > 4 && h.dims[5...7].contains(where: { $0 > 1 }) {
            throw ImagingError("NIfTI: \(ndim)-dimensional data (dim 5–7 > 1) is not supported")
        }
        if h.voxOffset < (version == 1 ? 348 : 540) { h.voxOffset = version == 1 ? 352 : 544 }
        if !h.slope.isFinite || !h.inter.isFinite { h.slope = 0; h.inter = 0 }
        return h
    }

    struct Geometry { var spacing: [Double], origin: [Double], direction: [Double] }

    static func geometry(_ h: Header) -> Geometry {
        let unit: Double = switch h.units & 7 { case 1: 1000; case 3: 0.001; default: 1 }
        var ras = [Double](repeating: 0, count: 12)  // 3×4 affine, RAS
        if h.sformCode > 0, h.srow.allSatisfy(\.isFinite), (0..<3).allSatisfy({ j in (0..<3).contains { h.srow[$0 * 4 + j] != 0 } }) {
            ras = h.srow
        } else if h.qformCode > 0 {
            let b = h.quatern[0], c = h.quatern[1], d = h.quatern[2]
            let a = max(0, 1 - (b * b + c * c + d * d)).squareRoot()
            let r = [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c),
                     2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b),
                     2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]
            let qfac: Double = h.pixdim[0] < 0 ? -1 : 1
            let sp = [abs(h.pixdim[1]), abs(h.pixdim[2]), abs(h.pixdim[3]) * qfac].map { $0 == 0 ? 1 : $0 }
            for i in 0..<3 {
                for j in 0..<3 { ras[i * 4 + j] = r[i * 3 + j] * sp[j] }
                ras[i * 4 + 3] = h.qoffset[i]
            }
        } else {
            for j in 0..<3 { ras[j * 4 + j] = h.pixdim[j + 1] == 0 ? 1 : abs(h.pixdim[j + 1]) }
        }
        // RAS → LPS: negate the x and y rows.
        for j in 0..<4 { ras[j] = -ras[j]; ras[4 + j] = -ras[4 + j] }
        var spacing = [Double](repeating: 1, count: 3), direction = [Double](repeating: 0, count: 9)
        for j in 0..<3 {
            let col = (0..<3).map { ras[$0 * 4 + j] }
            let norm = (col.map { $0 * $0 }.reduce(0, +)).squareRoot()
            spacing[j] = norm > 0 ? norm * unit : 1
            for i in 0..<3 { direction[i * 3 + j] = norm > 0 ? col[i] / norm : (i == j ? 1 : 0) }
        }
        // A non-finite header value would poison every later step: fall back to unit spacing.
        if !(spacing + direction).allSatisfy(\.isFinite) { return Geometry(spacing: [1, 1, 1], origin: [0, 0, 0], direction: Volume.identity) }
        let origin = (0..<3).map { ras[$0 * 4 + 3] * unit }
        return Geometry(spacing: spacing, origin: origin.allSatisfy(\.isFinite) ? origin : [0, 0, 0], direction: direction)
    }

    // MARK: Writing (tests, benchmarks, exports)

    /// Writes a NIfTI file with both sform and qform set from the volume's geometry.
    public static func write(_ v: Volume, to url: URL, datatype: VoxelType, version: Int = 1, gzipLevel: Int32 = 6) throws {
        var data = encode(v, datatype: datatype, version: version)
        if url.lastPathComponent.lowercased().hasSuffix(".gz") { data = Compression.gzip(data, level: gzipLevel) }
        try data.write(to: url)
    }

    public static func encode(_ v: Volume, datatype: VoxelType, version: Int = 1) -> Data {
        let headerSize = version == 1 ? 348 : 540, offset = version == 1 ? 352 : 544
        var h = Data(count: offset)
        // LPS geometry → RAS affine.
        var aff = [Double](repeating: 0, count: 12)
        for i in 0..<3 {
            let sign: Double = i < 2 ? -1 : 1
            for j in 0..<3 { aff[i * 4 + j] = sign * v.direction[i * 3 + j] * v.spacing[j] }
            aff[i * 4 + 3] = sign * v.origin[i]
        }
        var rot = [Double](repeating: 0, count: 9)
        for i in 0..<3 { for j in 0..<3 { rot[i * 3 + j] = aff[i * 4 + j] / v.spacing[j] } }
        let (quat, qfac) = quaternion(rot)
        let dims = [v.is2D ? 2 : 3, v.nx, v.ny, v.nz, 1, 1, 1, 1]
        let pix = [qfac, v.spacing[0], v.spacing[1], v.spacing[2], 1, 1, 1, 1]
        h.withUnsafeMutableBytes { p in
            func put<T>(_ o: Int, _ x: T) { p.storeBytes(of: x, toByteOffset: o, as: T.self) }
            put(0, Int32(headerSize))
            if version == 1 {
                for (i, d) in dims.enumerated() { put(40 + 2 * i, Int16(d)) }
                put(70, code(datatype))
                put(72, Int16(datatype.bytes * 8))
                for (i, d) in pix.enumerated() { put(76 + 4 * i, Float(d)) }
                put(108, Float(offset))
                put(112, Float(1)); put(116, Float(0))
                p[123] = 2  // millimetres
                put(252, Int16(1)); put(254, Int16(1))
                for i in 0..<3 { put(256 + 4 * i, Float(quat[i])); put(268 + 4 * i, Float(aff[i * 4 + 3])) }
                for i in 0..<12 { put(280 + 4 * i, Float(aff[i])) }
                for (i, c) in "n+1".utf8.enumerated() { p[344 + i] = c }
            } else {
                for (i, c) in "n+2\0\r\n\u{1A}\n".utf8.enumerated() { p[4 + i] = c }
                put(12, code(datatype))
                put(14, Int16(datatype.bytes * 8))
                for (i, d) in dims.enumerated() { put(16 + 8 * i, Int64(d)) }
                for (i, d) in pix.enumerated() { put(104 + 8 * i, d) }
                put(168, Int64(offset))
                put(176, 1.0); put(184, 0.0)
                put(344, Int32(1)); put(348, Int32(1))
                for i in 0..<3 { put(352 + 8 * i, quat[i]); put(376 + 8 * i, aff[i * 4 + 3]) }
                for i in 0..<12 { put(400 + 8 * i, aff[i]) }
                put(500, Int32(2))
            }
        }
        h.append(Voxels.encode(v.voxels, type: datatype))
        return h
    }

    /// Quaternion (b, c, d) and qfac of a rotation matrix (row-major), as nifti1_io computes them.
    static func quaternion(_ m: [Double]) -> ([Double], Double) {
        var r = m
        let det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) + r[2] * (r[3] * r[7] - r[4] * r[6])
        var qfac = 1.0
        if det < 0 { qfac = -1; r[2] = -r[2]; r[5] = -r[5]; r[8] = -r[8] }
        var a = r[0] + r[4] + r[8] + 1, b: Double, c: Double, d: Double
        if a > 0.5 {
            a = 0.5 * a.squareRoot()
            b = 0.25 * (r[7] - r[5]) / a; c = 0.25 * (r[2] - r[6]) / a; d = 0.25 * (r[3] - r[1]) / a
        } else {
            let xd = 1 + r[0] - (r[4] + r[8]), yd = 1 + r[4] - (r[0] + r[8]), zd = 1 + r[8] - (r[0] + r[4])
            if xd > 1 {
                b = 0.5 * xd.squareRoot(); c = 0.25 * (r[1] + r[3]) / b; d = 0.25 * (r[2] + r[6]) / b; a = 0.25 * (r[7] - r[5]) / b
            } else if yd > 1 {
                c = 0.5 * yd.squareRoot(); b = 0.25 * (r[1] + r[3]) / c; d = 0.25 * (r[5] + r[7]) / c; a = 0.25 * (r[2] - r[6]) / c
            } else {
                d = 0.5 * zd.squareRoot(); b = 0.25 * (r[2] + r[6]) / d; c = 0.25 * (r[5] + r[7]) / d; a = 0.25 * (r[3] - r[1]) / d
            }
            if a < 0 { b = -b; c = -c; d = -d }
        }
        return ([b, c, d], qfac)
    }
}
