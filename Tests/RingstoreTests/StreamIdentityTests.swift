import Testing
@testable import Ringstore

/// Stream identity is byte-exact: "caf\u{E9}" and "cafe\u{301}" are equal as
/// Swift `String`s (canonical equivalence) but different bytes, and stream
/// files are named from the bytes. One store holds only one of them; the other
/// is refused with an error naming both, before and after a restart (when the
/// stream has left the ring), and is never read, written or deleted as the
/// first one.
@Suite struct StreamIdentityTests {
    let composed = "caf\u{E9}"
    let decomposed = "cafe\u{301}"

    @Test func unicodeEquivalentNamesAreNeverOneStream() async throws {
        #expect(composed == decomposed, "Swift equates them: the reason for this test")
        let dir = TemporaryDirectory()
        do {
            let store = try await EventStore.open(at: dir.path, configuration: .testing())
            try await store.append(to: composed, events: [event("one"), event("two")])
            try await expectRefused(store)
            #expect(try await store.read(stream: composed).collect().count == 2)
            try await store.close()
        }
        // After a reopen the stream is in the split storage and the catalog, not the ring.
        try await moveSegmentsIntoStreamFiles(dir.path)
        let store = try await EventStore.open(at: dir.path, configuration: .testing())
        try await expectRefused(store)
        #expect(try await store.read(stream: composed).collect().count == 2)
        try await store.append(to: composed, events: [event("three")])
        #expect(try await store.read(stream: composed).collect().map(\.stream).allSatisfy { NameRules.sameStream($0, composed) })
        #expect(try store.streamNames().filter { $0 == composed }.count == 1)
        try await store.close()
    }

    private func expectRefused(_ store: EventStore) async throws {
        let append = await ringstoreError { try await store.append(to: decomposed, events: [event("other")]) }
        #expect(append?.code == .invalidStreamName)
        #expect(append?.message.contains("cafe\u{301}") == true && append?.message.contains("63616665cc81") == true)
        let read = await ringstoreError { _ = try await store.read(stream: decomposed).collect() }
        #expect(read?.code == .invalidStreamName)
        let delete = await ringstoreError { try await store.deleteStream(decomposed) }
        #expect(delete?.code == .invalidStreamName)
        let metadata = await ringstoreError { _ = try store.streamMetadata(of: decomposed) }
        #expect(metadata?.code == .invalidStreamName)
    }
}
