import CTorch

/// The block a checkpoint runs, kept alive by the autograd graph until its backward pass is done.
private final class CheckpointedBlock {
    let body: (Tensor) throws -> Tensor
    init(_ body: @escaping (Tensor) throws -> Tensor) { self.body = body }
}

extension Tensor {
    /// `body(self)` without its activations: the forward pass keeps only this input, and the
    /// backward pass runs `body` again to get the gradients (torch.utils.checkpoint). `body` must
    /// compute the same thing twice: no dropout, no state it changes.
    public func checkpointed(_ body: @escaping (Tensor) throws -> Tensor) throws -> Tensor {
        let context = Unmanaged.passRetained(CheckpointedBlock(body)).toOpaque()
        let run: mt_block_fn = { ctx, input in
            let block = Unmanaged<CheckpointedBlock>.fromOpaque(ctx!).takeUnretainedValue()
            do {
                guard let h = mt_share(input) else { return nil }
                let output = try block.body(Tensor(handle: h))
                return mt_share(output.handle)
            } catch {
                mt_set_last_error("\(error)")
                return nil
            }
        }
        let release: mt_release_fn = { ctx in Unmanaged<CheckpointedBlock>.fromOpaque(ctx!).release() }
        return try Tensor.call("checkpoint", [self]) { mt_checkpoint(run, context, release, handle) }
    }
}
