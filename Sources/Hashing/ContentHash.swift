import CHash
import Foundation

/// Content identity: XXH3-128, for deduplicating stored pixels and recognising unchanged files and
/// checkpoints. Not a security hash.
public enum ContentHash {
    /// Both 64-bit halves.
    public static func words(_ bytes: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64) {
        var h: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &h) { mc_xxh128(bytes.baseAddress, bytes.count, $0.bindMemory(to: UInt64.self).baseAddress) }
        return (h.0, h.1)
    }

    /// 32 hex digits, high half first.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let h = words(bytes)
        return String(format: "%016llx%016llx", h.high, h.low)
    }

    public static func hex(_ data: Data) -> String { data.withUnsafeBytes { hex($0) } }
}
