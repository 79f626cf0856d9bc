import CTorch
import Foundation

/// A torch.distributed process group (c10d, Gloo backend): the processes of one training run, on
/// one machine or several, rendezvousing at MASTER_ADDR:MASTER_PORT as torchrun's do.
public final class ProcessGroup {
    let handle: mt_group
    public let rank: Int, worldSize: Int

    public init(host: String, port: Int, rank: Int, worldSize: Int, timeout: Double = 600) throws {
        guard let h = mt_group_gloo(host, Int32(port), Int32(rank), Int32(worldSize), timeout) else {
            throw TorchError.last("process group (rank \(rank) of \(worldSize) at \(host):\(port))")
        }
        handle = h
        self.rank = rank
        self.worldSize = worldSize
    }
    deinit { mt_group_free(handle) }

    /// The group torchrun's variables describe (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE), or nil
    /// when WORLD_SIZE is unset or 1.
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> ProcessGroup? {
        guard let world = env["WORLD_SIZE"].flatMap(Int.init), world > 1 else { return nil }
        guard let rank = env["RANK"].flatMap(Int.init), (0..<world).contains(rank) else {
            throw TorchError(op: "process group", message: "RANK must be set to 0…\(world - 1) when WORLD_SIZE is \(world)")
        }
        guard let port = env["MASTER_PORT"].flatMap(Int.init) else {
            throw TorchError(op: "process group", message: "MASTER_PORT must be set when WORLD_SIZE is \(world)")
        }
        return try ProcessGroup(host: env["MASTER_ADDR"] ?? "127.0.0.1", port: port, rank: rank, worldSize: world)
    }

    /// Sums the tensors over all processes, in place.
    public func allReduceSum(_ tensors: [Tensor]) throws {
        guard !tensors.isEmpty else { return }
        let handles: [mt_tensor?] = tensors.map(\.handle)
        if mt_group_all_reduce(handle, handles, Int32(handles.count)) != 0 { throw TorchError.last("all_reduce") }
    }

    /// Copies rank `root`'s tensors into everyone's, in place.
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        let handles: [mt_tensor?] = tensors.map(\.handle)
        if mt_group_broadcast(handle, handles, Int32(handles.count), Int32(root)) != 0 { throw TorchError.last("broadcast") }
    }

    public func barrier() throws {
        if mt_group_barrier(handle) != 0 { throw TorchError.last("barrier") }
    }
}
