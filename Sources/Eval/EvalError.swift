/// An evaluation that cannot run or be read back: a name taken or unknown, no finished runs, a
/// checkpoint or prompt file that does not fit the selection.
public struct EvalError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
