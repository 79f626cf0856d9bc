import Foundation
import Geometry

/// A SAM prompt in pixel coordinates of the image it was made for (x = column, y = row, from
/// the top left): an optional box (the mask's extent, as SAM-Med2D and MedSAM compute it) and points
/// with labels (1 foreground, 0 background, −1 none: SAM's padding).
public struct Prompt: Codable, Equatable, Sendable {
    public struct Point: Codable, Equatable, Sendable {
        public var x: Int, y: Int, label: Int
        public init(x: Int, y: Int, label: Int) { self.x = x; self.y = y; self.label = label }
    }
    public var box: Box2D?
    public var points: [Point]

    public init(box: Box2D? = nil, points: [Point] = []) { self.box = box; self.points = points }
}

/// A protocol's prompts for every mask of an evaluation, so that another model (or the same model
/// later) sees exactly the same prompts: JSON with the protocol, its settings and one entry per
/// catalog mask id.
public struct PromptFile: Codable, Equatable, Sendable {
    public var protocolName: String
    public var seed: UInt64
    public var settings: [String: String]
    public var prompts: [Int: Prompt]

    enum CodingKeys: String, CodingKey { case protocolName = "protocol", seed, settings, prompts }

    public init(protocolName: String, seed: UInt64, settings: [String: String] = [:], prompts: [Int: Prompt] = [:]) {
        self.protocolName = protocolName; self.seed = seed; self.settings = settings; self.prompts = prompts
    }

    public static func read(_ url: URL) throws -> [PromptFile] {
        do { return try JSONDecoder().decode([PromptFile].self, from: Data(contentsOf: url)) }
        catch { throw PromptError("\(url.lastPathComponent): not a medcat prompt file (\(error))") }
    }

    public static func write(_ files: [PromptFile], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(files).write(to: url)
    }
}

public struct PromptError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
