/// A fetched page of events, handed out one at a time by moving each out.
///
/// Why: the read sequences' iterators are called once per event, from the
/// caller's module. Handing out `page[index]` copied the event (a retain of its
/// data, type and stream) and destroyed the page's copy later; popping from
/// the end moves the event to the caller instead, and the emptied page frees
/// nothing per event. The events are kept last first so that the next one is
/// always at the end. It is `@usableFromInline` so that the iterators' fast
/// path (an event is buffered) is inlined into the loop that iterates: no
/// async call, task-frame allocation or executor switch per event, only per page.
@usableFromInline
struct EventPage: Sendable {
    /// The events not yet handed out, the next one last.
    @usableFromInline var remainingReversed: [RecordedEvent]

    init() { remainingReversed = [] }

    /// A page handing out `events` in their order.
    init(_ events: consuming [RecordedEvent]) {
        // Reversed in place by moving the events (`reverse()` swaps by copying: a
        // retain and a release per reference); every slot is initialised again
        // before the buffer is let go.
        events.withUnsafeMutableBufferPointer { buffer in
            guard var low = buffer.baseAddress, buffer.count > 1 else { return }
            var high = low + (buffer.count - 1)
            while low < high {
                let event = low.move()
                low.moveInitialize(from: high, count: 1)
                high.initialize(to: event)
                low += 1
                high -= 1
            }
        }
        remainingReversed = events
    }

    /// The next event of the page, or nil once all were handed out.
    @inlinable
    mutating func next() -> RecordedEvent? { remainingReversed.popLast() }

    var isEmpty: Bool { remainingReversed.isEmpty }
}
