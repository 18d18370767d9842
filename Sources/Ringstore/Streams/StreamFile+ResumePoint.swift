import SystemPackage

/// Reopening a file this process closed, from what it knew then, without
/// reading or checking it again.
extension StreamFile {
    /// What this process knows about a stream file it closed: enough to reopen
    /// it for appending without reading or checking anything in it again.
    struct ResumePoint: Sendable {
        var headerLength: UInt64
        var dataEnd: UInt64
        var nextVersion: UInt64
        var blockCount: Int
        /// The block list of a file without an index, when it was in memory:
        /// spares reads the hop over every block header after reopening.
        var blocks: [(firstVersion: UInt64, offset: UInt64)]?
        /// What was known durable, so that a sync failure before the close is
        /// still made good by the next sync after reopening.
        var syncedDataEnd: UInt64 = 0
        var syncedIndexEnd: UInt64 = 0
        var syncFailed = false
        /// Whether the file had its index file (see ``indexThreshold(for:)``).
        var hasIndex = false
    }

    /// Where appends to this file would continue.
    var resumePoint: ResumePoint {
        ResumePoint(headerLength: headerLength, dataEnd: dataEnd, nextVersion: nextVersion, blockCount: blockCount,
                    blocks: index == nil ? loadedBlocks : nil,
                    syncedDataEnd: syncedDataEnd, syncedIndexEnd: syncedIndexEnd, syncFailed: syncFailed,
                    hasIndex: index != nil)
    }

    /// Reopens a file this process wrote and closed (its header, index and last
    /// block were checked when it was first opened). Returns nil, so that the
    /// caller falls back to ``open(at:replayFrom:)``, unless the data file (and
    /// the index, when there is one) still ends exactly where it ended then: a
    /// write that failed half-way or anything else unexpected takes the full path.
    static func reopen(at pathString: String, stream: String, resume: ResumePoint) throws -> StreamFile? {
        let path = FilePath(pathString)
        guard let data = try? StorageFile.open(path) else { return nil }
        var index: StorageFile?
        let expectsIndex = resume.hasIndex
        guard (try? data.size()) == resume.dataEnd else {
            data.close()
            return nil
        }
        if expectsIndex {
            index = try? StorageFile.open(indexPath(for: pathString))
            guard let index, (try? index.size()) == UInt64(resume.blockCount * indexEntrySize) else {
                index?.close()
                data.close()
                return nil
            }
        }
        let file = StreamFile(path: path, streamName: stream, data: data, index: index, dataEnd: resume.dataEnd)
        file.headerLength = resume.headerLength
        file.nextVersion = resume.nextVersion
        file.blockCount = resume.blockCount
        file.syncedDataEnd = resume.syncedDataEnd
        file.syncedIndexEnd = resume.syncedIndexEnd
        file.syncFailed = resume.syncFailed
        // Else loaded (from the index, or by hopping block headers) when a read needs it.
        file.loadedBlocks = index == nil && resume.blocks?.count == resume.blockCount ? resume.blocks : nil
        return file
    }
}
