/// FNV-1a (64-bit) of a string: the same in every run and on every platform, unlike Swift's
/// `Hasher`. It names things (seeds by name, split assignment, cache keys of selections); content
/// identity is `ContentHash`'s.
public enum StableHash {
    public static let offsetBasis: UInt64 = 0xCBF2_9CE4_8422_2325

    /// `basis` other than the standard offset basis gives a seeded family of hashes.
    public static func fnv1a(_ s: String, basis: UInt64 = offsetBasis) -> UInt64 {
        s.utf8.reduce(basis) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }

    /// 16 hex digits: a key for file and folder names.
    public static func hex(_ s: String) -> String {
        let hex = String(fnv1a(s), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
