import Foundation
import GRDB

/// Images with identical pixels in two datasets or cases: how many, and where.
public struct DuplicateReport: Codable, Equatable, Sendable {
    public struct Pair: Codable, Equatable, Sendable {
        public var datasets: [String]
        public var images: Int
        public init(datasets: [String], images: Int) { self.datasets = datasets; self.images = images }
    }
    /// Stored images that appear in more than one case.
    public var sharedImages = 0
    /// Of those, the ones that appear in more than one dataset, by pair of datasets.
    public var crossDataset: [Pair] = []
    /// Cases that form split groups with other cases.
    public var groupedCases = 0
}

/// Split groups: cases joined by shared image content hashes (the same scan in two collections, a
/// later challenge edition holding an earlier one) are put in one split, so that no image is
/// trained on in one case and tested on in another.
enum SplitGroups {
    /// Cases that share a stored image, joined: each grouped case with its group's first-ingested
    /// case; the number of shared images; and how many each pair of datasets shares.
    static func scan(_ db: Database) throws -> (roots: [Int64: Int64], sharedImages: Int, pairs: [[Int64]: Int]) {
        // Only images whose content is shared between cases: a scan, but one with no join.
        let rows = try Row.fetchAll(db, sql: """
            SELECT blob_id, case_id, dataset_id FROM images
            WHERE blob_id IN (SELECT blob_id FROM images GROUP BY blob_id HAVING MIN(case_id) != MAX(case_id))
            GROUP BY blob_id, case_id ORDER BY blob_id, case_id
            """)
        var parent: [Int64: Int64] = [:]
        func find(_ x: Int64) -> Int64 {
            var r = x
            while let p = parent[r], p != r { r = p }
            parent[x] = r
            return r
        }
        var pairs: [[Int64]: Int] = [:], shared = 0
        var i = 0
        while i < rows.count {
            let blob: Int64 = rows[i][0]
            var cases: [Int64] = [], datasets = Set<Int64>()
            while i < rows.count, rows[i][0] as Int64 == blob {
                cases.append(rows[i][1])
                datasets.insert(rows[i][2])
                i += 1
            }
            shared += 1
            for c in cases where parent[c] == nil { parent[c] = c }
            // The smaller id becomes the root: a group's root is its first-ingested case.
            for c in cases.dropFirst() {
                let (a, b) = (find(cases[0]), find(c))
                if a != b { parent[max(a, b)] = min(a, b) }
            }
            let ds = datasets.sorted()
            for x in ds.indices { for y in ds.indices where y > x { pairs[[ds[x], ds[y]], default: 0] += 1 } }
        }
        return (Dictionary(uniqueKeysWithValues: parent.keys.map { ($0, find($0)) }), shared, pairs)
    }

    /// A group's split is the strictest official split among its cases (test, then val, then
    /// train); without one, the split of its first-ingested case. Moves cases into their group's
    /// split (with their images, masks, counts and mask lists when `propagate`), and stores the
    /// duplicate report for `catalog stats`.
    @discardableResult
    static func join(_ db: Database, propagate: Bool) throws -> DuplicateReport {
        let (roots, shared, pairs) = try scan(db)
        var report = DuplicateReport()
        report.sharedImages = shared
        report.groupedCases = roots.count
        if !roots.isEmpty {
            var info: [Int64: (split: Int, fixed: Int?)] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT id, split, fixed_split FROM cases WHERE id IN (SELECT value FROM json_each(?))",
                                      arguments: [Catalog.idList(Array(roots.keys))]) {
                info[r["id"]] = (r["split"], r["fixed_split"])
            }
            var groups: [Int64: [Int64]] = [:]
            for (c, root) in roots { groups[root, default: []].append(c) }
            var moved: [(id: Int64, split: Int)] = []
            for (root, members) in groups {
                let target = members.compactMap { info[$0]?.fixed }.max() ?? info[root]?.split ?? 0
                for c in members where info[c]?.split != target { moved.append((c, target)) }
            }
            // One statement per target split, not per case: images have no index on their case, so
            // each statement reads the table once.
            for (split, cases) in Dictionary(grouping: moved, by: \.split) {
                let ids = Catalog.idList(cases.map(\.id))
                try db.execute(sql: "UPDATE cases SET split = ?1 WHERE id IN (SELECT value FROM json_each(?2))", arguments: [split, ids])
                guard propagate else { continue }
                try db.execute(sql: "UPDATE images SET split = ?1 WHERE case_id IN (SELECT value FROM json_each(?2))", arguments: [split, ids])
                try db.execute(sql: """
                    UPDATE masks SET split = ?1 WHERE id IN (
                        SELECT m.id FROM images i JOIN masks m ON m.id BETWEEN i.first_mask_id AND i.first_mask_id + i.mask_count - 1
                        WHERE i.case_id IN (SELECT value FROM json_each(?2)))
                    """, arguments: [split, ids])
            }
            if propagate && !moved.isEmpty {
                try Catalog.rebuildCounts(db)
                try MaskLists.rebuild(db)
            }
        }
        let names = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT id, name FROM datasets").map { ($0["id"] as Int64, $0["name"] as String) })
        report.crossDataset = pairs.map { DuplicateReport.Pair(datasets: $0.key.map { names[$0] ?? "?" }, images: $0.value) }
            .sorted { ($0.images, $1.datasets.joined()) > ($1.images, $0.datasets.joined()) }
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        try db.execute(sql: "INSERT OR REPLACE INTO settings(key, value) VALUES ('duplicates', ?)", arguments: [json])
        return report
    }
}
