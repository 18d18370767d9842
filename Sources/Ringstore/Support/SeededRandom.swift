/// SplitMix64: the one seeded generator of the project. The power-loss simulation
/// draws its cuts from it (so a seed names one outcome); the tests, the torture
/// tool, the bench's workloads and the benchmarks draw their data from it (so a
/// seed names one run).
/// Cheap (a few multiplications, no system call, unlike `SystemRandomNumberGenerator`,
/// which would show in a profile). Not for anything that must be unpredictable.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
