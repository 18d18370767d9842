import SystemPackage

/// `ringstore-admin dump`: the store's records, readably — journal records,
/// split-segment entries and stream-file blocks (boundaries, positions, sizes,
/// compression), and with a stream named, that stream's events. Read-only.
extension MaintenanceSession {
    /// What to dump.
    package struct DumpOptions: Sendable {
        package var stream: String?
        /// With a stream: the first version; without: the first journal position.
        package var from: UInt64 = 0
        package var json = false
        package init(stream: String? = nil, from: UInt64 = 0, json: Bool = false) {
            self.stream = stream
            self.from = from
            self.json = json
        }
    }

    /// Calls `emit` with one line per header slot, record, entry, block and (with a stream) event.
    package func dump(_ options: DumpOptions, emit: (String) -> Void) throws {
        let line = DumpLine(json: options.json)
        try dumpJournal(options, line: line, emit: emit)
        try dumpSegments(options, line: line, emit: emit)
        // The stream files' dictionary, for their blocks compressed against it (`verify` reports its damage).
        let dictionary = (try? StreamFileDictionary.read(in: path))??.dictionary
        if let stream = options.stream {
            var probe = 0
            while true {
                let relative = StreamNaming.relativePath(stream, probe: probe).string
                guard StorageDirectory.exists(path.appending(relative)) else { break }
                if try dumpStreamFile(relative, options, dictionary: dictionary, line: line, emit: emit) { break }
                probe += 1
            }
        } else {
            let root = path.appending(StreamNaming.folder)
            for folder in ((try? StorageDirectory.entries(of: root)) ?? []).sorted() where folder.count == 2 {
                for name in ((try? StorageDirectory.entries(of: root.appending(folder))) ?? []).sorted()
                where name.hasSuffix("." + StreamNaming.fileExtension) {
                    _ = try dumpStreamFile("\(StreamNaming.folder)/\(folder)/\(name)", options, dictionary: dictionary, line: line, emit: emit)
                }
            }
        }
    }

    private func dumpJournal(_ options: DumpOptions, line: DumpLine, emit: (String) -> Void) throws {
        let file = JournalVerifier.fileName
        let area = try RingFile.readHeaderArea(at: path.appending(file))
        var newest: JournalHeader?
        for offset in JournalHeader.slotOffsets {
            let start = Int(offset)
            switch JournalHeader.decode(start < area.count ? area[start..<min(area.count, start + JournalHeader.slotSize)] : []) {
            case .success(let h):
                if newest.map({ h.sequence > $0.sequence }) ?? true { newest = h }
                emit(line.make("header", [("file", .text(file)), ("offset", .number(offset)), ("sequence", .number(h.sequence)),
                                          ("capacity", .number(h.capacity)), ("checkpoint", .number(h.checkpoint)),
                                          ("session", .number(UInt64(h.epoch))), ("closedCleanly", .flag(h.closedCleanly)),
                                          ("endAtClose", .number(h.endAtClose))]))
            case .failure(let error):
                emit(line.make("header", [("file", .text(file)), ("offset", .number(offset)), ("invalid", .text("\(error)"))]))
            }
        }
        guard let header = newest else { return }
        let ring = try RingFile.open(at: path.appending(file), capacity: header.capacity)
        let end = header.closedCleanly ? header.endAtClose
            : JournalRecovery.scan(ring, checkpoint: header.checkpoint, headerEpoch: header.epoch).end
        // The ring holds the last lap: find its oldest whole record, then walk.
        let lowest = end > header.capacity ? end - header.capacity : 0
        var position = max(lowest, options.stream == nil ? options.from : 0)
        var synced = position == 0
        while position < end {
            let toEnd = ring.bytesToEnd(from: position)
            if toEnd < UInt64(JournalRecord.paddingSize) { position += toEnd; continue }
            let here = position
            let found: (JournalRecord.Inspection, String?, RecordedEvent?) = ring.withMappedBytes(physical: ring.physical(here), count: Int(toEnd)) { bytes in
                let inspection = JournalRecord.inspect(bytes, expectedPosition: here)
                if case .event(let h) = inspection {
                    let name = JournalRecord.streamName(bytes, h)
                    return (inspection, name, options.stream == name ? JournalRecord.decodeEvent(bytes, h) : nil)
                }
                return (inspection, nil, nil)
            }
            switch found.0 {
            case .invalid(let reason):
                if synced && position >= header.checkpoint {
                    emit(line.make("record", [("file", .text(file)), ("position", .number(position)), ("invalid", .text(reason))]))
                }
                if synced && position >= header.checkpoint { return }
                synced = false
                position += UInt64(JournalRecord.alignment)
            case .padding(let length, let epoch):
                synced = true
                if options.stream == nil {
                    emit(line.make("padding", [("file", .text(file)), ("offset", .number(RingFile.headerAreaSize + ring.physical(position))),
                                               ("position", .number(position)), ("length", .number(UInt64(length))), ("session", .number(UInt64(epoch)))]))
                }
                position += UInt64(length)
            case .event(let h):
                synced = true
                if options.stream == nil || options.stream == found.1 {
                    var fields: [(String, DumpLine.Value)] = [
                        ("file", .text(file)), ("offset", .number(RingFile.headerAreaSize + ring.physical(position))),
                        ("position", .number(position)), ("length", .number(UInt64(h.length))), ("stream", .text(found.1 ?? "")),
                        ("version", .number(h.version)), ("id", .text(h.id.uuidString)), ("type", .text(found.2?.type ?? "")),
                        ("dataBytes", .number(UInt64(h.dataCount))), ("metadataBytes", .number(UInt64(h.metadataCount))),
                        ("session", .number(UInt64(h.epoch))), ("endOfAppend", .flag(h.endOfAppend)),
                        ("split", .flag(position < header.checkpoint)),
                    ]
                    if found.2 == nil { fields.removeAll { $0.0 == "type" } }
                    emit(line.make("record", fields))
                }
                position += UInt64(h.length)
            }
        }
    }

    /// The bucket files' entries (``StreamBuckets``), then the split segments', in file order.
    private func dumpSegments(_ options: DumpOptions, line: DumpLine, emit: (String) -> Void) throws {
        let verifier = StoreVerifier(directory: path)
        let catalog = verifier.catalogNames()
        let buckets = "\(StreamNaming.folder)/\(StreamBuckets.folderName)"
        for name in verifier.bucketFileNames() {
            try dumpSegment(name, in: buckets, kind: "bucket", catalog: catalog, options, line: line, emit: emit)
        }
        for name in ((try? StorageDirectory.entries(of: path.appending("split"))) ?? []).sorted() {
            try dumpSegment(name, in: "split", kind: "segment", catalog: catalog, options, line: line, emit: emit)
        }
    }

    /// One split segment or bucket file (the same format): a line for the file, one per entry.
    private func dumpSegment(_ name: String, in relativeFolder: String, kind: String, catalog: [String], _ options: DumpOptions,
                             line: DumpLine, emit: (String) -> Void) throws {
        let folder = path.appending(relativeFolder)
        guard let number = SplitSegment.number(inFileName: name), let segment = try SplitSegment.open(number: number, in: folder) else { return }
        if options.stream == nil {
            var fields: [(String, DumpLine.Value)] = [("file", .text("\(relativeFolder)/\(name)")), ("entriesStart", .number(segment.entriesStart)),
                                                      ("dictionaryBytes", .number(UInt64(segment.dictionary?.bytes.count ?? 0)))]
            if !segment.damagedDictionaryCopies.isEmpty {
                fields.append(("invalid", .text("damaged dictionary copies at offsets \(segment.damagedDictionaryCopies.map(String.init).joined(separator: ", "))")))
            }
            emit(line.make(kind, fields))
        }
        _ = try segment.walk(checkingPayloads: true) { visit, block, _ in
            switch visit {
            case .entry(let offset, let envelope, let header, let intact):
                let stream = Int(envelope.stream) < catalog.count ? catalog[Int(envelope.stream)] : "#\(envelope.stream)"
                guard options.stream == nil || options.stream == stream else { return true }
                var fields: [(String, DumpLine.Value)] = [
                    ("file", .text("\(relativeFolder)/\(name)")), ("offset", .number(offset)), ("stream", .text(stream)),
                    ("firstVersion", .number(header.firstVersion)), ("events", .number(UInt64(header.count))),
                    ("firstPosition", .number(header.firstPosition)), ("storedBytes", .number(UInt64(header.storedLength))),
                    ("rawBytes", .number(UInt64(header.rawLength))), ("lz4", .flag(header.compressed)),
                    ("dictionary", .flag(header.dictionary)), ("intact", .flag(intact)),
                ]
                // The entry it is chained to: what a bucket chain's walk follows.
                if !envelope.previous.isNone {
                    fields.append(("previous", .text("\(SplitSegment.fileName(of: envelope.previous.segment))@\(envelope.previous.offset)")))
                }
                emit(line.make("entry", fields))
                // A small stream's events are in its bucket chain (a promoted stream's old chain shows them too).
                if kind == "bucket", options.stream != nil, intact, header.firstVersion + UInt64(header.count) > options.from {
                    switch StreamBlock.decode(Array(block), stream: stream, dictionary: segment.dictionary) {
                    case .success(let events):
                        for event in events where event.version >= options.from {
                            emitEvent(event, file: "\(relativeFolder)/\(name)", line: line, emit: emit)
                        }
                    case .failure(let error):
                        emit(line.make("entry", [("file", .text("\(relativeFolder)/\(name)")), ("offset", .number(offset)), ("invalid", .text("\(error)"))]))
                    }
                }
            case .damaged(let offset, let next):
                emit(line.make("entry", [("file", .text("\(relativeFolder)/\(name)")), ("offset", .number(offset)), ("invalid", .text("\(next - offset) bytes are no entry"))]))
            }
            return true
        }
    }

    /// One event's line (`file`: where it lies, when not in a stream file).
    private func emitEvent(_ event: RecordedEvent, file: String? = nil, line: DumpLine, emit: (String) -> Void) {
        emit(line.make("event", [("stream", .text(event.stream)), ("version", .number(event.version)), ("position", .number(event.position)),
                                 ("id", .text(event.id.uuidString)), ("type", .text(event.type)),
                                 ("dataBytes", .number(UInt64(event.data.count))), ("metadataBytes", .number(UInt64(event.metadata.count))),
                                 ("timestampNanoseconds", .number(UInt64(bitPattern: event.timestampNanoseconds)))]
                                + (file.map { [("file", DumpLine.Value.text($0))] } ?? [])))
    }

    /// Dumps one stream file; false if it belongs to another stream than the one asked for.
    private func dumpStreamFile(_ relative: String, _ options: DumpOptions, dictionary: CompressionDictionary?, line: DumpLine,
                                emit: (String) -> Void) throws -> Bool {
        let file = try StorageFile.open(path.appending(relative))
        defer { file.close() }
        var reader = try SequentialReader(file: file)
        guard let fixed = try reader.bytes(at: 0, count: 16), fixed.prefix(8).elementsEqual(StreamFile.magic) else {
            emit(line.make("file", [("file", .text(relative)), ("invalid", .text("no stream file header"))]))
            return options.stream == nil
        }
        let nameCount = Int(UInt32(littleEndian: fixed.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        guard nameCount <= NameRules.maxStreamNameBytes, let header = try reader.bytes(at: 0, count: Int(StreamFile.headerLength(nameBytes: nameCount))) else {
            emit(line.make("file", [("file", .text(relative)), ("invalid", .text("damaged header"))]))
            return options.stream == nil
        }
        let name = String(decoding: UnsafeRawBufferPointer(rebasing: header[16..<(16 + nameCount)]), as: UTF8.self)
        if let wanted = options.stream, wanted != name { return false }
        emit(line.make("file", [("file", .text(relative)), ("stream", .text(name)), ("bytes", .number(reader.size)),
                                ("index", .flag(StorageDirectory.exists(path.appending(relative + ".idx"))))]))
        var offset = UInt64(header.count)
        while offset < reader.size {
            guard let head = try reader.bytes(at: offset, count: StreamBlock.headerSize),
                  case .success(let block) = StreamBlock.parseHeader(head) else {
                emit(line.make("block", [("file", .text(relative)), ("offset", .number(offset)), ("invalid", .text("damaged block header"))]))
                break
            }
            emit(line.make("block", [("file", .text(relative)), ("offset", .number(offset)), ("firstVersion", .number(block.firstVersion)),
                                     ("events", .number(UInt64(block.count))), ("firstPosition", .number(block.firstPosition)),
                                     ("storedBytes", .number(UInt64(block.storedLength))), ("rawBytes", .number(UInt64(block.rawLength))),
                                     ("lz4", .flag(block.compressed)), ("dictionary", .flag(block.dictionary))]))
            if options.stream != nil, block.firstVersion + UInt64(block.count) > options.from,
               let bytes = try reader.bytes(at: offset, count: block.totalLength) {
                switch StreamBlock.decode(Array(bytes), stream: name, dictionary: dictionary) {
                case .success(let events):
                    for event in events where event.version >= options.from { emitEvent(event, line: line, emit: emit) }
                case .failure(let error):
                    emit(line.make("block", [("file", .text(relative)), ("offset", .number(offset)), ("invalid", .text("\(error)"))]))
                }
            }
            offset += UInt64(block.totalLength)
        }
        return true
    }
}

/// One dump line: `kind key=value …`, or a JSON object with `kind` first.
struct DumpLine {
    enum Value { case text(String), number(UInt64), flag(Bool) }
    let json: Bool

    func make(_ kind: String, _ fields: [(String, Value)]) -> String {
        if json {
            var out = "{\"kind\":\"\(kind)\""
            for (key, value) in fields {
                out += ",\"\(key)\":"
                switch value {
                case .text(let s): out += Self.quoted(s)
                case .number(let n): out += String(n)
                case .flag(let b): out += b ? "true" : "false"
                }
            }
            return out + "}"
        }
        var out = kind
        for (key, value) in fields {
            switch value {
            case .text(let s): out += " \(key)=" + (s.contains(where: { $0 == " " || $0 == "\"" }) || s.isEmpty ? Self.quoted(s) : s)
            case .number(let n): out += " \(key)=\(n)"
            case .flag(let b): out += " \(key)=\(b)"
            }
        }
        return out
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

extension StoreVerifier {
    /// The catalog's names by number (up to its first damaged record).
    func catalogNames() -> [String] {
        var problems: [MaintenanceProblem] = []
        var inventory = StoreInventory()
        var read: UInt64 = 0
        return verifyCatalog(into: &problems, inventory: &inventory, bytesRead: &read).map(\.name)
    }
}
