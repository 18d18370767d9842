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
///   compresses as such data does: not at all within one event, about 2.6× in a
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

    /// A run of random decimal digits: at `offsets`, the first drawn from `first`.
    private struct DigitField: Sendable {
        var offsets: [Int]
        var first: ClosedRange<UInt64>
    }

    private let template: [UInt8]
    /// Where the sequence number's 10 digits and the timestamp's 13 start (nil: not in the payload).
    private let sequenceOffset: Int
    private var timestampOffset: Int?
    private var digitFields: [DigitField] = []
    private var statusOffset: Int?
    /// The note's bytes (count 0: no note).
    private var noteRange = 0..<0

    init(size: Int, kind: Workload.Payload = .sensor) {
        precondition(size >= Self.minimumSize)
        var bytes = Array(#"{"seq":""#.utf8)
        sequenceOffset = bytes.count
        bytes += repeatElement(UInt8(ascii: "0"), count: 10)
        bytes += Array(#"""#.utf8)
        switch kind {
        case .padded:
            bytes += Array(#","pad":""#.utf8)
            bytes += repeatElement(UInt8(ascii: "x"), count: size - Self.minimumSize)
            bytes += Array(#""}"#.utf8)
        case .sensor:
            // Each field's text, and where its varying characters are (from its start).
            enum Varying { case timestamp(Int), digits([Int], ClosedRange<UInt64>), status(Int) }
            let fields: [(text: String, varying: Varying)] = [
                (#","ts":1764547200000"#, .timestamp(6)),
                (#","temperature":21.37"#, .digits([15, 16, 18, 19], 1...3)),  // 10.00-39.99
                (#","humidity":48.2"#, .digits([12, 13, 15], 1...9)),  // 10.0-99.9
                (#","pressure":1013.2"#, .digits([14, 15, 17], 1...9)),  // 1010.0-1099.9
                (#","battery":87"#, .digits([11, 12], 1...9)),  // 10-99
                (#","status":"idle""#, .status(11)),
            ]
            let closing = 1  // "}"
            for field in fields {
                let text = Array(field.text.utf8)
                guard bytes.count + text.count + closing <= size else { break }
                switch field.varying {
                case .timestamp(let at): timestampOffset = bytes.count + at
                case .digits(let at, let first): digitFields.append(DigitField(offsets: at.map { bytes.count + $0 }, first: first))
                case .status(let at): statusOffset = bytes.count + at
                }
                bytes += text
            }
            let noteHead = Array(#","note":""#.utf8)
            let left = size - bytes.count - closing
            if left >= noteHead.count + 2 {
                bytes += noteHead
                let count = left - noteHead.count - 1
                noteRange = bytes.count..<(bytes.count + count)
                bytes += repeatElement(UInt8(ascii: " "), count: count)
                bytes += Array(#"""#.utf8)
            } else {
                bytes += repeatElement(UInt8(ascii: " "), count: left)  // JSON allows white space here
            }
            bytes += Array("}".utf8)
        }
        precondition(bytes.count == size, "the payload template is \(bytes.count) bytes, not \(size)")
        template = bytes
    }

    /// The payload carrying `sequence` (modulo 10^10); its other values are drawn from `sequence` too.
    ///
    /// Cheap on purpose (the bench's writers run on the processors the store
    /// uses): the note is a window of ``PayloadNote/text``, copied, not words
    /// drawn one by one (which cost about 1,600 instructions an event).
    func make(sequence: Int) -> [UInt8] {
        var bytes = template
        var random = SeededRandom(seed: UInt64(truncatingIfNeeded: sequence))
        bytes.withUnsafeMutableBufferPointer { buffer in
            let number = UInt64(truncatingIfNeeded: sequence)
            Self.writeDecimal(number % 10_000_000_000, width: 10, at: sequenceOffset, in: buffer)
            if let timestampOffset {
                // Milliseconds from 2025-12-01, rising with the sequence number, always 13 digits.
                Self.writeDecimal(1_764_547_200_000 + number % 100_000_000_000, width: 13, at: timestampOffset, in: buffer)
            }
            for field in digitFields {
                var draw = random.next()
                let span = field.first.upperBound - field.first.lowerBound + 1
                buffer[field.offsets[0]] = UInt8(ascii: "0") + UInt8(field.first.lowerBound + draw % span)
                draw /= span
                for offset in field.offsets.dropFirst() {
                    buffer[offset] = UInt8(ascii: "0") + UInt8(draw % 10)
                    draw /= 10
                }
            }
            if let statusOffset {
                let status = Self.statuses[Int(random.next() % UInt64(Self.statuses.count))]
                _ = status.withUnsafeBufferPointer { UnsafeMutableBufferPointer(rebasing: buffer[statusOffset..<(statusOffset + 4)]).update(fromContentsOf: $0) }
            }
            if !noteRange.isEmpty {
                PayloadNote.window(random.next(), into: UnsafeMutableBufferPointer(rebasing: buffer[noteRange]))
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
    /// 256 KiB of words drawn at random (with a fixed seed): notes are windows
    /// of it. Large against a stream-file block (64 KiB holds about 250 events'
    /// notes, some 16 KiB), so that two notes in one block rarely overlap and a
    /// block compresses as the words do, not as repeated text.
    public static let text: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: 256 << 10)
        var random = SeededRandom(seed: 0x6E6F_7465)
        bytes.withUnsafeMutableBufferPointer { fill($0, random: &random) }
        return bytes
    }()

    /// Fills `buffer` with the window of ``text`` that `draw` picks (a note longer
    /// than ``text`` goes on from its start again).
    public static func window(_ draw: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        text.withUnsafeBufferPointer { text in
            var start = Int(draw % UInt64(text.count))
            var filled = buffer.startIndex
            while filled < buffer.endIndex {
                let count = min(buffer.endIndex - filled, text.count - start)
                _ = UnsafeMutableBufferPointer(rebasing: buffer[filled..<(filled + count)])
                    .update(fromContentsOf: UnsafeBufferPointer(rebasing: text[start..<(start + count)]))
                filled += count
                start = 0
            }
        }
    }

    /// Fills `buffer` with words drawn from `random`, separated by spaces (the last one cut at the end).
    private static func fill(_ buffer: UnsafeMutableBufferPointer<UInt8>, random: inout some RandomNumberGenerator) {
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
