import Testing
@testable import Ringstore

@Suite struct DeletionLookupTests {
    /// A closure kept in a `Mutex` gets wrapped in more thunks on each access;
    /// a million lookups (one per new stream) must stay cheap and not overflow the stack.
    @Test func aMillionLookupsStayFlat() throws {
        let lookup = DeletionLookup()
        #expect(try lookup.isDeleted("anything") == false)
        lookup.install { $0 == "gone" }
        let started = ContinuousClock.now
        var deleted = 0
        for i in 0..<1_000_000 where try lookup.isDeleted(i == 999_999 ? "gone" : "s") { deleted += 1 }
        #expect(deleted == 1)
        #expect(ContinuousClock.now - started < generousWait, "growing thunks would make this quadratic: hours, or a stack overflow")
    }
}
