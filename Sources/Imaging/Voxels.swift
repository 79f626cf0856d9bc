import Foundation

/// How a file stores its voxels, whatever the format (NIfTI, NRRD, MetaImage, DICOM): each
/// reader maps its own type names onto these.
public enum VoxelType: CaseIterable, Sendable {
    case uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64
    /// Interleaved 8-bit RGB.
    case rgb24

    /// Bytes per voxel (all three components for rgb24).
    public var bytes: Int {
        switch self {
        case .uint8, .int8: 1
        case .int16, .uint16: 2
        case .int32, .uint32, .float32: 4
        case .float64, .int64, .uint64: 8
        case .rgb24: 3
        }
    }

    public var isIntegral: Bool { self != .float32 && self != .float64 }
}

/// Conversions between raw voxel bytes and `Float`, shared by the volumetric codecs.
enum Voxels {
    static func convert(_ raw: UnsafeRawBufferPointer, offset: Int, count: Int, type: VoxelType, bigEndian: Bool) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, initialized in
            convert(raw.baseAddress! + offset, count: count, type: type, bigEndian: bigEndian, into: out.baseAddress!)
            initialized = count
        }
    }

    /// `count` values (colour components counted singly), `stride` values apart from `base` on, into `out`.
    static func convert(_ base: UnsafeRawPointer, count: Int, stride: Int = 1, type: VoxelType, bigEndian: Bool,
                        into out: UnsafeMutablePointer<Float>) {
        let swap = bigEndian != (1.bigEndian == 1)
        // Byte order and stride are decided outside the loops, so that the common case vectorises.
        func each<T: FixedWidthInteger>(_: T.Type, _ f: (T) -> Float) {
            let step = stride * MemoryLayout<T>.size
            switch (swap, stride) {
            case (false, 1): for i in 0..<count { out[i] = f((base + i * MemoryLayout<T>.size).loadUnaligned(as: T.self)) }
            case (false, _): for i in 0..<count { out[i] = f((base + i * step).loadUnaligned(as: T.self)) }
            case (true, _): for i in 0..<count { out[i] = f((base + i * step).loadUnaligned(as: T.self).byteSwapped) }
            }
        }
        switch type {
        case .uint8, .rgb24: each(UInt8.self) { Float($0) }
        case .int8: each(Int8.self) { Float($0) }
        case .int16: each(Int16.self) { Float($0) }
        case .uint16: each(UInt16.self) { Float($0) }
        case .int32: each(Int32.self) { Float($0) }
        case .uint32: each(UInt32.self) { Float($0) }
        case .int64: each(Int64.self) { Float($0) }
        case .uint64: each(UInt64.self) { Float($0) }
        case .float32: each(UInt32.self) { Float(bitPattern: $0) }
        case .float64: each(UInt64.self) { Float(Double(bitPattern: $0)) }
        }
    }

    /// Little-endian bytes of `values` in `type` (rounded and clamped for integer types).
    static func encode(_ values: [Float], type: VoxelType) -> Data {
        var d = Data(count: values.count * (type == .rgb24 ? 1 : type.bytes))
        d.withUnsafeMutableBytes { p in
            func each<T: FixedWidthInteger>(_: T.Type) {
                let lo = Float(T.min), hi = Float(T.max)
                for (i, v) in values.enumerated() {
                    let c = T(exactly: v.rounded()) ?? (v < lo ? T.min : v > hi ? T.max : 0)
                    p.storeBytes(of: c.littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self)
                }
            }
            switch type {
            case .uint8, .rgb24: each(UInt8.self)
            case .int8: each(Int8.self)
            case .int16: each(Int16.self)
            case .uint16: each(UInt16.self)
            case .int32: each(Int32.self)
            case .uint32: each(UInt32.self)
            case .int64: each(Int64.self)
            case .uint64: each(UInt64.self)
            case .float32: for (i, v) in values.enumerated() { p.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            case .float64: for (i, v) in values.enumerated() { p.storeBytes(of: Double(v).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
            }
        }
        return d
    }
}
