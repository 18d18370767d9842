import Glibc
import Testing
@testable import Ringstore

@Suite struct ConfigurationTests {
    @Test func everySettingParses() throws {
        let configuration = try Configuration.fromEnvironment([
            "RINGSTORE_JOURNAL_MB": "16", "RINGSTORE_DURABILITY": "relaxed", "RINGSTORE_FLUSH_INTERVAL_MS": "250",
            "RINGSTORE_MAX_EVENT_BYTES": "4096", "RINGSTORE_JOURNAL_FULL_WAIT_MS": "100", "RINGSTORE_READER_WAIT_MS": "50",
            "RINGSTORE_MAX_OPEN_FILES": "64", "RINGSTORE_COMPRESSION": "off", "RINGSTORE_IDEMPOTENCY_WINDOW": "7",
            "RINGSTORE_BLOCK_CACHE_MB": "3", "RINGSTORE_CHECKPOINT_PACING": "on", "RINGSTORE_SPLIT_SEGMENTS_MB": "48", "RINGSTORE_STREAM_BUCKETS": "on", "RINGSTORE_TOKEN": "secret", "PATH": "/usr/bin",
        ])
        #expect(configuration.journalCapacity == 16 << 20)
        #expect(configuration.durability == .relaxed(flushInterval: .milliseconds(250)))
        #expect(configuration.maxEventSize == 4096)
        #expect(configuration.journalFullWait == .milliseconds(100))
        #expect(configuration.readerWait == .milliseconds(50))
        #expect(configuration.maxOpenFiles == 64)
        #expect(configuration.compression == false)
        #expect(configuration.idempotencyWindow == 7)
        #expect(configuration.blockCacheBytes == 3 << 20)
        #expect(configuration.checkpointPacing == true)
        #expect(configuration.splitSegmentBudget == 48 << 20)
        #expect(configuration.streamBuckets == true)
        #expect(try Configuration.fromEnvironment(["RINGSTORE_MAX_FLUSH_DELAY_MS": "5"]).durability == .durable(maxFlushDelay: .milliseconds(5)))
        #expect(try Configuration.fromEnvironment([:]) == Configuration())
        #expect(Configuration().streamBuckets, "small streams go into bucket files by default")
        #expect(try Configuration.fromEnvironment(["RINGSTORE_STREAM_BUCKETS": "off"]).streamBuckets == false)
    }

    /// A 1 MiB journal chosen without an event size gets the largest event it
    /// can hold instead of an open that fails on the 1 MiB default.
    @Test func aSmallJournalWithoutAnEventSizeGetsOneThatFits() throws {
        let configuration = try Configuration.fromEnvironment(["RINGSTORE_JOURNAL_MB": "1"])
        #expect(configuration.maxEventSize == 256 << 10)
        try configuration.validate()
        #expect(try Configuration.fromEnvironment(["RINGSTORE_JOURNAL_MB": "1", "RINGSTORE_MAX_EVENT_BYTES": "1000"]).maxEventSize == 1000)
    }

    @Test func theOpenFileDefaultIsHalfTheSoftLimitWithinBounds() throws {
        #expect(Configuration.defaultMaxOpenFiles(softLimit: 1024) == 512)
        #expect(Configuration.defaultMaxOpenFiles(softLimit: 100) == 256)
        #expect(Configuration.defaultMaxOpenFiles(softLimit: 20_000) == 10_000)
        #expect(Configuration.defaultMaxOpenFiles(softLimit: .max) == 65_536)
        var limit = rlimit()
        try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(Configuration().maxOpenFiles == Configuration.defaultMaxOpenFiles(softLimit: UInt64(limit.rlim_cur)))
    }

    @Test func badValuesAreRejectedNamingTheVariable() {
        let cases: [([String: String], String)] = [
            (["RINGSTORE_JOURNAL_MB": "lots"], "RINGSTORE_JOURNAL_MB=lots"),
            (["RINGSTORE_JOURNAL_MB": "0"], "RINGSTORE_JOURNAL_MB=0"),
            (["RINGSTORE_DURABILITY": "sometimes"], "must be one of: durable, relaxed"),
            (["RINGSTORE_FLUSH_INTERVAL_MS": "-5"], "RINGSTORE_FLUSH_INTERVAL_MS=-5"),
            (["RINGSTORE_COMPRESSION": "yes"], "RINGSTORE_COMPRESSION=yes"),
            (["RINGSTORE_BLOCK_CACHE_MB": "-1"], "RINGSTORE_BLOCK_CACHE_MB=-1"),
            (["RINGSTORE_SPLIT_SEGMENTS_MB": "0"], "RINGSTORE_SPLIT_SEGMENTS_MB=0"),
            (["RINGSTORE_STREAM_BUCKETS": "yes"], "RINGSTORE_STREAM_BUCKETS=yes"),
            (["RINGSTORE_JOURNAL_MBB": "64"], "unknown setting RINGSTORE_JOURNAL_MBB"),
            (["RINGSTORE_JOURNAL_MB": "1", "RINGSTORE_MAX_EVENT_BYTES": "1000000"], "maxEventSize"),
        ]
        for (environment, expected) in cases {
            do {
                _ = try Configuration.fromEnvironment(environment)
                Issue.record("accepted \(environment)")
            } catch let error as RingstoreError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(expected), "\(error.message)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }
}
