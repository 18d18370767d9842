#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage

/// How an offline compaction replaces the store's files with the new ones,
/// crash-safely, and how an interrupted replacement is finished or undone.
///
/// The compactor writes the new `streams/`, `split/` and `global.index` into
/// `compact.new/` beside the old ones and makes them durable. The commit point
/// is the marker file `compact.commit` (written under a temporary name, synced,
/// renamed into place, store folder synced). Then each of the three is swapped:
/// the old one renamed into `compact.old/` (both folders synced), the new one
/// renamed into place (both folders synced). Then the marker is removed (store
/// folder synced) and the two leftover folders are deleted.
///
/// ``finishIfPending(in:)`` runs under the store's lock before anything reads
/// those files — at every store open and at every start of the tool: with the
/// marker present it completes the swap (every step can be repeated: a part
/// already swapped has nothing left in `compact.new/`), without it it deletes
/// whatever an interrupted compaction left (the old files were never touched,
/// or, when `compact.old/` is there, the switch was complete and only their
/// removal was cut short). Every removal is one unlink or `rmdir` through the
/// storage seam, so the power-loss simulation can cut between any two.
/// So a crash or power cut at any moment leaves the old store or the new one.
/// The journal, the catalog and the lock file are never swapped: compaction
/// keeps every stream's catalog number and every event's journal position.
enum CompactionSwitch {
    static let newFolder = "compact.new"
    static let oldFolder = "compact.old"
    static let marker = "compact.commit"
    /// What a compaction replaces, in the order it is swapped.
    static let swapped = [StreamNaming.folder, "split", GlobalIndex.fileName]

    /// What ``finishIfPending(in:)`` found.
    enum Outcome: Equatable, Sendable {
        case nothing
        /// An uncommitted compaction's files were deleted; the store is as before it.
        case rolledBack
        /// A committed compaction's swap was completed; the store is as after it.
        case completed
        /// A finished compaction's removal of the old files was interrupted and has
        /// been completed; the store is as after it.
        case cleanedUp
    }

    /// Completes or undoes an interrupted compaction (see the type's comment).
    /// Call with the store's lock held.
    @discardableResult
    static func finishIfPending(in directory: FilePath) throws -> Outcome {
        let fresh = directory.appending(newFolder)
        let old = directory.appending(oldFolder)
        if StorageDirectory.exists(directory.appending(marker)) {
            try rollForward(in: directory)
            return .completed
        }
        let leftovers = StorageDirectory.exists(fresh) || StorageDirectory.exists(old)
            || StorageDirectory.exists(directory.appending(marker + ".tmp"))
        guard leftovers else { return .nothing }
        // `compact.old/` is made only after the commit, and the marker is removed
        // (durably) only once every part is swapped: without the marker it is the
        // old files' interrupted removal, and the store is the new one.
        let switched = StorageDirectory.exists(old)
        try removeTree(fresh)
        try removeTree(old)
        try StorageDirectory.removeFile(directory.appending(marker + ".tmp"))
        try StorageDirectory.sync(directory)
        return switched ? .cleanedUp : .rolledBack
    }

    /// Writes the commit marker: from the moment its name is durable, the new files count.
    /// Everything in `compact.new/` must be durable (files and folders) before this is called.
    static func commit(in directory: FilePath) throws {
        let temporary = directory.appending(marker + ".tmp")
        let file = try StorageFile.open(temporary, create: true)
        do {
            let text = Array("ringstore compaction: swap \(swapped.joined(separator: ", ")) from \(newFolder)\n".utf8)
            try file.truncate(to: 0)
            try text.withUnsafeBytes { try file.write($0, at: 0) }
            try file.syncData()
            file.close()
        } catch {
            file.close()
            throw error
        }
        try StorageDirectory.rename(temporary, to: directory.appending(marker))
        try StorageDirectory.sync(directory)
    }

    /// Swaps every part still waiting in `compact.new/`, then removes the marker and the leftovers.
    static func rollForward(in directory: FilePath) throws {
        let fresh = directory.appending(newFolder)
        let old = directory.appending(oldFolder)
        if !StorageDirectory.isDirectory(old) {
            try StorageDirectory.create(old)
            try StorageDirectory.sync(directory)
        }
        for name in swapped {
            let replacement = fresh.appending(name)
            guard StorageDirectory.exists(replacement) else { continue }  // swapped already
            let current = directory.appending(name)
            if StorageDirectory.exists(current) {
                let parked = old.appending(name)
                // Left by an earlier attempt whose move of the new part was lost: the
                // commit is durable, so the old copy is not needed any more.
                if StorageDirectory.exists(parked) { try removeTree(parked) }
                try StorageDirectory.rename(current, to: parked)
                try StorageDirectory.sync(old)
                try StorageDirectory.sync(directory)
                try CompactionCrashPoints.reach(.oldPartMoved, directory)
            }
            try StorageDirectory.rename(replacement, to: current)
            try StorageDirectory.sync(directory)
            try StorageDirectory.sync(fresh)
        }
        try CompactionCrashPoints.reach(.swapped, directory)
        try StorageDirectory.removeFile(directory.appending(marker))
        try StorageDirectory.sync(directory)
        try removeTree(old)
        try removeTree(fresh)
        try StorageDirectory.sync(directory)
    }

    /// Deletes a file or folder tree (nothing if absent), one unlink or `rmdir` at a time
    /// through the storage seam (``StorageDirectory/removeTree(_:)``).
    static func removeTree(_ path: FilePath) throws {
        try StorageDirectory.removeTree(path)
    }
}
