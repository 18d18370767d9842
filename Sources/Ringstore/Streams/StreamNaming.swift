import SystemPackage

/// Where a stream's file lives: a safe file name derived from any stream name.
///
/// The name is hashed (128 bits, two independently seeded 64-bit FNV-1a hashes
/// with an avalanche finish) and written as 32 lowercase hex digits, so no
/// stream name can reach outside the store (`../x` is just bytes to hash), no
/// two names differ only by case on disk, and every name fits the file system's
/// limits. The first byte picks one of 256 sub-folders, so a million streams put
/// about 3,900 streams in each (ext4's hashed directories look names up in
/// constant time at that size). One level rather than two because creating a
/// folder costs an inode allocation like a file, and a deeper tree would make
/// most new streams pay for a folder of their own. The stream file's
/// header holds the real name: should two names ever share a hash, the second
/// gets the suffix `-1` (then `-2`, …), found by probing.
enum StreamNaming {
    static let folder = "streams"
    static let fileExtension = "stream"

    /// The 32-hex-digit hash of a stream name.
    static func hash(_ stream: String) -> String {
        var a: UInt64 = 0xCBF2_9CE4_8422_2325
        var b: UInt64 = 0x8422_2325_CBF2_9CE4 ^ 0x5bd1_e995
        for byte in stream.utf8 {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            b = (b ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 &+ 0x9E37
        }
        return hex(mix(a ^ UInt64(stream.utf8.count))) + hex(mix(b &+ 0x9E37_79B9_7F4A_7C15))
    }

    /// The stream's file path relative to the store, for collision slot `probe` (0 normally).
    static func relativePath(_ stream: String, probe: Int = 0) -> FilePath {
        let (folder, file) = location(stream, probe: probe)
        return FilePath("\(Self.folder)/\(folder)/\(file)")
    }

    /// The sub-folder and file name of a stream's file (plain strings: building
    /// paths with `FilePath` operations on every lookup is measurably slow).
    static func location(_ stream: String, probe: Int = 0) -> (folder: String, file: String) {
        let h = hash(stream)
        return (String(h.prefix(2)), probe == 0 ? "\(h).\(fileExtension)" : "\(h)-\(probe).\(fileExtension)")
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
