import Foundation
import GRDB

/// Reads the catalog's image–mask pairs back: the images having at least one mask in a
/// selection, each with those masks, in id order, and their pixels from the shards.
public final class SampleReader: @unchecked Sendable {
    public struct Mask: Codable, Sendable {
        public var id: Int64, className: String, instance: Int, area: Int
        public var box: [Int]  // x0, y0, x1, y1, inclusive
        public var location: ShardLocation
    }

    public struct Image: Codable, Sendable {
        public var id: Int64, sourceID: Int64, dataset: String, caseName: String, modality: String, split: String
        public var axis: String, slice: Int
        /// The stored grid (size × size, padded) and the part of it the image fills.
        public var width: Int, height: Int, channels: Int, contentWidth: Int, contentHeight: Int
        /// Millimetres per stored pixel (x, y) and between slices (z).
        public var spacing: [Double]
        public var masks: [Mask]
        public var location: ShardLocation
    }

    public let catalog: Catalog
    /// Where the shards named by locations live: the catalog's, or a pack's.
    public let shardDirectory: URL
    private var readers: [String: ShardReader] = [:]
    private let lock = NSLock()  // pixels and masks are read from many threads (the training loader)

    public init(catalog: Catalog, shardDirectory: URL? = nil) {
        self.catalog = catalog
        self.shardDirectory = shardDirectory ?? catalog.shardDirectory
    }

    /// Pages go by mask id; an image's masks have consecutive ids, so a page cut inside an image
    /// carries that image over to the next page.
    public func forEach(_ selection: Selection, limit: Int? = nil, _ body: (Image) throws -> Void) throws {
        var after: Int64 = 0, pending: Image?, delivered = 0
        func deliver(_ image: Image) throws -> Bool {
            if let limit, delivered >= limit { return false }
            try body(image); delivered += 1
            return true
        }
        while true {
            let rows: [Row] = try catalog.db.read { db in
                let ids = try catalog.maskIDs(db, selection, after: after, limit: 2000)
                return try Row.fetchAll(db, sql: Self.query("\(Catalog.idIn) ORDER BY m.id"), arguments: [Catalog.idList(ids)])
            }
            if rows.isEmpty { break }
            for r in rows {
                if pending?.id != r[0] {
                    if let done = pending, try !deliver(done) { return }
                    pending = Self.image(r)
                }
                pending!.masks.append(Self.mask(r))
            }
            after = rows.last![23]
        }
        if let done = pending { _ = try deliver(done) }
    }

    /// One mask with its image (and only that mask).
    public func sample(maskID: Int64) throws -> (Image, Mask) {
        guard let r = try catalog.db.read({ db in try Row.fetchOne(db, sql: Self.query("m.id = ?"), arguments: [maskID]) }) else {
            throw CatalogError("no mask with id \(maskID)")
        }
        var image = Self.image(r)
        image.masks = [Self.mask(r)]
        return (image, image.masks[0])
    }

    static func query(_ condition: String) -> String {
        """
        SELECT m.image_id, d.name, c.name, mo.name, i.split, i.axis, i.slice, i.width, i.height, i.channels,
               sb.name, b.offset, b.length, k.name, m.instance, m.area, m.x0, m.y0, m.x1, m.y1, s.name, m.offset, m.length, m.id,
               i.source_id, i.orig_width, i.orig_height, i.spacing_x, i.spacing_y, i.spacing_z, i.transform
        FROM masks m JOIN images i ON i.id = m.image_id JOIN cases c ON c.id = i.case_id JOIN datasets d ON d.id = i.dataset_id
        JOIN modalities mo ON mo.id = i.modality_id JOIN classes k ON k.id = m.class_id JOIN shards s ON s.id = m.shard_id
        JOIN blobs b ON b.id = i.blob_id JOIN shards sb ON sb.id = b.shard_id
        WHERE \(condition)
        """
    }

    static func image(_ r: Row) -> Image {
        let (cw, ch) = content(transform: r[30], width: r[7], height: r[8])
        let (ow, oh): (Int, Int) = (r[25], r[26])
        return Image(id: r[0], sourceID: r[24], dataset: r[1], caseName: r[2], modality: r[3], split: Split(rawValue: r[4])?.name ?? "train",
                     axis: r[5], slice: r[6], width: r[7], height: r[8], channels: r[9], contentWidth: cw, contentHeight: ch,
                     spacing: [r[27] * Double(ow) / Double(cw), r[28] * Double(oh) / Double(ch), r[29]], masks: [],
                     location: ShardLocation(shard: r[10], offset: r[11], length: r[12]))
    }

    static func mask(_ r: Row) -> Mask {
        Mask(id: r[23], className: r[13], instance: r[14], area: r[15], box: [r[16], r[17], r[18], r[19]],
             location: ShardLocation(shard: r[20], offset: r[21], length: r[22]))
    }

    /// The stored size of the image content, from the ingest transform (older rows: the whole grid).
    static func content(transform: String, width: Int, height: Int) -> (Int, Int) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(transform.utf8)) as? [String: Any],
              let c = object["content"] as? [Int], c.count == 2, c[0] > 0, c[1] > 0 else { return (width, height) }
        return (c[0], c[1])
    }

    private func reader(_ shard: String) throws -> ShardReader {
        lock.lock()
        defer { lock.unlock() }
        if let r = readers[shard] { return r }
        let r = try ShardReader(url: shardDirectory.appendingPathComponent(shard))
        readers[shard] = r
        return r
    }

    /// A stored record as it is (for copying into packs).
    public func record(_ location: ShardLocation) throws -> ShardRecord {
        try reader(location.shard).record(at: location.offset)
    }

    /// Pixels of the whole stored grid, row-major, channels interleaved.
    public func pixels(_ image: Image) throws -> [UInt8] {
        [UInt8](try reader(image.location.shard).record(at: image.location.offset).bytes)
    }

    /// The pixels the image fills (contentWidth × contentHeight, without the padding).
    public func contentPixels(_ image: Image) throws -> [UInt8] {
        crop(try pixels(image), image, channels: image.channels)
    }

    /// A mask's 0/1 pixels over the image's content.
    public func contentMask(_ mask: Mask, of image: Image) throws -> [UInt8] {
        crop(try self.mask(mask), image, channels: 1)
    }

    private func crop(_ full: [UInt8], _ image: Image, channels c: Int) -> [UInt8] {
        let (w, h) = (image.contentWidth, image.contentHeight)
        if w == image.width && h == image.height { return full }
        var out = [UInt8](repeating: 0, count: w * h * c)
        for y in 0..<h { out[(y * w * c)..<((y + 1) * w * c)] = full[(y * image.width * c)..<(y * image.width * c + w * c)] }
        return out
    }

    /// 0/1 pixels of the whole stored grid.
    public func mask(_ mask: Mask) throws -> [UInt8] {
        let rec = try reader(mask.location.shard).record(at: mask.location.offset)
        let b = mask.box
        return rec.bytes.withUnsafeBytes { MaskBits.unpack($0, width: rec.width, height: rec.height, box: (b[0], b[1], b[2], b[3])) }
    }
}
