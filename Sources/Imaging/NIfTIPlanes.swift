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

    /// Calls `body` with each z plane (x fastest, then y) in file order. False when the file turns out
    /// damaged or truncated, or is a multi-member gzip: the caller discards what it made of the planes
    /// and reads the file whole. A compressed file is read to its end, so its CRC is always checked.
    public func forEach(_ body: (_ z: Int, _ plane: UnsafeRawPointer) -> Void) -> Bool {
        let h = header, planeBytes = h.dims[1] * h.dims[2] * h.datatype.bytes
        return file.withUnsafeBytes { raw in
            guard Compression.isGzip(file) else {
                guard raw.count >= h.voxOffset + planeBytes * h.dims[3] else { return false }
                for z in 0..<h.dims[3] { body(z, raw.baseAddress! + h.voxOffset + z * planeBytes) }
                return true
            }
            let plane = UnsafeMutableRawBufferPointer.allocate(byteCount: max(planeBytes, 540), alignment: 16)
            defer { plane.deallocate() }
            guard let stream = GzipStream(raw), NIfTI.streamHeader(stream, scratch: plane) != nil else { return false }
            let one = UnsafeMutableRawBufferPointer(rebasing: plane[0..<planeBytes])
            for z in 0..<h.dims[3] {
                guard stream.read(into: one) == planeBytes else { return false }
                body(z, plane.baseAddress!)
            }
            return NIfTI.drain(stream, scratch: plane)
        }
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
    /// says and mapped to 0…255 as `Float`, into `out`: what `mapping.apply` gives on the volume that
    /// `NIfTI.read` returns.
    public func window(_ plane: UnsafeRawPointer, offset: Int, stride: Int, count: Int, with w: Windowing,
                       into out: UnsafeMutablePointer<Float>) {
        let type = header.datatype, start = plane + offset * type.bytes
        if let table = w.table {
            table.withUnsafeBufferPointer { t in
                let t = t.baseAddress! + w.bias, swap = header.bigEndian != (1.bigEndian == 1)
                func each<T: FixedWidthInteger>(_: T.Type) {
                    let step = stride * MemoryLayout<T>.size
                    if swap {
                        for k in 0..<count { out[k] = t[Int((start + k * step).loadUnaligned(as: T.self).byteSwapped)] }
                    } else {
                        for k in 0..<count { out[k] = t[Int((start + k * step).loadUnaligned(as: T.self))] }
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
        Voxels.convert(start, count: count, stride: stride, type: type, bigEndian: header.bigEndian, into: out)
        layout.scale(out, count: count)
        w.mapping.apply(out, stride: 1, count: count, into: out)
    }
}
