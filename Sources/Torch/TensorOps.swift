import CTorch

// The operations SAM and its training need. Each throws a TorchError naming the op and the input
// shapes when libtorch refuses (shape mismatch, wrong device, ...).

enum Binary: Int32 {
    case add = 0, sub, mul, div, pow, maximum, minimum, gt, lt, ge, le, eq, and, or, atan2
}
enum Unary: Int32 {
    case neg = 0, exp, log, sqrt, rsqrt, sigmoid, relu, gelu, geluTanh, tanh, abs, sin, cos, floor, not, sign, logSigmoid, round
}

extension Tensor {
    func binary(_ op: Binary, _ name: String, _ other: Tensor) throws -> Tensor {
        try Tensor.call(name, [self, other]) { mt_binary(op.rawValue, handle, other.handle) }
    }
    func binary(_ op: Binary, _ name: String, _ scalar: Double) throws -> Tensor {
        try Tensor.call(name, [self]) { mt_binary_scalar(op.rawValue, handle, scalar) }
    }
    func unary(_ op: Unary, _ name: String) throws -> Tensor {
        try Tensor.call(name, [self]) { mt_unary(op.rawValue, handle) }
    }

    // MARK: arithmetic (broadcasting as in PyTorch)

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.add, "add", b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.sub, "sub", b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.mul, "mul", b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.div, "div", b) }
    public static func + (a: Tensor, b: Double) throws -> Tensor { try a.binary(.add, "add", b) }
    public static func - (a: Tensor, b: Double) throws -> Tensor { try a.binary(.sub, "sub", b) }
    public static func * (a: Tensor, b: Double) throws -> Tensor { try a.binary(.mul, "mul", b) }
    public static func / (a: Tensor, b: Double) throws -> Tensor { try a.binary(.div, "div", b) }
    public static func + (a: Double, b: Tensor) throws -> Tensor { try b.binary(.add, "add", a) }
    public static func * (a: Double, b: Tensor) throws -> Tensor { try b.binary(.mul, "mul", a) }
    public static func - (a: Double, b: Tensor) throws -> Tensor {
        try Tensor.call("sub", [b]) { mt_scalar_binary(Binary.sub.rawValue, a, b.handle) }
    }
    public static func / (a: Double, b: Tensor) throws -> Tensor {
        try Tensor.call("div", [b]) { mt_scalar_binary(Binary.div.rawValue, a, b.handle) }
    }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.unary(.neg, "neg") }

    public func pow(_ e: Double) throws -> Tensor { try binary(.pow, "pow", e) }
    public func maximum(_ o: Tensor) throws -> Tensor { try binary(.maximum, "maximum", o) }
    public func minimum(_ o: Tensor) throws -> Tensor { try binary(.minimum, "minimum", o) }
    public func atan2(_ o: Tensor) throws -> Tensor { try binary(.atan2, "atan2", o) }
    public func clamp(_ lo: Double, _ hi: Double) throws -> Tensor {
        try Tensor.call("clamp", [self]) { mt_clamp(handle, lo, hi) }
    }

    // MARK: comparison and selection

    public func gt(_ v: Double) throws -> Tensor { try binary(.gt, "gt", v) }
    public func lt(_ v: Double) throws -> Tensor { try binary(.lt, "lt", v) }
    public func ge(_ v: Double) throws -> Tensor { try binary(.ge, "ge", v) }
    public func eq(_ v: Double) throws -> Tensor { try binary(.eq, "eq", v) }
    public func gt(_ o: Tensor) throws -> Tensor { try binary(.gt, "gt", o) }
    public func eq(_ o: Tensor) throws -> Tensor { try binary(.eq, "eq", o) }
    public func and(_ o: Tensor) throws -> Tensor { try binary(.and, "logical_and", o) }
    public func or(_ o: Tensor) throws -> Tensor { try binary(.or, "logical_or", o) }
    public func not() throws -> Tensor { try unary(.not, "logical_not") }
    /// Elementwise `condition ? a : b`.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try Tensor.call("where", [condition, a, b]) { mt_where(condition.handle, a.handle, b.handle) }
    }

    // MARK: elementwise functions

    public func exp() throws -> Tensor { try unary(.exp, "exp") }
    public func log() throws -> Tensor { try unary(.log, "log") }
    public func sqrt() throws -> Tensor { try unary(.sqrt, "sqrt") }
    public func rsqrt() throws -> Tensor { try unary(.rsqrt, "rsqrt") }
    public func sigmoid() throws -> Tensor { try unary(.sigmoid, "sigmoid") }
    public func logSigmoid() throws -> Tensor { try unary(.logSigmoid, "log_sigmoid") }
    public func relu() throws -> Tensor { try unary(.relu, "relu") }
    /// Exact (erf) GELU, nn.GELU's default.
    public func gelu() throws -> Tensor { try unary(.gelu, "gelu") }
    public func tanh() throws -> Tensor { try unary(.tanh, "tanh") }
    public func abs() throws -> Tensor { try unary(.abs, "abs") }
    public func sin() throws -> Tensor { try unary(.sin, "sin") }
    public func cos() throws -> Tensor { try unary(.cos, "cos") }
    public func floor() throws -> Tensor { try unary(.floor, "floor") }
    public func round() throws -> Tensor { try unary(.round, "round") }

    // MARK: reductions

    func reduce(_ op: Int32, _ name: String, _ dims: [Int], _ keepDim: Bool) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try Tensor.call(name, [self]) { mt_reduce(op, handle, d, Int32(d.count), keepDim ? 1 : 0) }
    }
    /// Sum over `dims` (all elements when empty).
    public func sum(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(0, "sum", dims, keepDim) }
    public func mean(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(1, "mean", dims, keepDim) }
    public func amax(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(2, "amax", dims, keepDim) }
    public func amin(_ dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(3, "amin", dims, keepDim) }
    public func argmax(_ dim: Int, keepDim: Bool = false) throws -> Tensor {
        try Tensor.call("argmax", [self]) { mt_argmax(handle, Int64(dim), keepDim ? 1 : 0) }
    }
    public func softmax(_ dim: Int) throws -> Tensor {
        try Tensor.call("softmax", [self]) { mt_softmax(handle, Int64(dim)) }
    }

    // MARK: shape

    /// Reshape; one dimension may be -1.
    public func reshape(_ shape: [Int]) throws -> Tensor {
        let d = shape.map(Int64.init)
        return try Tensor.call("reshape", [self]) { mt_reshape(handle, d, Int32(d.count)) }
    }
    public func permute(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try Tensor.call("permute", [self]) { mt_permute(handle, d, Int32(d.count)) }
    }
    public func transpose(_ a: Int, _ b: Int) throws -> Tensor {
        try Tensor.call("transpose", [self]) { mt_transpose(handle, Int64(a), Int64(b)) }
    }
    /// Elements start..<start+length along `dim` (a view).
    public func narrow(_ dim: Int, _ start: Int, _ length: Int) throws -> Tensor {
        try Tensor.call("narrow", [self]) { mt_narrow(handle, Int64(dim), Int64(start), Int64(length)) }
    }
    /// Index `index` along `dim`, removing that dimension.
    public func select(_ dim: Int, _ index: Int) throws -> Tensor {
        try Tensor.call("select", [self]) { mt_select(handle, Int64(dim), Int64(index)) }
    }
    public func indexSelect(_ dim: Int, _ index: Tensor) throws -> Tensor {
        try Tensor.call("index_select", [self, index]) { mt_index_select(handle, Int64(dim), index.handle) }
    }
    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [mt_tensor?] = tensors.map(\.handle)
        return try call("cat", tensors) { mt_cat(handles, Int32(handles.count), Int64(dim)) }
    }
    public static func stack(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [mt_tensor?] = tensors.map(\.handle)
        return try call("stack", tensors) { mt_stack(handles, Int32(handles.count), Int64(dim)) }
    }
    /// Broadcast to `shape` (-1 keeps a dimension).
    public func expand(_ shape: [Int]) throws -> Tensor {
        let d = shape.map(Int64.init)
        return try Tensor.call("expand", [self]) { mt_expand(handle, d, Int32(d.count)) }
    }
    public func repeated(_ repeats: [Int]) throws -> Tensor {
        let d = repeats.map(Int64.init)
        return try Tensor.call("repeat", [self]) { mt_repeat(handle, d, Int32(d.count)) }
    }
    public func unsqueeze(_ dim: Int) throws -> Tensor {
        try Tensor.call("unsqueeze", [self]) { mt_unsqueeze(handle, Int64(dim)) }
    }
    public func squeeze(_ dim: Int) throws -> Tensor {
        try Tensor.call("squeeze", [self]) { mt_squeeze(handle, Int64(dim)) }
    }
    public func flip(_ dims: [Int]) throws -> Tensor {
        let d = dims.map(Int64.init)
        return try Tensor.call("flip", [self]) { mt_flip(handle, d, Int32(d.count)) }
    }
    /// Merges dimensions start...end into one.
    public func flatten(_ start: Int, _ end: Int = -1) throws -> Tensor {
        let s = shape
        let e = end < 0 ? s.count + end : end
        return try reshape(Array(s[..<start]) + [s[start...e].reduce(1, *)] + Array(s[(e + 1)...]))
    }
    /// Constant padding in F.pad's order: (left, right) of the last dimension, then the one before, ...
    public func pad(_ amounts: [Int], value: Double = 0) throws -> Tensor {
        let p = amounts.map(Int64.init)
        return try Tensor.call("pad", [self]) { mt_pad(handle, p, Int32(p.count), value) }
    }

    // MARK: neural network functions

    public func matmul(_ other: Tensor) throws -> Tensor {
        try Tensor.call("matmul", [self, other]) { mt_matmul(handle, other.handle) }
    }
    /// torch.einsum, e.g. "bhwc,hkc->bhwk".
    public static func einsum(_ equation: String, _ tensors: Tensor...) throws -> Tensor {
        let handles: [mt_tensor?] = tensors.map(\.handle)
        return try call("einsum \(equation)", tensors) { mt_einsum(equation, handles, Int32(handles.count)) }
    }
    /// Resizes the last two dimensions of a B×C×H×W tensor.
    public func interpolate(height: Int, width: Int, mode: Interpolation = .bilinear, alignCorners: Bool = false) throws -> Tensor {
        try Tensor.call("interpolate", [self]) { mt_interpolate(handle, Int64(height), Int64(width), mode.rawValue, alignCorners ? 1 : 0) }
    }
    /// Mean binary cross-entropy of logits against targets in [0, 1].
    public func binaryCrossEntropyWithLogits(_ target: Tensor) throws -> Tensor {
        try Tensor.call("binary_cross_entropy_with_logits", [self, target]) { mt_bce_with_logits(handle, target.handle) }
    }
}

public enum Interpolation: Int32 { case bilinear = 0, bicubic = 1, nearest = 2 }
