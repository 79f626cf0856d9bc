import Torch

/// Points, boxes and masks for the mask decoder. Sparse prompts (points, box corners) become
/// B×N×D embeddings from random Fourier features of their coordinates plus a learned type
/// embedding; a mask prompt becomes a dense B×D×G×G embedding through a small conv stack.
public final class PromptEncoder: Module {
    public let embedDim: Int
    public let inputSize: Int      // side of the padded encoder input, in pixels
    public let embeddingSize: Int  // G
    let gaussian: Tensor           // pe_layer.positional_encoding_gaussian_matrix, 2×(D/2)
    let pointEmbeddings: [Embedding]  // negative, positive, box top-left, box bottom-right
    let notAPoint: Embedding
    let noMask: Embedding
    let mask0: Conv2d, mask1: LayerNorm2d, mask3: Conv2d, mask4: LayerNorm2d, mask6: Conv2d

    public init(embedDim: Int, embeddingSize: Int, inputSize: Int, maskInChannels: Int, _ i: inout Initializer) throws {
        self.embedDim = embedDim
        self.inputSize = inputSize
        self.embeddingSize = embeddingSize
        gaussian = try i.normal([2, embedDim / 2]).requiresGrad(false)
        pointEmbeddings = try (0..<4).map { _ in try Embedding(1, embedDim, &i) }
        notAPoint = try Embedding(1, embedDim, &i)
        noMask = try Embedding(1, embedDim, &i)
        mask0 = try Conv2d(1, maskInChannels / 4, kernel: 2, stride: 2, &i)
        mask1 = try LayerNorm2d(maskInChannels / 4, &i)
        mask3 = try Conv2d(maskInChannels / 4, maskInChannels, kernel: 2, stride: 2, &i)
        mask4 = try LayerNorm2d(maskInChannels, &i)
        mask6 = try Conv2d(maskInChannels, embedDim, kernel: 1, &i)
    }

    public func collect(_ p: inout Parameters) {
        p.add("pe_layer.positional_encoding_gaussian_matrix", gaussian, trainable: false)
        p.add("point_embeddings", pointEmbeddings)
        p.add("not_a_point_embed", notAPoint)
        p.add("mask_downscaling.0", mask0)
        p.add("mask_downscaling.1", mask1)
        p.add("mask_downscaling.3", mask3)
        p.add("mask_downscaling.4", mask4)
        p.add("mask_downscaling.6", mask6)
        p.add("no_mask_embed", noMask)
    }

    /// Fourier features of coordinates normalised to [0, 1]: …×2 → …×D.
    func fourier(_ coords: Tensor) throws -> Tensor {
        let c = try (coords * 2 - 1).matmul(gaussian) * (2 * Double.pi)
        return try Tensor.cat([c.sin(), c.cos()], dim: -1)
    }

    /// The positional encoding of the embedding grid at cell centres: 1×D×G×G.
    public func densePositionalEncoding() throws -> Tensor {
        let g = embeddingSize
        var xy = [Float]()
        xy.reserveCapacity(g * g * 2)
        for y in 0..<g { for x in 0..<g { xy.append((Float(x) + 0.5) / Float(g)); xy.append((Float(y) + 0.5) / Float(g)) } }
        let grid = try Tensor(xy, shape: [g, g, 2]).to(gaussian.device)
        return try fourier(grid).permute([2, 0, 1]).unsqueeze(0)
    }

    /// Pixel coordinates (B×N×2, x then y, in the padded input frame) → B×N×D.
    func encodeCoordinates(_ coords: Tensor) throws -> Tensor {
        try fourier((coords + 0.5) / Double(inputSize))
    }

    /// points: B×N×2 pixel coordinates, labels: B×N (1 foreground, 0 background, −1 padding).
    func embedPoints(_ points: Tensor, _ labels: Tensor, pad: Bool) throws -> Tensor {
        var points = points, labels = labels
        if pad {
            let b = points.shape[0]
            points = try Tensor.cat([points, Tensor.zeros([b, 1, 2], device: points.device)], dim: 1)
            labels = try Tensor.cat([labels, Tensor.full([b, 1], -1, dtype: labels.dtype, device: labels.device)], dim: 1)
        }
        var e = try encodeCoordinates(points)
        let l = try labels.unsqueeze(-1)
        e = try Tensor.where(l.eq(-1), notAPoint.weight.expand(e.shape), e)
        e = try e + l.eq(0).to(e.dtype) * pointEmbeddings[0].weight + l.eq(1).to(e.dtype) * pointEmbeddings[1].weight
        return e
    }

    /// boxes: B×4 (x0, y0, x1, y1) pixels → B×2×D.
    func embedBoxes(_ boxes: Tensor) throws -> Tensor {
        let corners = try (boxes.reshape([-1, 2, 2]))
        let e = try encodeCoordinates(corners)
        return try e + Tensor.cat([pointEmbeddings[2].weight, pointEmbeddings[3].weight], dim: 0)
    }

    /// Returns sparse (B×N×D) and dense (B×D×G×G) embeddings. masks: B×1×4G×4G logits.
    public func callAsFunction(points: (Tensor, Tensor)? = nil, boxes: Tensor? = nil, masks: Tensor? = nil) throws -> (sparse: Tensor, dense: Tensor) {
        let batch = points?.0.shape[0] ?? boxes?.shape[0] ?? masks?.shape[0] ?? 1
        var parts: [Tensor] = []
        if let (coords, labels) = points { parts.append(try embedPoints(coords, labels, pad: boxes == nil)) }
        if let boxes { parts.append(try embedBoxes(boxes)) }
        let sparse = parts.isEmpty ? try Tensor.zeros([batch, 0, embedDim], device: gaussian.device) : try Tensor.cat(parts, dim: 1)
        let dense: Tensor
        if let masks {
            dense = try mask6(mask4(mask3(mask1(mask0(masks)).gelu())).gelu())
        } else {
            dense = try noMask.weight.reshape([1, -1, 1, 1]).expand([batch, -1, embeddingSize, embeddingSize])
        }
        return (sparse, dense)
    }
}
