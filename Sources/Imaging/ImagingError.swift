/// A file that cannot be read as an image. The message says what is wrong with the content; callers
/// add the file's name.
public struct ImagingError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
