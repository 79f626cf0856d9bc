import CSQLiteBind
import GRDB

/// The columns of a table that a hot insert writes: an enum whose cases are the column names as the
/// schema spells them, numbered from 1 in the order they are declared.
protocol InsertColumns: CaseIterable, RawRepresentable where RawValue == Int32 {}

/// An INSERT run millions of times (images, masks, blobs at ingest): its columns are declared once
/// (`Columns`) and values are bound by column straight into the prepared statement, without the
/// boxed arguments GRDB builds per row, which cost more than the insert itself at these counts.
struct FastInsert<Columns: InsertColumns> {
    private let statement: Statement  // holds the sqlite3 statement that `raw` points at
    private let raw: UnsafeMutableRawPointer
    private let table: String

    init(_ db: Database, into table: String) throws {
        let names = Columns.allCases.map { String(describing: $0) }
        statement = try db.cachedStatement(sql: """
            INSERT INTO \(table)(\(names.joined(separator: ", "))) VALUES (\(names.map { ":" + $0 }.joined(separator: ", ")))
            """)
        raw = UnsafeMutableRawPointer(statement.sqliteStatement)
        self.table = table
        for (c, name) in zip(Columns.allCases, names) where mc_sqlite_parameter_index(raw, ":" + name) != c.rawValue {
            preconditionFailure("\(table).\(name) must be numbered \(mc_sqlite_parameter_index(raw, ":" + name))")
        }
    }

    func set(_ column: Columns, _ value: Int64) { mc_sqlite_bind_int(raw, column.rawValue, value) }
    func set(_ column: Columns, _ value: Int) { mc_sqlite_bind_int(raw, column.rawValue, Int64(value)) }
    func set(_ column: Columns, _ value: Double) { mc_sqlite_bind_double(raw, column.rawValue, value) }
    func set(_ column: Columns, _ value: String) { mc_sqlite_bind_text(raw, column.rawValue, value) }

    /// Inserts the row bound so far; the statement is reset for the next one.
    func insert() throws {
        let rc = mc_sqlite_run(raw)
        guard rc == 0 else { throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: "inserting a row into \(table)") }
    }
}
