import Catalog
import Foundation
import Imaging

/// Writes a selection of the catalog in layouts that Python tools read:
/// - `sa-med2d`: SA-Med2D-20M's layout: images/*.png, masks/*.png (0/255) and
///   image2label_<split>.json mapping each image to its masks;
/// - `webdataset`: tar shards of samples `<key>.png`, `<key>.mask_NNN.png`, `<key>.json`.
public final class Exporter {
    public enum Format: String, CaseIterable, Sendable { case saMed2d = "sa-med2d", webdataset }

    let catalog: Catalog
    private let reader: SampleReader

    public init(catalog: Catalog) { self.catalog = catalog; reader = SampleReader(catalog: catalog) }

    /// Returns (images, masks) written.
    @discardableResult
    public func export(_ format: Format, selection: Selection, to out: URL, samplesPerShard: Int = 1000) throws -> (Int, Int) {
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var images = 0, masks = 0
        switch format {
        case .saMed2d:
            let fm = FileManager.default
            try fm.createDirectory(at: out.appendingPathComponent("images"), withIntermediateDirectories: true)
            try fm.createDirectory(at: out.appendingPathComponent("masks"), withIntermediateDirectories: true)
            var index: [String: [String: [String]]] = [:]
            try reader.forEach(selection) { row in
                // The image id keeps names unique where case and slice repeat (ACDC frames, CAMUS views).
                let caseName = row.caseName.replacingOccurrences(of: "/", with: "_")
                let stem = "\(row.modality)--\(row.dataset)--\(caseName)--\(row.axis)_\(String(format: "%04d", row.slice))--\(row.id)"
                let imagePath = "images/\(stem).png"
                try png(try pixels(row)).write(to: out.appendingPathComponent(imagePath))
                var maskPaths: [String] = []
                for (k, m) in row.masks.enumerated() {
                    let p = "masks/\(stem)--\(m.className)_\(String(format: "%03d", m.instance == 0 ? k : m.instance)).png"
                    try png(try mask(row, m)).write(to: out.appendingPathComponent(p))
                    maskPaths.append(p)
                }
                index[row.split, default: [:]][imagePath] = maskPaths
                images += 1; masks += row.masks.count
            }
            for (split, map) in index {
                let data = try JSONSerialization.data(withJSONObject: map, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                try data.write(to: out.appendingPathComponent("image2label_\(split).json"))
            }
        case .webdataset:
            var tars: [String: (TarWriter, Int, Int)] = [:]  // split → writer, samples in shard, shard number
            try reader.forEach(selection) { row in
                var (tar, n, shard) = try tars[row.split] ?? (TarWriter(url: out.appendingPathComponent("\(row.split)-000000.tar")), 0, 0)
                if n >= samplesPerShard {
                    try tar.close(); shard += 1; n = 0
                    tar = try TarWriter(url: out.appendingPathComponent(String(format: "%@-%06d.tar", row.split, shard)))
                }
                let key = String(format: "%09lld", row.id)
                try tar.add("\(key).png", try png(try pixels(row)))
                var meta: [[String: Any]] = []
                for (k, m) in row.masks.enumerated() {
                    try tar.add(String(format: "%@.mask_%03d.png", key, k), try png(try mask(row, m)))
                    meta.append(["class": m.className, "instance": m.instance, "area": m.area, "bbox": m.box.corners])
                }
                let info: [String: Any] = ["id": row.id, "dataset": row.dataset, "case": row.caseName, "modality": row.modality,
                                           "split": row.split, "axis": row.axis, "slice": row.slice, "masks": meta]
                try tar.add("\(key).json", try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys, .withoutEscapingSlashes]))
                tars[row.split] = (tar, n + 1, shard)
                images += 1; masks += row.masks.count
            }
            for (tar, _, _) in tars.values { try tar.close() }
        }
        return (images, masks)
    }

    func pixels(_ row: SampleReader.Image) throws -> Volume {
        Volume(size: [row.width, row.height, 1], components: row.channels, voxels: try reader.pixels(row).map(Float.init))
    }

    func mask(_ row: SampleReader.Image, _ m: SampleReader.Mask) throws -> Volume {
        Volume(size: [row.width, row.height, 1], voxels: try reader.mask(m).map { $0 != 0 ? 255 : 0 })
    }

    private func png(_ v: Volume) throws -> Data { try Raster.encodePNG(v) }
}

/// A minimal POSIX ustar writer (what WebDataset reads).
final class TarWriter {
    let handle: FileHandle
    init(url: URL) throws {
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        handle = try FileHandle(forWritingTo: url)
    }

    func add(_ name: String, _ data: Data) throws {
        precondition(name.utf8.count < 100, "tar member names are short keys")
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int) { for (i, b) in s.utf8.enumerated() { h[at + i] = b } }
        put(name, 0)
        put("0000644", 100); put("0000000", 108); put("0000000", 116)
        put(String(format: "%011o", data.count), 124)
        put(String(format: "%011o", 0), 136)
        put("        ", 148)
        h[156] = UInt8(ascii: "0")
        put("ustar", 257); put("00", 263)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o", sum), 148); h[154] = 0; h[155] = UInt8(ascii: " ")
        try handle.write(contentsOf: Data(h))
        try handle.write(contentsOf: data)
        let pad = (512 - data.count % 512) % 512
        if pad > 0 { try handle.write(contentsOf: Data(count: pad)) }
    }

    func close() throws {
        try handle.write(contentsOf: Data(count: 1024))
        try handle.close()
    }
}
