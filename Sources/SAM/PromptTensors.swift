import Geometry
import Prompts
import Torch

/// Prompts for N masks on one image, as the prompt encoder takes them, for training, evaluation
/// and `medcat predict` alike: points N×P×2 in the encoder frame with labels N×P, lists shorter
/// than the longest padded with label −1 (SAM's "not a point"); boxes N×4 in the encoder frame,
/// where a mask without a box beside masks with one gets the whole image.
public struct PromptTensors {
    public let points: (coords: Tensor, labels: Tensor)?
    public let boxes: Tensor?

    public init(_ prompts: [Prompt], frame: PreparedImage, device: Device) throws {
        let n = prompts.map(\.points.count).max() ?? 0
        if n > 0 {
            var xy = [Float](), labels = [Float]()
            xy.reserveCapacity(prompts.count * n * 2)
            for p in prompts {
                for q in p.points { xy += frame.modelCoordinates([Float(q.x), Float(q.y)]); labels.append(Float(q.label)) }
                for _ in p.points.count..<n { xy += [0, 0]; labels.append(-1) }
            }
            points = (try Tensor(xy, shape: [prompts.count, n, 2]).to(device), try Tensor(labels, shape: [prompts.count, n]).to(device))
        } else {
            points = nil
        }
        if prompts.contains(where: { $0.box != nil }) {
            let whole = Box2D(width: frame.originalWidth, height: frame.originalHeight)
            let flat = prompts.flatMap { frame.modelCoordinates(($0.box ?? whole).corners.map(Float.init)) }
            boxes = try Tensor(flat, shape: [prompts.count, 4]).to(device)
        } else {
            boxes = nil
        }
    }
}
