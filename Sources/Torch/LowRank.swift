import CTorch

/// A trainable low-rank update of a frozen linear layer (LoRA, Hu et al. 2021), as SAMed fine-tunes
/// SAM's image encoder: the layer computes W·x + b + B·(A·x). B starts at zero, so the adapted
/// layer starts out equal to the frozen one; `merged` folds the update into W, so that a model
/// trained this way saves and loads as a plain one.
public final class LowRankUpdate {
    public let a: Tensor  // r×in
    public let b: Tensor  // out×r

    public init(inFeatures: Int, outFeatures: Int, rank: Int, _ i: inout Initializer) throws {
        // A as PyTorch initialises a Linear weight (kaiming-uniform, bound 1/√in), as SAMed does.
        a = try i.uniform([rank, inFeatures], bound: 1 / Double(inFeatures).squareRoot())
        b = try i.constant([outFeatures, rank], 0)
    }

    /// …×in → …×out
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Tensor.call("linear", [x, a]) { mt_linear(x.handle, a.handle, nil) }.matmul(b.transpose(0, 1))
    }

    /// W + B·A, detached: what the adapted layer's weight would be after merging.
    public func merged(into weight: Tensor) throws -> Tensor {
        try withoutGrad { try weight + b.matmul(a) }
    }
}
