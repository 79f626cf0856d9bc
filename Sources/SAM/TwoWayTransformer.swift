import Torch

/// The mask decoder's transformer: prompt tokens and image embedding attend to each other in both
/// directions (tokens → image, then image → tokens), with positional encodings re-added at each step.
public final class TwoWayTransformer: Module {
    let layers: [TwoWayAttentionBlock]
    let finalAttention: TokenAttention  // final_attn_token_to_image
    let normFinal: LayerNorm

    public init(depth: Int, dim: Int, heads: Int, mlpDim: Int, downsample: Int = 2, _ i: inout Initializer) throws {
        layers = try (0..<depth).map { k in
            try TwoWayAttentionBlock(dim: dim, heads: heads, mlpDim: mlpDim, downsample: downsample, skipFirstPE: k == 0, &i)
        }
        finalAttention = try TokenAttention(dim: dim, heads: heads, downsample: downsample, &i)
        normFinal = try LayerNorm(dim, &i)
    }
    public func collect(_ p: inout Parameters) {
        p.add("layers", layers)
        p.add("final_attn_token_to_image", finalAttention)
        p.add("norm_final_attn", normFinal)
    }

    /// image: B×C×H×W, imagePE: B×C×H×W, tokens: B×N×C → (tokens B×N×C, image B×HW×C)
    public func callAsFunction(image: Tensor, imagePE: Tensor, tokens: Tensor) throws -> (Tensor, Tensor) {
        let keyPE = try imagePE.flatten(2).permute([0, 2, 1])
        var keys = try image.flatten(2).permute([0, 2, 1])
        var queries = tokens
        for layer in layers { (queries, keys) = try layer(queries, keys, queryPE: tokens, keyPE: keyPE) }
        let attended = try finalAttention(q: queries + tokens, k: keys + keyPE, v: keys)
        queries = try normFinal(queries + attended)
        return (queries, keys)
    }
}

final class TwoWayAttentionBlock: Module {
    let selfAttention: TokenAttention, norm1: LayerNorm
    let tokenToImage: TokenAttention, norm2: LayerNorm
    let lin1: Linear, lin2: Linear, norm3: LayerNorm  // mlp (ReLU)
    let imageToToken: TokenAttention, norm4: LayerNorm
    let skipFirstPE: Bool

    init(dim: Int, heads: Int, mlpDim: Int, downsample: Int, skipFirstPE: Bool, _ i: inout Initializer) throws {
        selfAttention = try TokenAttention(dim: dim, heads: heads, downsample: 1, &i)
        norm1 = try LayerNorm(dim, &i)
        tokenToImage = try TokenAttention(dim: dim, heads: heads, downsample: downsample, &i)
        norm2 = try LayerNorm(dim, &i)
        lin1 = try Linear(dim, mlpDim, &i)
        lin2 = try Linear(mlpDim, dim, &i)
        norm3 = try LayerNorm(dim, &i)
        norm4 = try LayerNorm(dim, &i)
        imageToToken = try TokenAttention(dim: dim, heads: heads, downsample: downsample, &i)
        self.skipFirstPE = skipFirstPE
    }
    func collect(_ p: inout Parameters) {
        p.add("self_attn", selfAttention)
        p.add("norm1", norm1)
        p.add("cross_attn_token_to_image", tokenToImage)
        p.add("norm2", norm2)
        p.add("mlp.lin1", lin1)
        p.add("mlp.lin2", lin2)
        p.add("norm3", norm3)
        p.add("norm4", norm4)
        p.add("cross_attn_image_to_token", imageToToken)
    }

    /// queries B×N×C, keys B×HW×C
    func callAsFunction(_ queries: Tensor, _ keys: Tensor, queryPE: Tensor, keyPE: Tensor) throws -> (Tensor, Tensor) {
        var queries = queries, keys = keys
        if skipFirstPE {
            queries = try selfAttention(q: queries, k: queries, v: queries)
        } else {
            let q = try queries + queryPE
            queries = try queries + selfAttention(q: q, k: q, v: queries)
        }
        queries = try norm1(queries)
        queries = try norm2(queries + tokenToImage(q: queries + queryPE, k: keys + keyPE, v: keys))
        queries = try norm3(queries + lin2(lin1(queries).relu()))
        keys = try norm4(keys + imageToToken(q: keys + keyPE, k: queries + queryPE, v: queries))
        return (queries, keys)
    }
}

/// Attention whose projections may shrink the channels (downsample) before splitting into heads.
final class TokenAttention: Module {
    let qProj: Linear, kProj: Linear, vProj: Linear, outProj: Linear
    let heads: Int

    init(dim: Int, heads: Int, downsample: Int, _ i: inout Initializer) throws {
        let inner = dim / downsample
        qProj = try Linear(dim, inner, &i)
        kProj = try Linear(dim, inner, &i)
        vProj = try Linear(dim, inner, &i)
        outProj = try Linear(inner, dim, &i)
        self.heads = heads
    }
    func collect(_ p: inout Parameters) {
        p.add("q_proj", qProj)
        p.add("k_proj", kProj)
        p.add("v_proj", vProj)
        p.add("out_proj", outProj)
    }

    /// B×N×C → B×heads×N×(C/heads)
    func split(_ x: Tensor) throws -> Tensor {
        let s = x.shape
        return try x.reshape([s[0], s[1], heads, s[2] / heads]).transpose(1, 2)
    }

    func callAsFunction(q: Tensor, k: Tensor, v: Tensor) throws -> Tensor {
        let q = try split(qProj(q)), k = try split(kProj(k)), v = try split(vProj(v))
        let headDim = q.shape[3]
        let attn = try (q.matmul(k.permute([0, 1, 3, 2])) / Double(headDim).squareRoot()).softmax(-1)
        let out = try attn.matmul(v).transpose(1, 2)  // B×N×heads×c
        let s = out.shape
        return try outProj(out.reshape([s[0], s[1], s[2] * s[3]]))
    }
}
