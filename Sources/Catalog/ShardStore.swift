// Shard files hold the pixels of the corpus: many small images and masks appended to one file each,
// so a corpus of millions of slices is a few hundred files rather than millions of loose ones.
//
// Format, all integers little-endian:
//
//   file header, 16 bytes      "MCSHARD1" | version u32 = 1 | reserved u32 = 0
//   records, one after another: a 32-byte header, then `storedLength` payload bytes
//      0 magic "MCR1"            4 kind u8 (1 grey8, 2 rgb8, 3 bit-packed mask)
//      5 encoding u8 (0 raw, 1 zlib)                6 reserved u16 = 0
//      8 width u32              12 height u32
//     16 storedLength u32 (payload bytes in the file)
//     20 rawLength u32 (decoded bytes: width*height for grey8, width*height*3 for rgb8; for a mask
//                       at most ceil(width*height/8), the bits of a box inside a width×height image)
//     24 payloadCRC32 u32 (of the stored payload)  28 headerCRC32 u32 (of header bytes 0..<28)
//   index, sealed shards only: one offset u64 per record, in file order, then a 32-byte trailer
//      indexOffset u64 | recordCount u64 | indexCRC32 u32 | reserved u32 = 0 | "MCINDEX1"
//      indexCRC32 covers the offsets followed by the trailer's first 16 bytes.
//
// Crash safety. Records are only ever appended, and the catalog stores a row pointing at a record
// only after `ShardWriter.flush()` has handed its bytes to the OS, so a killed process leaves at worst
// a torn final record that no row refers to. Reopening such a shard (ShardWriter.init or
// ShardRepair.recover) scans it, keeps every record whose header and payload checksums hold and cuts
// the torn tail. Damage followed by further valid records is not a torn tail but corruption; that is
// reported rather than cut away, since truncating would destroy records the catalog refers to.
// (`flush()` does not fsync: a SIGKILL cannot lose data the OS holds, a power cut can; pass
// `durable: true` where that matters. Sealing always syncs.)
import CCodecs
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a record lives: the shard's file name (not a path, so the shard directory can move), the
/// record's byte offset, and its length including the 32-byte header.
public struct ShardLocation: Codable, Hashable, Sendable {
    public var shard: String
    public var offset: Int64
    public var length: Int32

    public init(shard: String, offset: Int64, length: Int32) {
        self.shard = shard
        self.offset = offset
        self.length = length
    }
}

public enum ShardRecordKind: UInt8, Sendable, CaseIterable {
    case grey8 = 1, rgb8 = 2, mask = 3

    /// The decoded size of a width×height record of this kind (for masks the most it can be: a box
    /// covering the whole image); nil when negative or too large for u32.
    public func rawLength(width: Int, height: Int) -> Int? {
        guard width >= 0, height >= 0, width <= UInt32.max, height <= UInt32.max else { return nil }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow else { return nil }
        let n: Int
        switch self {
        case .grey8: n = pixels
        case .rgb8: guard pixels <= Int.max / 3 else { return nil }; n = pixels * 3
        case .mask: n = pixels / 8 + (pixels % 8 == 0 ? 0 : 1)
        }
        return n <= UInt32.max ? n : nil
    }

    /// Masks hold only the bits of their bounding box, so any size up to the whole image's will do.
    func accepts(rawLength n: Int, width: Int, height: Int) -> Bool {
        guard let full = rawLength(width: width, height: height) else { return false }
        return self == .mask ? n <= full : n == full
    }
}

public struct ShardRecord: Sendable, Equatable {
    public let kind: ShardRecordKind
    public let width: Int
    public let height: Int
    /// Decoded bytes: grey8 row-major, rgb8 interleaved, mask the bits of its box (MaskBits.pack).
    public let bytes: Data

    public init(kind: ShardRecordKind, width: Int, height: Int, bytes: Data) {
        self.kind = kind
        self.width = width
        self.height = height
        self.bytes = bytes
    }
}

public struct ShardError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable {
        case checksumMismatch, headerDamaged, beyondEnd, truncated, undecodable
        case notAShard, damagedMidShard, locked, misuse, io
    }

    public let shard: String
    public let offset: Int64?
    public let reason: Reason
    public let detail: String

    public init(shard: String, offset: Int64? = nil, _ reason: Reason, _ detail: String) {
        self.shard = shard
        self.offset = offset
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "shard \(shard)" + (offset.map { " at offset \($0)" } ?? "") + ": \(detail)" }
}

// MARK: - Format

enum ShardFormat {
    static let fileMagic = Array("MCSHARD1".utf8)
    static let recordMagic = Array("MCR1".utf8)
    static let indexMagic = Array("MCINDEX1".utf8)
    static let version: UInt32 = 1
    static let fileHeaderSize = 16
    static let recordHeaderSize = 32
    static let trailerSize = 32
    static let fileHeader: [UInt8] = fileMagic + le(version) + le(UInt32(0))

    struct Header {
        var kind: ShardRecordKind
        var encoding: UInt8
        var width: UInt32
        var height: UInt32
        var storedLength: UInt32
        var rawLength: UInt32
        var payloadCRC: UInt32

        var recordLength: Int { ShardFormat.recordHeaderSize + Int(storedLength) }

        func encoded() -> [UInt8] {
            var b = recordMagic + [kind.rawValue, encoding, 0, 0]
            b += le(width) + le(height) + le(storedLength) + le(rawLength) + le(payloadCRC)
            return b + le(crc32(b))
        }
    }

    /// What a shard holds: its records' offsets, where the records end (the index offset when sealed),
    /// and for an unsealed shard whose scan stopped early, why it stopped and whether a valid record
    /// header follows the stopping point (damage in the middle rather than a torn tail).
    struct Layout {
        var offsets: [Int64]
        var recordsEnd: Int
        var sealed: Bool
        var stop: ShardError?
        var laterRecord: Int?
    }

    static func layout(_ p: UnsafeRawBufferPointer, shard: String) throws -> Layout {
        try checkFileHeader(p, shard: shard)
        if let (indexOffset, offsets) = sealedIndex(p) {
            return Layout(offsets: offsets, recordsEnd: indexOffset, sealed: true)
        }
        var offsets: [Int64] = []
        var at = fileHeaderSize
        while at < p.count {
            do {
                let length = try inspect(p, at: at, limit: p.count, shard: shard, checkPayload: true).recordLength
                offsets.append(Int64(at))
                at += length
            } catch let e as ShardError {
                return Layout(offsets: offsets, recordsEnd: at, sealed: false, stop: e,
                              laterRecord: firstValidHeader(p, after: at, shard: shard))
            }
        }
        return Layout(offsets: offsets, recordsEnd: at, sealed: false)
    }

    static func checkFileHeader(_ p: UnsafeRawBufferPointer, shard: String) throws {
        guard p.count >= fileHeaderSize else {
            throw ShardError(shard: shard, .notAShard, "file header truncated (\(p.count) bytes)")
        }
        guard p.prefix(8).elementsEqual(fileMagic) else { throw ShardError(shard: shard, .notAShard, "not a medcat shard (bad file magic)") }
        let v = u32(p, 8)
        guard v == version else { throw ShardError(shard: shard, .notAShard, "unsupported shard format version \(v)") }
    }

    /// The index of a sealed shard, or nil when the trailer is missing, torn or inconsistent (the shard
    /// is then treated as unsealed and scanned).
    static func sealedIndex(_ p: UnsafeRawBufferPointer) -> (Int, [Int64])? {
        let n = p.count
        guard n >= fileHeaderSize + trailerSize, p[(n - 8)...].elementsEqual(indexMagic) else { return nil }
        let t = n - trailerSize
        let indexOffset = u64(p, t), count = u64(p, t + 8)
        guard indexOffset >= UInt64(fileHeaderSize), indexOffset <= UInt64(t),
              (UInt64(t) - indexOffset) % 8 == 0, count == (UInt64(t) - indexOffset) / 8 else { return nil }
        let start = Int(indexOffset)
        let crc = crc32(UnsafeRawBufferPointer(rebasing: p[t..<(t + 16)]), seed: crc32(UnsafeRawBufferPointer(rebasing: p[start..<t])))
        guard crc == u32(p, t + 16) else { return nil }
        var offsets: [Int64] = []
        offsets.reserveCapacity(Int(count))
        var last = fileHeaderSize - 1
        for i in 0..<Int(count) {
            let o = u64(p, start + 8 * i)
            guard o > UInt64(last), o + UInt64(recordHeaderSize) <= indexOffset else { return nil }
            last = Int(o)
            offsets.append(Int64(o))
        }
        return (start, offsets)
    }

    /// Validates the record at `at` (magic, header checksum, sanity of the fields, bounds against
    /// `limit`, and the payload checksum when asked) and returns its header.
    static func inspect(_ p: UnsafeRawBufferPointer, at: Int, limit: Int, shard: String, checkPayload: Bool) throws -> Header {
        func fail(_ r: ShardError.Reason, _ d: String) -> ShardError { ShardError(shard: shard, offset: Int64(at), r, d) }
        guard at >= 0, at < limit else { throw fail(.beyondEnd, "offset beyond end of shard (records end at \(limit))") }
        guard at >= fileHeaderSize else { throw fail(.headerDamaged, "record header damaged (offset inside the file header)") }
        guard limit - at >= recordHeaderSize else { throw fail(.truncated, "record truncated (header cut off at end of shard)") }
        let h = UnsafeRawBufferPointer(rebasing: p[at..<(at + recordHeaderSize)])
        guard h.prefix(4).elementsEqual(recordMagic) else { throw fail(.headerDamaged, "record header damaged (no record magic)") }
        guard crc32(UnsafeRawBufferPointer(rebasing: h[0..<28])) == u32(h, 28) else {
            throw fail(.headerDamaged, "record header damaged (header checksum mismatch)")
        }
        guard let kind = ShardRecordKind(rawValue: h[4]), h[5] <= 1 else {
            throw fail(.headerDamaged, "record header damaged (kind \(h[4]), encoding \(h[5]))")
        }
        let header = Header(kind: kind, encoding: h[5], width: u32(h, 8), height: u32(h, 12),
                            storedLength: u32(h, 16), rawLength: u32(h, 20), payloadCRC: u32(h, 24))
        guard kind.accepts(rawLength: Int(header.rawLength), width: Int(header.width), height: Int(header.height)),
              header.encoding == 1 || header.storedLength == header.rawLength else {
            throw fail(.headerDamaged, "record header damaged (sizes inconsistent)")
        }
        guard header.recordLength <= limit - at else { throw fail(.truncated, "record truncated (payload cut off at end of shard)") }
        if checkPayload {
            let crc = crc32(UnsafeRawBufferPointer(rebasing: p[(at + recordHeaderSize)..<(at + header.recordLength)]))
            guard crc == header.payloadCRC else {
                throw fail(.checksumMismatch, String(format: "payload checksum mismatch (stored %08x, computed %08x)", header.payloadCRC, crc))
            }
        }
        return header
    }

    /// The first offset after `after` holding a record header with a valid checksum, if any.
    static func firstValidHeader(_ p: UnsafeRawBufferPointer, after: Int, shard: String) -> Int? {
        var i = after + 1
        while i + recordHeaderSize <= p.count {
            if p[i] == recordMagic[0], (try? inspect(p, at: i, limit: p.count, shard: shard, checkPayload: false)) != nil { return i }
            i += 1
        }
        return nil
    }

    static func crc32(_ p: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = p.baseAddress, p.count > 0 else { return seed }
        return mc_crc32(seed, base, p.count)
    }

    static func crc32(_ b: [UInt8]) -> UInt32 { b.withUnsafeBytes { crc32($0) } }
    static func u32(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt32 { UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    static func u64(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt64 { UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// Maps a file read-only; the mapping lives as long as the returned Data.
    static func map(_ url: URL) throws -> Data {
        let name = url.lastPathComponent
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ShardError(shard: name, .io, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ShardError(shard: name, .io, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(st.st_size)
        guard size > 0 else { return Data() }
        guard let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw ShardError(shard: name, .io, "cannot map: \(String(cString: strerror(errno)))")
        }
        return Data(bytesNoCopy: m, count: size, deallocator: .custom { p, n in munmap(p, n) })
    }
}

// MARK: - Writer

// ShardWriter.close() hides the C function inside the class.
private func closeFile(_ fd: Int32) -> Int32 { close(fd) }

/// Appends records to one shard file. Not thread-safe: use one writer per shard from one thread at a
/// time (an exclusive flock keeps a second writer, in this or another process, off the same file).
/// Closing or dropping it without `seal()` leaves an unsealed shard that readers scan and that the
/// next writer or ShardRepair.recover reopens.
public final class ShardWriter {
    public let url: URL
    /// The file name, as stored in ShardLocation.shard.
    public let name: String
    /// Bytes cut from a torn tail when an unsealed shard was reopened (0 otherwise).
    public private(set) var truncatedBytes: Int64 = 0

    private static let bufferCapacity = 4 << 20
    private var fd: Int32 // -1 once closed
    private var buffer: [UInt8] = []
    private var written: Int64 = 0
    private var offsets: [Int64]
    private enum State { case open, sealed, closed, failed }
    private var state = State.open

    /// The file's size once everything appended so far is flushed, i.e. where the next record goes.
    public var byteCount: Int64 { written + Int64(buffer.count) }
    public var recordCount: Int { offsets.count }

    /// Opens `<directory>/<name>.mcs`, creating it when absent and otherwise reopening it for appending.
    public convenience init(directory: URL, name: String) throws {
        try self.init(url: directory.appendingPathComponent(name + ".mcs"))
    }

    public init(url: URL) throws {
        self.url = url
        name = url.lastPathComponent
        let name = self.name
        fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ShardError(shard: name, .io, "cannot open: \(String(cString: strerror(errno)))") }
        offsets = []
        do {
            if flock(fd, LOCK_EX | LOCK_NB) != 0, errno == EWOULDBLOCK {
                throw ShardError(shard: name, .locked, "shard is open in another writer")
            }
            let size = Int64(lseek(fd, 0, SEEK_END))
            var end: Int64
            if size < Int64(ShardFormat.fileHeaderSize) {
                // New, or created by a process killed before its file header reached the OS.
                let data = try ShardFormat.map(url)
                guard data.elementsEqual(ShardFormat.fileHeader.prefix(data.count)) else {
                    throw ShardError(shard: name, .notAShard, "not a medcat shard (\(size) bytes, bad file magic)")
                }
                truncatedBytes = size
                end = 0
                buffer = ShardFormat.fileHeader
            } else {
                let layout = try ShardFormat.map(url).withUnsafeBytes { try ShardFormat.layout($0, shard: name) }
                if let at = layout.laterRecord, let stop = layout.stop {
                    throw ShardError(shard: name, offset: Int64(layout.recordsEnd), .damagedMidShard,
                                     "\(stop.detail), yet a valid record follows at offset \(at); refusing to truncate")
                }
                offsets = layout.offsets
                end = Int64(layout.recordsEnd)
                if !layout.sealed { truncatedBytes = size - end }
            }
            if end < size, ftruncate(fd, off_t(end)) != 0 {
                throw ShardError(shard: name, .io, "cannot truncate: \(String(cString: strerror(errno)))")
            }
            lseek(fd, off_t(end), SEEK_SET)
            written = end
            buffer.reserveCapacity(Self.bufferCapacity)
        } catch {
            release(.failed)
            throw error
        }
    }

    deinit {
        if state == .open { try? flush() }
        release(state)
    }

    /// Appends one record and returns where it lives. `bytes` must hold `kind.rawLength(width:height:)`
    /// bytes (for a mask, at most that: the packed bits of a box in a width×height image). With `compress`, zlib level 1 is tried and kept only when
    /// it shrinks the payload. The bytes reach the OS at the next flush (or when the buffer fills).
    public func append(kind: ShardRecordKind, width: Int, height: Int, bytes: UnsafeRawBufferPointer,
                       compress: Bool = true) throws -> ShardLocation {
        try checkOpen()
        guard kind.accepts(rawLength: bytes.count, width: width, height: height) else {
            throw ShardError(shard: name, .misuse, "\(kind) record of \(width)×\(height) cannot hold \(bytes.count) bytes")
        }
        var payload = bytes
        var encoding: UInt8 = 0
        var packed: UnsafeMutablePointer<UInt8>?
        defer { mc_free(packed) }
        if compress, let base = bytes.baseAddress, bytes.count > 0 {
            var out: UnsafeMutablePointer<UInt8>?
            var outLen = 0
            if mc_zlib_compress(base.assumingMemoryBound(to: UInt8.self), bytes.count, 1, &out, &outLen) == 0 {
                packed = out
                if outLen < bytes.count {
                    payload = UnsafeRawBufferPointer(start: out, count: outLen)
                    encoding = 1
                }
            }
        }
        guard payload.count <= Int(Int32.max) - ShardFormat.recordHeaderSize else {
            throw ShardError(shard: name, .misuse, "record of \(payload.count) bytes is too large for a shard")
        }
        let header = ShardFormat.Header(kind: kind, encoding: encoding, width: UInt32(width), height: UInt32(height),
                                        storedLength: UInt32(payload.count), rawLength: UInt32(bytes.count),
                                        payloadCRC: ShardFormat.crc32(payload))
        let location = ShardLocation(shard: name, offset: byteCount, length: Int32(header.recordLength))
        buffer += header.encoded()
        buffer.append(contentsOf: payload)
        offsets.append(location.offset)
        if buffer.count >= Self.bufferCapacity { try flush() }
        return location
    }

    public func append(kind: ShardRecordKind, width: Int, height: Int, bytes: some ContiguousBytes,
                       compress: Bool = true) throws -> ShardLocation {
        try bytes.withUnsafeBytes { try append(kind: kind, width: width, height: height, bytes: $0, compress: compress) }
    }

    /// Hands buffered records to the OS; commit catalog rows pointing at them only after this returns.
    /// `durable` also fsyncs, for power-cut safety rather than just process-kill safety.
    public func flush(durable: Bool = false) throws {
        try checkOpen()
        if !buffer.isEmpty {
            do {
                try buffer.withUnsafeBytes { try writeAll($0) }
            } catch {
                // Part of the buffer may be on disk; the next open trims it as a torn tail.
                state = .failed
                throw error
            }
            written += Int64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }
        if durable, fsync(fd) != 0 { throw ShardError(shard: name, .io, "fsync failed: \(String(cString: strerror(errno)))") }
    }

    /// Writes the index and closes the file. Reopening with `init` later drops the index and appends.
    public func seal() throws {
        try checkOpen()
        let indexOffset = byteCount
        var index = [UInt8]()
        index.reserveCapacity(offsets.count * 8 + ShardFormat.trailerSize)
        for o in offsets { index += ShardFormat.le(UInt64(o)) }
        let head = ShardFormat.le(UInt64(indexOffset)) + ShardFormat.le(UInt64(offsets.count))
        let crc = head.withUnsafeBytes { ShardFormat.crc32($0, seed: ShardFormat.crc32(index)) }
        buffer += index + head + ShardFormat.le(crc) + ShardFormat.le(UInt32(0)) + ShardFormat.indexMagic
        do {
            try flush(durable: true)
        } catch {
            // A torn or unsynced index reads as unsealed, and reopening trims it.
            release(.failed)
            throw error
        }
        release(.sealed)
    }

    /// Flushes and closes without sealing (the shard stays open for a later writer to continue).
    public func close() throws {
        try flush()
        release(.closed)
    }

    private func release(_ final: State) {
        state = final
        if fd >= 0 { _ = closeFile(fd) }
        fd = -1
    }

    private func checkOpen() throws {
        guard state == .open else { throw ShardError(shard: name, .misuse, "writer is \(state) and cannot write") }
    }

    private func writeAll(_ p: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < p.count {
            let n = write(fd, p.baseAddress! + done, p.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw ShardError(shard: name, offset: written + Int64(done), .io, "write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

// MARK: - Reader

/// Random access to the records of one shard through a read-only memory map. Immutable after init,
/// so safe to share between threads. It sees the file as it was when opened: records a writer
/// appends later need a new reader.
public final class ShardReader: Sendable {
    public let url: URL
    public let name: String
    /// Every record's offset, from the index of a sealed shard, else from a validating scan (which
    /// stops at the first damaged or torn record).
    public let offsets: [Int64]
    public let isSealed: Bool
    private let data: Data
    private let limit: Int

    public var recordCount: Int { offsets.count }

    public init(url: URL) throws {
        self.url = url
        name = url.lastPathComponent
        data = try ShardFormat.map(url)
        let name = self.name
        let layout = try data.withUnsafeBytes { try ShardFormat.layout($0, shard: name) }
        offsets = layout.offsets
        isSealed = layout.sealed
        // Unsealed: records past a damaged one stay reachable by offset (the catalog knows them).
        limit = layout.sealed ? layout.recordsEnd : data.count
    }

    /// Reads, verifies and decodes the record at `offset`, in O(1).
    public func record(at offset: Int64) throws -> ShardRecord {
        try data.withUnsafeBytes { p in
            guard offset >= 0, offset < Int64(limit) else {
                throw ShardError(shard: name, offset: offset, .beyondEnd, "offset beyond end of shard (records end at \(limit))")
            }
            let at = Int(offset)
            let h = try ShardFormat.inspect(p, at: at, limit: limit, shard: name, checkPayload: true)
            let payload = UnsafeRawBufferPointer(rebasing: p[(at + ShardFormat.recordHeaderSize)..<(at + h.recordLength)])
            let bytes = h.encoding == 0 ? Data(payload) : try inflate(payload, h, at: at)
            return ShardRecord(kind: h.kind, width: Int(h.width), height: Int(h.height), bytes: bytes)
        }
    }

    /// As `record(at:)`, also checking that the location names this shard and the record's length.
    public func record(at location: ShardLocation) throws -> ShardRecord {
        guard location.shard == name else {
            throw ShardError(shard: name, offset: location.offset, .misuse, "location refers to shard \(location.shard)")
        }
        let r = try record(at: location.offset)
        let stored = data.withUnsafeBytes { Int(ShardFormat.u32($0, Int(location.offset) + 16)) }
        guard Int(location.length) == ShardFormat.recordHeaderSize + stored else {
            throw ShardError(shard: name, offset: location.offset, .headerDamaged,
                             "record header damaged (length \(ShardFormat.recordHeaderSize + stored), catalog says \(location.length))")
        }
        return r
    }

    private func inflate(_ payload: UnsafeRawBufferPointer, _ h: ShardFormat.Header, at: Int) throws -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = err.withUnsafeMutableBufferPointer {
            mc_zlib_decompress(payload.baseAddress?.assumingMemoryBound(to: UInt8.self), payload.count, Int(h.rawLength),
                               &out, &len, $0.baseAddress, 256)
        }
        guard rc == 0, let p = out, len == Int(h.rawLength) else {
            mc_free(out)
            throw ShardError(shard: name, offset: Int64(at), .undecodable, "payload does not decompress: \(String(cString: err))")
        }
        return Data(bytesNoCopy: p, count: len, deallocator: .custom { p, _ in mc_free(p) })
    }
}

// MARK: - Repair

public enum ShardRepair {
    /// Seals an unsealed shard (left by a killed writer) after cutting its torn tail; a sealed shard is
    /// left alone. Throws `damagedMidShard` rather than cut away valid records behind damage.
    @discardableResult
    public static func recover(url: URL) throws -> (records: Int, truncatedBytes: Int64) {
        let sealed = try ShardFormat.map(url).withUnsafeBytes { ShardFormat.sealedIndex($0) }
        if let (_, offsets) = sealed { return (offsets.count, 0) }
        let writer = try ShardWriter(url: url)
        let result = (writer.recordCount, writer.truncatedBytes)
        try writer.seal()
        return result
    }
}
