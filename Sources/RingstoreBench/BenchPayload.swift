import Ringstore

/// The events' JSON payloads, exactly the workload's event size, each a pure
/// function of its sequence number (runs are reproducible) and made by one
/// copy of a template and a few byte stores.
///
/// Two kinds (``Workload/Payload``, `ringstore bench --payload`):
/// - ``Workload/Payload/sensor`` (the default), a device's reading as an edge ingester
///   receives it:
///   `{"seq":"0000000042","ts":1764547200042,"temperature":21.37,"humidity":48.2,"pressure":1013.2,"battery":87,"status":"idle","note":"calm north wind …"}`.
///   The numbers and the note's words vary from event to event, so it
///   compresses as such data does: little within one event, about 3× in a
///   block of many (the field names repeat).
/// - ``Workload/Payload/padded``: `{"seq":"0000000042","pad":"xxx…"}`, the bench's only
///   payload until December 2026, which LZ4 shrinks about sixfold even one
///   event at a time: kept to reproduce earlier figures. It flatters the
///   bytes written by the split (whose blocks it compresses) and LZ4's
///   processor time.
///
/// Fields have fixed widths (the sequence number a 10-digit string, since JSON
/// numbers may not have leading zeros; the others drawn from ranges of one
/// width), so the template's layout never changes. Sizes too small for every
/// field keep the ones that fit, in order; what is left after the last one is
/// the note, or spaces before the closing brace when not even an empty note fits.
struct BenchPayload: Sendable {
    /// The smallest event size a payload fits in (the padded kind's: `{"seq":"0000000042","pad":""}`).
    static let minimumSize = 29

    private enum Slot {
        case sequence(offset: Int)
        case timestamp(offset: Int)
        /// Random decimal digits at `offsets` (a dot between them stays), the first from `first`.
        case digits(offsets: [Int], first: ClosedRange<UInt64>)
        case status(offset: Int)
        case note(offset: Int, count: Int)
    }

    private let template: [UInt8]
    private let slots: [Slot]

    init(size: Int, kind: Workload.Payload = .sensor) {
        precondition(size >= Self.minimumSize)
        var bytes = Array(#"{"seq":""#.utf8)
        var slots: [Slot] = [.sequence(offset: bytes.count)]
        bytes += repeatElement(UInt8(ascii: "0"), count: 10)
        bytes += Array(#"""#.utf8)
        switch kind {
        case .padded:
            bytes += Array(#","pad":""#.utf8)
            bytes += repeatElement(UInt8(ascii: "x"), count: size - Self.minimumSize)
            bytes += Array(#""}"#.utf8)
        case .sensor:
            // Each field: its text, and where its varying characters are (from its start).
            let fields: [(text: String, slot: (Int) -> Slot)] = [
                (#","ts":1764547200000"#, { .timestamp(offset: $0 + 6) }),
                (#","temperature":21.37"#, { .digits(offsets: [$0 + 15, $0 + 16, $0 + 18, $0 + 19], first: 1...3) }),  // 10.00-39.99
                (#","humidity":48.2"#, { .digits(offsets: [$0 + 12, $0 + 13, $0 + 15], first: 1...9) }),  // 10.0-99.9
                (#","pressure":1013.2"#, { .digits(offsets: [$0 + 14, $0 + 15, $0 + 17], first: 1...9) }),  // 1010.0-1099.9
                (#","battery":87"#, { .digits(offsets: [$0 + 11, $0 + 12], first: 1...9) }),  // 10-99
                (#","status":"idle""#, { .status(offset: $0 + 11) }),
            ]
            let closing = 1  // "}"
            for field in fields {
                let text = Array(field.text.utf8)
                guard bytes.count + text.count + closing <= size else { break }
                slots.append(field.slot(bytes.count))
                bytes += text
            }
            let noteHead = Array(#","note":""#.utf8)
            let left = size - bytes.count - closing
            if left >= noteHead.count + 2 {
                bytes += noteHead
                let count = left - noteHead.count - 1
                slots.append(.note(offset: bytes.count, count: count))
                bytes += repeatElement(UInt8(ascii: " "), count: count)
                bytes += Array(#"""#.utf8)
            } else {
                bytes += repeatElement(UInt8(ascii: " "), count: left)  // JSON allows white space here
            }
            bytes += Array("}".utf8)
        }
        precondition(bytes.count == size, "the payload template is \(bytes.count) bytes, not \(size)")
        template = bytes
        self.slots = slots
    }

    /// The payload carrying `sequence` (modulo 10^10); its other values are drawn from `sequence` too.
    func make(sequence: Int) -> [UInt8] {
        var bytes = template
        var random = SeededRandom(seed: UInt64(truncatingIfNeeded: sequence))
        bytes.withUnsafeMutableBufferPointer { buffer in
            for slot in slots {
                switch slot {
                case .sequence(let offset):
                    Self.writeDecimal(UInt64(truncatingIfNeeded: sequence) % 10_000_000_000, width: 10, at: offset, in: buffer)
                case .timestamp(let offset):
                    // Milliseconds from 2025-12-01, rising with the sequence number, always 13 digits.
                    let milliseconds = 1_764_547_200_000 + (UInt64(truncatingIfNeeded: sequence) % 100_000_000_000)
                    Self.writeDecimal(milliseconds, width: 13, at: offset, in: buffer)
                case .digits(let offsets, let first):
                    var draw = random.next()
                    for (i, offset) in offsets.enumerated() {
                        let span = i == 0 ? first.upperBound - first.lowerBound + 1 : 10
                        let digit = (i == 0 ? first.lowerBound : 0) + draw % span
                        buffer[offset] = UInt8(ascii: "0") + UInt8(digit)
                        draw /= span
                    }
                case .status(let offset):
                    let status = Self.statuses[Int(random.next() % UInt64(Self.statuses.count))]
                    for (i, byte) in status.enumerated() { buffer[offset + i] = byte }
                case .note(let offset, let count):
                    PayloadNote.fill(UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + count)]), random: &random)
                }
            }
        }
        return bytes
    }

    private static func writeDecimal(_ value: UInt64, width: Int, at offset: Int, in buffer: UnsafeMutableBufferPointer<UInt8>) {
        var n = value
        for i in stride(from: offset + width - 1, through: offset, by: -1) {
            buffer[i] = UInt8(ascii: "0") + UInt8(n % 10)
            n /= 10
        }
    }

    /// Four letters each, so that the template's layout holds.
    private static let statuses = ["idle", "busy", "warn", "fail", "open", "shut", "full", "lows"].map { Array($0.utf8) }
}

/// The note of a sensor payload: words drawn at random from a list of 64, as
/// free text in real events varies. Public for `ringstore demo`, whose
/// payloads end with such a note too.
public enum PayloadNote {
    /// Fills `buffer` with words drawn from `random`, separated by spaces (the last one cut at the end).
    public static func fill(_ buffer: UnsafeMutableBufferPointer<UInt8>, random: inout some RandomNumberGenerator) {
        var at = buffer.startIndex
        var draw: UInt64 = 0
        var drawn = 0
        while at < buffer.endIndex {
            if drawn == 0 {
                draw = random.next()
                drawn = 10
            }
            let word = words[Int((draw & 63) % UInt64(words.count))]
            draw >>= 6
            drawn -= 1
            for byte in word where at < buffer.endIndex {
                buffer[at] = byte
                at += 1
            }
            if at < buffer.endIndex {
                buffer[at] = UInt8(ascii: " ")
                at += 1
            }
        }
    }

    /// Words for the note (one per six bits of a draw; 64 of them).
    private static let words: [[UInt8]] = """
        calm north south east west wind gust rain snow hail frost heat cold dry wet fog clear cloud \
        pump valve door gate fan motor belt tank pipe line flow level high low steady rising \
        falling check reset alarm ok fault retry sensor probe unit bay row rack shelf zone \
        floor roof yard dock lane main spare backup manual auto timer cycle start stop pause
        """.split(separator: " ").map { Array($0.utf8) }
}
