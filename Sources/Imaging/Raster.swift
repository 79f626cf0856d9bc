import CCodecs
import Foundation

/// 2D picture codecs: PNG, JPEG, TIFF and GIF through Debian's libraries (via CCodecs), BMP in Swift.
///
/// A picture becomes a `Volume` of size [width, height, 1] with the top row at y = 0, unit spacing
/// and identity geometry: pictures carry no physical coordinates worth trusting.
public enum Raster {
    public static func decode(_ data: Data, format: ImageFormat) throws -> Volume {
        if data.isEmpty { throw ImagingError("file is empty") }
        switch format {
        case .png: return try decodeC(data, mc_png_decode)
        case .jpeg: return try decodeC(data, mc_jpeg_decode)
        case .tiff: return try decodeC(data, mc_tiff_decode)
        case .gif: return try decodeC(data, mc_gif_decode)
        case .bmp: return try BMP.decode(data)
        case .nifti, .nrrd, .metaImage: throw ImagingError("\(format.rawValue) is not a 2D picture format")
        }
    }

    private typealias CDecoder = (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<mc_raster>?, UnsafeMutablePointer<CChar>?, Int) -> Int32

    private static func decodeC(_ data: Data, _ fn: CDecoder) throws -> Volume {
        var r = mc_raster()
        var err = [CChar](repeating: 0, count: 256)
        let rc = data.withUnsafeBytes { raw in
            err.withUnsafeMutableBufferPointer { fn(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &r, $0.baseAddress, 256) }
        }
        guard rc == 0, let p = r.data else { throw ImagingError(String(cString: err)) }
        defer { mc_free(p) }
        let n = Int(r.width) * Int(r.height) * Int(r.channels)
        let voxels: [Float] = r.bits == 16
            ? UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt16.self), count: n).map { Float($0) }
            : UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: n).map { Float($0) }
        return Volume(size: [Int(r.width), Int(r.height), 1], components: Int(r.channels), voxels: voxels)
    }

    // MARK: - Encoders

    /// 8- or 16-bit PNG of a single-slice grey or RGB volume; values are rounded and clamped.
    public static func encodePNG(_ v: Volume, bits: Int = 8, level: Int = 6) throws -> Data {
        try check(v, "PNG", bits: bits == 8 || bits == 16 ? bits : 0)
        return try encodeC { out, len, err in
            withSamples(v, bits: bits) { mc_png_encode($0, Int32(v.nx), Int32(v.ny), Int32(v.components), Int32(bits), Int32(level), &out, &len, err, 256) }
        }
    }

    public static func encodePNG(gray8 pixels: [UInt8], width: Int, height: Int, level: Int = 6) throws -> Data {
        try encodePNG(pixels, width: width, height: height, channels: 1, level: level)
    }

    public static func encodePNG(rgb8 pixels: [UInt8], width: Int, height: Int, level: Int = 6) throws -> Data {
        try encodePNG(pixels, width: width, height: height, channels: 3, level: level)
    }

    private static func encodePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, level: Int) throws -> Data {
        guard width > 0, height > 0, pixels.count == width * height * channels else {
            throw ImagingError("PNG: \(pixels.count) bytes do not make a \(width)×\(height) picture with \(channels) channel(s)")
        }
        return try encodeC { out, len, err in
            mc_png_encode(pixels, Int32(width), Int32(height), Int32(channels), 8, Int32(level), &out, &len, err, 256)
        }
    }

    /// Baseline JPEG (lossy); `quality` 1…100.
    public static func encodeJPEG(_ v: Volume, quality: Int = 90) throws -> Data {
        try check(v, "JPEG", bits: 8)
        return try encodeC { out, len, err in
            withSamples(v, bits: 8) {
                mc_jpeg_encode($0.assumingMemoryBound(to: UInt8.self), Int32(v.nx), Int32(v.ny), Int32(v.components),
                               Int32(max(1, min(100, quality))), &out, &len, err, 256)
            }
        }
    }

    /// LZW-compressed 8- or 16-bit TIFF.
    public static func encodeTIFF(_ v: Volume, bits: Int = 8) throws -> Data {
        try check(v, "TIFF", bits: bits == 8 || bits == 16 ? bits : 0)
        return try encodeC { out, len, err in
            withSamples(v, bits: bits) { mc_tiff_encode($0, Int32(v.nx), Int32(v.ny), Int32(v.components), Int32(bits), &out, &len, err, 256) }
        }
    }

    /// 8-bit grey GIF with the identity grey palette.
    public static func encodeGIF(_ v: Volume) throws -> Data {
        try check(v, "GIF", bits: 8)
        guard v.components == 1 else { throw ImagingError("GIF: only grey pictures can be encoded") }
        return try encodeC { out, len, err in
            withSamples(v, bits: 8) { mc_gif_encode($0.assumingMemoryBound(to: UInt8.self), Int32(v.nx), Int32(v.ny), &out, &len, err, 256) }
        }
    }

    /// 8-bit grey (with a grey palette) or 24-bit RGB BMP, bottom-up as most readers expect.
    public static func encodeBMP(_ v: Volume) throws -> Data {
        try check(v, "BMP", bits: 8)
        return BMP.encode(samples8(v), width: v.nx, height: v.ny, channels: v.components)
    }

    private static func check(_ v: Volume, _ name: String, bits: Int) throws {
        guard v.nz == 1 else { throw ImagingError("\(name): cannot encode a volume of \(v.nz) slices as a picture") }
        guard v.components == 1 || v.components == 3 else { throw ImagingError("\(name): \(v.components) components per pixel not supported") }
        guard v.nx > 0, v.ny > 0 else { throw ImagingError("\(name): empty picture") }
        guard bits != 0 else { throw ImagingError("\(name): only 8 or 16 bits per sample are supported") }
    }

    static func samples8(_ v: Volume) -> [UInt8] {
        v.voxels.map { $0 >= 255 ? 255 : $0 > 0 ? UInt8($0.rounded()) : 0 }  // NaN → 0
    }

    private static func withSamples(_ v: Volume, bits: Int, _ body: (UnsafeRawPointer) -> Int32) -> Int32 {
        if bits == 16 {
            let s = v.voxels.map { $0 >= 65535 ? 65535 : $0 > 0 ? UInt16($0.rounded()) : 0 }
            return s.withUnsafeBytes { body($0.baseAddress!) }
        }
        return samples8(v).withUnsafeBytes { body($0.baseAddress!) }
    }

    private static func encodeC(_ body: (inout UnsafeMutablePointer<UInt8>?, inout Int, UnsafeMutablePointer<CChar>) -> Int32) throws -> Data {
        try Compression.call(body)
    }
}

/// Windows bitmaps: BITMAPINFOHEADER (40 bytes) and its V4/V5 successors, uncompressed or
/// bit-field encoded. OS/2 headers and RLE are rare in medical datasets and rejected.
enum BMP {
    static func decode(_ data: Data) throws -> Volume {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Volume in
            func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
            func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
            func i32(_ o: Int) -> Int { Int(Int32(bitPattern: u32(o))) }

            guard raw.count >= 2, raw[0] == 0x42, raw[1] == 0x4D else { throw ImagingError("not a BMP file") }
            guard raw.count >= 18 else { throw ImagingError("BMP: file too short for a header (\(raw.count) bytes)") }
            let headerSize = Int(u32(14))
            if headerSize == 12 { throw ImagingError("BMP: OS/2 BITMAPCOREHEADER is not supported") }
            guard headerSize >= 40, raw.count >= 14 + headerSize else { throw ImagingError("BMP: bad or truncated info header") }
            let dataOffset = Int(u32(10)), width = i32(18), rawHeight = i32(22), bpp = u16(28), compression = u32(30)
            let height = abs(rawHeight), topDown = rawHeight < 0
            guard width > 0, height > 0, width < 1 << 16, height < 1 << 16 else { throw ImagingError("BMP: bad size \(width)×\(rawHeight)") }
            switch compression {
            case 0, 3, 6: break
            case 1, 2: throw ImagingError("BMP: RLE compression is not supported")
            default: throw ImagingError("BMP: compression type \(compression) is not supported")
            }
            guard [1, 4, 8, 16, 24, 32].contains(bpp) else { throw ImagingError("BMP: \(bpp) bits per pixel not supported") }

            // Channel masks for 16/32-bit: in the V4/V5 header, or right after a 40-byte one.
            var masks: [UInt32] = bpp == 16 ? [0x7C00, 0x03E0, 0x001F] : [0xFF0000, 0xFF00, 0xFF]
            if compression != 0 && bpp >= 16 {
                guard raw.count >= 14 + 40 + 12 else { throw ImagingError("BMP: bit-field masks are missing") }
                masks = [u32(54), u32(58), u32(62)]
            }
            var palette: [(UInt8, UInt8, UInt8)] = []
            if bpp <= 8 {
                let used = Int(u32(46))
                let count = used > 0 && used <= 1 << bpp ? used : 1 << bpp
                let start = 14 + headerSize + (compression == 3 ? 12 : compression == 6 ? 16 : 0)
                guard start + 4 * count <= raw.count else { throw ImagingError("BMP: palette is truncated") }
                palette = (0..<count).map { i in (raw[start + 4 * i + 2], raw[start + 4 * i + 1], raw[start + 4 * i]) }
            }
            let stride = (width * bpp + 31) / 32 * 4
            let needed = dataOffset + stride * height
            guard raw.count >= needed else { throw ImagingError("BMP: data is truncated (expected \(needed) bytes, found \(raw.count))") }

            var rgb = [Float](repeating: 0, count: width * height * 3)
            let shifts = masks.map { $0 == 0 ? 0 : $0.trailingZeroBitCount }
            let maxima = zip(masks, shifts).map { Float($0 >> $1) }
            for row in 0..<height {
                let y = topDown ? row : height - 1 - row
                let line = dataOffset + row * stride
                for x in 0..<width {
                    let o = (y * width + x) * 3
                    switch bpp {
                    case 24:
                        let p = line + 3 * x
                        (rgb[o], rgb[o + 1], rgb[o + 2]) = (Float(raw[p + 2]), Float(raw[p + 1]), Float(raw[p]))
                    case 16, 32:
                        let px = bpp == 16 ? UInt32(u16(line + 2 * x)) : u32(line + 4 * x)
                        for c in 0..<3 where masks[c] != 0 {
                            rgb[o + c] = (Float((px & masks[c]) >> shifts[c]) * 255 / maxima[c]).rounded()
                        }
                    default:
                        let bit = x * bpp
                        let idx = Int(raw[line + bit / 8] >> (8 - bpp - bit % 8)) & ((1 << bpp) - 1)
                        let c = idx < palette.count ? palette[idx] : (0, 0, 0)
                        (rgb[o], rgb[o + 1], rgb[o + 2]) = (Float(c.0), Float(c.1), Float(c.2))
                    }
                }
            }
            // Like the C side: a palette picture whose pixels are all grey is a grey picture.
            let n = width * height
            if bpp <= 8 && (0..<n).allSatisfy({ (i: Int) -> Bool in rgb[3 * i] == rgb[3 * i + 1] && rgb[3 * i] == rgb[3 * i + 2] }) {
                return Volume(size: [width, height, 1], voxels: (0..<n).map { (i: Int) -> Float in rgb[3 * i] })
            }
            return Volume(size: [width, height, 1], components: 3, voxels: rgb)
        }
    }

    static func encode(_ samples: [UInt8], width: Int, height: Int, channels: Int) -> Data {
        let bpp = channels == 1 ? 8 : 24
        let stride = (width * bpp + 31) / 32 * 4
        let paletteBytes = channels == 1 ? 1024 : 0
        let offset = 54 + paletteBytes, total = offset + stride * height
        var d = Data(count: total)
        d.withUnsafeMutableBytes { p in
            func put16(_ v: Int, _ o: Int) { p.storeBytes(of: UInt16(v).littleEndian, toByteOffset: o, as: UInt16.self) }
            func put32(_ v: Int, _ o: Int) { p.storeBytes(of: UInt32(v).littleEndian, toByteOffset: o, as: UInt32.self) }
            p[0] = 0x42; p[1] = 0x4D
            put32(total, 2); put32(offset, 10); put32(40, 14); put32(width, 18); put32(height, 22)
            put16(1, 26); put16(bpp, 28); put32(stride * height, 34)
            put32(2835, 38); put32(2835, 42)  // 72 dpi
            if channels == 1 {
                put32(256, 46)
                for i in 0..<256 { for c in 0..<3 { p[54 + 4 * i + c] = UInt8(i) } }
            }
            for y in 0..<height {
                let line = offset + (height - 1 - y) * stride, src = y * width * channels
                if channels == 1 {
                    for x in 0..<width { p[line + x] = samples[src + x] }
                } else {
                    for x in 0..<width {
                        let s = src + 3 * x
                        (p[line + 3 * x], p[line + 3 * x + 1], p[line + 3 * x + 2]) = (samples[s + 2], samples[s + 1], samples[s])
                    }
                }
            }
        }
        return d
    }
}
