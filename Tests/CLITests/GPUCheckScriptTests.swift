import Foundation
import XCTest

@testable import TestSupport

/// tools/gpu-check.sh on this machine's CPU: without a GPU it stops with status 2 and says why;
/// with --cpu it runs every check (parity against the fixtures, fp32 and bf16 steps, the timings)
/// on the CPU. The bundle is this build's medcat-sam-bench with LiteMedSAM's weights beside it.
final class GPUCheckScriptTests: BinaryTestCase {
    func gpuCheck(_ args: [String], bundle: URL, weights: URL? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = PackageFiles.root.appendingPathComponent("tools/gpu-check.sh")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["MEDCAT_GPU_BUNDLE"] = bundle.path
        env["MEDCAT_TORCH_LIB"] = PackageFiles.root.appendingPathComponent(".deps/torch/torch/lib").path
        if let weights { env["MEDCAT_LITE_MEDSAM"] = weights.path }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testStopsClearlyWithoutAGPUAndPassesItsCPUDryRun() throws {
        let bundle = dir.appendingPathComponent("bundle")
        let fm = FileManager.default
        try fm.createDirectory(at: bundle.appendingPathComponent("lib"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(at: bundle.appendingPathComponent("medcat-sam-bench"),
                                  withDestinationURL: Self.binary.deletingLastPathComponent().appendingPathComponent("medcat-sam-bench"))
        try fm.createSymbolicLink(at: bundle.appendingPathComponent("lite_medsam.pth"), withDestinationURL: try PackageFiles.realData("lite_medsam.pth"))

        // This libtorch has no CUDA kernels, so there is no GPU to use, whatever the machine has.
        let gpu = try gpuCheck([], bundle: bundle)
        XCTAssertEqual(gpu.status, 2, gpu.output)
        XCTAssertTrue(gpu.output.contains("no usable cuda device") && gpu.output.contains("no libtorch_cuda.so"), gpu.output)

        let missing = try gpuCheck(["--cpu"], bundle: bundle, weights: dir.appendingPathComponent("none.pth"))
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.output.contains("no LiteMedSAM weights at \(dir.appendingPathComponent("none.pth").path)"), missing.output)

        let cpu = try gpuCheck(["--cpu"], bundle: bundle)
        XCTAssertEqual(cpu.status, 0, cpu.output)
        for line in ["PASS forward parity against the CPU references (tolerance 1e-4)", "PASS one training step, fp32", "PASS one training step, bf16",
                     "PASS bf16 loss within 2% of fp32's", "LiteMedSAM inference: {\"images_per_s\"",
                     "vit_b at 256 px, batch 1, fp32, plain activations", "vit_b at 256 px, batch 1, fp32, checkpointed activations",
                     "gpu-check: all checks passed"] {
            XCTAssertTrue(cpu.output.contains(line), "missing '\(line)' in:\n\(cpu.output)")
        }
        XCTAssertFalse(cpu.output.contains("FAIL"), cpu.output)
    }
}
