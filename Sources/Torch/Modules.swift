import CTorch

/// A block with named tensors. Names follow PyTorch's state_dict keys exactly, so that official
/// checkpoints load by name.
public protocol Module: AnyObject {
    /// Adds this module's parameters, buffers and children to `p`.
    func collect(_ p: inout Parameters)
}

/// The ordered (name, tensor) list of a module tree: what a state_dict holds.
public struct Parameters {
    public struct Entry {
        public let name: String
        public let tensor: Tensor
        /// false for buffers (BatchNorm's running statistics): saved and loaded, never optimised.
        public let trainable: Bool
    }
    public private(set) var entries: [Entry] = []
    let prefix: String

    init(prefix: String = "") { self.prefix = prefix }

    public mutating func add(_ name: String, _ tensor: Tensor, trainable: Bool = true) {
        entries.append(Entry(name: prefix + name, tensor: tensor, trainable: trainable))
    }
    public mutating func add(_ name: String, _ module: Module?) {
        guard let module else { return }
        var child = Parameters(prefix: prefix + name + ".")
        module.collect(&child)
        entries += child.entries
    }
    /// The weight and optional bias of a linear or convolution layer.
    public mutating func add(weight: Tensor, bias: Tensor?) {
        add("weight", weight)
        if let bias { add("bias", bias) }
    }
    /// A list of modules, named name.0, name.1, ... as nn.ModuleList names them.
    public mutating func add(_ name: String, _ modules: [Module]) {
        for (i, m) in modules.enumerated() { add("\(name).\(i)", m) }
    }
}

extension Module {
    public var parameters: Parameters {
        var p = Parameters()
        collect(&p)
        return p
    }
    /// The tensors an optimiser updates.
    public var trainableParameters: [Tensor] { parameters.entries.filter(\.trainable).map(\.tensor) }
    public var parameterCount: Int { parameters.entries.filter(\.trainable).reduce(0) { $0 + $1.tensor.count } }

}

/// Parameter initialisation. Seeded per tensor so that a model built twice is identical.
public struct Initializer {
    public var seed: UInt64
    public var device: Device
    var counter: UInt64 = 0

    public init(seed: UInt64, device: Device = .cpu) {
        self.seed = seed
        self.device = device
    }
    mutating func nextSeed() -> UInt64 {
        counter += 1
        return seed &* 6364136223846793005 &+ counter &* 1442695040888963407
    }
    /// Uniform in ±bound, PyTorch's default for Linear and Conv weights (bound = 1/√fan_in).
    public mutating func uniform(_ shape: [Int], bound: Double) throws -> Tensor {
        let u = try Tensor.rand(shape, seed: nextSeed(), device: device)
        return try (u * (2 * bound) - bound).detach().requiresGrad(true)
    }
    public mutating func normal(_ shape: [Int], std: Double = 1) throws -> Tensor {
        try (Tensor.randn(shape, seed: nextSeed(), device: device) * std).detach().requiresGrad(true)
    }
    public mutating func constant(_ shape: [Int], _ value: Double, trainable: Bool = true) throws -> Tensor {
        let t = try Tensor.full(shape, value, device: device)
        return trainable ? try t.requiresGrad(true) : t
    }
}

// MARK: - layers

public final class Linear: Module {
    public let weight: Tensor  // out×in
    public let bias: Tensor?   // out
    /// A LoRA update trained beside the frozen weight; not part of the layer's state-dict keys.
    public var lowRank: LowRankUpdate?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, _ i: inout Initializer) throws {
        let bound = 1 / Double(inFeatures).squareRoot()
        weight = try i.uniform([outFeatures, inFeatures], bound: bound)
        self.bias = bias ? try i.uniform([outFeatures], bound: bound) : nil
    }
    public func collect(_ p: inout Parameters) { p.add(weight: weight, bias: bias) }
    /// …×in → …×out
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try Tensor.call("linear", [x, weight]) { mt_linear(x.handle, weight.handle, bias?.handle) }
        guard let lowRank else { return y }
        return try y + lowRank(x)
    }
}

public final class Conv2d: Module {
    public let weight: Tensor  // out×(in/groups)×k×k
    public let bias: Tensor?
    let stride: [Int64], padding: [Int64], dilation: [Int64], groups: Int64

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true, _ i: inout Initializer) throws {
        let fanIn = inChannels / groups * kernel * kernel
        let bound = 1 / Double(fanIn).squareRoot()
        weight = try i.uniform([outChannels, inChannels / groups, kernel, kernel], bound: bound)
        self.bias = bias ? try i.uniform([outChannels], bound: bound) : nil
        self.stride = [Int64(stride), Int64(stride)]
        self.padding = [Int64(padding), Int64(padding)]
        self.dilation = [Int64(dilation), Int64(dilation)]
        self.groups = Int64(groups)
    }
    public func collect(_ p: inout Parameters) { p.add(weight: weight, bias: bias) }
    /// B×C×H×W → B×out×H'×W'
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Tensor.call("conv2d", [x, weight]) {
            mt_conv2d(x.handle, weight.handle, bias?.handle, stride, padding, dilation, groups)
        }
    }
}

public final class ConvTranspose2d: Module {
    public let weight: Tensor  // in×out×k×k
    public let bias: Tensor?
    let stride: [Int64], padding: [Int64]

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int, padding: Int = 0, bias: Bool = true,
                _ i: inout Initializer) throws {
        // PyTorch computes fan_in from weight.size(1) for transposed convolutions.
        let bound = 1 / Double(outChannels * kernel * kernel).squareRoot()
        weight = try i.uniform([inChannels, outChannels, kernel, kernel], bound: bound)
        self.bias = bias ? try i.uniform([outChannels], bound: bound) : nil
        self.stride = [Int64(stride), Int64(stride)]
        self.padding = [Int64(padding), Int64(padding)]
    }
    public func collect(_ p: inout Parameters) { p.add(weight: weight, bias: bias) }
    /// B×in×H×W → B×out×((H−1)·s − 2p + k)×((W−1)·s − 2p + k)
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let zero: [Int64] = [0, 0]
        return try Tensor.call("conv_transpose2d", [x, weight]) {
            mt_conv_transpose2d(x.handle, weight.handle, bias?.handle, stride, padding, zero, 1)
        }
    }
}

/// nn.LayerNorm over the last dimension.
public final class LayerNorm: Module {
    public let weight: Tensor, bias: Tensor
    let eps: Double

    public init(_ dim: Int, eps: Double = 1e-5, _ i: inout Initializer) throws {
        weight = try i.constant([dim], 1)
        bias = try i.constant([dim], 0)
        self.eps = eps
    }
    public func collect(_ p: inout Parameters) { p.add(weight: weight, bias: bias) }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let shape: [Int64] = [Int64(weight.shape[0])]
        return try Tensor.call("layer_norm", [x, weight]) { mt_layer_norm(x.handle, shape, 1, weight.handle, bias.handle, eps) }
    }
}

/// SAM's LayerNorm2d: normalises B×C×H×W over C, written out as SAM writes it so gradients match.
public final class LayerNorm2d: Module {
    public let weight: Tensor, bias: Tensor
    let eps: Double

    public init(_ channels: Int, eps: Double = 1e-6, _ i: inout Initializer) throws {
        weight = try i.constant([channels], 1)
        bias = try i.constant([channels], 0)
        self.eps = eps
    }
    public func collect(_ p: inout Parameters) { p.add(weight: weight, bias: bias) }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let u = try x.mean([1], keepDim: true)
        let d = try x - u
        let s = try d.pow(2).mean([1], keepDim: true)
        let n = try d / (s + eps).sqrt()
        let c = weight.shape[0]
        return try weight.reshape([c, 1, 1]) * n + bias.reshape([c, 1, 1])
    }
}

/// nn.BatchNorm2d with running statistics (inference statistics; they are buffers, not trained).
public final class BatchNorm2d: Module {
    public let weight: Tensor, bias: Tensor
    public let runningMean: Tensor, runningVar: Tensor, batchesTracked: Tensor
    let eps: Double

    public init(_ channels: Int, eps: Double = 1e-5, weightInit: Double = 1, _ i: inout Initializer) throws {
        weight = try i.constant([channels], weightInit)
        bias = try i.constant([channels], 0)
        runningMean = try i.constant([channels], 0, trainable: false)
        runningVar = try i.constant([channels], 1, trainable: false)
        batchesTracked = try Tensor.zeros([], dtype: .i64, device: i.device)
        self.eps = eps
    }
    public func collect(_ p: inout Parameters) {
        p.add("weight", weight)
        p.add("bias", bias)
        p.add("running_mean", runningMean, trainable: false)
        p.add("running_var", runningVar, trainable: false)
        p.add("num_batches_tracked", batchesTracked, trainable: false)
    }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try Tensor.call("batch_norm", [x, weight]) {
            mt_batch_norm(x.handle, weight.handle, bias.handle, runningMean.handle, runningVar.handle, eps)
        }
    }
}

/// nn.Embedding: rows of a table looked up by index.
public final class Embedding: Module {
    public let weight: Tensor  // count×dim

    public init(_ count: Int, _ dim: Int, _ i: inout Initializer) throws {
        weight = try i.normal([count, dim])
    }
    public func collect(_ p: inout Parameters) { p.add("weight", weight) }
    public func callAsFunction(_ indices: Tensor) throws -> Tensor { try weight.indexSelect(0, indices) }
}

public enum Activation {
    case gelu, relu
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .gelu: return try x.gelu()
        case .relu: return try x.relu()
        }
    }
}

/// SAM's MLP: `depth` linear layers named layers.0 … layers.N-1, ReLU between, optional sigmoid.
public final class MLP: Module {
    public let layers: [Linear]
    let sigmoidOutput: Bool

    public init(_ input: Int, hidden: Int, output: Int, depth: Int, sigmoidOutput: Bool = false, _ i: inout Initializer) throws {
        let dims = [input] + Array(repeating: hidden, count: depth - 1) + [output]
        layers = try (0..<depth).map { try Linear(dims[$0], dims[$0 + 1], &i) }
        self.sigmoidOutput = sigmoidOutput
    }
    public func collect(_ p: inout Parameters) { p.add("layers", layers) }
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var x = x
        for (k, layer) in layers.enumerated() {
            x = try layer(x)
            if k < layers.count - 1 { x = try x.relu() }
        }
        return sigmoidOutput ? try x.sigmoid() : x
    }
}
