// Metric timings for `make bench`, mirrored by bench/eval_peer.py with MONAI:
//   medcat-eval-bench metrics N    Dice, IoU, NSD (2 mm) and HD95 of N 256×256 mask pairs
// Prints one JSON line: milliseconds per mask pair and the mean of each metric (a parity check).
import Eval
import Foundation

/// The same ellipse pairs as eval_peer.py: pair k has a truth ellipse and a shifted, resized copy.
func pair(_ k: Int, size n: Int = 256) -> ([UInt8], [UInt8]) {
    func ellipse(_ cx: Double, _ cy: Double, _ rx: Double, _ ry: Double) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: n * n)
        for y in 0..<n { for x in 0..<n where pow((Double(x) - cx) / rx, 2) + pow((Double(y) - cy) / ry, 2) <= 1 { m[y * n + x] = 1 } }
        return m
    }
    let cx = 128 + 20 * sin(Double(k)), cy = 128 + 20 * cos(Double(k)), rx = Double(40 + k % 20), ry = Double(30 + k % 15)
    let truth = ellipse(cx, cy, rx, ry)
    let pred = ellipse(cx + Double(k % 7 - 3), cy + Double(k % 5 - 2), rx + Double(k % 3 - 1) * 3, ry - Double(k % 4 - 2) * 2)
    return (pred, truth)
}

let args = CommandLine.arguments
guard args.count == 3, args[1] == "metrics", let count = Int(args[2]) else {
    FileHandle.standardError.write(Data("usage: medcat-eval-bench metrics N\n".utf8)); exit(2)
}
let pairs = (0..<count).map { pair($0) }
var sums = [0.0, 0.0, 0.0, 0.0]
let t0 = DispatchTime.now().uptimeNanoseconds
for (pred, truth) in pairs {
    let s = SegmentationMetrics.score(prediction: pred, truth: truth, size: [256, 256, 1], spacing: [1, 1, 1], tolerance: 2)
    sums[0] += s.dice!; sums[1] += s.iou!; sums[2] += s.nsd!; sums[3] += s.hd95!
}
let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
let means = sums.map { $0 / Double(count) }
print("{\"ms_per_mask\": \(seconds / Double(count) * 1000), \"dice\": \(means[0]), \"iou\": \(means[1]), \"nsd\": \(means[2]), \"hd95\": \(means[3])}")
