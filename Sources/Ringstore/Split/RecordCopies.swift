/// The buffer a checkpoint's writing copies ring records into when it reads
/// them with `pread` instead of through the ring's mapping
/// (``RingFile/copyRecord(at:into:)``, ``Splitter/mapsPass(over:spanning:)``). Used
/// by the splitter's thread alone, for one pass.
final class RecordCopies {
    var bytes: [UInt8] = []
    /// Records copied so far.
    var records: UInt64 = 0
}
