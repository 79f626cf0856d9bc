import Foundation
import XCTest
@testable import Catalog
@testable import TestSupport

final class ShardStoreTests: TemporaryDirectoryTestCase {
    struct Written {
        var location: ShardLocation
        var record: ShardRecord
    }

    /// Smooth bytes (which deflate shrinks) or noise (which it does not).
    func pixels(_ count: Int, compressible: Bool, _ rng: inout SeededGenerator) -> [UInt8] {
        if compressible { return (0..<count).map { UInt8(truncatingIfNeeded: $0 / 7) } }
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    @discardableResult
    func append(_ w: ShardWriter, _ kind: ShardRecordKind, _ width: Int, _ height: Int, compressible: Bool,
                compress: Bool, _ rng: inout SeededGenerator) throws -> Written {
        let bytes = pixels(kind.rawLength(width: width, height: height)!, compressible: compressible, &rng)
        let loc = try w.append(kind: kind, width: width, height: height, bytes: bytes, compress: compress)
        return Written(location: loc, record: ShardRecord(kind: kind, width: width, height: height, bytes: Data(bytes)))
    }

    /// A shard of `count` small records; the last is raw, 300 grey bytes.
    func smallShard(_ name: String, count: Int, seal: Bool) throws -> (URL, [Written]) {
        var rng = SeededGenerator(seed: 7)
        let w = try ShardWriter(directory: dir, name: name)
        var out: [Written] = []
        for i in 0..<(count - 1) {
            out.append(try append(w, ShardRecordKind.allCases[i % 3], 10 + i, 9, compressible: i % 2 == 0, compress: true, &rng))
        }
        out.append(try append(w, .grey8, 20, 15, compressible: false, compress: false, &rng))
        if seal { try w.seal() } else { try w.close() }
        return (dir.appendingPathComponent(name + ".mcs"), out)
    }

    func assertReads(_ reader: ShardReader, _ written: [Written], file: StaticString = #filePath, line: UInt = #line) throws {
        for w in written {
            XCTAssertEqual(try reader.record(at: w.location), w.record, file: file, line: line)
        }
    }

    func shardError(_ body: () throws -> Any) -> ShardError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error as? ShardError
        }
    }

    // MARK: - Round trips

    func testRoundTripManyRecordsAllKindsShuffledReads() throws {
        var rng = SeededGenerator(seed: 42)
        let w = try ShardWriter(directory: dir, name: "round")
        XCTAssertEqual(w.name, "round.mcs")
        var written: [Written] = []
        for i in 0..<400 {
            let kind = ShardRecordKind.allCases.randomElement(using: &rng)!
            let width = i < 3 ? i : Int.random(in: 1...90, using: &rng)
            let height = i < 3 ? 5 : Int.random(in: 1...70, using: &rng)
            let compressible = Bool.random(using: &rng), compress = Bool.random(using: &rng)
            let r = try append(w, kind, width, height, compressible: compressible, compress: compress, &rng)
            let raw = r.record.bytes.count
            XCTAssertEqual(r.location.shard, "round.mcs")
            if !compress || (!compressible && raw >= 64) {
                XCTAssertEqual(Int(r.location.length), 32 + raw, "record \(i) should be stored raw")
            } else if raw >= 64 {
                XCTAssertLessThan(Int(r.location.length), 32 + raw / 2, "record \(i) should be compressed")
            }
            if let previous = written.last {
                XCTAssertEqual(r.location.offset, previous.location.offset + Int64(previous.location.length))
            } else {
                XCTAssertEqual(r.location.offset, 16)
            }
            written.append(r)
        }
        // Larger than the 4 MiB buffer in total, so appends flush on their own along the way.
        for _ in 0..<5 { written.append(try append(w, .grey8, 1024, 1024, compressible: false, compress: true, &rng)) }
        written.append(try append(w, .rgb8, 700, 500, compressible: true, compress: true, &rng))
        XCTAssertEqual(w.recordCount, written.count)
        let last = written.last!.location
        XCTAssertEqual(w.byteCount, last.offset + Int64(last.length))

        try w.flush()
        let url = dir.appendingPathComponent("round.mcs")
        let unsealed = try ShardReader(url: url)
        XCTAssertFalse(unsealed.isSealed)
        XCTAssertEqual(unsealed.offsets, written.map(\.location.offset))
        try assertReads(unsealed, Array(written.suffix(10)))

        let indexOffset = w.byteCount
        try w.seal()
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int,
                       Int(indexOffset) + 8 * written.count + 32)
        let reader = try ShardReader(url: url)
        XCTAssertTrue(reader.isSealed)
        XCTAssertEqual(reader.offsets, written.map(\.location.offset))
        try assertReads(reader, written.shuffled(using: &rng))
        for w in written.prefix(50) {
            XCTAssertEqual(try reader.record(at: w.location.offset), w.record)
        }

        // Concurrent readers share one ShardReader.
        let failures = UnsafeMutableBufferPointer<Int>.allocate(capacity: written.count)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: written.count) { i in
            failures[i] = (try? reader.record(at: written[i].location)) == written[i].record ? 0 : 1
        }
        XCTAssertEqual(failures.reduce(0, +), 0)
    }

    func testMaskRecordStoresPackedBox() throws {
        let width = 37, height = 23
        var mask = [UInt8](repeating: 0, count: width * height)
        for y in 5...17 { for x in 3...30 where (x * y) % 3 != 0 { mask[y * width + x] = 255 } }
        let box = try XCTUnwrap(mask.withUnsafeBufferPointer { MaskBits.boundingBox($0, width: width, height: height) })
        let bits = mask.withUnsafeBufferPointer { MaskBits.pack($0, width: width, height: height, box: box.box) }
        let w = try ShardWriter(directory: dir, name: "masks")
        XCTAssertEqual(box.box.corners, [4, 5, 29, 17])
        XCTAssertEqual(bits.count, (26 * 13 + 7) / 8)
        let loc = try w.append(kind: .mask, width: width, height: height, bytes: bits)
        try w.seal()
        let r = try ShardReader(url: dir.appendingPathComponent("masks.mcs")).record(at: loc)
        XCTAssertEqual(r.kind, .mask)
        XCTAssertEqual([r.width, r.height], [width, height])
        XCTAssertEqual(Array(r.bytes), bits)
        let back = MaskBits.unpack(r.bytes, width: width, height: height, box: box.box)
        XCTAssertEqual(back, mask.map { $0 != 0 ? 1 : 0 })
    }

    func testAppendRejectsWrongSizeAndWritesAfterSeal() throws {
        let w = try ShardWriter(directory: dir, name: "strict")
        XCTAssertEqual(shardError { try w.append(kind: .rgb8, width: 4, height: 4, bytes: [UInt8](repeating: 1, count: 16)) }?.reason, .misuse)
        XCTAssertEqual(shardError { try w.append(kind: .grey8, width: 4, height: 4, bytes: [UInt8](repeating: 1, count: 15)) }?.reason, .misuse)
        XCTAssertEqual(shardError { try w.append(kind: .mask, width: 3, height: 3, bytes: [UInt8](repeating: 1, count: 3)) }?.reason, .misuse)
        XCTAssertEqual(shardError { try w.append(kind: .grey8, width: -1, height: 4, bytes: [UInt8]()) }?.reason, .misuse)
        XCTAssertNoThrow(try w.append(kind: .mask, width: 3, height: 3, bytes: [UInt8](repeating: 1, count: 1)), "a box inside 3×3")
        XCTAssertNoThrow(try w.append(kind: .mask, width: 3, height: 3, bytes: [UInt8](repeating: 1, count: 2)))
        try w.seal()
        XCTAssertEqual(shardError { try w.append(kind: .grey8, width: 1, height: 1, bytes: [UInt8(1)]) }?.reason, .misuse)
        XCTAssertEqual(try ShardReader(url: w.url).offsets, [16, 16 + 33])
    }

    func testReopenSealedShardForAppend() throws {
        let (url, first) = try smallShard("reopen", count: 5, seal: true)
        let sealedSize = try Data(contentsOf: url).count
        let w = try ShardWriter(url: url)
        XCTAssertEqual(w.recordCount, 5)
        XCTAssertEqual(w.truncatedBytes, 0)
        let end = first.last!.location.offset + Int64(first.last!.location.length)
        XCTAssertEqual(w.byteCount, end)
        XCTAssertEqual(try Data(contentsOf: url).count, Int(end), "the index is dropped on reopen")
        var rng = SeededGenerator(seed: 9)
        var second: [Written] = []
        for i in 0..<4 { second.append(try append(w, .rgb8, 5 + i, 4, compressible: true, compress: true, &rng)) }
        XCTAssertEqual(second.first!.location.offset, end)
        try w.seal()
        let reader = try ShardReader(url: url)
        XCTAssertTrue(reader.isSealed)
        XCTAssertEqual(reader.offsets, (first + second).map(\.location.offset))
        try assertReads(reader, first + second)
        XCTAssertGreaterThan(try Data(contentsOf: url).count, sealedSize)
    }

    // MARK: - Crashes

    func testKillDuringLastRecordKeepsCompleteRecords() throws {
        let (url, written) = try smallShard("killed", count: 6, seal: false)
        let full = try Data(contentsOf: url)
        let lastOffset = Int(written.last!.location.offset)
        XCTAssertEqual(full.count, lastOffset + 32 + 300)
        XCTAssertEqual(try ShardReader(url: url).offsets, written.map(\.location.offset))
        let complete = Array(written.dropLast())
        var rng = SeededGenerator(seed: 3)

        for cut in lastOffset..<full.count {
            let torn = full.prefix(cut)
            try torn.write(to: url)
            let reader = try ShardReader(url: url)
            XCTAssertFalse(reader.isSealed)
            XCTAssertEqual(reader.offsets, complete.map(\.location.offset), "cut at \(cut)")
            try assertReads(reader, complete)
            XCTAssertNotNil(shardError { try reader.record(at: Int64(lastOffset)) }, "cut at \(cut)")

            // Recovery seals the complete records.
            let recovered = try ShardRepair.recover(url: url)
            XCTAssertEqual(recovered.records, 5)
            XCTAssertEqual(recovered.truncatedBytes, Int64(cut - lastOffset))
            let sealed = try ShardReader(url: url)
            XCTAssertTrue(sealed.isSealed)
            XCTAssertEqual(sealed.offsets, complete.map(\.location.offset))

            // A writer reopening the torn file directly appends right after them.
            try torn.write(to: url)
            let w = try ShardWriter(url: url)
            XCTAssertEqual(w.recordCount, 5)
            XCTAssertEqual(w.truncatedBytes, Int64(cut - lastOffset))
            XCTAssertEqual(w.byteCount, Int64(lastOffset))
            let added = try append(w, .grey8, 3, 3, compressible: false, compress: false, &rng)
            XCTAssertEqual(added.location.offset, Int64(lastOffset))
            try w.close()
            let after = try ShardReader(url: url)
            XCTAssertEqual(after.offsets, (complete + [added]).map(\.location.offset))
            try assertReads(after, complete + [added])
        }

        try full.write(to: url)
        XCTAssertEqual(try ShardRepair.recover(url: url).records, 6)
        XCTAssertEqual(try ShardRepair.recover(url: url).truncatedBytes, 0, "already sealed")
    }

    func testTornOrDamagedIndexFallsBackToScan() throws {
        let (url, written) = try smallShard("index", count: 5, seal: true)
        let full = try Data(contentsOf: url)
        let indexOffset = full.count - 5 * 8 - 32
        XCTAssertEqual(Int(written.last!.location.offset) + Int(written.last!.location.length), indexOffset)
        let offsets = written.map(\.location.offset)
        var variants: [(String, Data, Int)] = []
        for cut in [indexOffset, indexOffset + 1, indexOffset + 8, indexOffset + 21, full.count - 32, full.count - 9, full.count - 1] {
            variants.append(("cut at \(cut)", full.prefix(cut), cut - indexOffset))
        }
        for at in [indexOffset + 3, full.count - 30, full.count - 14] {
            var damaged = full
            damaged[at] ^= 0x10
            variants.append(("flip at \(at)", damaged, full.count - indexOffset))
        }
        for (what, bytes, tail) in variants {
            try bytes.write(to: url)
            let reader = try ShardReader(url: url)
            XCTAssertFalse(reader.isSealed, what)
            XCTAssertEqual(reader.offsets, offsets, what)
            try assertReads(reader, written)
            let recovered = try ShardRepair.recover(url: url)
            XCTAssertEqual(recovered.records, 5, what)
            XCTAssertEqual(recovered.truncatedBytes, Int64(tail), what)
            XCTAssertEqual(try Data(contentsOf: url), full, "\(what): resealing restores the original file")
        }
    }

    func testKillBeforeFileHeaderWasWritten() throws {
        let url = dir.appendingPathComponent("new.mcs")
        try Data("MCSHA".utf8).write(to: url)
        XCTAssertEqual(shardError { try ShardReader(url: url) }?.reason, .notAShard)
        let w = try ShardWriter(url: url)
        XCTAssertEqual(w.truncatedBytes, 5)
        let loc = try w.append(kind: .grey8, width: 2, height: 2, bytes: [UInt8]([1, 2, 3, 4]))
        XCTAssertEqual(loc.offset, 16)
        try w.seal()
        XCTAssertEqual(try ShardReader(url: url).record(at: loc).bytes, Data([1, 2, 3, 4]))

        let other = dir.appendingPathComponent("other.mcs")
        try Data("hello, this is not a shard".utf8).write(to: other)
        XCTAssertEqual(shardError { try ShardWriter(url: other) }?.reason, .notAShard)
        XCTAssertEqual(shardError { try ShardReader(url: other) }?.reason, .notAShard)
        XCTAssertEqual(try Data(contentsOf: other), Data("hello, this is not a shard".utf8), "left untouched")
    }

    func testSecondWriterIsLockedOut() throws {
        let w = try ShardWriter(directory: dir, name: "locked")
        let e = shardError { try ShardWriter(directory: self.dir, name: "locked") }
        XCTAssertEqual(e?.reason, .locked)
        try w.close()
        XCTAssertNoThrow(try ShardWriter(directory: dir, name: "locked").seal())
    }

    // MARK: - Damage

    func testFlippedPayloadByteIsAChecksumMismatch() throws {
        let (url, written) = try smallShard("payload", count: 5, seal: true)
        for victim in [written[0], written[4]] { // compressed, raw
            var bytes = try Data(contentsOf: url)
            bytes[Int(victim.location.offset) + 32 + 5] ^= 0x01
            try bytes.write(to: url)
            let reader = try ShardReader(url: url)
            let e = try XCTUnwrap(shardError { try reader.record(at: victim.location) })
            XCTAssertEqual(e.reason, .checksumMismatch)
            XCTAssertTrue(e.description.contains("checksum"), e.description)
            XCTAssertTrue(e.description.contains("payload.mcs"), e.description)
            XCTAssertTrue(e.description.contains("\(victim.location.offset)"), e.description)
            XCTAssertFalse(e.description.contains("header"), e.description)
            bytes[Int(victim.location.offset) + 32 + 5] ^= 0x01
            try bytes.write(to: url)
        }
    }

    func testFlippedHeaderByteIsHeaderDamage() throws {
        let (url, written) = try smallShard("header", count: 5, seal: true)
        let original = try Data(contentsOf: url)
        let at = Int(written[2].location.offset)
        for byte in [0, 4, 9, 17, 22, 26, 30] {
            var bytes = original
            bytes[at + byte] ^= 0x40
            try bytes.write(to: url)
            let reader = try ShardReader(url: url)
            let e = try XCTUnwrap(shardError { try reader.record(at: Int64(at)) }, "byte \(byte)")
            XCTAssertEqual(e.reason, .headerDamaged, "byte \(byte)")
            XCTAssertTrue(e.description.contains("header"), e.description)
            XCTAssertTrue(e.description.contains("header.mcs"), e.description)
            XCTAssertEqual(try reader.record(at: written[3].location), written[3].record)
        }
    }

    func testOffsetsThatAreNotRecords() throws {
        let (url, written) = try smallShard("offsets", count: 3, seal: true)
        let reader = try ShardReader(url: url)
        let end = written.last!.location.offset + Int64(written.last!.location.length)
        for offset in [end, end + 5, 1 << 40, -1] {
            let e = try XCTUnwrap(shardError { try reader.record(at: offset) })
            XCTAssertEqual(e.reason, .beyondEnd)
            XCTAssertTrue(e.description.contains("offset beyond end of shard"), e.description)
            XCTAssertTrue(e.description.contains("offsets.mcs"), e.description)
        }
        XCTAssertEqual(shardError { try reader.record(at: 4) }?.reason, .headerDamaged)
        XCTAssertEqual(shardError { try reader.record(at: written[1].location.offset + 1) }?.reason, .headerDamaged)
        var wrongLength = written[1].location
        wrongLength.length += 1
        XCTAssertNotNil(shardError { try reader.record(at: wrongLength) })
        var wrongShard = written[1].location
        wrongShard.shard = "elsewhere.mcs"
        XCTAssertEqual(shardError { try reader.record(at: wrongShard) }?.reason, .misuse)
    }

    func testDamageInTheMiddleIsNotTruncatedAway() throws {
        let (url, written) = try smallShard("middle", count: 5, seal: false)
        var bytes = try Data(contentsOf: url)
        bytes[Int(written[1].location.offset) + 40] ^= 0xFF
        try bytes.write(to: url)
        let reader = try ShardReader(url: url)
        XCTAssertEqual(reader.offsets, [written[0].location.offset], "the scan stops at the damage")
        XCTAssertEqual(shardError { try reader.record(at: written[1].location) }?.reason, .checksumMismatch)
        try assertReads(reader, [written[0]] + written[2...])
        XCTAssertEqual(shardError { try ShardWriter(url: url) }?.reason, .damagedMidShard)
        XCTAssertEqual(shardError { try ShardRepair.recover(url: url) }?.reason, .damagedMidShard)
        XCTAssertEqual(try Data(contentsOf: url), bytes, "nothing was cut")
    }
}
