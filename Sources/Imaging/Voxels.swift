import Foundation

/// Conversions between raw voxel bytes and `Float`, shared by the volumetric codecs.
enum Voxels {
    static func convert(_ raw: UnsafeRawBufferPointer, offset: Int, count: Int, type: NIfTI.DataType, bigEndian: Bool) -> [Float] {
        let base = raw.baseAddress! + offset
        let swap = bigEndian != (1.bigEndian == 1)
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            // The byte order is decided once, outside the loop, so that the common case vectorises.
            func each<T: FixedWidthInteger>(_: T.Type, _ f: (T) -> Float) {
                if swap {
                    for i in 0..<count { out[i] = f((base + i * MemoryLayout<T>.size).loadUnaligned(as: T.self).byteSwapped) }
                } else {
                    for i in 0..<count { out[i] = f((base + i * MemoryLayout<T>.size).loadUnaligned(as: T.self)) }
                }
            }
            switch type {
            case .uint8, .rgb24: for i in 0..<count { out[i] = Float(base.load(fromByteOffset: i, as: UInt8.self)) }
            case .int8: for i in 0..<count { out[i] = Float(base.load(fromByteOffset: i, as: Int8.self)) }
            case .int16: each(Int16.self) { Float($0) }
            case .uint16: each(UInt16.self) { Float($0) }
            case .int32: each(Int32.self) { Float($0) }
            case .uint32: each(UInt32.self) { Float($0) }
            case .int64: each(Int64.self) { Float($0) }
            case .uint64: each(UInt64.self) { Float($0) }
            case .float32: each(UInt32.self) { Float(bitPattern: $0) }
            case .float64: each(UInt64.self) { Float(Double(bitPattern: $0)) }
            }
            initialized = count
        }
    }

    /// Little-endian bytes of `values` in `type` (rounded and clamped for integer types).
    static func encode(_ values: [Float], type: NIfTI.DataType) -> Data {
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
