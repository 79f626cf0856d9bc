/// A training run that cannot start or go on: a selection too small or mixed, sampling weights
/// that select nothing, a model that cannot be tuned the way asked.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
