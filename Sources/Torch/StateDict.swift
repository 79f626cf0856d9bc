import CTorch
import Foundation

/// Named tensors as a checkpoint holds them, in file order.
public struct StateDict {
    public private(set) var names: [String] = []
    public private(set) var tensors: [String: Tensor] = [:]
    /// Free-form string metadata (safetensors' __metadata__).
    public var metadata: [String: String] = [:]

    public init() {}
    public init(_ module: Module) {
        for e in module.parameters.entries { self[e.name] = e.tensor }
    }
    public subscript(name: String) -> Tensor? {
        get { tensors[name] }
        set {
            if tensors[name] == nil, newValue != nil { names.append(name) }
            if newValue == nil { names.removeAll { $0 == name } }
            tensors[name] = newValue
        }
    }

    /// Reads a checkpoint by its content: a torch.save zip (.pth/.pt, nested dictionaries flattened
    /// to dotted keys) or safetensors.
    public static func load(_ url: URL) throws -> StateDict {
        let head = try FileHandle(forReadingFrom: url).read(upToCount: 4) ?? Data()
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return try loadTorch(url) }
        return try loadSafetensors(url)
    }

    static func loadTorch(_ url: URL) throws -> StateDict {
        final class Sink { var dict = StateDict() }
        let sink = Sink()
        let status = url.path.withCString { path in
            mt_load_pth(path, { ctx, key, t in
                let sink = Unmanaged<Sink>.fromOpaque(ctx!).takeUnretainedValue()
                sink.dict[String(cString: key!)] = Tensor(handle: t!)
            }, Unmanaged.passUnretained(sink).toOpaque())
        }
        if status != 0 { throw CheckpointError(url, String(cString: mt_last_error())) }
        // Checkpoints that wrap the weights ({"model": ...} or {"state_dict": ...}) are unwrapped.
        for wrapper in ["model.", "state_dict."] where !sink.dict.names.isEmpty && sink.dict.names.allSatisfy({ $0.hasPrefix(wrapper) }) {
            var inner = StateDict()
            for n in sink.dict.names { inner[String(n.dropFirst(wrapper.count))] = sink.dict.tensors[n] }
            return inner
        }
        return sink.dict
    }

    // MARK: safetensors

    static let safetensorsTypes: [String: DType] = [
        "F32": .f32, "F16": .f16, "BF16": .bf16, "F64": .f64, "I64": .i64, "I32": .i32, "U8": .u8, "BOOL": .bool,
    ]

    static func loadSafetensors(_ url: URL) throws -> StateDict {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        guard data.count >= 8 else { throw CheckpointError(url, "neither a torch zip nor safetensors (file too short)") }
        let headerSize = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard headerSize <= UInt64(data.count - 8),
              let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(headerSize)))) as? [String: Any]
        else { throw CheckpointError(url, "neither a torch zip nor safetensors (no valid header)") }
        let base = 8 + Int(headerSize)
        var dict = StateDict()
        if let meta = header["__metadata__"] as? [String: String] { dict.metadata = meta }
        var entries: [(name: String, dtype: DType, shape: [Int], begin: Int)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let typeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw CheckpointError(url, "malformed entry for \(name)") }
            guard let dtype = safetensorsTypes[typeName] else { throw CheckpointError(url, "\(name): unsupported dtype \(typeName)") }
            let bytes = shape.reduce(1, *) * dtype.size
            guard offsets[1] - offsets[0] == bytes, offsets[0] >= 0, base + offsets[1] <= data.count else {
                throw CheckpointError(url, "\(name): data offsets \(offsets) do not fit shape \(shape) \(typeName)")
            }
            entries.append((name, dtype, shape, offsets[0]))
        }
        for (name, dtype, shape, begin) in entries.sorted(by: { $0.begin < $1.begin }) {
            let dims = shape.map(Int64.init)
            let h: mt_tensor? = data.withUnsafeBytes { raw in
                mt_from_data(raw.baseAddress! + base + begin, dims, Int32(dims.count), dtype.rawValue)
            }
            guard let h else { throw CheckpointError(url, "\(name): \(String(cString: mt_last_error()))") }
            dict[name] = Tensor(handle: h)
        }
        return dict
    }

    /// Writes safetensors (tensors in name order, copied to the CPU).
    public func saveSafetensors(_ url: URL) throws {
        var header: [String: Any] = [:]
        var blobs: [Data] = []
        var offset = 0
        let typeNames = Dictionary(uniqueKeysWithValues: StateDict.safetensorsTypes.map { ($1, $0) })
        for name in names {
            let t = try tensors[name]!.contiguous()
            let dtype = t.dtype
            var bytes = Data(count: t.count * dtype.size)
            let status = bytes.withUnsafeMutableBytes { mt_copy_out(t.handle, $0.baseAddress, $0.count) }
            try Tensor.check("copy_out", [t], status)
            header[name] = ["dtype": typeNames[dtype]!, "shape": t.shape, "data_offsets": [offset, offset + bytes.count]] as [String: Any]
            offset += bytes.count
            blobs.append(bytes)
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pads the header so that tensor data starts 8-byte aligned, as the reference writer does.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = Data()
        var size = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &size) { out.append(contentsOf: $0) }
        out.append(json)
        for b in blobs { out.append(b) }
        try out.write(to: url, options: .atomic)
    }
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let file: String
    public let message: String
    public init(_ url: URL, _ message: String) {
        file = url.lastPathComponent
        self.message = message
    }
    public var description: String { "\(file): \(message)" }
}

extension Module {
    /// Strict loading: every model tensor must be in the checkpoint with the same shape, and every
    /// checkpoint tensor must belong to the model. `adapt` may resize a mismatched tensor (e.g.
    /// positional embeddings of another input size); returning nil leaves the mismatch an error.
    /// `fresh` names the tensors of modules added to a pretrained model, which keep their initial values.
    public func load(_ dict: StateDict, from url: URL, adapt: (String, Tensor, [Int]) throws -> Tensor? = { _, _, _ in nil },
                     fresh: (String) -> Bool = { _ in false }) throws {
        let entries = parameters.entries
        let modelNames = Set(entries.map(\.name))
        var problems: [String] = []
        for e in entries where dict[e.name] == nil && !fresh(e.name) { problems.append("missing key \(e.name)") }
        for n in dict.names where !modelNames.contains(n) { problems.append("unexpected key \(n)") }
        var sources: [(Tensor, Tensor)] = []
        for e in entries {
            guard var source = dict[e.name] else { continue }
            if source.shape != e.tensor.shape {
                guard let adapted = try adapt(e.name, source, e.tensor.shape), adapted.shape == e.tensor.shape else {
                    problems.append("\(e.name): checkpoint shape \(source.shape), model shape \(e.tensor.shape)")
                    continue
                }
                source = adapted
            }
            sources.append((e.tensor, source))
        }
        if !problems.isEmpty {
            let shown = problems.prefix(8).joined(separator: "; ")
            let more = problems.count > 8 ? " (and \(problems.count - 8) more)" : ""
            throw CheckpointError(url, "does not fit the model: \(shown)\(more)")
        }
        for (target, source) in sources { try target.assign(source) }
    }
}
