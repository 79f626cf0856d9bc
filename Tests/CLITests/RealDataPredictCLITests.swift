import Foundation
import Imaging
import XCTest

@testable import TestSupport

/// `medcat predict` with LiteMedSAM's real weights (.deps/data/lite_medsam.pth) against the Python
/// pipeline's mask (tools/make_parity_fixtures.py), plus its argument checks.
final class RealDataPredictCLITests: BinaryTestCase {
    static let fixtures = PackageFiles.root.appendingPathComponent("Tests/SAMTests/Fixtures")

    func grey(_ url: URL) throws -> Volume { try Raster.decode(Data(contentsOf: url), format: .png) }

    func testLiteMedSAMBoxPredictionEqualsThePythonPipelinePixelForPixel() throws {
        let weights = try PackageFiles.realData("lite_medsam.pth").path
        let out = dir.appendingPathComponent("mask.png")
        let (stdout, _) = try medcat(["predict", "--checkpoint", weights, "--image", Self.fixtures.appendingPathComponent("colin27_slice.png").path,
                                          "--box", "40,50,140,160", "--out", out.path])
        let mask = try grey(out), reference = try grey(Self.fixtures.appendingPathComponent("lite_medsam_box_mask.png"))
        XCTAssertEqual(mask.size, [181, 217, 1])
        XCTAssertEqual(mask.voxels, reference.voxels)
        let area = mask.voxels.filter { $0 == 255 }.count
        XCTAssertEqual(area, reference.voxels.filter { $0 == 255 }.count)
        XCTAssertEqual(area + mask.voxels.filter { $0 == 0 }.count, 181 * 217, "mask is 0/255 only")
        XCTAssertTrue(stdout.contains("\(area) px foreground"), stdout)
        let overlay = try Raster.decode(Data(contentsOf: dir.appendingPathComponent("mask_overlay.png")), format: .png)
        XCTAssertEqual(overlay.components, 3)
        XCTAssertEqual(overlay.size, [181, 217, 1])
    }

    /// A volume slice: the Colin27 T1 itself, axial slice 90, with a box around the ventricles.
    func testVolumeSliceWithABoxGivesAMaskInsideTheBox() throws {
        let weights = try PackageFiles.realData("lite_medsam.pth").path, volume = try PackageFiles.realData("mricron/ch2.nii.gz").path
        let out = dir.appendingPathComponent("v.png")
        try medcat(["predict", "--checkpoint", weights, "--image", volume, "--slice", "90", "--box", "60,60,120,150", "--out", out.path])
        let mask = try grey(out)
        XCTAssertEqual(mask.size, [181, 217, 1])
        var inside = 0, outside = 0
        for y in 0..<217 { for x in 0..<181 where mask.voxels[y * 181 + x] == 255 {
            if (60...120).contains(x) && (60...150).contains(y) { inside += 1 } else { outside += 1 }
        } }
        XCTAssertGreaterThan(inside, 300)
        XCTAssertLessThan(Double(outside), 0.02 * Double(inside), "the mask stays within the box")
    }

    func testBadArgumentsAreNamed() throws {
        let image = Self.fixtures.appendingPathComponent("colin27_slice.png").path
        let weights = try PackageFiles.realData("lite_medsam.pth").path, volume = try PackageFiles.realData("mricron/ch2.nii.gz").path
        let base = ["predict", "--checkpoint", weights, "--image", image, "--out", dir.appendingPathComponent("x.png").path]
        try assertRejected([
            (base, "give a --box or at least one --point"),
            (base + ["--box", "40,50,10,160"], "x0 < x1"),
            (base + ["--box", "40,50,400,160"], "outside the 181x217 image"),
            (base + ["--point", "4,5,2"], "label must be 1"),
            (base + ["--box", "1,2,3"], "4 comma-separated numbers"),
            (base + ["--box", "1,2,30,40", "--slice", "3"], "is a 2D image"),
            (["predict", "--checkpoint", weights, "--image", volume, "--box", "1,2,30,40", "--out", "x.png"], "give --slice K"),
        ])
        try assertRejected([
            (["predict", "--checkpoint", image, "--image", image, "--box", "1,2,30,40", "--out", "x.png"], "colin27_slice.png: neither a torch zip nor safetensors"),
            // No GPU here (or a CPU-only libtorch): a clear error, not a crash.
            (base + ["--box", "1,2,30,40", "--device", "cuda:7"], "cuda:7 asked for"),
        ], status: 1)
    }
}
