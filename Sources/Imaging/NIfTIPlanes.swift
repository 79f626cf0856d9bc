import Foundation

/// The first frame of a scalar 3D NIfTI file, handed over one z plane at a time. A caller that needs
/// some planes of a large compressed volume works on each while it is in cache; the volume is never
/// held whole, inflated or as `Float`.
public final class NIfTIPlanes {
    public let url: URL
    public let grid: Grid
    /// True when the file stores integers (and its scaling keeps them integers).
    public let isIntegral: Bool
    let header: NIfTI.Header, layout: NIfTI.Layout
    private let file: Data

    /// Nil when the file is not a scalar 3D NIfTI whose header reads cleanly: the caller then reads
    /// it whole, which names any problem.
    public init?(_ url: URL) {
        guard let file = try? Data(contentsOf: url, options: .alwaysMapped), !file.isEmpty else { return nil }
        let header: NIfTI.Header?
        if Compression.isGzip(file) {
            header = file.withUnsafeBytes { gz in
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
                defer { scratch.deallocate() }
                return GzipStream(gz).flatMap { NIfTI.streamHeader($0, scratch: scratch) }
            }
        } else {
            header = file.count >= 348 ? file.withUnsafeBytes { try? NIfTI.parseHeader($0) } : nil
        }
        guard let h = header, h.datatype != .rgb24, h.dims[3] > 1, let layout = try? NIfTI.Layout(h, limit: 1) else { return nil }
        self.url = url
        self.file = file
        self.header = h
        self.layout = layout
        grid = Grid(size: layout.size, spacing: layout.geometry.spacing, origin: layout.geometry.origin,
                    direction: layout.geometry.direction)
        isIntegral = layout.integral
    }

    /// Calls `body` with each z plane (x fastest, then y) in file order, up to plane `last` (all of
    /// them when nil). False when the file turns out damaged or truncated, or is a multi-member gzip:
    /// the caller discards what it made of the planes and reads the file whole.
    ///
    /// A compressed file is inflated to its end, so that its CRC is checked, unless `last` leaves
    /// planes out and the gzip trailer gives the length the header implies: then inflating stops
    /// after plane `last`. A truncated file still fails (its last bytes are no such trailer); what
    /// goes unchecked is the CRC, which covers the whole file.
    public func forEach(through last: Int? = nil, _ body: (_ z: Int, _ plane: UnsafeRawPointer) -> Void) -> Bool {
        let h = header, planeBytes = h.dims[1] * h.dims[2] * h.datatype.bytes, nz = h.dims[3]
        return file.withUnsafeBytes { raw in
            guard Compression.isGzip(file) else {
                guard raw.count >= h.voxOffset + planeBytes * nz else { return false }
                for z in 0..<nz { body(z, raw.baseAddress! + h.voxOffset + z * planeBytes) }
                return true
            }
            let stop = last.map { min($0, nz - 1) } ?? nz - 1
            let early = stop < nz - 1 && raw.count >= 18 && raw.loadUnaligned(fromByteOffset: raw.count - 4, as: UInt32.self).littleEndian == UInt32(truncatingIfNeeded: inflatedSize)
            let plane = UnsafeMutableRawBufferPointer.allocate(byteCount: max(planeBytes, 540), alignment: 16)
            defer { plane.deallocate() }
            guard let stream = GzipStream(raw), NIfTI.streamHeader(stream, scratch: plane) != nil else { return false }
            let one = UnsafeMutableRawBufferPointer(rebasing: plane[0..<planeBytes])
            for z in 0..<(early ? max(stop + 1, 0) : nz) {
                guard stream.read(into: one) == planeBytes else { return false }
                body(z, plane.baseAddress!)
            }
            return early || NIfTI.drain(stream, scratch: plane)
        }
    }

    /// The length of the file inflated, when it holds the header, the voxels of every frame, and nothing more.
    var inflatedSize: Int {
        let ndim = min(max(header.dims[0], 1), 7)
        return header.voxOffset + (1...ndim).reduce(header.datatype.bytes) { $0 * max(header.dims[$1], 1) }
    }

    /// True when the stored bytes are the values (8-bit unsigned, unscaled): planes can be read as they are.
    public var holdsBytes: Bool { header.datatype == .uint8 && layout.slope == nil }

    /// A whole plane as `Float`, scaled as the header says: the values `NIfTI.read` gives for it.
    public func values(_ plane: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>) {
        let count = grid.size[0] * grid.size[1]
        Voxels.convert(plane, count: count, type: header.datatype, bigEndian: header.bigEndian, into: out)
        layout.scale(out, count: count)
    }

    /// How `window` maps raw values: 8- and 16-bit integers through a table of every value the type
    /// holds, built once per volume: a lookup per voxel costs less than the arithmetic (4.3 % of an
    /// ingest against 6.9 %).
    public struct Windowing {
        let mapping: Intensity.Mapping
        let table: [Float]?
        let bias: Int
    }

    public func windowing(_ mapping: Intensity.Mapping) -> Windowing {
        let range: ClosedRange<Int>? = switch header.datatype {
        case .uint8: 0...255
        case .int8: -128...127
        case .uint16: 0...65535
        case .int16: -32768...32767
        default: nil
        }
        guard let range else { return Windowing(mapping: mapping, table: nil, bias: 0) }
        let table = range.map { v in mapping.apply(layout.slope.map { Float(v) * $0 + layout.inter } ?? Float(v)) }
        return Windowing(mapping: mapping, table: table, bias: -range.lowerBound)
    }

    /// `count` voxels of a plane, `stride` voxels apart from voxel `offset` on, scaled as the header
    /// says and mapped to 0…255 as `Float`, into `out`, `outStride` apart: what `mapping.apply` gives
    /// on the volume that `NIfTI.read` returns.
    public func window(_ plane: UnsafeRawPointer, offset: Int, stride: Int, count: Int, with w: Windowing,
                       into out: UnsafeMutablePointer<Float>, outStride: Int = 1) {
        let type = header.datatype, start = plane + offset * type.bytes
        if let table = w.table {
            table.withUnsafeBufferPointer { t in
                let t = t.baseAddress! + w.bias, swap = header.bigEndian != (1.bigEndian == 1)
                // Pointers stepped, not indices multiplied: a multiplication checks for overflow.
                func each<T: FixedWidthInteger>(_: T.Type) {
                    let step = stride * MemoryLayout<T>.size
                    var (src, dst) = (start, out)
                    if swap {
                        for _ in 0..<count { dst.pointee = t[Int(src.loadUnaligned(as: T.self).byteSwapped)]; src += step; dst += outStride }
                    } else {
                        for _ in 0..<count { dst.pointee = t[Int(src.loadUnaligned(as: T.self))]; src += step; dst += outStride }
                    }
                }
                switch type {
                case .uint8: each(UInt8.self)
                case .int8: each(Int8.self)
                case .uint16: each(UInt16.self)
                default: each(Int16.self)
                }
            }
            return
        }
        // Converted in place where the output is contiguous.
        let row = outStride == 1 ? out : UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { if row != out { row.deallocate() } }
        Voxels.convert(start, count: count, stride: stride, type: type, bigEndian: header.bigEndian, into: row)
        layout.scale(row, count: count)
        w.mapping.apply(row, stride: 1, count: count, into: out, outStride: outStride)
    }
}
