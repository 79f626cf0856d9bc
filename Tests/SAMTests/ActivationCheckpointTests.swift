import Foundation
@testable import SAM
import Torch
import XCTest

/// Activation checkpointing in the image encoders: every parameter's gradient as without it.
final class ActivationCheckpointTests: XCTestCase {
    func encoderGradients(_ sam: Sam, checkpointed: Bool) throws -> [String: [Float]] {
        sam.imageEncoder.checkpointBlocks = checkpointed
        let entries = sam.parameters.entries.filter { $0.name.hasPrefix("image_encoder.") && $0.trainable }
        for e in entries { try e.tensor.zeroGrad() }
        let s = sam.config.imageSize
        let images = try Tensor.randn([1, 3, s, s], seed: 7).requiresGrad(true)
        let embeddings = try sam.embed(images)
        try (embeddings * embeddings).mean().backward()
        var out = try Dictionary(uniqueKeysWithValues: entries.map { ($0.name, try XCTUnwrap($0.tensor.grad, $0.name).floats()) })
        out["input"] = try XCTUnwrap(images.grad).floats()
        return out
    }

    func assertSameGradients(_ sam: Sam, file: StaticString = #filePath, line: UInt = #line) throws {
        let plain = try encoderGradients(sam, checkpointed: false)
        let checkpointed = try encoderGradients(sam, checkpointed: true)
        XCTAssertEqual(Set(plain.keys), Set(checkpointed.keys), file: file, line: line)
        var worst: Float = 0, largest: Float = 0
        for (key, a) in plain {
            for (u, v) in zip(a, checkpointed[key]!) { worst = max(worst, abs(u - v)); largest = max(largest, abs(u)) }
        }
        XCTAssertLessThan(worst, 1e-5, "largest gradient difference", file: file, line: line)
        XCTAssertGreaterThan(largest, 1e-3, "the gradients are not all zero", file: file, line: line)
    }

    func testViTBlocksCheckpointedGiveTheSameGradients() throws {
        try assertSameGradients(try Sam(.vitDebug(imageSize: 64), seed: 3))
        // Global attention in query chunks of one grid row (4 of the 4×4 grid's 16 tokens), each
        // checkpointed inside its checkpointed block.
        let chunked = try Sam(.vitDebug(imageSize: 64), seed: 3)
        let encoder = try XCTUnwrap(chunked.imageEncoder as? ImageEncoderViT)
        for a in encoder.attentions { a.chunkTokens = 4 }
        try assertSameGradients(chunked)
    }

    func testTinyViTBlocksCheckpointedGiveTheSameGradients() throws {
        try assertSameGradients(try Sam(.tinyViT, seed: 3))
    }
}
