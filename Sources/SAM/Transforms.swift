import Torch

/// An image made ready for the encoder, and the geometry to map prompts in and masks back out.
/// Resizing uses libtorch's bilinear interpolation (no antialiasing) on float pixels, so the Python
/// reference pipeline in tools/make_parity_fixtures.py can do exactly the same.
public struct PreparedImage {
    /// 1×3×S×S
    public let tensor: Tensor
    public let originalHeight: Int, originalWidth: Int
    /// The image inside the padded S×S input occupies rows < resizedHeight, columns < resizedWidth.
    public let resizedHeight: Int, resizedWidth: Int

    /// pixels: height×width×channels (1 or 3) interleaved, any range.
    public init(pixels: [Float], height: Int, width: Int, channels: Int, config: SamConfig, device: Device = .cpu) throws {
        guard channels == 1 || channels == 3, pixels.count == height * width * channels, height > 0, width > 0 else {
            throw TorchError(op: "prepare", message: "expected \(height)×\(width)×(1 or 3) pixels, got \(pixels.count) values")
        }
        let s = config.imageSize
        (resizedHeight, resizedWidth) = PreparedImage.resizedShape(height: height, width: width, longest: s)
        originalHeight = height
        originalWidth = width
        var x = try Tensor(pixels, shape: [1, height, width, channels]).permute([0, 3, 1, 2])
        if channels == 1 { x = try x.expand([1, 3, height, width]) }
        x = try x.contiguous().to(device)
        if resizedHeight != height || resizedWidth != width {
            x = try x.interpolate(height: resizedHeight, width: resizedWidth)
        }
        tensor = try Self.normalise(x, config).pad([0, s - resizedWidth, 0, s - resizedHeight])
    }

    /// B×3×H×W pixels (0–255) → the encoder's input scale: SAM's per-channel mean/std, or
    /// LiteMedSAM's min–max per image.
    public static func normalise(_ x: Tensor, _ config: SamConfig) throws -> Tensor {
        switch config.normalization {
        case .pixelMeanStd:
            let mean = try Tensor([Float(123.675), 116.28, 103.53], shape: [1, 3, 1, 1]).to(x.device)
            let std = try Tensor([Float(58.395), 57.12, 57.375], shape: [1, 3, 1, 1]).to(x.device)
            return try (x - mean) / std
        case .minMax:
            let lo = try x.amin([1, 2, 3], keepDim: true), hi = try x.amax([1, 2, 3], keepDim: true)
            return try (x - lo) / (hi - lo).clamp(1e-8, Double(Float.greatestFiniteMagnitude))
        }
    }

    /// Geometry for an image of height×width whose encoder input (1×3×S×S) was made elsewhere, e.g.
    /// normalised with the rest of its batch.
    public init(prepared tensor: Tensor, height: Int, width: Int, config: SamConfig) {
        (resizedHeight, resizedWidth) = PreparedImage.resizedShape(height: height, width: width, longest: config.imageSize)
        originalHeight = height
        originalWidth = width
        self.tensor = tensor
    }

    /// SAM's rule: scale the longest side to `longest`, rounding the other to the nearest integer.
    public static func resizedShape(height: Int, width: Int, longest: Int) -> (Int, Int) {
        let scale = Double(longest) / Double(max(height, width))
        return (Int(Double(height) * scale + 0.5), Int(Double(width) * scale + 0.5))
    }

    /// Maps pixel coordinates of the original image (x, y pairs) into the encoder input frame.
    public func modelCoordinates(_ xy: [Float]) -> [Float] {
        let sx = Float(resizedWidth) / Float(originalWidth), sy = Float(resizedHeight) / Float(originalHeight)
        return xy.enumerated().map { $0.offset % 2 == 0 ? $0.element * sx : $0.element * sy }
    }

    /// Low-resolution logits B×M×h×w → logits at the original size B×M×H×W: upsampled to the
    /// encoder input, cropped to the image, resized back.
    public func upsample(_ lowRes: Tensor, inputSize: Int) throws -> Tensor {
        var m = try lowRes.interpolate(height: inputSize, width: inputSize)
        m = try m.narrow(2, 0, resizedHeight).narrow(3, 0, resizedWidth)
        // Training images are stored at the encoder size: no second resize (it would copy, unchanged).
        if originalHeight == inputSize && originalWidth == inputSize { return m }
        return try m.interpolate(height: originalHeight, width: originalWidth)
    }
}
