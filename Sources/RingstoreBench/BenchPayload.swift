/// The events' JSON payloads: `{"seq":"0000000042","pad":"xxx…"}`, exactly the
/// workload's event size, with a fixed-width sequence number so that every
/// payload is distinct and made by one copy and ten byte stores (a string,
/// since JSON numbers may not have leading zeros).
struct BenchPayload: Sendable {
    private static let head = Array(#"{"seq":""#.utf8)
    private static let middle = Array(#"","pad":""#.utf8)
    private static let tail = Array(#""}"#.utf8)
    private static let digits = 10

    /// The smallest event size a payload fits in.
    static let minimumSize = head.count + digits + middle.count + tail.count

    private let template: [UInt8]

    init(size: Int) {
        precondition(size >= Self.minimumSize)
        var bytes = Self.head
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: Self.digits))
        bytes.append(contentsOf: Self.middle)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: size - Self.minimumSize))
        bytes.append(contentsOf: Self.tail)
        template = bytes
    }

    /// The payload carrying `sequence` (modulo 10^10).
    func make(sequence: Int) -> [UInt8] {
        var bytes = template
        var n = sequence
        bytes.withUnsafeMutableBufferPointer { buffer in
            for i in stride(from: Self.head.count + Self.digits - 1, through: Self.head.count, by: -1) {
                buffer[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            }
        }
        return bytes
    }
}
