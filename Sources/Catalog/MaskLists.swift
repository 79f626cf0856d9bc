import Foundation
import GRDB

/// The selection index: for each (class, modality, split, dataset), the ids of its masks, as lists
/// of ascending ids (LEB128 deltas) in the `mask_lists` table, one list per group and commit.
///
/// An SQLite index on the masks table costs a B-tree insert per mask, which took 40 % of the
/// catalog's insert time at millions of masks (README, "Catalog at scale"); a commit writes at
/// most one list row per group instead. The lists stay exact: a commit adds its lists, replacing a
/// source file rewrites the lists that held its masks, and a re-split builds them all again.
enum MaskLists {
    struct Key: Hashable { var cls: Int64, modality: Int64, split: Int64, dataset: Int64 }

    /// Mask ids of one commit, by group; ids arrive in ascending order.
    struct Builder {
        private(set) var lists: [Key: [Int64]] = [:]
        mutating func add(_ key: Key, id: Int64) { lists[key, default: []].append(id) }
        func write(_ db: Database) throws {
            let insert = try db.cachedStatement(sql: """
                INSERT INTO mask_lists(class_id, modality_id, split, dataset_id, first_id, last_id, count, ids) VALUES (?,?,?,?,?,?,?,?)
                """)
            for (k, ids) in lists {
                try insert.execute(arguments: [k.cls, k.modality, k.split, k.dataset, ids.first!, ids.last!, ids.count, encode(ids)])
            }
        }
    }

    static func encode(_ ids: [Int64]) -> Data {
        var out = Data()
        out.reserveCapacity(ids.count * 2)
        var previous = ids.first! - 1
        for id in ids {
            var delta = UInt64(id - previous)
            previous = id
            while delta >= 0x80 { out.append(UInt8(delta & 0x7f) | 0x80); delta >>= 7 }
            out.append(UInt8(delta))
        }
        return out
    }

    static func decode(_ bytes: Data, first: Int64, into out: inout [Int64]) {
        var id = first - 1, delta: UInt64 = 0, shift: UInt64 = 0
        for b in bytes {
            delta |= UInt64(b & 0x7f) << shift
            if b & 0x80 != 0 { shift += 7; continue }
            id += Int64(delta)
            out.append(id)
            delta = 0; shift = 0
        }
    }

    /// Builds every list again from the masks table, 65,536 mask ids to a list.
    static func rebuild(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM mask_lists")
        var builder = Builder(), chunk: Int64 = -1
        let rows = try Row.fetchCursor(db, sql: "SELECT id, class_id, modality_id, split, dataset_id FROM masks ORDER BY id")
        while let r = try rows.next() {
            let id: Int64 = r["id"]
            if id >> 16 != chunk { try builder.write(db); builder = Builder(); chunk = id >> 16 }
            builder.add(Key(cls: r["class_id"], modality: r["modality_id"], split: r["split"], dataset: r["dataset_id"]), id: id)
        }
        try builder.write(db)
    }

    /// Takes the masks with ids in `range` out of the lists that hold them; call it before the
    /// masks are deleted, whose groups say which lists to look in.
    static func remove(_ db: Database, _ range: ClosedRange<Int64>) throws {
        let rows = try Row.fetchAll(db, sql: """
            SELECT l.class_id, l.modality_id, l.split, l.dataset_id, l.first_id, l.ids
            FROM (SELECT DISTINCT class_id, modality_id, split, dataset_id FROM masks WHERE id BETWEEN ?1 AND ?2) g
            JOIN mask_lists l ON l.class_id = g.class_id AND l.modality_id = g.modality_id AND l.split = g.split
                AND l.dataset_id = g.dataset_id AND l.first_id <= ?2 AND l.last_id >= ?1
            """, arguments: [range.lowerBound, range.upperBound])
        for r in rows {
            var ids: [Int64] = []
            let group: [DatabaseValue] = ["class_id", "modality_id", "split", "dataset_id"].map { r[$0] }
            decode(r["ids"], first: r["first_id"], into: &ids)
            ids.removeAll { range.contains($0) }
            try db.execute(sql: "DELETE FROM mask_lists WHERE class_id = ? AND modality_id = ? AND split = ? AND dataset_id = ? AND first_id = ?",
                           arguments: StatementArguments(group + [r["first_id"]]))
            guard !ids.isEmpty else { continue }
            try db.execute(sql: """
                INSERT INTO mask_lists(class_id, modality_id, split, dataset_id, first_id, last_id, count, ids) VALUES (?,?,?,?,?,?,?,?)
                """, arguments: StatementArguments(group) + [ids.first!, ids.last!, ids.count, encode(ids)])
        }
    }

    /// Ids of the masks matching `condition` (on the group columns) above `after`, ascending: the
    /// first `limit` of them, or all.
    static func ids(_ db: Database, condition: String, arguments: StatementArguments, after: Int64, limit: Int?) throws -> [Int64] {
        if let limit, limit <= 0 { return [] }
        let rows = try Row.fetchCursor(db, sql: """
            SELECT first_id, ids FROM mask_lists WHERE \(condition) AND last_id > ? ORDER BY first_id
            """, arguments: arguments + [after])
        var ids: [Int64] = [], list: [Int64] = [], sorted = true
        while let r = try rows.next() {
            let first: Int64 = r["first_id"]
            // Lists come in first-id order: once `limit` ids lie below the next list's first id,
            // no later list holds a smaller one. Only the smallest `limit` ids can be returned, so
            // the rest are dropped as lists come in.
            if let limit, ids.count >= limit {
                if !sorted { ids.sort(); sorted = true; ids.removeLast(ids.count - limit) }
                if ids[limit - 1] < first { break }
            }
            list.removeAll(keepingCapacity: true)
            decode(r["ids"], first: first, into: &list)
            for id in list where id > after {
                if let last = ids.last, last > id { sorted = false }
                ids.append(id)
            }
        }
        if !sorted { ids.sort() }
        return limit.map { Array(ids.prefix($0)) } ?? ids
    }
}
