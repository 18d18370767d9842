import Foundation
import Synchronization
@_spi(PowerLossTesting) @testable import Ringstore

/// Runs a piece of work on copies of a store once per operation it makes,
/// cutting the power at that operation, and hands each profile's outcome to a
/// check: the loop the power-loss tests of the mover share.
struct PowerCutRounds {
    let directory: TemporaryDirectory
    let template: String
    let configuration: Configuration
    let profiles: [PowerLossProfile]

    /// The template copied to `name`, a simulation over it, the store opened there.
    func scene(_ name: String) async throws -> (PowerLossSimulation, EventStore) {
        let root = directory.child(name)
        try FileManager.default.copyItem(atPath: template, toPath: root)
        let simulation = try PowerLossSimulation.install(root: root)
        return (simulation, try await EventStore.open(at: root, configuration: configuration))
    }

    /// Runs `work` once uncut and returns how many operations it made (and the
    /// operations' kinds); then, for each of them, runs it again with the power
    /// cut at that operation and calls `check` with each profile's outcome and a
    /// description of the cut. `work` throws once the power is cut; its errors
    /// are ignored then.
    @discardableResult
    func run(_ work: (EventStore) async throws -> Void,
             check: (_ after: String, _ context: String) async throws -> Void) async throws -> [PowerLossSimulation.Operation.Kind] {
        let (counting, store) = try await scene("counting")
        let kinds = KindLog()
        let before = counting.operationCount
        counting.cut(afterOperations: Int.max) { operation in
            kinds.append(operation.kind)
            return false
        }
        try await work(store)
        let operations = counting.operationCount - before
        try? await store.close()  // if `work` did not
        counting.uninstall()

        for cutAt in 1...max(1, operations) {
            let (simulation, store) = try await scene("cut-\(cutAt)")
            simulation.cut(afterOperations: cutAt)
            try? await work(store)
            try? await store.close()
            guard simulation.isCut else {
                throw RingstoreError(.invalidArgument, "cut \(cutAt) of \(operations): the work made fewer operations than counted")
            }
            for (p, profile) in profiles.enumerated() {
                let after = directory.child("after-\(cutAt)-\(p)")
                _ = try simulation.materialise(into: after, seed: UInt64(cutAt), profile: profile)
                try await check(after, "cut at operation \(cutAt) (\(simulation.cutOperation.map { "\($0)" } ?? "?")), profile \(p)")
            }
            simulation.uninstall()
        }
        return kinds.values
    }

    private final class KindLog: Sendable {
        private let log = Synchronization.Mutex<[PowerLossSimulation.Operation.Kind]>([])
        func append(_ kind: PowerLossSimulation.Operation.Kind) { log.withLock { $0.append(kind) } }
        var values: [PowerLossSimulation.Operation.Kind] { log.withLock { $0 } }
    }
}
