import CTorch
import Foundation

/// Element types, numbered as libtorch numbers them.
public enum DType: Int32, Sendable, CustomStringConvertible {
    case u8 = 0, i32 = 3, i64 = 4, f16 = 5, f32 = 6, f64 = 7, bool = 11, bf16 = 15

    public var size: Int {
        switch self {
        case .u8, .bool: return 1
        case .f16, .bf16: return 2
        case .i32, .f32: return 4
        case .i64, .f64: return 8
        }
    }
    public var description: String {
        switch self {
        case .u8: return "u8"
        case .i32: return "i32"
        case .i64: return "i64"
        case .f16: return "f16"
        case .f32: return "f32"
        case .f64: return "f64"
        case .bool: return "bool"
        case .bf16: return "bf16"
        }
    }
}

/// Where a tensor lives: the CPU or CUDA device N.
public enum Device: Equatable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    var code: Int32 {
        if case .cuda(let n) = self { return Int32(n) }
        return -1
    }
    init(code: Int32) { self = code < 0 ? .cpu : .cuda(Int(code)) }

    /// Parses "cpu", "cuda" and "cuda:N".
    public init?(_ text: String) {
        if text == "cpu" { self = .cpu; return }
        if text == "cuda" { self = .cuda(0); return }
        guard text.hasPrefix("cuda:"), let n = Int(text.dropFirst(5)), n >= 0 else { return nil }
        self = .cuda(n)
    }
    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        }
    }
}

/// A failed libtorch call: the operation, the shapes it was given and libtorch's message.
public struct TorchError: Error, CustomStringConvertible {
    public let op: String
    public let shapes: [[Int]]
    public let message: String

    public init(op: String, shapes: [[Int]] = [], message: String) {
        self.op = op
        self.shapes = shapes
        self.message = message
    }
    /// The message the shim left for this thread's last failed call.
    static func last(_ op: String) -> TorchError { TorchError(op: op, message: String(cString: mt_last_error())) }

    public var description: String {
        let inputs = shapes.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ", ")
        let firstLine = message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? message
        return shapes.isEmpty ? "\(op): \(firstLine)" : "\(op)(\(inputs)): \(firstLine)"
    }
}

/// A libtorch tensor. The handle is freed when the last Swift reference goes.
public final class Tensor: @unchecked Sendable {
    let handle: mt_tensor

    init(handle: mt_tensor) { self.handle = handle }
    deinit { mt_free(handle) }

    /// Runs one shim call and turns a NULL result into a TorchError naming the op and input shapes.
    static func call(_ op: String, _ inputs: [Tensor], _ body: () -> mt_tensor?) throws -> Tensor {
        guard let h = body() else { throw error(op, inputs) }
        return Tensor(handle: h)
    }
    static func error(_ op: String, _ inputs: [Tensor]) -> TorchError {
        TorchError(op: op, shapes: inputs.map(\.shape), message: String(cString: mt_last_error()))
    }
    static func check(_ op: String, _ inputs: [Tensor], _ status: Int32) throws {
        if status != 0 { throw error(op, inputs) }
    }

    // MARK: creation

    /// A CPU tensor holding a copy of `values`.
    public convenience init<T: TensorElement>(_ values: [T], shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard count == values.count else {
            throw TorchError(op: "from_data", shapes: [shape], message: "\(values.count) values for \(count) elements")
        }
        let dims = shape.map(Int64.init)
        guard let h = values.withUnsafeBytes({ mt_from_data($0.baseAddress, dims, Int32(dims.count), T.dtype.rawValue) }) else {
            throw TorchError(op: "from_data", shapes: [shape], message: String(cString: mt_last_error()))
        }
        self.init(handle: h)
    }

    public static func full(_ shape: [Int], _ value: Double, dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try call("full", []) { mt_full(dims, Int32(dims.count), value, dtype.rawValue, device.code) }
    }
    public static func zeros(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        try full(shape, 0, dtype: dtype, device: device)
    }
    public static func ones(_ shape: [Int], dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        try full(shape, 1, dtype: dtype, device: device)
    }
    /// Standard normal samples; the same seed gives the same values on every device.
    public static func randn(_ shape: [Int], seed: UInt64, dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try call("randn", []) { mt_random(dims, Int32(dims.count), 0, seed, dtype.rawValue, device.code) }
    }
    /// Uniform samples in [0, 1).
    public static func rand(_ shape: [Int], seed: UInt64, dtype: DType = .f32, device: Device = .cpu) throws -> Tensor {
        let dims = shape.map(Int64.init)
        return try call("rand", []) { mt_random(dims, Int32(dims.count), 1, seed, dtype.rawValue, device.code) }
    }
    public static func arange(_ start: Double, _ end: Double, step: Double = 1, dtype: DType = .i64, device: Device = .cpu) throws -> Tensor {
        try call("arange", []) { mt_arange(start, end, step, dtype.rawValue, device.code) }
    }

    // MARK: properties

    public var shape: [Int] {
        var dims = [Int64](repeating: 0, count: Int(mt_ndim(handle)))
        mt_shape(handle, &dims)
        return dims.map(Int.init)
    }
    public var rank: Int { Int(mt_ndim(handle)) }
    public var count: Int { shape.reduce(1, *) }
    public var dtype: DType { DType(rawValue: mt_dtype(handle)) ?? .f32 }
    public var device: Device { Device(code: mt_device(handle)) }

    /// The elements in row-major order, converted to T's dtype on the CPU.
    public func values<T: TensorElement>(as: T.Type = T.self) throws -> [T] {
        let t = dtype == T.dtype && device == .cpu ? self : try to(T.dtype, device: .cpu)
        var out = [T](repeating: T.zero, count: t.count)
        let status = out.withUnsafeMutableBytes { mt_copy_out(t.handle, $0.baseAddress, $0.count) }
        try Tensor.check("copy_out", [t], status)
        return out
    }
    public func floats() throws -> [Float] { try values(as: Float.self) }
    /// The single value of a one-element tensor.
    public func item() throws -> Double {
        let v = try values(as: Double.self)
        guard v.count == 1 else { throw TorchError(op: "item", shapes: [shape], message: "not a one-element tensor") }
        return v[0]
    }

    public func to(_ dtype: DType, device: Device? = nil) throws -> Tensor {
        let d = (device ?? self.device).code
        return try Tensor.call("to", [self]) { mt_to(handle, dtype.rawValue, d) }
    }
    public func to(_ device: Device) throws -> Tensor {
        try Tensor.call("to", [self]) { mt_to(handle, dtype.rawValue, device.code) }
    }
    public func clone() throws -> Tensor { try Tensor.call("clone", [self]) { mt_clone(handle) } }
    public func detach() throws -> Tensor { try Tensor.call("detach", [self]) { mt_detach(handle) } }
    public func contiguous() throws -> Tensor { try Tensor.call("contiguous", [self]) { mt_contiguous(handle) } }
    /// Copies `source` into this tensor in place, outside autograd (weights, optimiser state).
    public func assign(_ source: Tensor) throws {
        try Tensor.check("assign", [self, source], mt_assign(handle, source.handle))
    }

    // MARK: autograd

    public var requiresGrad: Bool { mt_requires_grad(handle) != 0 }
    @discardableResult
    public func requiresGrad(_ on: Bool) throws -> Tensor {
        try Tensor.check("requires_grad_", [self], mt_set_requires_grad(handle, on ? 1 : 0))
        return self
    }
    public func backward() throws { try Tensor.check("backward", [self], mt_backward(handle)) }
    /// The accumulated gradient, nil before any backward pass reached this tensor.
    public var grad: Tensor? {
        guard let h = mt_grad(handle) else { return nil }
        return Tensor(handle: h)
    }
    public func zeroGrad() throws { try Tensor.check("zero_grad", [self], mt_zero_grad(handle)) }
}

/// Swift types that map onto one libtorch dtype.
public protocol TensorElement {
    static var dtype: DType { get }
    static var zero: Self { get }
}
extension Float: TensorElement { public static var dtype: DType { .f32 } }
extension Double: TensorElement { public static var dtype: DType { .f64 } }
extension Int64: TensorElement { public static var dtype: DType { .i64 } }
extension Int32: TensorElement { public static var dtype: DType { .i32 } }
extension UInt8: TensorElement { public static var dtype: DType { .u8 } }
extension Float16: TensorElement { public static var dtype: DType { .f16 } }
extension Bool: TensorElement {
    public static var dtype: DType { .bool }
    public static var zero: Bool { false }
}

/// Runs `body` without recording autograd history (inference, weight updates).
public func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = mt_set_grad_enabled(0)
    defer { mt_set_grad_enabled(previous) }
    return try body()
}
