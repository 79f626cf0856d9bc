import Foundation
import Torch
import XCTest

final class TensorTests: XCTestCase {
    func testValuesShapesAndDtypesRoundTrip() throws {
        let a = try Tensor([Float(1), 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.dtype, .f32)
        XCTAssertEqual(a.device, .cpu)
        XCTAssertEqual(try a.transpose(0, 1).contiguous().floats(), [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(try a.to(.i64).values(as: Int64.self), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try a.to(.bf16).floats(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try a.to(.f16).to(.f32).floats(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try a.gt(3).values(as: Bool.self), [false, false, false, true, true, true])
        XCTAssertEqual(try a.to(.u8).values(as: UInt8.self), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try a.sum([1]).floats(), [6, 15])
        XCTAssertEqual(try a.mean().item(), 3.5)
        XCTAssertEqual(try a.amax([0]).floats(), [4, 5, 6])
        XCTAssertEqual(try a.argmax(1).values(as: Int64.self), [2, 2])
        XCTAssertEqual(try (10 - a).floats(), [9, 8, 7, 6, 5, 4])
        XCTAssertEqual(try a.narrow(1, 1, 2).contiguous().floats(), [2, 3, 5, 6])
        XCTAssertEqual(try Tensor.cat([a, a], dim: 0).shape, [4, 3])
        XCTAssertEqual(try a.pad([1, 0]).floats(), [0, 1, 2, 3, 0, 4, 5, 6])
    }

    func testMatmulAndConvolutionGiveKnownNumbers() throws {
        let a = try Tensor([Float(1), 2, 3, 4], shape: [2, 2])
        let b = try Tensor([Float(5), 6, 7, 8], shape: [2, 2])
        XCTAssertEqual(try a.matmul(b).floats(), [19, 22, 43, 50])
        // A 3×3 box filter over a 4×4 ramp, no padding: the mean of each window times 9.
        var init_ = Initializer(seed: 1)
        let conv = try Conv2d(1, 1, kernel: 3, bias: false, &init_)
        try conv.weight.assign(Tensor.ones([1, 1, 3, 3]))
        let x = try Tensor((0..<16).map(Float.init), shape: [1, 1, 4, 4])
        XCTAssertEqual(try withoutGrad { try conv(x) }.floats(), [45, 54, 81, 90])
    }

    func testErrorsNameTheOperationAndShapesInsteadOfCrashing() throws {
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4, 5])
        XCTAssertThrowsError(try a.matmul(b)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("matmul([2, 3], [4, 5]):"), text)
            XCTAssertTrue(text.contains("cannot be multiplied"), text)
        }
        XCTAssertThrowsError(try a.reshape([7])) { XCTAssertTrue("\($0)".hasPrefix("reshape([2, 3]):"), "\($0)") }
        XCTAssertThrowsError(try a.select(0, 5)) { XCTAssertTrue("\($0)".contains("out of range"), "\($0)") }
        XCTAssertThrowsError(try Tensor([Float(1), 2], shape: [3])) { XCTAssertTrue("\($0)".contains("2 values for 3 elements"), "\($0)") }
        // After an error the thread's next call works and its message is clear.
        XCTAssertEqual(try (a + 1).sum().item(), 6)
    }

    func testAutogradGradientsOfAKnownFunction() throws {
        let x = try Tensor([Float(1), -2, 3], shape: [3]).requiresGrad(true)
        let y = try (x * x * 3 + x.sin()).sum()  // dy/dx = 6x + cos x
        try y.backward()
        let g = try XCTUnwrap(x.grad).floats()
        for (k, v) in [Float(1), -2, 3].enumerated() { XCTAssertEqual(g[k], 6 * v + cos(v), accuracy: 1e-5) }
        let z = try withoutGrad { try x * 2 }
        XCTAssertFalse(z.requiresGrad, "no graph is recorded without grad")
        try x.zeroGrad()
        XCTAssertNil(x.grad)
    }

    /// AdamW's first step moves each parameter by lr·sign(grad) (after decoupled weight decay).
    func testAdamWFirstStepAndStateRoundTrip() throws {
        let p = try Tensor([Float(1), -1, 2], shape: [3]).requiresGrad(true)
        let opt = try Optimizer.adamW([p], lr: 0.1, weightDecay: 0.5)
        try (p * Tensor([Float(2), -3, 0.5], shape: [3])).sum().backward()
        try opt.step()
        let expected: [Float] = [1 * (1 - 0.05) - 0.1, -1 * (1 - 0.05) + 0.1, 2 * (1 - 0.05) - 0.1]
        for (a, b) in zip(try p.detach().floats(), expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        let state = try opt.state(of: 0)
        XCTAssertEqual(state.count, 3)
        XCTAssertEqual(try state[0].item(), 1, "step count")
        XCTAssertEqual(try state[1].floats(), [0.2, -0.3, 0.05].map { Float($0) })
        let q = try p.detach().clone().requiresGrad(true)
        let other = try Optimizer.adamW([q], lr: 0.1, weightDecay: 0.5)
        try other.setState(of: 0, state)
        XCTAssertEqual(try other.state(of: 0)[2].floats(), try state[2].floats())
    }

    func testGradientClippingScalesToTheMaximumNorm() throws {
        let p = try Tensor([Float(0), 0], shape: [2]).requiresGrad(true)
        try (p * Tensor([Float(3), 4], shape: [2])).sum().backward()
        XCTAssertEqual(try clipGradNorm([p], maxNorm: 1), 5, accuracy: 1e-5)
        let g = try XCTUnwrap(p.grad).floats()
        XCTAssertEqual(g[0], 0.6, accuracy: 1e-4)
        XCTAssertEqual(g[1], 0.8, accuracy: 1e-4)
    }

    func testSeededRandomNumbersRepeat() throws {
        XCTAssertEqual(try Tensor.randn([5], seed: 42).floats(), try Tensor.randn([5], seed: 42).floats())
        XCTAssertNotEqual(try Tensor.randn([5], seed: 42).floats(), try Tensor.randn([5], seed: 43).floats())
    }

    func testCudaWithoutAGPUIsAClearError() throws {
        XCTAssertEqual(Device("cuda:2"), .cuda(2))
        XCTAssertEqual(Device("cuda"), .cuda(0))
        XCTAssertNil(Device("gpu"))
        if (try? Runtime.prepare(.cuda(0))) != nil { return }  // a GPU machine: covered by the device runs
        XCTAssertThrowsError(try Runtime.prepare(.cuda(0))) { XCTAssertTrue("\($0)".contains("cuda:0 asked for"), "\($0)") }
    }

    /// 10^5 operations (each allocating a result handle) leave the resident set where it was:
    /// every handle is freed by deinit.
    func testHandlesAreFreedSoMemoryStaysFlat() throws {
        let x = try Tensor.randn([64, 64], seed: 1)
        func rss() -> Int {
            let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "0 0"
            return (Int(statm.split(separator: " ")[1]) ?? 0) * 4096
        }
        for _ in 0..<5000 { _ = try (x * 2 + 1).sum() }  // warm the allocator
        let before = rss()
        for _ in 0..<33_334 { _ = try (x * 2 + 1).sum() }  // 3 ops per iteration
        let growth = rss() - before
        XCTAssertLessThan(growth, 8 << 20, "RSS grew \(growth >> 20) MiB over 10^5 ops")
    }
}
