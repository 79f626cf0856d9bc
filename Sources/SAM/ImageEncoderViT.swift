import Torch

/// SAM's ViT image encoder (ViTDet-style): 16×16 patches, absolute positions, windowed attention in
/// most blocks and global attention in a few, decomposed relative positions, and a conv neck.
/// B×3×S×S → B×256×(S/16)×(S/16).
public final class ImageEncoderViT: Module {
    public let config: ViTConfig
    let patchEmbed: Conv2d       // patch_embed.proj
    public let posEmbed: Tensor  // 1×G×G×D, G = S/16
    let blocks: [ViTBlock]
    /// The blocks' attention modules (tests make their query chunks small).
    var attentions: [ViTAttention] { blocks.map(\.attn) }
    let neck: Neck
    public var checkpointBlocks = false {
        didSet { for b in blocks { b.attn.chunkQueries = checkpointBlocks } }
    }

    public init(_ config: ViTConfig, imageSize: Int, _ i: inout Initializer) throws {
        self.config = config
        let grid = imageSize / config.patchSize
        let d = config.embedDim
        patchEmbed = try Conv2d(3, d, kernel: config.patchSize, stride: config.patchSize, &i)
        posEmbed = try i.constant([1, grid, grid, d], 0)
        // Adapters draw from a stream of their own, so a model gets the same base weights with or without them.
        var adapterInit = Initializer(seed: i.seed ^ 0x4164_6170_7465_72, device: i.device)
        blocks = try (0..<config.depth).map { k in
            let window = config.globalAttention.contains(k) ? 0 : config.windowSize
            let adapter = try config.adapterRatio.map { try Adapter(dim: d, ratio: $0, &adapterInit) }
            return try ViTBlock(dim: d, heads: config.heads, mlpRatio: config.mlpRatio, window: window, grid: grid, adapter: adapter, &i)
        }
        neck = try Neck(d, config.outChannels, &i)
    }

    public func collect(_ p: inout Parameters) {
        p.add("pos_embed", posEmbed)
        p.add("patch_embed.proj", patchEmbed)
        p.add("blocks", blocks)
        p.add("neck", neck)
    }

    public var attentionProjections: [(key: String, layer: Linear)] {
        blocks.enumerated().map { ("blocks.\($0.offset).attn.qkv", $0.element.attn.qkv) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var x = try patchEmbed(x).permute([0, 2, 3, 1])  // B×G×G×D
        x = try x + posEmbed
        for block in blocks { x = try checkpointBlocks ? x.checkpointed { try block($0) } : block(x) }
        x = try x.permute([0, 3, 1, 2])                    // B×D×G×G
        return try neck(x)
    }
}

/// The encoders' common output stage: 1×1 conv, LayerNorm2d, 3×3 conv, LayerNorm2d (keys neck.0–3).
final class Neck: Module {
    let conv1: Conv2d, norm1: LayerNorm2d, conv2: Conv2d, norm2: LayerNorm2d

    init(_ inChannels: Int, _ out: Int, _ i: inout Initializer) throws {
        conv1 = try Conv2d(inChannels, out, kernel: 1, bias: false, &i)
        norm1 = try LayerNorm2d(out, &i)
        conv2 = try Conv2d(out, out, kernel: 3, padding: 1, bias: false, &i)
        norm2 = try LayerNorm2d(out, &i)
    }
    func collect(_ p: inout Parameters) {
        p.add("0", conv1)
        p.add("1", norm1)
        p.add("2", conv2)
        p.add("3", norm2)
    }
    /// B×C×G×G → B×out×G×G
    func callAsFunction(_ x: Tensor) throws -> Tensor { try norm2(conv2(norm1(conv1(x)))) }
}

/// One transformer block: pre-norm attention (windowed when window > 0) and MLP, both residual.
final class ViTBlock: Module {
    let norm1: LayerNorm, attn: ViTAttention, norm2: LayerNorm
    let lin1: Linear, lin2: Linear  // mlp
    let adapter: Adapter?
    let window: Int

    init(dim: Int, heads: Int, mlpRatio: Double, window: Int, grid: Int, adapter: Adapter?, _ i: inout Initializer) throws {
        norm1 = try LayerNorm(dim, eps: 1e-6, &i)
        attn = try ViTAttention(dim: dim, heads: heads, size: window > 0 ? window : grid, &i)
        norm2 = try LayerNorm(dim, eps: 1e-6, &i)
        lin1 = try Linear(dim, Int(Double(dim) * mlpRatio), &i)
        lin2 = try Linear(Int(Double(dim) * mlpRatio), dim, &i)
        self.adapter = adapter
        self.window = window
    }
    func collect(_ p: inout Parameters) {
        p.add("norm1", norm1)
        p.add("attn", attn)
        p.add("norm2", norm2)
        p.add("mlp.lin1", lin1)
        p.add("mlp.lin2", lin2)
        p.add("Adapter", adapter)
    }

    /// B×H×W×C → B×H×W×C
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try norm1(x)
        if window > 0 {
            let (H, W) = (x.shape[1], x.shape[2])
            let (windows, padded) = try windowPartition(h, window)
            h = try windowUnpartition(attn(windows), window, padded: padded, original: (H, W))
        } else {
            h = try attn(h)
        }
        let x = try x + h
        let n = try norm2(x)
        let y = try x + lin2(lin1(n).gelu())
        return try adapter.map { try y + $0(n) } ?? y
    }
}

/// B×H×W×C → (B·nW)×w×w×C, padding H and W up to multiples of w; returns the padded size too.
func windowPartition(_ x: Tensor, _ w: Int) throws -> (Tensor, (Int, Int)) {
    let s = x.shape
    let (B, H, W, C) = (s[0], s[1], s[2], s[3])
    let padH = (w - H % w) % w, padW = (w - W % w) % w
    let x = padH > 0 || padW > 0 ? try x.pad([0, 0, 0, padW, 0, padH]) : x
    let (Hp, Wp) = (H + padH, W + padW)
    let windows = try x.reshape([B, Hp / w, w, Wp / w, w, C]).permute([0, 1, 3, 2, 4, 5]).contiguous().reshape([-1, w, w, C])
    return (windows, (Hp, Wp))
}

/// The inverse of windowPartition: (B·nW)×w×w×C → B×H×W×C.
func windowUnpartition(_ windows: Tensor, _ w: Int, padded: (Int, Int), original: (Int, Int)) throws -> Tensor {
    let (Hp, Wp) = padded
    let B = windows.shape[0] / (Hp * Wp / w / w)
    var x = try windows.reshape([B, Hp / w, Wp / w, w, w, -1]).permute([0, 1, 3, 2, 4, 5]).contiguous().reshape([B, Hp, Wp, -1])
    if Hp > original.0 || Wp > original.1 {
        x = try x.narrow(1, 0, original.0).narrow(2, 0, original.1).contiguous()
    }
    return x
}

/// Multi-head attention with decomposed relative positions (rel_pos_h, rel_pos_w: (2·size−1)×head_dim).
final class ViTAttention: Module {
    let qkv: Linear, proj: Linear
    let relPosH: Tensor, relPosW: Tensor
    let heads: Int
    let scale: Double
    /// With activation checkpointing: global attention over more than `chunkTokens` queries runs
    /// in chunks of grid rows, each checkpointed on its own, so that a block's backward pass never
    /// holds the scores of all queries at once (heads × N × N: 800 MB per image for ViT-B at 1024).
    var chunkQueries = false
    var chunkTokens = 1024

    init(dim: Int, heads: Int, size: Int, _ i: inout Initializer) throws {
        qkv = try Linear(dim, dim * 3, &i)
        proj = try Linear(dim, dim, &i)
        let headDim = dim / heads
        relPosH = try i.constant([2 * size - 1, headDim], 0)
        relPosW = try i.constant([2 * size - 1, headDim], 0)
        self.heads = heads
        scale = 1 / Double(headDim).squareRoot()
    }
    func collect(_ p: inout Parameters) {
        p.add("rel_pos_h", relPosH)
        p.add("rel_pos_w", relPosW)
        p.add("qkv", qkv)
        p.add("proj", proj)
    }

    /// B×H×W×C → B×H×W×C
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let s = x.shape
        let (B, H, W) = (s[0], s[1], s[2])
        // 3×(B·heads)×(H·W)×head_dim
        let qkv = try self.qkv(x).reshape([B, H * W, 3, heads, -1]).permute([2, 0, 3, 1, 4]).reshape([3, B * heads, H * W, -1])
        let out: Tensor
        if chunkQueries && H * W > chunkTokens {
            let rows = max(1, chunkTokens / W)
            let parts = try stride(from: 0, to: H, by: rows).map { first in
                try qkv.checkpointed { qkv in try self.attend(qkv, H, W, rows: first..<min(H, first + rows)) }
            }
            out = try Tensor.cat(parts, dim: 1)
        } else {
            out = try attend(qkv, H, W, rows: 0..<H)
        }
        return try proj(out.reshape([B, heads, H, W, -1]).permute([0, 2, 3, 1, 4]).reshape([B, H, W, -1]))
    }

    /// Attention of the queries in grid rows `rows` to all H·W keys: (B·heads)×(rows·W)×head_dim.
    func attend(_ qkv: Tensor, _ H: Int, _ W: Int, rows: Range<Int>) throws -> Tensor {
        var q = try qkv.select(0, 0)
        let k = try qkv.select(0, 1), v = try qkv.select(0, 2)
        if rows.count < H { q = try q.narrow(1, rows.lowerBound * W, rows.count * W) }
        var attn = try (q * scale).matmul(k.transpose(-2, -1))  // (B·heads)×(rows·W)×HW
        attn = try addDecomposedRelPos(attn, q, H, W, rows: rows)
        return try attn.softmax(-1).matmul(v)
    }

    func addDecomposedRelPos(_ attn: Tensor, _ q: Tensor, _ H: Int, _ W: Int, rows: Range<Int>) throws -> Tensor {
        var rh = try relativePositions(H, relPosH)  // H×H×C
        if rows.count < H { rh = try rh.narrow(0, rows.lowerBound, rows.count) }
        let rw = try relativePositions(W, relPosW)  // W×W×C
        let n = q.shape[0], c = q.shape[2], h = rows.count
        let rq = try q.reshape([n, h, W, c])
        let relH = try Tensor.einsum("bhwc,hkc->bhwk", rq, rh)  // n×h×W×H
        let relW = try Tensor.einsum("bhwc,wkc->bhwk", rq, rw)  // n×h×W×W
        let a = try attn.reshape([n, h, W, H, W]) + relH.unsqueeze(4) + relW.unsqueeze(3)
        return try a.reshape([n, h * W, H * W])
    }

    /// Embeddings of the offsets between `size` query and key positions: size×size×C. A table made
    /// for another size is resized linearly first, as SAM does.
    func relativePositions(_ size: Int, _ table: Tensor) throws -> Tensor {
        let span = 2 * size - 1
        var table = table
        if table.shape[0] != span {
            table = try resizeRelativeTable(table, to: span)
        }
        var index = [Int64]()
        index.reserveCapacity(size * size)
        for a in 0..<size { for b in 0..<size { index.append(Int64(a - b + size - 1)) } }
        let idx = try Tensor(index, shape: [size * size]).to(table.device)
        return try table.indexSelect(0, idx).reshape([size, size, -1])
    }
}

/// Resizes a L×C relative-position table to span×C with linear interpolation (F.interpolate
/// mode="linear", align_corners=False), done as a bilinear resize of a 1×C×1×L image.
func resizeRelativeTable(_ table: Tensor, to span: Int) throws -> Tensor {
    let l = table.shape[0]
    let image = try table.permute([1, 0]).reshape([1, -1, 1, l])
    return try image.interpolate(height: 1, width: span).reshape([-1, span]).permute([1, 0]).contiguous()
}
