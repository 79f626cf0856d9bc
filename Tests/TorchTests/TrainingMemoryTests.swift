import Foundation
import Torch
import XCTest

/// Activation checkpointing, bf16 autocast on the CPU, and the launcher's variables.
final class TrainingMemoryTests: XCTestCase {
    /// x → gelu(x·W1)·W2 → sum of squares; gradients of x, W1 and W2.
    func gradients(checkpointed: Bool, inputNeedsGrad: Bool = true, calls: inout Int) throws -> [[Float]] {
        let x = try Tensor.randn([4, 6], seed: 1).requiresGrad(inputNeedsGrad)
        let w1 = try Tensor.randn([6, 8], seed: 2).requiresGrad(true), w2 = try Tensor.randn([8, 6], seed: 3).requiresGrad(true)
        var count = 0
        let block = { (h: Tensor) throws -> Tensor in count += 1; return try h.matmul(w1).gelu().matmul(w2) }
        let y = try checkpointed ? x.checkpointed(block) : block(x)
        try (y * y).sum().backward()
        calls = count
        return try ([w1, w2] + (inputNeedsGrad ? [x] : [])).map { try XCTUnwrap($0.grad).floats() }
    }

    func testCheckpointedBlockGivesTheSameGradientsByRunningTwice() throws {
        var plainCalls = 0, checkpointCalls = 0
        let plain = try gradients(checkpointed: false, calls: &plainCalls)
        let again = try gradients(checkpointed: true, calls: &checkpointCalls)
        XCTAssertEqual(plainCalls, 1)
        XCTAssertEqual(checkpointCalls, 2, "forward without activations, then the recomputation in backward")
        for (a, b) in zip(plain, again) {
            XCTAssertEqual(a.count, b.count)
            for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) }
        }
        XCTAssertGreaterThan(plain[0].map(abs).max()!, 0.1)
        // The block's weights still get gradients when its input needs none (a frozen stem).
        let frozenInput = try gradients(checkpointed: true, inputNeedsGrad: false, calls: &checkpointCalls)
        for (a, b) in zip(plain.prefix(2), frozenInput) { for (u, v) in zip(a, b) { XCTAssertEqual(u, v, accuracy: 1e-5) } }
    }

    func testCheckpointedBlockErrorsReachTheCallerAndTheBlockIsReleased() throws {
        weak var released: Tensor?
        do {
            let w = try Tensor.randn([3, 3], seed: 4).requiresGrad(true)
            released = w
            var first = true
            let y = try Tensor.ones([2, 3]).requiresGrad(true).checkpointed { h in
                defer { first = false }
                if !first { throw TorchError(op: "block", message: "recomputation refused") }
                return try h.matmul(w)
            }
            XCTAssertThrowsError(try y.sum().backward()) { XCTAssertTrue("\($0)".contains("recomputation refused"), "\($0)") }
        }
        XCTAssertNil(released, "the graph's hold on the block (and what it captured) ends with the graph")
        XCTAssertThrowsError(try Tensor.ones([2, 3]).checkpointed { _ in throw TorchError(op: "block", message: "no output") }) {
            XCTAssertTrue("\($0)".contains("no output"), "\($0)")
        }
    }

    /// CPU autocast: products in bf16, the weights and their gradients in fp32.
    func testAutocastOnTheCPUKeepsWeightsInFP32() throws {
        let x = try Tensor.randn([8, 16], seed: 5)
        let w = try Tensor.randn([16, 4], seed: 6).requiresGrad(true)
        let exact = try x.matmul(w)
        let (y, inside) = try Runtime.autocast(.cpu) { (try x.matmul(w), try x.matmul(w).dtype) }
        XCTAssertEqual(inside, .bf16)
        XCTAssertEqual(try x.matmul(w).dtype, .f32, "autocast ends with its scope")
        try y.to(.f32).sum().backward()
        XCTAssertEqual(w.dtype, .f32)
        XCTAssertEqual(try XCTUnwrap(w.grad).dtype, .f32)
        let (a, b) = (try exact.floats(), try y.to(.f32).floats())
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($0)) }.max()!
        XCTAssertGreaterThan(worst, 0, "bf16 rounds")
        XCTAssertLessThan(worst, 0.05, "bf16 keeps 8 bits of mantissa")
    }

    func testLaunchReadsTorchrunsVariables() throws {
        XCTAssertNil(try Launch.fromEnvironment([:]))
        XCTAssertNil(try Launch.fromEnvironment(["WORLD_SIZE": "1"]))
        let l = try XCTUnwrap(Launch.fromEnvironment(["WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                                                      "MASTER_ADDR": "10.1.2.3", "MASTER_PORT": "29500", "GLOO_SOCKET_IFNAME": "eth1,eth2"]))
        XCTAssertEqual(l, Launch(rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, masterAddress: "10.1.2.3", masterPort: 29500, socketInterface: "eth1"))
        XCTAssertEqual(l.nodes, 2)
        XCTAssertEqual(l.device("cuda"), .cuda(1), "cuda means this process's GPU")
        XCTAssertEqual(l.device("cuda:3"), .cuda(3))
        XCTAssertEqual(l.device("cpu"), .cpu)
        // Without LOCAL_*: one node.
        let single = try XCTUnwrap(Launch.fromEnvironment(["WORLD_SIZE": "2", "RANK": "1", "MASTER_PORT": "1234"]))
        XCTAssertEqual([single.localRank, single.localWorldSize, single.nodes], [1, 2, 1])
        XCTAssertEqual(single.masterAddress, "127.0.0.1")
        XCTAssertFalse(single.agentStore)
        // Under torchrun the agent serves the store; rank 0 connects to it like the others.
        XCTAssertTrue(try XCTUnwrap(Launch.fromEnvironment(["WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "1", "TORCHELASTIC_USE_AGENT_STORE": "True"])).agentStore)
        for (env, message) in [
            (["WORLD_SIZE": "2", "MASTER_PORT": "1"], "RANK is not set"),
            (["WORLD_SIZE": "2", "RANK": "2", "MASTER_PORT": "1"], "RANK=2: expected a number in 0…1"),
            (["WORLD_SIZE": "2", "RANK": "0"], "MASTER_PORT is not set"),
            (["WORLD_SIZE": "4", "RANK": "0", "LOCAL_WORLD_SIZE": "3", "MASTER_PORT": "1"], "LOCAL_WORLD_SIZE=3: expected a divisor of WORLD_SIZE 4"),
            (["WORLD_SIZE": "two"], "WORLD_SIZE=two"),
        ] {
            XCTAssertThrowsError(try Launch.fromEnvironment(env)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }

    /// Gloo's device: a missing interface is named with its variable; with several nodes, a host
    /// name that resolves to loopback (as on many single machines) is refused, not bound.
    func testGlooDeviceErrorsNameTheVariableAndAddress() throws {
        let twoNodes = Launch(rank: 0, worldSize: 2, localRank: 0, localWorldSize: 1, masterAddress: "127.0.0.1", masterPort: 29999,
                              socketInterface: "nosuch0")
        XCTAssertThrowsError(try ProcessGroup(twoNodes, timeout: 2)) { XCTAssertTrue("\($0)".contains("GLOO_SOCKET_IFNAME=nosuch0"), "\($0)") }
        var byName = twoNodes
        byName.socketInterface = nil
        let name = ProcessInfo.processInfo.hostName
        let loopback = (try? String(contentsOfFile: "/etc/hosts", encoding: .utf8))?.split(separator: "\n")
            .contains { $0.hasPrefix("127.") && $0.split(whereSeparator: \.isWhitespace).dropFirst().contains(Substring(name)) } ?? false
        try XCTSkipUnless(loopback, "this host's name does not resolve to loopback in /etc/hosts")
        XCTAssertThrowsError(try ProcessGroup(byName, timeout: 2)) {
            XCTAssertTrue("\($0)".contains("resolves to the loopback address") && "\($0)".contains("GLOO_SOCKET_IFNAME"), "\($0)")
        }
    }
}
