import Foundation

/// How a stored 2D image was cut from its source, to map it (or a prediction on it) back onto the
/// source grid. Ingest writes it with each image; the sample reader and exports read it back.
public struct SliceTransform: Codable, Equatable, Sendable {
    /// axial, coronal, sagittal, or 2d.
    public let axis: String
    /// Size of the content in the stored square (width, height); the rest is padding.
    public let content: [Int]
    /// Reorientation to the closest RAS-like axes: which grid axes were flipped, and their order.
    public let flipped: [Bool], permutation: [Int]
    /// The slice's index along the reoriented slicing axis.
    public let index: Int
    /// Size of the plane before resizing (columns, rows).
    public let plane: [Int]
    /// Whether the plane's rows were flipped so that superior is up (coronal and sagittal planes).
    public let rowsFlipped: Bool
    /// Side of the stored square.
    public let size: Int
    public let sourceSpacing: [Double]
    /// The text the catalog stores, made with the transform: ingest makes transforms on its decoding
    /// threads, so its one writer thread only binds this.
    public let json: String

    enum CodingKeys: String, CodingKey {
        case axis, content, flipped, index, permutation, plane, rowsFlipped = "rows_flipped", size, sourceSpacing = "source_spacing"
    }

    public init(axis: String, content: [Int], flipped: [Bool], index: Int, permutation: [Int], plane: [Int],
                rowsFlipped: Bool, size: Int, sourceSpacing: [Double]) {
        self.axis = axis; self.content = content; self.flipped = flipped; self.index = index; self.permutation = permutation
        self.plane = plane; self.rowsFlipped = rowsFlipped; self.size = size; self.sourceSpacing = sourceSpacing
        // JSON with sorted keys, written out: JSONSerialization's dynamic casts took 4 % of an ingest. Numbers print as
        // JSONSerialization prints them (shortest round trip, integral values bare).
        func list(_ values: [some CustomStringConvertible]) -> String { "[" + values.map(\.description).joined(separator: ",") + "]" }
        let spacing = sourceSpacing.map { $0.rounded() == $0 && abs($0) < 1e15 ? String(Int64($0)) : "\($0)" }
        json = "{\"axis\":\"\(axis)\",\"content\":\(list(content)),\"flipped\":\(list(flipped)),"
            + "\"index\":\(index),\"permutation\":\(list(permutation)),\"plane\":\(list(plane)),"
            + "\"rows_flipped\":\(rowsFlipped),\"size\":\(size),\"source_spacing\":[\(spacing.joined(separator: ","))]}"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(axis: try c.decode(String.self, forKey: .axis), content: try c.decode([Int].self, forKey: .content),
                  flipped: try c.decode([Bool].self, forKey: .flipped), index: try c.decode(Int.self, forKey: .index),
                  permutation: try c.decode([Int].self, forKey: .permutation), plane: try c.decode([Int].self, forKey: .plane),
                  rowsFlipped: try c.decode(Bool.self, forKey: .rowsFlipped), size: try c.decode(Int.self, forKey: .size),
                  sourceSpacing: try c.decode([Double].self, forKey: .sourceSpacing))
    }

    /// Nil for text that is no transform (rows from before transforms were recorded).
    public init?(json: String) {
        guard let t = try? JSONDecoder().decode(SliceTransform.self, from: Data(json.utf8)) else { return nil }
        self = t
    }
}
