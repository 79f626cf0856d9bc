import Foundation
import Geometry

/// Binary masks stored compactly: only the pixels inside the mask's bounding box, one bit each,
/// row-major with rows packed back to back (no per-row padding), most significant bit first.
/// A box of w×h pixels packs into ceil(w*h/8) bytes, stored as a `.mask` shard record whose width
/// and height are the image's (the box itself lives in the catalog).
public enum MaskBits {
    public static func packedByteCount(box: Box2D) -> Int { (box.area + 7) / 8 }

    /// Packs the pixels of `mask` (width×height, row-major, nonzero = 1) inside `box`.
    public static func pack(_ mask: UnsafeBufferPointer<UInt8>, width: Int, height: Int, box: Box2D) -> [UInt8] {
        check(box, width: width, height: height)
        precondition(mask.count >= width * height, "mask smaller than \(width)×\(height)")
        let boxWidth = box.x1 - box.x0 + 1
        var out = [UInt8](repeating: 0, count: packedByteCount(box: box))
        guard let base = mask.baseAddress else { return out }
        out.withUnsafeMutableBufferPointer { dst in
            var bit = 0
            for y in box.y0...box.y1 {
                var src = base + y * width + box.x0
                var n = boxWidth
                // A row starts mid-byte unless the bits before it are a multiple of 8: go pixel by
                // pixel up to the byte boundary, then a whole output byte at a time.
                while n > 0, bit & 7 != 0 {
                    if src.pointee != 0 { dst[bit >> 3] |= 0x80 >> UInt8(bit & 7) }
                    src += 1; n -= 1; bit += 1
                }
                while n >= 8 {
                    dst[bit >> 3] = gather8(src)
                    src += 8; n -= 8; bit += 8
                }
                while n > 0 {
                    if src.pointee != 0 { dst[bit >> 3] |= 0x80 >> UInt8(bit & 7) }
                    src += 1; n -= 1; bit += 1
                }
            }
        }
        return out
    }

    /// The full width×height mask (0 or 1 per pixel) from bits packed by `pack` for `box`; zero outside.
    public static func unpack(_ bits: some ContiguousBytes, width: Int, height: Int, box: Box2D) -> [UInt8] {
        check(box, width: width, height: height)
        let boxWidth = box.x1 - box.x0 + 1
        var out = [UInt8](repeating: 0, count: width * height)
        bits.withUnsafeBytes { src in
            precondition(src.count >= packedByteCount(box: box), "\(src.count) bytes cannot hold a \(boxWidth)-wide box")
            out.withUnsafeMutableBytes { dst in spread.withUnsafeBufferPointer { table in
                var bit = 0
                for y in box.y0...box.y1 {
                    var at = y * width + box.x0
                    var n = boxWidth
                    while n > 0, bit & 7 != 0 {
                        dst[at] = (src[bit >> 3] << UInt8(bit & 7)) >> 7
                        at += 1; n -= 1; bit += 1
                    }
                    while n >= 8 {
                        dst.storeBytes(of: table[Int(src[bit >> 3])], toByteOffset: at, as: UInt64.self)
                        at += 8; n -= 8; bit += 8
                    }
                    while n > 0 {
                        dst[at] = (src[bit >> 3] << UInt8(bit & 7)) >> 7
                        at += 1; n -= 1; bit += 1
                    }
                }
            } }
        }
        return out
    }

    /// The inclusive bounding box of the nonzero pixels and their count; nil for an empty mask.
    public static func boundingBox(_ mask: UnsafeBufferPointer<UInt8>, width: Int, height: Int)
        -> (box: Box2D, area: Int)? {
        precondition(width >= 0 && height >= 0 && mask.count >= width * height, "mask smaller than \(width)×\(height)")
        var x0 = width, y0 = -1, x1 = -1, y1 = -1, area = 0
        for y in 0..<height {
            let row = UnsafeBufferPointer(rebasing: mask[(y * width)..<(y * width + width)])
            guard let first = row.firstIndex(where: { $0 != 0 }) else { continue }
            let last = row.lastIndex(where: { $0 != 0 })!
            if y0 < 0 { y0 = y }
            y1 = y
            x0 = min(x0, first - row.startIndex)
            x1 = max(x1, last - row.startIndex)
            area += countNonzero(UnsafeBufferPointer(rebasing: row[first...last]))
        }
        return y0 < 0 ? nil : (Box2D(x0: x0, y0: y0, x1: x1, y1: y1), area)
    }

    // MARK: - Internals

    private static func check(_ box: Box2D, width: Int, height: Int) {
        precondition(box.x0 >= 0 && box.y0 >= 0 && box.x0 <= box.x1 && box.y0 <= box.y1 && box.x1 < width && box.y1 < height,
                     "box \(box) outside a \(width)×\(height) mask")
    }

    /// 0x80 in each byte of `x` that is nonzero, without branching.
    @inline(__always) private static func nonzeroHighBits(_ x: UInt64) -> UInt64 {
        (((x & 0x7F7F_7F7F_7F7F_7F7F) &+ 0x7F7F_7F7F_7F7F_7F7F) | x) & 0x8080_8080_8080_8080
    }

    /// Eight pixels to one byte, the first pixel in the most significant bit: after the shift each
    /// byte i holds its flag in bit 8i, and the multiply moves bit 8i to bit 63-i with no carries.
    @inline(__always) private static func gather8(_ p: UnsafePointer<UInt8>) -> UInt8 {
        let x = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
        return UInt8(truncatingIfNeeded: ((nonzeroHighBits(x) >> 7) &* 0x8040_2010_0804_0201) >> 56)
    }

    private static func countNonzero(_ p: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 0, i = 0
        let raw = UnsafeRawBufferPointer(p)
        while i + 8 <= p.count {
            count += nonzeroHighBits(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))).nonzeroBitCount
            i += 8
        }
        while i < p.count { count += p[i] != 0 ? 1 : 0; i += 1 }
        return count
    }

    /// Byte b to eight 0/1 bytes in memory order, the most significant bit first.
    private static let spread: [UInt64] = (0..<256).map { b in
        var v: UInt64 = 0
        for i in 0..<8 where b & (0x80 >> i) != 0 { v |= 1 << (8 * i) }
        return v.littleEndian
    }
}
