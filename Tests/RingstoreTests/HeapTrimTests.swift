import CRingstoreSupport
import Foundation
import Glibc
import Testing
@testable import Ringstore

/// When the store gives free heap memory back (``HeapTrim``), and that a trim does give it back.
@Suite struct HeapTrimTests {
    @Test func growthFromTheLastTrimOrTheLowestSinceCallsForATrim() {
        let step = HeapTrim.growthBeforeTrim
        var growth = HeapTrim.Growth()
        func trims(at resident: Int) -> Bool { growth.calls(forTrimAt: resident) }
        #expect(!trims(at: 100 * step))  // the first look only sets where growth counts from
        #expect(!trims(at: 101 * step - 1))
        #expect(trims(at: 101 * step))
        growth.trimmed(leaving: 90 * step)
        #expect(!trims(at: 91 * step - 1))
        // Memory that fell (freed at a heap's top, or mapped buffers let go of) counts from the low.
        #expect(!trims(at: 50 * step))
        #expect(growth.baseline == 50 * step)
        #expect(trims(at: 51 * step))
    }

    /// What growth is measured in: `/proc/self/statm`'s resident less shared pages is `RssAnon` of `/proc/self/status`.
    @Test func anonymousResidentMemoryIsTheStatusFilesRssAnon() throws {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
        let kilobytes = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        let measured = Int(rs_anonymous_resident_bytes())
        // Other tests allocate meanwhile; the two reads are microseconds apart.
        #expect(abs(measured - kilobytes * 1024) < 16 << 20, "statm \(measured), status \(kilobytes) kB")
        #expect(measured > 0)
    }

    /// Free chunks between live ones stay resident after `free`; a trim hands their pages back.
    @Test func aTrimGivesBackTheFreePagesBetweenLiveAllocations() throws {
        MallocTuning.applyOnce()  // as in a process with a store open
        let chunkSize = 64 << 10  // under glibc's smallest threshold for mapping an allocation on its own
        let count = 256
        var chunks: [UnsafeMutableRawPointer] = []
        var pins: [UnsafeMutableRawPointer] = []
        for _ in 0..<count {
            let chunk = try #require(malloc(chunkSize))
            memset(chunk, 0x5A, chunkSize)
            chunks.append(chunk)
            pins.append(try #require(malloc(64)))  // keeps the chunk from merging with its neighbours or a heap's top
        }
        defer { pins.forEach { free($0) } }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // The whole pages inside each chunk, past glibc's bookkeeping at its start.
        let interiors = chunks.map { chunk -> (UnsafeMutableRawPointer, Int) in
            let start = (Int(bitPattern: chunk) + 64 + page - 1) / page * page
            let end = (Int(bitPattern: chunk) + chunkSize) / page * page
            return (UnsafeMutableRawPointer(bitPattern: start)!, end - start)
        }
        let pages = interiors.reduce(0) { $0 + $1.1 / page }
        func residentPages() -> Int {
            var resident = 0
            var vector = [UInt8](repeating: 0, count: chunkSize / page)
            for (start, length) in interiors {
                #expect(mincore(start, length, &vector) == 0)
                resident += vector.prefix(length / page).filter { $0 & 1 != 0 }.count
            }
            return resident
        }
        #expect(residentPages() == pages)
        chunks.forEach { free($0) }
        let trimsBefore = HeapTrim.trims.load(ordering: .relaxed)
        HeapTrim.trimNow()
        #expect(HeapTrim.trims.load(ordering: .relaxed) > trimsBefore)
        let resident = residentPages()
        // Another test's allocation may reuse a chunk meanwhile; nearly all stay given back.
        #expect(resident * 10 < pages, "\(resident) of \(pages) freed pages still resident")
    }
}
