import FuzzDriver
import RingstoreJSONLines

/// The JSON Lines reader of `ringstore import`: a line, and the members
/// `import` reads from it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let (_, line) = fuzzInput(data, size)
    if let parsed = try? JSONLine(line) {
        for name in ["stream", "type", "id", "dataBase64", "metadataBase64"] { _ = try? parsed.string(name) }
        _ = try? parsed.scalarText("expectedVersion")
        for (_, value) in parsed.members { fuzzCheck(!value.isEmpty, "a member with an empty value was accepted") }
    }
    return 0
}

@_cdecl("FuzzJSONLines_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc: argc, argv: argv, fuzzOne)
}

@_cdecl("LLVMFuzzerInitialize")
func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    writeSeedsIfAsked([
        ("export", Array(#"{"stream":"order-42","type":"OrderPlaced","id":"0b6c1f39-2f0e-4d7e-9a53-8d3c2b1e4f50","version":0,"position":0,"timestamp":"2026-01-01T00:00:00Z","data":{"total":42,"items":[1,2.5,-3e2,"x\u00e9\n"],"ok":true,"none":null}}"#.utf8)),
        ("binary", Array(#"{"stream":"raw","type":"Blob","dataBase64":"AAEC","metadataBase64":"/w==","expectedVersion":"no-stream"}"#.utf8)),
        ("expected", Array(#"{ "stream" : "s", "type" : "T", "data" : "text", "metadata" : [ ], "expectedVersion" : 17 }"#.utf8)),
    ])
    return 0
}
