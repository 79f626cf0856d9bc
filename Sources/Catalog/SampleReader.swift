import Foundation
import Geometry
import GRDB

/// Reads the catalog's image–mask pairs back: the images having at least one mask in a
/// selection, each with those masks, in id order, and their pixels from the shards.
public final class SampleReader: @unchecked Sendable {
    public struct Mask: Codable, Sendable {
        public var id: Int64, className: String, instance: Int, area: Int
        public var box: Box2D
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

    /// Where selections are read from; nil for a reader of a pack's shards alone.
    public let catalog: Catalog?
    /// Where the shards named by locations live: the catalog's, or a pack's.
    public let shardDirectory: URL
    private var readers: [String: ShardReader] = [:]
    private let lock = NSLock()  // pixels and masks are read from many threads (the training loader)

    public init(catalog: Catalog) {
        self.catalog = catalog
        shardDirectory = catalog.shardDirectory
    }

    /// A reader of the records in `shardDirectory` (a pack's) by location, with no catalog.
    public init(shardDirectory: URL) {
        catalog = nil
        self.shardDirectory = shardDirectory
    }

    private func requireCatalog() throws -> Catalog {
        guard let catalog else { throw CatalogError("this reader reads the shards in \(shardDirectory.path) by location only; a selection needs the catalog") }
        return catalog
    }

    /// Pages go by mask id; an image's masks have consecutive ids, so a page cut inside an image
    /// carries that image over to the next page.
    public func forEach(_ selection: Selection, limit: Int? = nil, _ body: (Image) throws -> Void) throws {
        let catalog = try requireCatalog()
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
                if pending?.id != r[SampleColumns.imageID] {
                    if let done = pending, try !deliver(done) { return }
                    pending = Self.image(r)
                }
                pending!.masks.append(Self.mask(r))
            }
            after = rows.last![SampleColumns.maskID]
        }
        if let done = pending { _ = try deliver(done) }
    }

    /// One mask with its image (and only that mask).
    public func sample(maskID: Int64) throws -> (Image, Mask) {
        guard let r = try requireCatalog().db.read({ db in try Row.fetchOne(db, sql: Self.query("m.id = ?"), arguments: [maskID]) }) else {
            throw CatalogError("no mask with id \(maskID)")
        }
        var image = Self.image(r)
        image.masks = [Self.mask(r)]
        return (image, image.masks[0])
    }

    /// The columns a sample is read from, in SELECT order.
    enum SampleColumns: Int, QueryColumns {
        case imageID, dataset, caseName, modality, split, axis, slice, width, height, channels
        case imageShard, imageOffset, imageLength
        case className, instance, area, x0, y0, x1, y1, maskShard, maskOffset, maskLength, maskID
        case sourceID, origWidth, origHeight, spacingX, spacingY, spacingZ, contentWidth, contentHeight

        var expression: String {
            switch self {
            case .imageID: "m.image_id"
            case .dataset: "d.name"
            case .caseName: "c.name"
            case .modality: "mo.name"
            case .split: "i.split"
            case .axis: "i.axis"
            case .slice: "i.slice"
            case .width: "i.width"
            case .height: "i.height"
            case .channels: "i.channels"
            case .imageShard: "sb.name"
            case .imageOffset: "b.offset"
            case .imageLength: "b.length"
            case .className: "k.name"
            case .instance: "m.instance"
            case .area: "m.area"
            case .x0: "m.x0"
            case .y0: "m.y0"
            case .x1: "m.x1"
            case .y1: "m.y1"
            case .maskShard: "s.name"
            case .maskOffset: "m.offset"
            case .maskLength: "m.length"
            case .maskID: "m.id"
            case .sourceID: "i.source_id"
            case .origWidth: "i.orig_width"
            case .origHeight: "i.orig_height"
            case .spacingX: "i.spacing_x"
            case .spacingY: "i.spacing_y"
            case .spacingZ: "i.spacing_z"
            // The content's size from the slice transform (SliceTransform.content); NULL for rows
            // from before transforms recorded it.
            case .contentWidth: "CASE WHEN json_valid(i.transform) THEN json_extract(i.transform, '$.content[0]') END"
            case .contentHeight: "CASE WHEN json_valid(i.transform) THEN json_extract(i.transform, '$.content[1]') END"
            }
        }
    }

    static func query(_ condition: String) -> String {
        """
        SELECT \(SampleColumns.selectList)
        FROM masks m JOIN images i ON i.id = m.image_id JOIN cases c ON c.id = i.case_id JOIN datasets d ON d.id = i.dataset_id
        JOIN modalities mo ON mo.id = i.modality_id JOIN classes k ON k.id = m.class_id JOIN shards s ON s.id = m.shard_id
        JOIN blobs b ON b.id = i.blob_id JOIN shards sb ON sb.id = b.shard_id
        WHERE \(condition)
        """
    }

    static func image(_ r: Row) -> Image {
        typealias C = SampleColumns
        let (w, h): (Int, Int) = (r[C.width], r[C.height])
        let (cw, ch) = (r[C.contentWidth.rawValue] as Int? ?? w, r[C.contentHeight.rawValue] as Int? ?? h)  // else the whole grid
        let (ow, oh): (Int, Int) = (r[C.origWidth], r[C.origHeight])
        let (sx, sy): (Double, Double) = (r[C.spacingX], r[C.spacingY])
        return Image(id: r[C.imageID], sourceID: r[C.sourceID], dataset: r[C.dataset], caseName: r[C.caseName], modality: r[C.modality],
                     split: Split(rawValue: r[C.split])?.name ?? "train", axis: r[C.axis], slice: r[C.slice],
                     width: w, height: h, channels: r[C.channels], contentWidth: cw, contentHeight: ch,
                     spacing: [sx * Double(ow) / Double(cw), sy * Double(oh) / Double(ch), r[C.spacingZ]], masks: [],
                     location: ShardLocation(shard: r[C.imageShard], offset: r[C.imageOffset], length: r[C.imageLength]))
    }

    static func mask(_ r: Row) -> Mask {
        typealias C = SampleColumns
        return Mask(id: r[C.maskID], className: r[C.className], instance: r[C.instance], area: r[C.area],
                    box: Box2D(x0: r[C.x0], y0: r[C.y0], x1: r[C.x1], y1: r[C.y1]),
                    location: ShardLocation(shard: r[C.maskShard], offset: r[C.maskOffset], length: r[C.maskLength]))
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
        return rec.bytes.withUnsafeBytes { MaskBits.unpack($0, width: rec.width, height: rec.height, box: mask.box) }
    }
}
