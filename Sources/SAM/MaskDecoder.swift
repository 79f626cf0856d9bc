import Torch

/// Predicts masks and their IoU from image and prompt embeddings: learned output tokens go through
/// the two-way transformer; each mask token becomes, via a hypernetwork MLP, the weights that
/// project the upscaled image embedding into a mask. Masks come out at 4× the embedding grid.
public final class MaskDecoder: Module {
    public static let maskTokenCount = 4  // one for single-mask output, three for multimask
    let iouToken: Embedding   // 1×C
    let maskTokens: Embedding // 4×C
    let transformer: TwoWayTransformer
    let upscale0: ConvTranspose2d, upscale1: LayerNorm2d, upscale3: ConvTranspose2d  // output_upscaling
    let hypernetworks: [MLP]  // output_hypernetworks_mlps, C → C/8
    let iouHead: MLP          // iou_prediction_head, C → 4

    public init(dim: Int, transformer: TwoWayTransformer, iouHeadDepth: Int = 3, iouHeadHidden: Int = 256, _ i: inout Initializer) throws {
        self.transformer = transformer
        iouToken = try Embedding(1, dim, &i)
        maskTokens = try Embedding(Self.maskTokenCount, dim, &i)
        upscale0 = try ConvTranspose2d(dim, dim / 4, kernel: 2, stride: 2, &i)
        upscale1 = try LayerNorm2d(dim / 4, &i)
        upscale3 = try ConvTranspose2d(dim / 4, dim / 8, kernel: 2, stride: 2, &i)
        hypernetworks = try (0..<Self.maskTokenCount).map { _ in try MLP(dim, hidden: dim, output: dim / 8, depth: 3, &i) }
        iouHead = try MLP(dim, hidden: iouHeadHidden, output: Self.maskTokenCount, depth: iouHeadDepth, &i)
    }

    public func collect(_ p: inout Parameters) {
        p.add("transformer", transformer)
        p.add("iou_token", iouToken)
        p.add("mask_tokens", maskTokens)
        p.add("output_upscaling.0", upscale0)
        p.add("output_upscaling.1", upscale1)
        p.add("output_upscaling.3", upscale3)
        p.add("output_hypernetworks_mlps", hypernetworks)
        p.add("iou_prediction_head", iouHead)
    }

    /// image: Bi×C×G×G (Bi = 1 or B), imagePE: 1×C×G×G, sparse: B×N×C, dense: B×C×G×G →
    /// masks B×M×4G×4G and IoU B×M, with M = 3 (multimask) or 1.
    public func callAsFunction(image: Tensor, imagePE: Tensor, sparse: Tensor, dense: Tensor, multimask: Bool) throws -> (masks: Tensor, iou: Tensor) {
        let (masks, iou) = try predict(image: image, imagePE: imagePE, sparse: sparse, dense: dense)
        let (start, count) = multimask ? (1, Self.maskTokenCount - 1) : (0, 1)
        return (try masks.narrow(1, start, count), try iou.narrow(1, start, count))
    }

    /// All four masks (B×4×4G×4G) and IoU predictions (B×4).
    public func predict(image: Tensor, imagePE: Tensor, sparse: Tensor, dense: Tensor) throws -> (Tensor, Tensor) {
        let b = sparse.shape[0]
        let output = try Tensor.cat([iouToken.weight, maskTokens.weight], dim: 0).unsqueeze(0).expand([b, -1, -1])
        let tokens = try Tensor.cat([output, sparse], dim: 1)  // B×(5+N)×C
        // One image shared by all prompts is broadcast; a batch of images pairs with the prompts.
        let shape = image.shape
        let src0 = image.shape[0] == b ? image : try image.expand([b, shape[1], shape[2], shape[3]])
        let src = try src0 + dense
        let pos = try imagePE.expand([b, shape[1], shape[2], shape[3]])
        let (hs, keys) = try transformer(image: src, imagePE: pos, tokens: tokens)
        let iouOut = try hs.select(1, 0)                              // B×C
        let maskOut = try hs.narrow(1, 1, Self.maskTokenCount)        // B×4×C
        let grid = try keys.transpose(1, 2).reshape([b, shape[1], shape[2], shape[3]])
        let up = try upscale3(upscale1(upscale0(grid)).gelu()).gelu()  // B×C/8×4G×4G
        let hyper = try Tensor.stack(hypernetworks.enumerated().map { k, mlp in try mlp(maskOut.select(1, k)) }, dim: 1)  // B×4×C/8
        let u = up.shape
        let masks = try hyper.matmul(up.reshape([u[0], u[1], u[2] * u[3]])).reshape([u[0], -1, u[2], u[3]])
        return (masks, try iouHead(iouOut))
    }
}
