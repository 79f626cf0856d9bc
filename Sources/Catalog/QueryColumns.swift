import GRDB

/// The columns of a query that reads many rows: an enum whose cases are listed in SELECT order,
/// each with its SQL expression, so that rows are read by case at the speed of an index and no
/// column position is written out.
protocol QueryColumns: CaseIterable, RawRepresentable where RawValue == Int {
    var expression: String { get }
}

extension QueryColumns {
    static var selectList: String { allCases.map(\.expression).joined(separator: ", ") }
}

extension Row {
    subscript<C: QueryColumns, V: DatabaseValueConvertible>(_ column: C) -> V { self[column.rawValue] }
}
