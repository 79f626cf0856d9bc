/// SplitMix64: a small, fast generator whose stream is fixed by its seed. Prompts are seeded per
/// (seed, sample, mask, step) through `PromptRNG(seed:_:)`, so a prompt never depends on the order
/// in which samples are visited or on how many threads visit them.
public struct PromptRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64, _ keys: UInt64...) {
        var s = Self.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        for k in keys { s = Self.mix(s ^ Self.mix(k &+ 0xD1B5_4A32_D192_ED03)) }
        state = s
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension PromptRNG {
    /// Uniform in [0, 1), from the top 53 bits.
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Fisher–Yates, written out so that orders never depend on the standard library's shuffle.
    public mutating func permute<T>(_ list: inout [T]) {
        for i in stride(from: list.count - 1, to: 0, by: -1) { list.swapAt(i, Int(next() % UInt64(i + 1))) }
    }
}
