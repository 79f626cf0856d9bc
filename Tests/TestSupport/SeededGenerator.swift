/// SplitMix64, the one generator of random test inputs: its stream is fixed by its seed, so a
/// failure on random input reproduces.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` whole numbers in `range`, as the voxels of a volume.
    mutating func voxels(_ count: Int, in range: ClosedRange<Int>) -> [Float] {
        (0..<count).map { _ in Float(Int.random(in: range, using: &self)) }
    }
}
