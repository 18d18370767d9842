extension EventStore {
    /// Throws if `stream` is Unicode-equivalent to a stream this store holds
    /// but not the same bytes (see ``NameRules/sameStream(_:_:)``): reading,
    /// subscribing to, deleting or describing it would otherwise reach the
    /// other stream through the `String`-keyed tables.
    ///
    /// Appends check the same in the journal writer, where the stream's entry
    /// is looked up anyway.
    func requireExactStreamName(_ stream: String) throws {
        if let stored = journal.indexedName(equivalentTo: stream) ?? split.storedName(equivalentTo: stream), !NameRules.sameStream(stored, stream) {
            throw NameRules.equivalentNameError(stream, stored: stored)
        }
    }
}
