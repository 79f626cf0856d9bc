import CCodecs
import Foundation

/// gzip and zlib through libdeflate (fast path) and zlib (multi-member and damaged streams).
public enum Compression {
    public static func gunzip(_ data: Data) throws -> Data {
        try data.withUnsafeBytes { raw in
            try call { out, len, err in
                mc_gunzip(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &out, &len, err, 256)
            }
        }
    }

    public static func gzip(_ data: Data, level: Int32 = 6) -> Data {
        data.withUnsafeBytes { raw in
            try! call { out, len, _ in mc_gzip(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, level, &out, &len) }
        }
    }

    public static func zlibCompress(_ bytes: UnsafeRawBufferPointer, level: Int32 = 1) -> Data {
        try! call { out, len, _ in mc_zlib_compress(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, level, &out, &len) }
    }

    /// `expected`: the decompressed size when known, which takes the fast path and checks it.
    public static func zlibDecompress(_ bytes: UnsafeRawBufferPointer, expected: Int = 0) throws -> Data {
        try call { out, len, err in
            mc_zlib_decompress(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, expected, &out, &len, err, 256)
        }
    }

    public static func isGzip(_ data: Data) -> Bool { data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b }

    static func call(_ body: (inout UnsafeMutablePointer<UInt8>?, inout Int, UnsafeMutablePointer<CChar>) -> Int32) throws -> Data {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = err.withUnsafeMutableBufferPointer { body(&out, &len, $0.baseAddress!) }
        guard rc == 0, let p = out else { throw ImagingError(String(cString: err)) }
        return Data(bytesNoCopy: p, count: len, deallocator: .custom { ptr, _ in mc_free(ptr) })
    }
}

/// One gzip member inflated piece by piece over bytes the caller keeps alive. `read` returns nil once
/// the stream turns out damaged, truncated or multi-member; `Compression.gunzip` then says why.
final class GzipStream {
    private let handle: OpaquePointer

    init?(_ bytes: UnsafeRawBufferPointer) {
        guard let h = mc_gz_open(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count) else { return nil }
        handle = h
    }
    deinit { mc_gz_close(handle) }

    /// Fills `buffer` and returns the bytes written: fewer than its size only at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let n = mc_gz_read(handle, buffer.bindMemory(to: UInt8.self).baseAddress, buffer.count)
        return n < 0 ? nil : Int(n)
    }
}
