import Foundation
import SystemPackage
import Testing
@testable import Ringstore

@Suite struct StreamNamingTests {
    @Test func namesMapToSafeDistinctPaths() {
        let names = ["order-1", "Order-1", "ORDER-1", "../x", "../../etc/passwd", "a/b", "$all", "é", "e\u{301}",
                     String(repeating: "x", count: 1024), " ", ".", ".."]
        var seen = Set<String>()
        for name in names {
            let path = StreamNaming.relativePath(name)
            let components = path.components.map(\.string)
            #expect(components.count == 3, "\(name)")
            #expect(components[0] == "streams")
            #expect(components.allSatisfy { $0 != ".." && $0 != "." && !$0.contains("/") })
            let file = components[2]
            #expect(file.count == 32 + 1 + StreamNaming.fileExtension.count)
            #expect(file.allSatisfy { $0.isHexDigit && !$0.isUppercase || $0 == "." || $0.isLetter && $0.isLowercase })
            #expect(seen.insert(file.lowercased()).inserted, "case-insensitive collision for \(name)")
        }
        #expect(StreamNaming.relativePath("s", probe: 2).lastComponent!.string.contains("-2."))
    }

    /// The hash names every stream's file on disk: if it changed, a store written
    /// before would find none of its streams (they would look empty, and new
    /// files would be started beside the old). Pinned for a few fixed names.
    @Test func theHashOfAFixedNameNeverChanges() {
        #expect(StreamNaming.hash("abc") == "9ddd0b206061ad94c7bdc2fccb8c3d82")
        #expect(StreamNaming.hash("order-1") == "683bfb1b3549b432965de0584b3b3f28")
        #expect(StreamNaming.hash("") == "f52a15e9a9b5e89bec98d270360a8206")
        // Bytes are hashed, not characters: the two spellings of "café" are two names.
        #expect(StreamNaming.hash("caf\u{E9}") == "d124c525b7aac4ed4fb56caf5e67d329")
        #expect(StreamNaming.hash("cafe\u{301}") == "ecd518ce6c494e21d0888c96c610c8f0")
        #expect(StreamNaming.relativePath("order-1") == FilePath("streams/68/683bfb1b3549b432965de0584b3b3f28.stream"))
        #expect(StreamNaming.relativePath("order-1", probe: 1) == FilePath("streams/68/683bfb1b3549b432965de0584b3b3f28-1.stream"))
    }

    @Test func hashSpreadsOverFolders() {
        var folders = Set<String>()
        for i in 0..<10_000 { folders.insert(String(StreamNaming.hash("device-\(i)").prefix(2))) }
        #expect(folders.count == 256)
    }
}

@Suite struct StreamCatalogTests {
    @Test func registersPersistsAndSurvivesATornTail() throws {
        let dir = TemporaryDirectory()
        do {
            let catalog = try StreamCatalog(directory: FilePath(dir.path))
            #expect(catalog.register("a") == 0)
            #expect(catalog.register("b") == 1)
            #expect(catalog.register("a") == 0)
            try catalog.write()
            #expect(catalog.register("ccc") == 2)
            try catalog.write()
            try catalog.sync()
        }
        let path = dir.child(StreamCatalog.fileName)
        do {
            let catalog = try StreamCatalog(directory: FilePath(dir.path))
            #expect(catalog.allNames() == ["a", "b", "ccc"])
            #expect(catalog.number(of: "b") == 1 && catalog.name(of: 2) == "ccc" && catalog.name(of: 3) == nil)
        }
        // Tear the last record: it is dropped, the rest stays, and registering goes on cleanly.
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size - 2))
        try handle.close()
        let catalog = try StreamCatalog(directory: FilePath(dir.path))
        #expect(catalog.allNames() == ["a", "b"])
        #expect(catalog.register("d") == 2)
        try catalog.write()
        #expect(try StreamCatalog(directory: FilePath(dir.path)).allNames() == ["a", "b", "d"])
    }
}

@Suite struct GlobalIndexTests {
    @Test func appendsSearchesTruncatesAndReportsDamage() throws {
        let dir = TemporaryDirectory()
        let entries = (0..<1000).map { GlobalIndex.Entry(position: UInt64($0) * 100 + 64, version: UInt64($0 / 3), stream: UInt32($0 % 3)) }
        do {
            let index = try GlobalIndex(directory: FilePath(dir.path))
            try index.append(Array(entries[..<400]))
            try index.append(Array(entries[400...]))
            #expect(index.entryCount == 1000)
            #expect(try index.entries(from: 398, count: 4) == Array(entries[398..<402]))
            #expect(try index.firstIndex(atOrAfter: 0) == 0)
            #expect(try index.firstIndex(atOrAfter: 164) == 1)
            #expect(try index.firstIndex(atOrAfter: 165) == 2)
            #expect(try index.firstIndex(atOrAfter: 1_000_000) == 1000)
            try index.truncate(from: 50_064)
            #expect(index.entryCount == 500)
            try index.sync()
        }
        // A torn tail is cut on open.
        let path = dir.child(GlobalIndex.fileName)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(500 * GlobalIndex.entrySize - 5))
        try handle.close()
        let index = try GlobalIndex(directory: FilePath(dir.path))
        #expect(index.entryCount == 499)
        // Damage in the middle is reported with the file and offset.
        let damage = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try damage.seek(toOffset: UInt64(100 * GlobalIndex.entrySize + 3))
        try damage.write(contentsOf: [0xFF])
        try damage.close()
        do {
            _ = try index.entries(from: 90, count: 20)
            Issue.record("damaged entry not reported")
        } catch let error as RingstoreError {
            #expect(error.code == .corruptData)
            #expect(error.path == path)
            #expect(error.offset == UInt64(100 * GlobalIndex.entrySize))
        }
    }
}

extension GlobalIndexTests {
    /// After a power cut the entries written since the last sync can come back
    /// with holes (a lost sector reads as zeros) and good entries after them.
    /// All are at or after the checkpoint; truncating there must not trip over
    /// a hole (a binary search did, and the store would not open).
    @Test func truncatingAtTheCheckpointSkipsHolesLeftByAPowerCut() throws {
        let dir = TemporaryDirectory()
        let entries = (0..<1000).map { GlobalIndex.Entry(position: UInt64($0) * 100 + 64, version: UInt64($0), stream: 0) }
        do {
            let index = try GlobalIndex(directory: FilePath(dir.path))
            try index.append(entries)
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: dir.child(GlobalIndex.fileName)))
        try handle.seek(toOffset: UInt64(500 * GlobalIndex.entrySize))
        try handle.write(contentsOf: [UInt8](repeating: 0, count: 512))
        try handle.close()
        let index = try GlobalIndex(directory: FilePath(dir.path))
        try index.truncate(from: entries[400].position)
        #expect(index.entryCount == 400)
        #expect(try index.entries(from: 390, count: 20) == Array(entries[390..<400]))
    }
}

@Suite struct StreamNumberTableTests {
    /// Numbers follow registration order and every name is found again across
    /// the table's growth (long names, near-identical ones, and the empty table).
    @Test func findsEveryNameAcrossGrowth() {
        var table = StreamNumberTable()
        #expect(table.number(of: "a") == nil && table.name(of: 0) == nil)
        let names = (0..<5_000).map { i in i % 3 == 0 ? "device-\(i)" : i % 3 == 1 ? "Device-\(i)" : String(repeating: "long-name-", count: 4) + "\(i)" }
        for (i, name) in names.enumerated() { #expect(table.append(name) == UInt32(i)) }
        #expect(table.count == names.count && table.names == names)
        for (i, name) in names.enumerated() {
            #expect(table.number(of: name) == UInt32(i))
            #expect(table.name(of: UInt32(i)) == name)
        }
        #expect(table.number(of: "device-1") == nil && table.number(of: "device-5000") == nil)
        #expect(table.name(of: 5_000) == nil)
    }

    /// A name appended twice (only a damaged catalog holds one) is found under its first number.
    @Test func aNameAddedTwiceIsFoundUnderItsFirstNumber() {
        var table = StreamNumberTable()
        for i in 0..<2_000 { _ = table.append("s\(i)") }
        #expect(table.append("s7") == 2_000)
        for i in 0..<2_000 { _ = table.append("t\(i)") }  // grows again: the order must survive the rebuild
        #expect(table.number(of: "s7") == 7 && table.name(of: 2_000) == "s7")
    }
}
