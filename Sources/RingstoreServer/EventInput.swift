import Foundation
import Ringstore
import RingstoreJSONLines

/// The body of an append: one event object or an array of them, each
/// `{"type", "data" (any JSON value) | "dataBase64", "metadata"? | "metadataBase64"?, "id"?}`.
///
/// JSON `data` is stored byte for byte as sent (no re-serialising, so key order
/// and number spelling survive); `dataBase64` is stored as binary. Members the
/// API does not know (such as `stream`, `version` and `position` in lines that
/// `ringstore export` printed) are ignored. Every mistake is a 400 naming the
/// event by its index.
enum EventInput {
    static func parse(_ body: [UInt8]) throws(APIError) -> [EventData] {
        let first = body.first { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }
        do {
            switch first {
            case UInt8(ascii: "["):
                let elements = try JSONLine.arrayElements(body)
                guard !elements.isEmpty else { throw APIError.badRequest("the array of events is empty") }
                var events: [EventData] = []
                events.reserveCapacity(elements.count)
                for (index, element) in elements.enumerated() {
                    do {
                        events.append(try event(JSONLine(element)))
                    } catch let error as JSONLine.ParseError {
                        throw APIError.badRequest("event \(index): \(error.description)")
                    }
                }
                return events
            case UInt8(ascii: "{"):
                let json = try JSONLine(body)
                do { return [try event(json)] } catch let error as JSONLine.ParseError { throw APIError.badRequest("the event: \(error.description)") }
            case nil:
                throw APIError.badRequest("the body is empty: send an event object or an array of them")
            default:
                throw APIError.badRequest("the body must be a JSON object (one event) or an array of events")
            }
        } catch let error as APIError {
            throw error
        } catch let error as JSONLine.ParseError {
            throw .badRequest("malformed JSON: \(error.description)")
        } catch {
            throw .badRequest("malformed JSON: \(error)")
        }
    }

    /// One event object (see ``EventJSON/eventData(from:)``).
    static func event(_ json: JSONLine) throws -> EventData { try EventJSON.eventData(from: json) }

    /// The `Expected-Version` header: `any` (also when absent), `no-stream`, `exists` or a version number.
    static func expectedVersion(_ header: String?) throws(APIError) -> ExpectedVersion {
        guard let header else { return .any }
        let text = header.utf8.contains(UInt8(ascii: " ")) || header.utf8.contains(UInt8(ascii: "\t"))
            ? header.trimmingCharacters(in: .whitespaces) : header
        switch text {
        case "any": return .any
        case "no-stream": return .noStream
        case "exists": return .streamExists
        default:
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let version = UInt64(text) else {
                throw .badRequest("Expected-Version \"\(text)\" must be any, no-stream, exists, or a number from 0 to \(UInt64.max)")
            }
            return .exact(version)
        }
    }
}
