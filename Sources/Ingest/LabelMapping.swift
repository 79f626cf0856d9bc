import Foundation
import Geometry
import Imaging

/// A label map's values as a reader hands them over: the stored bytes of an 8-bit file, else `Float`.
protocol LabelValue {
    /// The label (0: background), or nil when the value is no integer in 0..<2^31 (a probability map?).
    var label: Int32? { get }
    /// Zero exactly when the value is (either) zero, without a branch, so that a loop over values vectorises.
    var nonzeroBits: UInt32 { get }
    var value: Float { get }
    /// True when every value in `range` is (either) zero.
    static func allZero(_ v: UnsafeBufferPointer<Self>, _ range: Range<Int>) -> Bool
}

extension LabelValue {
    static func allZero(_ v: UnsafeBufferPointer<Self>, _ range: Range<Int>) -> Bool {
        // A branch-free OR of the bits, which vectorises.
        var any: UInt32 = 0
        for j in range { any |= v[j].nonzeroBits }
        return any == 0
    }
}

extension Float: LabelValue {
    var label: Int32? {
        if self == 0 { return 0 }
        // Integral, positive and in range, checked without a libm call.
        return self > 0 && self < 2_000_000_000 && Float(Int32(self)) == self ? Int32(self) : nil
    }
    var nonzeroBits: UInt32 { bitPattern & 0x7fff_ffff }
    var value: Float { self }
}

extension UInt8: LabelValue {
    var label: Int32? { Int32(self) }
    var nonzeroBits: UInt32 { UInt32(self) }
    var value: Float { Float(self) }

    /// Eight bytes at a time: most of an 8-bit label map is zeros, and every byte of it is looked at.
    static func allZero(_ v: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        let p = UnsafeRawPointer(v.baseAddress! + range.lowerBound), words = range.count / 8
        var any: UInt64 = 0
        for k in 0..<words { any |= p.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self) }
        for j in (range.lowerBound + 8 * words)..<range.upperBound { any |= UInt64(v[j]) }
        return any == 0
    }
}

/// Label maps read into class indices over the box of their labels.
extension SampleBuilder {
    /// Label values → 1-based indices into the dataset's class list (labels of one class merge).
    func classes(_ mask: Volume, threshold: Float?) throws -> (map: [Int32], names: [String], box: Box3D?) {
        var values = mask.voxels
        if mask.components == 3 {
            // Grey masks saved as RGB: take the brightest channel.
            values = (0..<mask.voxelCount).map { max(mask.voxels[3 * $0], mask.voxels[3 * $0 + 1], mask.voxels[3 * $0 + 2]) }
        }
        return try classes(size: mask.size, threshold: threshold) { body in values.withUnsafeBufferPointer { body($0, 0) }; return true }!
    }

    /// The label map of a volume whose values `runs` hands over, a run at a time with the index of
    /// its first voxel, over the box that holds every voxel with a label (nil: none). `runs` returns
    /// false when it could not read them all (nil then).
    func classes<V: LabelValue>(size: [Int], threshold: Float?, _ runs: ((UnsafeBufferPointer<V>, Int) -> Void) -> Bool) throws -> (map: [Int32], names: [String], box: Box3D?)? {
        let (nx, nxy) = (size[0], size[0] * size[1])
        var lo = (x: Int.max, y: Int.max, z: Int.max), hi = (x: -1, y: -1, z: -1)
        var present = Set<Int32>()
        var bad: Float?
        // Label maps are mostly background, which is never stored: the labels of each 64-voxel block
        // that holds any go to `stash`, and the block to `blocks` (its first voxel, its length).
        var stash: [Int32] = [], blocks: [(offset: Int, count: Int)] = []
        let skipsZeros = (threshold ?? 1) > 0
        let block = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        defer { block.deallocate() }
        let complete = runs { v, offset in
            var last: Int32 = 0
            var i = 0
            while i < v.count {
                let end = min(i + 64, v.count)
                if skipsZeros && V.allZero(v, i..<end) { i = end; continue }
                var first = end, final = -1
                for j in i..<end {
                    let l: Int32
                    if let threshold { l = v[j].value >= threshold ? 1 : 0 } else if let label = v[j].label { l = label } else {
                        bad = v[j].value
                        l = 0
                    }
                    block[j - i] = l
                    if l == 0 { continue }
                    if l != last { present.insert(l); last = l }
                    (first, final) = (min(first, j), j)
                }
                guard final >= 0 else { i = end; continue }
                let at = stash.count - i
                stash.append(contentsOf: UnsafeBufferPointer(start: block, count: end - i))
                blocks.append((offset + i, end - i))
                // The box grows by the block's first and last labelled voxels, which share a row
                // unless the block wraps one; then by each labelled voxel.
                func grow(_ j: Int) {
                    let f = offset + j, (c, r, p) = (f % nx, f % nxy / nx, f / nxy)
                    (lo.x, lo.y, lo.z) = (min(lo.x, c), min(lo.y, r), min(lo.z, p))
                    (hi.x, hi.y, hi.z) = (max(hi.x, c), max(hi.y, r), max(hi.z, p))
                }
                if (offset + first) / nx == (offset + final) / nx {
                    grow(first)
                    grow(final)
                } else {
                    for j in first...final where stash[at + j] != 0 { grow(j) }
                }
                i = end
            }
        }
        guard complete else { return nil }
        if let b = bad { throw IngestFailure(stage: "labels", message: "label map has a non-integer or negative value (\(b)); is it a probability map?") }
        let box: Box3D? = hi.x < 0 ? nil : Box3D(lo: SIMD3(lo.x, lo.y, lo.z), hi: SIMD3(hi.x, hi.y, hi.z))
        // The stashed blocks, row piece by row piece, into a map of the box.
        var map: [Int32] = []
        if let box {
            let (bx, by) = (box.hi[0] - box.lo[0] + 1, box.hi[1] - box.lo[1] + 1)
            map = [Int32](repeating: 0, count: bx * by * (box.hi[2] - box.lo[2] + 1))
            map.withUnsafeMutableBufferPointer { m in
                stash.withUnsafeBufferPointer { s in
                    var at = 0
                    for (offset, count) in blocks {
                        var k = 0
                        while k < count {
                            let f = offset + k, (c, r, p) = (f % nx, f % nxy / nx, f / nxy)
                            let n = min(count - k, nx - c), (c0, c1) = (max(c, lo.x), min(c + n, hi.x + 1))
                            // Rows outside the box, and columns, hold no labels.
                            if c0 < c1 && (lo.y...hi.y).contains(r) && (lo.z...hi.z).contains(p) {
                                (m.baseAddress! + ((p - lo.z) * by + r - lo.y) * bx + c0 - lo.x)
                                    .update(from: s.baseAddress! + at + k + c0 - c, count: c1 - c0)
                            }
                            k += n
                        }
                        at += count
                    }
                }
            }
        }
        if threshold != nil { return (map, [manifest.labels[1] ?? manifest.labels.values.first ?? manifest.keptClass(1) ?? "foreground"], box) }
        var labels = manifest.labels
        for v in present where labels[Int(v)] == nil && !manifest.ignore.contains(Int(v)) { labels[Int(v)] = manifest.keptClass(Int(v)) }
        let unknown = present.filter { labels[Int($0)] == nil && !manifest.ignore.contains(Int($0)) }.sorted()
        if !unknown.isEmpty {
            let known = manifest.labels.sorted { $0.key < $1.key }.prefix(8).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            throw IngestFailure(stage: "labels", message: "label value\(unknown.count > 1 ? "s" : "") \(unknown.prefix(10).map(String.init).joined(separator: ", ")) not in the '\(manifest.name)' manifest (it maps \(known.isEmpty ? "nothing" : known)\(manifest.labels.count > 8 ? ", …" : ""))")
        }
        let names = Array(Set(labels.values)).sorted()
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Int32($0 + 1)) })
        let classOf = Dictionary(uniqueKeysWithValues: present.map { ($0, labels[Int($0)].flatMap { index[$0] } ?? 0) })
        // Label values that already are their class indices (KiTS's are) need no second pass.
        if classOf.allSatisfy({ $0.key == $0.value }) { return (map, names, box) }
        // Label value → class index through a table (values are small in practice) or a dictionary.
        let top = Int(present.max() ?? 0)
        if top < 1 << 16 {
            var lut = [Int32](repeating: 0, count: top + 1)
            for (v, c) in classOf { lut[Int(v)] = c }
            map.withUnsafeMutableBufferPointer { m in for i in m.indices where m[i] != 0 { m[i] = lut[Int(m[i])] } }
        } else {
            map.withUnsafeMutableBufferPointer { m in for i in m.indices where m[i] != 0 { m[i] = classOf[m[i]] ?? 0 } }
        }
        return (map, names, box)
    }
}
