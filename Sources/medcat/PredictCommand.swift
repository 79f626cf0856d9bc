import ArgumentParser
import Eval
import Foundation
import Geometry
import Imaging
import Prompts
import SAM
import Torch

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Segment one image or volume slice with a SAM checkpoint and a box or point prompts.",
        discussion: """
            Coordinates are pixels of the input image (x = column, y = row, from the top left).
            The mask is written as an 8-bit PNG at the input's size (255 = foreground), with an
            overlay PNG beside it (<out>_overlay.png). A volume slice is the axial slice K of the
            volume in LPS orientation, as medcat ingest slices it.

            Checkpoints: official SAM (vit_b/l/h), MedSAM and LiteMedSAM .pth files, or medcat's own
            .safetensors. The model preset is read from the checkpoint.

            Examples:
              medcat predict --checkpoint lite_medsam.pth --image slice.png --box 40,50,140,160 --out mask.png
              medcat predict --checkpoint sam_vit_b.pth --image ct.nii.gz --slice 60 --point 120,88,1 --point 40,40,0 --out m.png
            """)

    @Option(help: "Model weights (.pth or .safetensors).") var checkpoint: String
    @Option(help: "Image file (PNG, JPEG, TIFF, …) or volume (NIfTI, NRRD, MetaImage).") var image: String
    @Option(help: "Axial slice index, for volumes.") var slice: Int?
    @Option(help: "Box prompt x0,y0,x1,y1 in pixels.") var box: String?
    @Option(help: "Point prompt x,y,label (label 1 foreground, 0 background); repeatable.") var point: [String] = []
    @Option(help: "Output mask PNG.") var out: String
    @Option(help: "Encoder input size; default: the checkpoint's.") var imageSize: Int?
    @Option(help: "Where the model runs: the CPU or CUDA device N.") var device: Device = .cpu

    /// Pixel coordinates are whole pixels; "40.0" is read as 40.
    static func parseNumbers(_ text: String, count: Int, what: String) throws -> [Int] {
        let fields = text.split(separator: ",", omittingEmptySubsequences: false)
        let values = fields.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }.filter { $0.rounded() == $0 && abs($0) < 1e9 }
        guard fields.count == count, values.count == count else {
            throw ValidationError("\(what) takes \(count) comma-separated numbers (whole pixels), got \"\(text)\"")
        }
        return values.map { Int($0) }
    }

    func prompt() throws -> Prompt {
        var p = Prompt()
        if let box {
            let b = try Self.parseNumbers(box, count: 4, what: "--box")
            guard b[0] < b[2], b[1] < b[3] else { throw ValidationError("--box needs x0 < x1 and y0 < y1, got \(box)") }
            p.box = Box2D(x0: b[0], y0: b[1], x1: b[2], y1: b[3])
        }
        for text in point {
            let v = try Self.parseNumbers(text, count: 3, what: "--point")
            guard v[2] == 0 || v[2] == 1 else { throw ValidationError("--point label must be 1 (foreground) or 0 (background), got \(text)") }
            p.points.append(Prompt.Point(x: v[0], y: v[1], label: v[2]))
        }
        return p
    }

    func validate() throws {
        let p = try prompt()
        guard p.box != nil || !p.points.isEmpty else { throw ValidationError("give a --box or at least one --point") }
        if let imageSize, imageSize < 64 || imageSize % 16 != 0 { throw ValidationError("--image-size must be a multiple of 16, at least 64") }
    }

    func run() throws {
        try Runtime.prepare(device)
        let (pixels, height, width, channels) = try loadImage()
        let prompt = try prompt()
        try checkInside(prompt, width: width, height: height)

        let (sam, _) = try SamCheckpoint.open(URL(fileURLWithPath: checkpoint), imageSize: imageSize, device: device)
        let prepared = try PreparedImage(pixels: pixels, height: height, width: width, channels: channels, config: sam.config, device: device)
        let (logits, iou) = try withoutGrad { () -> (Tensor, Float) in
            let input = try PromptTensors([prompt], frame: prepared, device: device)
            // One point alone is ambiguous: take the best of SAM's three masks by predicted IoU.
            let multimask = prompt.box == nil && prompt.points.count == 1
            let out = try sam.decode(embeddings: sam.embed(prepared.tensor), points: input.points, boxes: input.boxes, multimask: multimask)
            let scores = try out.iou.floats()
            let best = scores.indices.max { scores[$0] < scores[$1] } ?? 0
            return (try prepared.upsample(out.masks.narrow(1, best, 1), inputSize: sam.config.imageSize), scores[best])
        }
        let mask = try logits.gt(0).to(.u8, device: .cpu).values(as: UInt8.self).map { $0 * 255 }
        let outURL = URL(fileURLWithPath: out)
        try Raster.encodePNG(gray8: mask, width: width, height: height).write(to: outURL)
        let overlayURL = outURL.deletingLastPathComponent().appendingPathComponent(outURL.deletingPathExtension().lastPathComponent + "_overlay.png")
        try Raster.encodePNG(rgb8: Overlay.draw(pixels: pixels, channels: channels, width: width, height: height, mask: mask, prompt: prompt),
                             width: width, height: height).write(to: overlayURL)
        let area = mask.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        print("mask: \(width)x\(height), \(area) px foreground, predicted IoU \(String(format: "%.3f", iou)) → \(out) (overlay \(overlayURL.lastPathComponent))")
    }

    /// Grey or RGB pixels of the image, or of axial slice K of a volume: row-major, interleaved.
    func loadImage() throws -> ([Float], Int, Int, Int) {
        let url = URL(fileURLWithPath: image)
        let volume: Volume
        do { volume = try ImageIO.read(url) } catch { throw ValidationError("\(url.lastPathComponent): \(error)") }
        if volume.is2D {
            if slice != nil && slice != 0 { throw ValidationError("--slice: \(url.lastPathComponent) is a 2D image") }
            return (volume.voxels, volume.ny, volume.nx, volume.components)
        }
        guard let k = slice else { throw ValidationError("\(url.lastPathComponent) is a volume (\(volume.nz) slices): give --slice K") }
        let (canonical, _) = volume.canonical()
        guard k >= 0, k < canonical.nz else {
            throw ValidationError("--slice \(k) is outside \(url.lastPathComponent), which has \(canonical.nz) axial slices")
        }
        let plane = canonical.nx * canonical.ny * canonical.components
        return (Array(canonical.voxels[(k * plane)..<((k + 1) * plane)]), canonical.ny, canonical.nx, canonical.components)
    }

    func checkInside(_ p: Prompt, width: Int, height: Int) throws {
        let (w, h) = (width, height)
        if let b = p.box, b.x0 < 0 || b.y0 < 0 || b.x1 > w || b.y1 > h {
            throw ValidationError("--box \(b) lies outside the \(width)x\(height) image")
        }
        for q in p.points where q.x < 0 || q.y < 0 || q.x >= w || q.y >= h {
            throw ValidationError("--point \(q.x),\(q.y) lies outside the \(width)x\(height) image")
        }
    }
}
