import Prompts

/// An image with a predicted mask tinted red, the ground truth outlined in yellow, and the prompt
/// drawn (box in green, points green for foreground, blue for background): RGB, row-major.
public enum Overlay {
    public static func draw(pixels: [Float], channels: Int, width: Int, height: Int, mask: [UInt8], truth: [UInt8]? = nil,
                            prompt: Prompt? = nil) -> [UInt8] {
        let lo = pixels.min() ?? 0, hi = pixels.max() ?? 1
        let scale = hi > lo ? 255 / (hi - lo) : 0
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            for c in 0..<3 {
                let v = (pixels[i * channels + (channels == 3 ? c : 0)] - lo) * scale
                let out = mask[i] > 0 ? (c == 0 ? 0.5 * v + 127.5 : 0.5 * v) : v
                rgb[i * 3 + c] = UInt8(max(0, min(255, out.rounded())))
            }
        }
        func paint(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = (y * width + x) * 3
            (rgb[i], rgb[i + 1], rgb[i + 2]) = color
        }
        if let truth {
            func inside(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height && truth[y * width + x] != 0 }
            for y in 0..<height { for x in 0..<width where inside(x, y) {
                if !inside(x - 1, y) || !inside(x + 1, y) || !inside(x, y - 1) || !inside(x, y + 1) { paint(x, y, (255, 220, 0)) }
            } }
        }
        if let b = prompt?.box {
            let (x0, y0, x1, y1) = (b.x0, b.y0, b.x1, b.y1)
            for x in x0...x1 { paint(x, y0, (0, 255, 0)); paint(x, y1, (0, 255, 0)) }
            for y in y0...y1 { paint(x0, y, (0, 255, 0)); paint(x1, y, (0, 255, 0)) }
        }
        for p in prompt?.points ?? [] {
            let color: (UInt8, UInt8, UInt8) = p.label == 1 ? (0, 255, 0) : (0, 128, 255)
            for d in -2...2 { paint(p.x + d, p.y, color); paint(p.x, p.y + d, color) }
        }
        return rgb
    }
}
