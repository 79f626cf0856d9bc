// The image-embedding cache of decoder tuning. With the image encoder frozen, its output for an
// image under one flip/turn variant never changes, so it is computed once and read back by every
// later step, epoch and run with the same encoder: what MedSAM users do by hand.
//
// Files live beside the catalog's shards (or a pack's), in `<shards>.embeddings/<encoder>/`, <encoder> a hash of
// the encoder's weights, its configuration and the device kind. Each process appends to a file of
// its own, `part-<rank>.mcemb`, and reads every part. Format, all integers little-endian:
//
//   file header, 16 bytes      "MCEMBED1" | version u32 = 1 | reserved u32 = 0
//   records, one after another: a 56-byte header, then `payloadLength` bytes of f16 values C×H×W
//      0 magic "MCE1"    4 variant u8 (flip · 4 + quarter turns)    5 dtype u8 = 5 (f16)   6 reserved u16
//      8 imageID i64    16 pixelsHash u64 (XXH3 of the image's stored pixels, so an image that
//                          changed under its id misses)
//     24 channels u32   28 height u32   32 width u32   36 payloadLength u32
//     40 payloadHash u64 (XXH3 of the payload)   48 headerHash u64 (XXH3 of header bytes 0..<48)
//
// A killed run leaves at worst a torn last record, which reopening the part cuts. A record whose
// payload fails its hash when read is dropped and computed again.
import Catalog
import Foundation
import Hashing
import SAM
import Torch

public final class EmbeddingCache {
    public let directory: URL
    public struct Key: Hashable, Sendable {
        public var image: Int64, pixels: UInt64, variant: UInt8
    }
    struct Entry { var file: URL; var offset: UInt64; var shape: [Int]; var length: Int; var hash: UInt64 }

    private var index: [Key: Entry] = [:]
    private var handles: [URL: FileHandle] = [:]
    private let part: URL
    private let writer: FileHandle
    private var end: UInt64
    /// Reads served, embeddings computed, and records dropped for a failed hash.
    public private(set) var hits = 0, misses = 0, rejected = 0

    static let fileMagic = Array("MCEMBED1".utf8), recordMagic = Array("MCE1".utf8)
    static let headerSize = 56

    /// The cache of `sam`'s image encoder beside `shards` (the catalog's shard folder, or a pack's
    /// when training from a pack alone).
    public convenience init(sam: Sam, shards: URL, rank: Int = 0) throws {
        let root = shards.deletingLastPathComponent().appendingPathComponent(shards.lastPathComponent + ".embeddings")
        try self.init(directory: root.appendingPathComponent(try Self.fingerprint(sam)), rank: rank)
    }

    public init(directory: URL, rank: Int = 0) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        part = directory.appendingPathComponent("part-\(rank).mcemb")
        if !FileManager.default.fileExists(atPath: part.path) {
            try Data(Self.fileMagic + le(UInt32(1)) + le(UInt32(0))).write(to: part)
        }
        let parts = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "mcemb" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        var ownEnd: UInt64 = 16
        for url in parts {
            let (entries, valid) = try Self.scan(url)
            index.merge(entries) { _, new in new }
            if url.lastPathComponent == part.lastPathComponent { ownEnd = valid }
        }
        writer = try FileHandle(forUpdating: part)
        try writer.truncate(atOffset: ownEnd)  // a torn record left by a killed run
        end = ownEnd
    }

    deinit { try? writer.close(); for h in handles.values { try? h.close() } }

    public var count: Int { index.count }

    /// Indexes the records of one part whose headers hold; returns where the valid records end.
    private static func scan(_ url: URL) throws -> ([Key: Entry], UInt64) {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        guard data.count >= 16, Array(data.prefix(8)) == Self.fileMagic else {
            throw CheckpointError(url, "not an embedding cache file")
        }
        var offset = 16, index: [Key: Entry] = [:]
        return data.withUnsafeBytes { p in
            while offset + Self.headerSize <= p.count {
                let h = UnsafeRawBufferPointer(rebasing: p[offset..<(offset + Self.headerSize)])
                guard Array(h.prefix(4)) == Self.recordMagic, u64(h, 48) == ContentHash.words(UnsafeRawBufferPointer(rebasing: h[0..<48])).low
                else { break }
                let length = Int(u32(h, 36))
                guard offset + Self.headerSize + length <= p.count else { break }
                let key = Key(image: Int64(bitPattern: u64(h, 8)), pixels: u64(h, 16), variant: h[4])
                let shape = [1, Int(u32(h, 24)), Int(u32(h, 28)), Int(u32(h, 32))]
                index[key] = Entry(file: url, offset: UInt64(offset + Self.headerSize), shape: shape, length: length, hash: u64(h, 40))
                offset += Self.headerSize + length
            }
            return (index, UInt64(offset))
        }
    }

    /// The stored embedding (1×C×H×W, f32 on the CPU), or nil when the cache lacks it or its
    /// record fails its hash.
    public func embedding(_ key: Key) throws -> Tensor? {
        guard let e = index[key] else { return nil }
        let handle = try handles[e.file] ?? FileHandle(forReadingFrom: e.file)
        handles[e.file] = handle
        try handle.seek(toOffset: e.offset)
        guard let bytes = try handle.read(upToCount: e.length), bytes.count == e.length,
              bytes.withUnsafeBytes({ ContentHash.words($0).low }) == e.hash else {
            index[key] = nil
            rejected += 1
            return nil
        }
        hits += 1
        let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float16.self)) }
        return try Tensor(values, shape: e.shape).to(.f32)
    }

    /// Appends an embedding (1×C×H×W, any device) as f16 and returns the stored value (f32, on the
    /// CPU): training uses what later epochs will read back.
    @discardableResult
    public func store(_ key: Key, _ embedding: Tensor) throws -> Tensor {
        misses += 1
        let half = try embedding.to(.f16, device: .cpu).contiguous()
        let values = try half.values(as: Float16.self)
        let payload = values.withUnsafeBytes { Data($0) }
        let shape = half.shape
        var header = Self.recordMagic + [key.variant, UInt8(DType.f16.rawValue)] + le(UInt16(0))
        header += le(UInt64(bitPattern: key.image)) + le(key.pixels)
        header += le(UInt32(shape[1])) + le(UInt32(shape[2])) + le(UInt32(shape[3]))
        header += le(UInt32(payload.count))
        let payloadHash = payload.withUnsafeBytes { ContentHash.words($0).low }
        header += le(payloadHash)
        header += le(header.withUnsafeBytes { ContentHash.words($0).low })
        try writer.seek(toOffset: end)
        try writer.write(contentsOf: Data(header) + payload)
        index[key] = Entry(file: part, offset: end + UInt64(Self.headerSize), shape: shape, length: payload.count, hash: payloadHash)
        end += UInt64(Self.headerSize + payload.count)
        return try half.to(.f32)
    }

    /// Names the encoder: its weights, configuration and device kind (a GPU's embeddings differ
    /// from a CPU's in the last bits).
    static func fingerprint(_ sam: Sam) throws -> String {
        let json = JSONEncoder()
        json.outputFormatting = .sortedKeys
        var text = String(decoding: try json.encode(sam.config), as: UTF8.self) + "|\(sam.device == .cpu ? "cpu" : "cuda")"
        for e in sam.imageEncoder.parameters.entries.sorted(by: { $0.name < $1.name }) {
            let values = try e.tensor.floats()
            let h = values.withUnsafeBytes { ContentHash.words($0) }
            text += "|\(e.name):\(h.low),\(h.high)"
        }
        return StableHash.hex(text)
    }
}

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
private func u32(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt32 { UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
private func u64(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt64 { UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
