import CTorch
import Foundation

/// What a launcher tells each process, in torchrun's variables: RANK and WORLD_SIZE over all
/// nodes, LOCAL_RANK and LOCAL_WORLD_SIZE on this node, MASTER_ADDR:MASTER_PORT where rank 0
/// serves the rendezvous, and GLOO_SOCKET_IFNAME, the network interface Gloo binds to.
public struct Launch: Equatable, Sendable {
    public var rank: Int, worldSize: Int
    public var localRank: Int, localWorldSize: Int
    public var masterAddress: String, masterPort: Int
    public var socketInterface: String?
    /// torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT
    /// (TORCHELASTIC_USE_AGENT_STORE=True): every process connects to it, rank 0 included.
    public var agentStore = false

    public init(rank: Int, worldSize: Int, localRank: Int, localWorldSize: Int, masterAddress: String, masterPort: Int,
                socketInterface: String? = nil, agentStore: Bool = false) {
        self.rank = rank; self.worldSize = worldSize; self.localRank = localRank; self.localWorldSize = localWorldSize
        self.masterAddress = masterAddress; self.masterPort = masterPort; self.socketInterface = socketInterface; self.agentStore = agentStore
    }

    /// The launch the environment describes, or nil when WORLD_SIZE is unset or 1. LOCAL_RANK and
    /// LOCAL_WORLD_SIZE default to a single node's (RANK, WORLD_SIZE).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> Launch? {
        guard let text = env["WORLD_SIZE"] else { return nil }
        guard let world = Int(text), world >= 1 else { throw LaunchError("WORLD_SIZE", text, "a process count of 1 or more") }
        guard world > 1 else { return nil }
        func number(_ name: String, _ range: Range<Int>, default value: Int? = nil) throws -> Int {
            guard let text = env[name] else {
                if let value { return value }
                throw LaunchError(name, nil, "0…\(range.upperBound - 1), as WORLD_SIZE is \(world)")
            }
            guard let n = Int(text), range.contains(n) else { throw LaunchError(name, text, "a number in \(range.lowerBound)…\(range.upperBound - 1)") }
            return n
        }
        let rank = try number("RANK", 0..<world)
        let localWorld = try number("LOCAL_WORLD_SIZE", 1..<(world + 1), default: world)
        guard world % localWorld == 0 else { throw LaunchError("LOCAL_WORLD_SIZE", String(localWorld), "a divisor of WORLD_SIZE \(world)") }
        let localRank = try number("LOCAL_RANK", 0..<localWorld, default: rank % localWorld)
        guard let portText = env["MASTER_PORT"] else { throw LaunchError("MASTER_PORT", nil, "the rendezvous port") }
        guard let port = Int(portText), (1..<65536).contains(port) else { throw LaunchError("MASTER_PORT", portText, "a port number") }
        let interface = env["GLOO_SOCKET_IFNAME"].flatMap { $0.isEmpty ? nil : $0.split(separator: ",").first.map(String.init) }
        return Launch(rank: rank, worldSize: world, localRank: localRank, localWorldSize: localWorld,
                      masterAddress: env["MASTER_ADDR"] ?? "127.0.0.1", masterPort: port, socketInterface: interface,
                      agentStore: env["TORCHELASTIC_USE_AGENT_STORE"] == "True")
    }

    /// Nodes in the run: processes are spread evenly, LOCAL_WORLD_SIZE on each.
    public var nodes: Int { worldSize / localWorldSize }

    /// The device of this process for a `--device` argument: "cuda" without an index means this
    /// process's own GPU, cuda:LOCAL_RANK; anything else is as given.
    public func device(_ argument: String) -> Device? {
        argument == "cuda" ? .cuda(localRank) : Device(argument)
    }
}

/// A launcher variable that is missing or malformed, by name.
public struct LaunchError: Error, CustomStringConvertible {
    public let description: String
    init(_ name: String, _ value: String?, _ expected: String) {
        description = value.map { "\(name)=\($0): expected \(expected)" } ?? "\(name) is not set: expected \(expected)"
    }
}

/// A torch.distributed process group (c10d): the processes of one training run, on one machine
/// or several, rendezvousing at MASTER_ADDR:MASTER_PORT as torchrun's do. NCCL when the model
/// runs on CUDA, Gloo on the CPU; collectives on tensors of another device go through copies.
public final class ProcessGroup {
    let handle: mt_group
    public let rank: Int, worldSize: Int
    /// Where the collectives run: the CPU (Gloo) or this process's GPU (NCCL).
    public let device: Device

    public init(_ launch: Launch, device: Device = .cpu, timeout: Double = 600) throws {
        guard let h = mt_group_new(device == .cpu ? 0 : 1, launch.masterAddress, Int32(launch.masterPort), launch.rank == 0 && !launch.agentStore ? 1 : 0,
                                   Int32(launch.rank), Int32(launch.worldSize), launch.socketInterface, launch.nodes == 1 ? 1 : 0, timeout) else {
            throw TorchError.last("process group (\(device == .cpu ? "gloo" : "nccl"), rank \(launch.rank) of \(launch.worldSize))")
        }
        handle = h
        rank = launch.rank
        worldSize = launch.worldSize
        self.device = device
    }
    deinit { mt_group_free(handle) }

    /// Runs a collective on the group's device: tensors elsewhere go there and their results come back.
    private func onDevice(_ tensors: [Tensor], _ op: String, _ body: ([mt_tensor?]) -> Int32) throws {
        guard !tensors.isEmpty else { return }
        let moved = try tensors.map { t in try t.device == device ? t : t.to(device) }
        if body(moved.map(\.handle)) != 0 { throw TorchError.last(op) }
        for (t, m) in zip(tensors, moved) where t !== m { try t.assign(m) }
    }

    /// Sums the tensors over all processes, in place.
    public func allReduceSum(_ tensors: [Tensor]) throws {
        try onDevice(tensors, "all_reduce") { mt_group_all_reduce(handle, $0, Int32($0.count)) }
    }

    /// Copies rank `root`'s tensors into everyone's, in place.
    public func broadcast(_ tensors: [Tensor], root: Int = 0) throws {
        try onDevice(tensors, "broadcast") { mt_group_broadcast(handle, $0, Int32($0.count), Int32(root)) }
    }

    /// Waits for every process. With NCCL, a one-element all-reduce on this process's GPU, so
    /// that NCCL need not guess the device.
    public func barrier() throws {
        if device != .cpu { return try allReduceSum([try Tensor.zeros([1], device: device)]) }
        if mt_group_barrier(handle) != 0 { throw TorchError.last("barrier") }
    }
}
