import Foundation
import Testing

/// The page at `/` in a real headless Chromium (Debian's `chromium`): a seeded
/// store's streams and versions appear in the DOM, and a screenshot is kept as
/// a test artifact in `.build/test-artifacts/ringstore-page.png`.
///
/// Runs where `chromium` is installed, and always in CI (`.ci/run` installs it),
/// where a missing browser is a failure rather than a skip.
@Suite struct BrowserPageTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var required: Bool { chromium != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// Runs chromium off the cooperative pool (see ``offThePool(_:)``): the page it loads is served by this process.
    func runChromium(_ arguments: [String]) async throws -> String {
        let path = try #require(Self.chromium, "chromium is not installed (apt-get install chromium)")
        return try await offThePool { try Self.run(path, arguments) }
    }

    static func run(_ path: String, _ arguments: [String]) throws -> String {
        // The browser's profile is thrown away with the run, so repeated test runs leave nothing behind.
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("ringstore-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                             "--user-data-dir=\(profile.path)", "--virtual-time-budget=4000"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }

    @Test(.enabled(if: required)) func seededStreamsAppearAndAScreenshotIsKept() async throws {
        let server = try await TestServer.start(token: "page-token")
        let auth = [("Authorization", "Bearer page-token")]
        #expect(try await server.put("/stores/shop", headers: auth).status == 201)
        for (stream, count) in [("order-17", 3), ("order-42", 5), ("customer-7", 2)] {
            let events = (0..<count).map { #"{"type":"Event\#($0)","data":{"n":\#($0),"note":"seeded for the page"}}"# }.joined(separator: ",")
            #expect(try await server.post("/stores/shop/streams/\(stream)", json: "[\(events)]", headers: auth).status == 201)
        }
        let url = "http://127.0.0.1:\(server.port)/?token=page-token&store=shop&stream=order-42"

        let dom = try await runChromium(["--dump-dom", url])
        #expect(dom.contains("order-17") && dom.contains("order-42") && dom.contains("customer-7"), "\(dom.prefix(2000))")
        #expect(dom.contains(">v4<") && dom.contains(">v2<") && dom.contains(">v1<"))  // the streams' versions
        #expect(dom.contains("Event4"))  // the opened stream's events
        #expect(dom.contains("events acknowledged"))  // the journal panel

        let artifacts = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/test-artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts.appendingPathComponent("ringstore-page.png")
        try? FileManager.default.removeItem(at: screenshot)
        _ = try await runChromium(["--screenshot=\(screenshot.path)", "--window-size=1280,860", url])
        let png = try Data(contentsOf: screenshot)
        #expect(png.count > 10_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        try await server.stop()
    }
}
