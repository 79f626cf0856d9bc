import GRDB
import Hashing

/// Content hash → id of every stored image, so that identical images are stored once.
///
/// The writer keeps it in memory instead of a UNIQUE index in SQLite, whose random inserts halved
/// the insert rate at millions of images (migration v3). Keys are 64 bits of XXH3 over the hash
/// text, about 27 bytes an image. A match is confirmed against the stored hash, so a hash that
/// shares its key with an earlier one is stored again for each image that has it, never given the
/// wrong pixels. Blobs are never deleted, so rows that another connection added are picked up by
/// reading the ids past the last one seen.
struct BlobIndex {
    private var ids: [UInt64: Int64] = [:]
    private var lastID: Int64 = 0

    private static func key(_ text: UnsafeRawBufferPointer) -> UInt64 { ContentHash.words(text).low }

    private static func key(_ hash: String) -> UInt64 {
        var hash = hash
        return hash.withUTF8 { key(UnsafeRawBufferPointer($0)) }
    }

    /// Bytes of the table: Swift keeps its load at most 3/4, and a bucket holds a key and an id.
    var bytes: Int { ids.capacity * 4 / 3 * (MemoryLayout<UInt64>.stride + MemoryLayout<Int64>.stride) }

    /// Reads the blobs stored since the last call: all of them the first time.
    mutating func catchUp(_ db: Database) throws {
        guard let newest = try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM blobs"), newest > lastID else { return }
        ids.reserveCapacity(ids.count + Int(newest - lastID))
        let rows = try Row.fetchCursor(db, sql: "SELECT id, hash FROM blobs WHERE id > ?", arguments: [lastID])
        while let row = try rows.next() {
            // The text's bytes as SQLite holds them: no String per row (millions of rows).
            let k = try row.withUnsafeData(named: "hash") { $0.map { $0.withUnsafeBytes { Self.key($0) } } ?? 0 }
            add(key: k, id: row["id"])
        }
    }

    /// Records a blob this connection stored.
    mutating func add(hash: String, id: Int64) { add(key: Self.key(hash), id: id) }

    private mutating func add(key: UInt64, id: Int64) {
        if ids[key] == nil { ids[key] = id }
        lastID = max(lastID, id)
    }

    /// The id of the stored blob with this hash, if there is one.
    func find(_ db: Database, hash: String) throws -> Int64? {
        guard let id = ids[Self.key(hash)] else { return nil }
        return try String.fetchOne(db, sql: "SELECT hash FROM blobs WHERE id = ?", arguments: [id]) == hash ? id : nil
    }
}
