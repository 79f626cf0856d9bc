import Catalog
import Foundation
import Hashing
import Prompts

/// A training selection packed into N shard files of its own: every selected image with its
/// selected masks, image i in shard i mod N (so shard sizes differ by at most one sample), each
/// record with its CRC-32 as in the catalog's shards. Packs live beside the catalog in
/// `<catalog>.packs/<key>/`, the key a hash of the selection, the catalog's state and N, so a
/// later run with the same selection reuses the pack, and any ingest makes a new one.
///
/// A pack is self-contained: `pack.json` lists every image with its masks, tags and record
/// locations, so training reads the folder alone (`load`), copied to any machine.
public struct Pack: Codable, Sendable {
    public var key: String
    /// What was packed (nil in packs from before it was recorded).
    public var selection: Selection?
    public var shards: Int
    public var samplesPerShard: [Int]
    public var images: [SampleReader.Image]
    public var directory: URL { URL(fileURLWithPath: directoryPath) }
    var directoryPath: String

    enum CodingKeys: String, CodingKey { case key, selection, shards, samplesPerShard = "samples_per_shard", images, directoryPath = "directory" }

    /// The pack for this selection, made now or found from an earlier run (`reused`).
    public static func open(catalog: Catalog, selection: Selection, shards: Int) throws -> (pack: Pack, reused: Bool) {
        precondition(shards > 0)
        let state = try catalog.contentState()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let selectionJSON = String(decoding: try encoder.encode(selection), as: UTF8.self)
        let key = StableHash.hex("\(selectionJSON)|\(state)|\(shards)")
        let root = catalog.shardDirectory.deletingLastPathComponent()
            .appendingPathComponent(catalog.shardDirectory.deletingPathExtension().lastPathComponent + ".packs")
        let dir = root.appendingPathComponent(key)
        let indexURL = dir.appendingPathComponent("pack.json")
        if let data = try? Data(contentsOf: indexURL), let pack = try? JSONDecoder().decode(Pack.self, from: data) { return (pack, true) }

        // Built in a scratch folder and renamed into place, so a killed pack leaves nothing half-made.
        let scratch = root.appendingPathComponent(".\(key)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let reader = SampleReader(catalog: catalog)
        let writers = try (0..<shards).map { try ShardWriter(directory: scratch, name: String(format: "pack-%05d", $0)) }
        var images: [SampleReader.Image] = [], counts = [Int](repeating: 0, count: shards)
        try reader.forEach(selection) { image in
            let w = writers[images.count % shards]
            var packed = image
            func copy(_ location: ShardLocation) throws -> ShardLocation {
                let r = try reader.record(location)
                return try w.append(kind: r.kind, width: r.width, height: r.height, bytes: r.bytes)
            }
            packed.location = try copy(image.location)
            for k in packed.masks.indices { packed.masks[k].location = try copy(image.masks[k].location) }
            counts[images.count % shards] += 1
            images.append(packed)
        }
        for w in writers { try w.seal() }
        var pack = Pack(key: key, selection: selection, shards: shards, samplesPerShard: counts, images: images, directoryPath: dir.path)
        try encoder.encode(pack).write(to: scratch.appendingPathComponent("pack.json"))
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.moveItem(at: scratch, to: dir)
        pack.directoryPath = dir.path
        return (pack, false)
    }

    /// The pack in `directory`, wherever it was made: what `medcat train --pack` reads, with no
    /// catalog. Its records are checked as they are read.
    public static func load(_ directory: URL) throws -> Pack {
        let indexURL = directory.appendingPathComponent("pack.json")
        guard let data = try? Data(contentsOf: indexURL) else { throw TrainingError("\(indexURL.path): no pack here (pack.json missing or unreadable)") }
        var pack: Pack
        do { pack = try JSONDecoder().decode(Pack.self, from: data) } catch { throw TrainingError("\(indexURL.path): not a pack index (\(error))") }
        let shards = Set(pack.images.flatMap { [$0.location.shard] + $0.masks.map(\.location.shard) })
        for name in shards.sorted() where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            throw TrainingError("\(directory.path): shard \(name), named by pack.json, is missing")
        }
        pack.directoryPath = directory.path
        return pack
    }
}
