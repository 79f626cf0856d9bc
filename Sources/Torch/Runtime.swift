import CTorch
import Foundation

/// Process-wide libtorch settings.
public enum Runtime {
    public static var threads: Int {
        get { Int(mt_get_num_threads()) }
        set { mt_set_num_threads(Int32(newValue)) }
    }

    /// The folder libtorch_cpu.so was loaded from: libtorch_cuda.so is looked for beside it.
    static var libraryFolder: String? {
        let dir = String(cString: mt_library_dir())
        return dir.isEmpty ? nil : dir
    }

    /// Makes `device` usable: for CUDA, loads libtorch's CUDA kernels (once) and checks the device
    /// exists. A machine without a GPU gets an error that says what is missing.
    public static func prepare(_ device: Device) throws {
        guard case .cuda(let index) = device else { return }
        var count = Int(mt_cuda_device_count())
        if count <= 0 {
            guard let folder = libraryFolder else {
                throw TorchError(op: "cuda", message: "cannot locate libtorch_cpu.so to find libtorch_cuda.so beside it")
            }
            guard FileManager.default.fileExists(atPath: folder + "/libtorch_cuda.so") else {
                throw TorchError(op: "cuda", message: "\(device) asked for, but this libtorch (\(folder)) has no libtorch_cuda.so: use a CUDA build of libtorch (MEDCAT_LIBTORCH when building, or LD_LIBRARY_PATH when running)")
            }
            count = Int(mt_cuda_load(folder))
            if count < 0 { throw TorchError.last("cuda") }
        }
        guard index < count else {
            throw TorchError(op: "cuda", message: count == 0 ? "\(device) asked for, but no CUDA GPU is visible" : "\(device) asked for, but only \(count) CUDA device(s) are visible")
        }
    }

    public static func synchronize(_ device: Device) throws {
        if case .cuda(let n) = device, mt_cuda_synchronize(Int32(n)) != 0 {
            throw TorchError.last("cuda.synchronize")
        }
    }

    /// Runs `body` under autocast on `device`'s type with `dtype` (bf16 by default), as
    /// torch.autocast does: matrix products and convolutions in `dtype`, reductions, norms and
    /// losses in fp32; parameters and their gradients stay fp32.
    public static func autocast<T>(_ device: Device, _ dtype: DType = .bf16, _ body: () throws -> T) throws -> T {
        let previous = mt_set_autocast(device.code, 1, dtype.rawValue)
        if previous < 0 { throw TorchError.last("autocast") }
        defer { mt_set_autocast(device.code, previous, dtype.rawValue) }
        return try body()
    }

    /// The most bytes CUDA tensors have held on `device` since the last reset (torch.cuda's
    /// max_memory_allocated); `reset` starts a new count.
    public static func peakMemory(_ device: Device, reset: Bool = false) throws -> Int {
        guard case .cuda(let n) = device else { throw TorchError(op: "peak memory", message: "kept for CUDA devices only") }
        let bytes = mt_cuda_peak_memory(Int32(n), reset ? 1 : 0)
        if bytes < 0 { throw TorchError.last("peak memory") }
        return Int(bytes)
    }
}
