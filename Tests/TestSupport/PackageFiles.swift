import Foundation

/// Files of this package's checkout: its own (tools/, fixtures) and the real data that
/// tools/setup.sh fetches into .deps/data.
enum PackageFiles {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A file or folder of the real data. Missing data fails the test with what to run, never
    /// skips it silently.
    static func realData(_ path: String) throws -> URL {
        let url = root.appendingPathComponent(".deps/data").appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: url.path) else { throw MissingRealData(path: path) }
        return url
    }
}

struct MissingRealData: Error, CustomStringConvertible {
    let path: String
    var description: String { ".deps/data/\(path) is missing: run ./tools/setup.sh (make test does)" }
}
