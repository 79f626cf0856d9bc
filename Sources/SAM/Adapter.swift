import Torch

/// SAM-Med2D's adapter (its Adapter_Layer, keys `blocks.N.Adapter.*`): channel attention from the
/// pooled features (Linear → ReLU → Linear → sigmoid, bottleneck ratio·C), then a spatial branch
/// (stride-2 3×3 conv → ReLU → 4×4 transposed conv back → ReLU) added to its input, then a
/// LayerNorm. Each ViT block adds it beside the MLP: x + mlp(norm2(x)) + adapter(norm2(x)).
///
/// SAM-Med2D starts the LayerNorm at weight 1, bias 0, which perturbs a pretrained encoder from
/// the first step; medcat starts its weight at zero instead, so that an adapted model starts out
/// equal to the model it adapts and the adapter grows from there (an official SAM-Med2D checkpoint
/// loads its own values over this).
final class Adapter: Module {
    let down: Linear, up: Linear            // channel.0, channel.2
    let conv: Conv2d, deconv: ConvTranspose2d  // spatial.0, spatial.2
    let norm: LayerNorm

    init(dim: Int, ratio: Double, _ i: inout Initializer) throws {
        let hidden = Int((Double(dim) * ratio).rounded())
        down = try Linear(dim, hidden, bias: false, &i)
        up = try Linear(hidden, dim, bias: false, &i)
        conv = try Conv2d(dim, dim, kernel: 3, stride: 2, padding: 1, bias: false, &i)
        deconv = try ConvTranspose2d(dim, dim, kernel: 4, stride: 2, padding: 1, bias: false, &i)
        norm = try LayerNorm(dim, &i)
        try norm.weight.assign(Tensor.zeros([dim], device: i.device))
    }
    func collect(_ p: inout Parameters) {
        p.add("channel.0", down)
        p.add("channel.2", up)
        p.add("spatial.0", conv)
        p.add("spatial.2", deconv)
        p.add("norm", norm)
    }

    /// B×H×W×C → B×H×W×C
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (H, W) = (x.shape[1], x.shape[2])
        let gate = try up(down(x.mean([1, 2])).relu()).sigmoid()                    // B×C
        let channel = try (x * gate.unsqueeze(1).unsqueeze(1)).permute([0, 3, 1, 2])  // B×C×H×W
        var spatial = try deconv(conv(channel).relu()).relu().permute([0, 2, 3, 1])  // B×H'×W'×C
        // An odd grid comes back one larger from the stride-2 round trip.
        if spatial.shape[1] != H || spatial.shape[2] != W { spatial = try spatial.narrow(1, 0, H).narrow(2, 0, W) }
        return try norm(x + spatial)
    }
}
