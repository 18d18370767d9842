import Foundation
import SystemPackage
import Testing
@testable import Ringstore

/// The descriptor's lifetime: every copy of a `StorageFile` sees its close.
@Suite struct StorageFileTests {
    /// A copy used after the file was closed must fail, not write into the file
    /// that was opened next and given the same descriptor number.
    @Test func aCopyUsedAfterTheCloseFailsInsteadOfWritingIntoAnotherFile() throws {
        let dir = TemporaryDirectory()
        let first = try StorageFile.open(FilePath(dir.child("first")), create: true)
        let copy = first
        first.close()
        let second = try StorageFile.open(FilePath(dir.child("second")), create: true)
        defer { second.close() }
        let bytes: [UInt8] = Array("stray".utf8)
        #expect(throws: RingstoreError.self) {
            try bytes.withUnsafeBytes { try copy.write($0, at: 0) }
        }
        #expect(try second.size() == 0, "the write through the closed copy landed in another file")
        #expect(copy.descriptor.rawValue == -1)
    }
}
