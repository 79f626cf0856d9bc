/// An axis-aligned box on a 2D image: inclusive pixel indices, x = column and y = row from the top
/// left, as SAM-Med2D and MedSAM compute a mask's box. Encoded as `[x0, y0, x1, y1]`.
public struct Box2D: Hashable, Sendable, CustomStringConvertible {
    public var x0: Int, y0: Int, x1: Int, y1: Int

    public init(x0: Int, y0: Int, x1: Int, y1: Int) { self.x0 = x0; self.y0 = y0; self.x1 = x1; self.y1 = y1 }

    /// The whole of a width × height image.
    public init(width: Int, height: Int) { self.init(x0: 0, y0: 0, x1: width - 1, y1: height - 1) }

    public var width: Int { x1 - x0 + 1 }
    public var height: Int { y1 - y0 + 1 }
    public var area: Int { width * height }
    public var corners: [Int] { [x0, y0, x1, y1] }

    /// The smallest box holding both.
    public func union(_ other: Box2D) -> Box2D {
        Box2D(x0: min(x0, other.x0), y0: min(y0, other.y0), x1: max(x1, other.x1), y1: max(y1, other.y1))
    }

    public var description: String { "\(x0),\(y0),\(x1),\(y1)" }
}

extension Box2D: Codable {
    public init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        self.init(x0: try c.decode(Int.self), y0: try c.decode(Int.self), x1: try c.decode(Int.self), y1: try c.decode(Int.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(contentsOf: corners)
    }
}

extension Box2D: ExpressibleByArrayLiteral {
    /// `[x0, y0, x1, y1]`.
    public init(arrayLiteral corners: Int...) {
        precondition(corners.count == 4, "a box is [x0, y0, x1, y1]")
        self.init(x0: corners[0], y0: corners[1], x1: corners[2], y1: corners[3])
    }
}
