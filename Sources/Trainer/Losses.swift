import Torch

/// SAM's training loss: w·focal + dice on the mask logits (SAM: w = 20), plus the squared error of the
/// predicted IoU against the IoU the mask actually reaches. Logits and targets are N×1×H×W.
public enum SegmentationLoss {
    public struct Terms { public var total: Tensor; public var focal: Double, dice: Double, iou: Double }

    public static func compute(logits: Tensor, targets: Tensor, predictedIoU: Tensor, focalWeight: Double = 20) throws -> Terms {
        let focal = try focalLoss(logits, targets)
        let dice = try diceLoss(logits, targets)
        let actual = try withoutGrad { () -> Tensor in
            let hard = try logits.gt(0).to(.f32)
            let inter = try (hard * targets).sum([1, 2, 3])
            let union = try (hard + targets).sum([1, 2, 3]) - inter
            return try inter / union.clamp(1, Double(Float.greatestFiniteMagnitude))
        }
        let iou = try (predictedIoU.reshape([-1]) - actual).pow(2).mean()
        let total = try focal * focalWeight + dice + iou
        return Terms(total: total, focal: try focal.item(), dice: try dice.item(), iou: try iou.item())
    }

    /// Sigmoid focal loss (α = 0.25, γ = 2), mean over pixels.
    static func focalLoss(_ x: Tensor, _ t: Tensor, alpha: Double = 0.25, gamma: Double = 2) throws -> Tensor {
        let p = try x.sigmoid()
        let ce = try 0 - (t * x.logSigmoid() + (1 - t) * (0 - x).logSigmoid())
        let pt = try p * t + (1 - p) * (1 - t)
        let weight = try (t * alpha + (1 - t) * (1 - alpha)) * (1 - pt).pow(gamma)
        return try (weight * ce).mean()
    }

    /// 1 − soft Dice per mask (smoothed by 1), mean over masks.
    static func diceLoss(_ x: Tensor, _ t: Tensor) throws -> Tensor {
        let p = try x.sigmoid()
        let inter = try (p * t).sum([1, 2, 3])
        let sums = try p.sum([1, 2, 3]) + t.sum([1, 2, 3])
        return try (1 - (inter * 2 + 1) / (sums + 1)).mean()
    }
}
