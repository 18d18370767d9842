extension StreamBlock {
    /// Builds one stream's consecutive events into raw blocks, cutting a new
    /// block before an entry that would take the current one past `limit` raw
    /// bytes (an entry larger than that gets a block of its own). The splitter
    /// (from journal records), ``StreamFile/append(_:compress:)`` (from
    /// events) and the segment mover (joining raw blocks) all cut blocks here.
    struct Builder {
        /// Raw bytes a block may hold before the next entry starts another.
        let limit: Int
        private var blocks: [RawBlock] = []
        /// The block being filled: entries go into it after ``room(for:)``.
        var current = RawBlock()

        init(limit: Int = StreamBlock.maxRawLength) {
            self.limit = limit
        }

        /// Makes ``current`` ready for an entry of `size` raw bytes, closing it
        /// first if the entry would take it past ``limit``. Returns true if
        /// ``current`` is empty (a new block: the caller may reserve capacity).
        mutating func room(for size: Int) -> Bool {
            if current.count > 0 && current.raw.count + size > limit {
                blocks.append(current)
                current = RawBlock()
            }
            return current.count == 0
        }

        /// Adds `event` (its version must follow the previous one's).
        mutating func add(_ event: RecordedEvent) {
            _ = room(for: StreamBlock.entryHeaderSize + event.type.utf8.count + event.metadata.count + event.data.count)
            var type = event.type
            type.withUTF8 { typeBytes in
                event.metadata.withUnsafeBytes { metadata in
                    event.data.withUnsafeBytes { data in
                        current.add(version: event.version, position: event.position, id: event.id.uuid,
                                    timestampNanoseconds: event.timestampNanoseconds, json: event.contentType == .json,
                                    type: UnsafeRawBufferPointer(typeBytes), metadata: metadata, data: data)
                    }
                }
            }
        }

        /// Adds a raw block's events whole (they must follow the previous ones).
        mutating func add(_ block: RawBlock) {
            _ = room(for: block.raw.count)
            current.append(block)
        }

        /// The blocks built, the last one included if it holds anything.
        consuming func finish() -> [RawBlock] {
            if current.count > 0 { blocks.append(current) }
            return blocks
        }
    }
}
