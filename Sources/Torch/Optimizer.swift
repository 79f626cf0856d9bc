import CTorch

/// torch::optim's AdamW and SGD over a fixed list of parameters.
public final class Optimizer {
    public enum Kind: Int32 { case adamW = 0, sgd = 1 }
    let handle: mt_optim
    public let kind: Kind
    public let parameters: [Tensor]
    public private(set) var learningRate: Double

    public static func adamW(_ parameters: [Tensor], lr: Double, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                             weightDecay: Double = 0.01) throws -> Optimizer {
        try Optimizer(.adamW, parameters, lr: lr, a: betas.0, b: betas.1, eps: eps, weightDecay: weightDecay)
    }
    public static func sgd(_ parameters: [Tensor], lr: Double, momentum: Double = 0, weightDecay: Double = 0) throws -> Optimizer {
        try Optimizer(.sgd, parameters, lr: lr, a: momentum, b: 0, eps: 0, weightDecay: weightDecay)
    }

    init(_ kind: Kind, _ parameters: [Tensor], lr: Double, a: Double, b: Double, eps: Double, weightDecay: Double) throws {
        let handles: [mt_tensor?] = parameters.map(\.handle)
        guard let h = mt_optim_new(kind.rawValue, handles, Int32(handles.count), lr, a, b, eps, weightDecay) else {
            throw TorchError.last("optimizer")
        }
        handle = h
        self.kind = kind
        self.parameters = parameters
        learningRate = lr
    }
    deinit { mt_optim_free(handle) }

    public func step() throws {
        if mt_optim_step(handle) != 0 { throw TorchError.last("optimizer.step") }
    }
    /// Drops the gradients (set to None, as PyTorch's zero_grad(set_to_none=True)).
    public func zeroGrad() throws {
        if mt_optim_zero_grad(handle) != 0 { throw TorchError.last("optimizer.zero_grad") }
    }
    public func setLearningRate(_ lr: Double) throws {
        if mt_optim_set_lr(handle, lr) != 0 { throw TorchError.last("optimizer.set_lr") }
        learningRate = lr
    }

    /// Per-parameter state for checkpoints (AdamW: step, exp_avg, exp_avg_sq; SGD: momentum buffer).
    public func state(of index: Int) throws -> [Tensor] {
        var out = [mt_tensor?](repeating: nil, count: 4)
        let n = mt_optim_state(handle, Int32(index), &out, 4)
        if n < 0 { throw TorchError.last("optimizer.state") }
        return out.prefix(Int(n)).map { Tensor(handle: $0!) }
    }
    public func setState(of index: Int, _ state: [Tensor]) throws {
        let handles: [mt_tensor?] = state.map(\.handle)
        if mt_optim_set_state(handle, Int32(index), handles, Int32(handles.count)) != 0 {
            throw TorchError.last("optimizer.set_state")
        }
    }
}

/// Scales the gradients of `parameters` so that their total L2 norm is at most maxNorm; returns the
/// norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double) throws -> Double {
    let handles: [mt_tensor?] = parameters.map(\.handle)
    let norm = mt_clip_grad_norm(handles, Int32(handles.count), maxNorm)
    if norm < 0 { throw TorchError.last("clip_grad_norm") }
    return norm
}
