import Ringstore

/// Names taken from a request's path. The router hands over path segments as
/// sent, still percent-encoded (so a stream named `a/b` travels as `a%2Fb`);
/// they are decoded here, strictly: a bad escape or bytes that are not UTF-8
/// are a 400, never a different name.
enum PathNames {
    static func decode(_ segment: some StringProtocol, what: String) throws(APIError) -> String {
        let raw = Array(segment.utf8)
        guard raw.contains(UInt8(ascii: "%")) else { return String(segment) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            if raw[i] == UInt8(ascii: "%") {
                guard i + 2 < raw.count, let high = hex(raw[i + 1]), let low = hex(raw[i + 2]) else {
                    throw .badRequest("the \(what) in the path has a bad percent escape")
                }
                bytes.append(high << 4 | low)
                i += 3
            } else {
                bytes.append(raw[i])
                i += 1
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .badRequest("the \(what) in the path is not valid UTF-8 once decoded")
        }
        return text
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
