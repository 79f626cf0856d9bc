import Catalog
import Foundation
import Imaging
import XCTest

@testable import Ingest
@testable import TestSupport

/// Ingest of real data shipped by Debian packages, unpacked by tools/setup.sh into .deps/data:
/// mricron-data (Colin27 T1 with the AAL atlas) and insighttoolkit5-examples.
final class RealDataIngestTests: TemporaryDirectoryTestCase {
    func data(_ path: String) throws -> URL { try PackageFiles.realData(path) }

    func link(_ target: URL, _ at: URL) throws {
        try FileManager.default.createDirectory(at: at.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(at: at, withDestinationURL: target)
    }

    /// An ingest on two workers into `catalog`, or into a new catalog in the test's folder.
    func ingest(_ root: URL, into catalog: Catalog? = nil, manifest: Manifest? = nil,
                _ configure: (inout IngestOptions) -> Void = { _ in }) throws -> (Catalog, IngestSummary) {
        let c = try catalog ?? Catalog(path: dir.appendingPathComponent("c.sqlite").path)
        var o = IngestOptions()
        o.workers = 2
        configure(&o)
        return (c, try runIngest(root, catalog: c, options: o, manifest: manifest))
    }

    func testColin27WithAALAtlas() throws {
        let raw = dir.appendingPathComponent("colin27-aal")
        try link(try data("mricron/ch2.nii.gz"), raw.appendingPathComponent("images/colin27.nii.gz"))
        try link(try data("mricron/aal.nii.gz"), raw.appendingPathComponent("labels/colin27.nii.gz"))
        let (c, s) = try ingest(dir)
        XCTAssertEqual(s.datasets, ["colin27-aal"])
        XCTAssertEqual(s.filesRejected, 0)

        // Independent expectation from the atlas itself: axial slices holding any labelled voxel.
        let atlas = try NIfTI.read(try data("mricron/aal.nii.gz"))
        XCTAssertEqual(atlas.size, [181, 217, 181])
        let labelled = (0..<181).filter { k in (0..<181 * 217).contains { atlas.voxels[k * 181 * 217 + $0] != 0 } }
        XCTAssertLessThanOrEqual(s.images, labelled.count)
        XCTAssertGreaterThan(s.images, labelled.count - 25, "only the edge slices with specks under 100 px may drop")

        let stats = try c.stats()
        let classes = Set(stats.byClass.map(\.name))
        XCTAssertEqual(classes, ["frontal_lobe", "insula", "cingulate_gyrus", "hippocampus", "parahippocampal_gyrus", "amygdala",
                                 "occipital_lobe", "temporal_lobe", "parietal_lobe", "basal_ganglia", "thalamus", "cerebellum", "vermis"])
        XCTAssertEqual(stats.byModality.map(\.name), ["mr_t1"])

        // Geometry: 181×217 mm at 1 mm → longest side 217 → 256 px; 181 mm → 213.5 → 214 px wide.
        let rows = try c.query(Selection(classes: ["frontal_lobe"]))
        let loc = try c.locations(imageID: rows[rows.count / 2].imageID)
        let t = try XCTUnwrap(c.storedImages(ids: [rows[rows.count / 2].imageID]).first?.transform)
        XCTAssertEqual(t.plane, [181, 217])
        XCTAssertEqual(t.content, [214, 256])
        XCTAssertEqual(loc.image.shard.hasSuffix(".mcs"), true)

        // Orientation: in a mid-brain axial slice, anterior (frontal lobe) is at the top and the
        // occipital lobe at the bottom; the left hemisphere (AAL odd labels) is on the image's right.
        let slice = rows.first { r in
            (try? c.query(Selection(classes: ["occipital_lobe"]))).map { $0.contains { $0.imageID == r.imageID } } ?? false
        }!
        let occipital = try c.query(Selection(classes: ["occipital_lobe"])).first { $0.imageID == slice.imageID }!
        XCTAssertLessThan(slice.bbox.y0, occipital.bbox.y0, "frontal lobe must start above the occipital lobe")
        XCTAssertLessThan((slice.bbox.y0 + slice.bbox.y1) / 2, (occipital.bbox.y0 + occipital.bbox.y1) / 2)
    }

    func testITKVolumeAndSlicesInEveryFormat() throws {
        let library = try ManifestLibrary.builtin()
        func manifest(_ file: String) throws -> Manifest {
            let text = try String(contentsOf: PackageFiles.root.appendingPathComponent("tools/demo/\(file)"), encoding: .utf8)
            return try Manifest.parse(text, file: file, vocabulary: library.vocabulary)
        }
        // NIfTI volume, 128×128×62 at 2×2×3 mm, with a three-tissue label map.
        let kmeans = dir.appendingPathComponent("kmeans")
        try link(try data("itk/KmeansTest_T1UCharRaw.nii.gz"), kmeans.appendingPathComponent("images/t1.nii.gz"))
        try link(try data("itk/KmeansTest_T1RawSkullStrip.nii.gz"), kmeans.appendingPathComponent("labels/t1.nii.gz"))
        let (c, s) = try ingest(kmeans, manifest: try manifest("itk-kmeans.yaml"))
        XCTAssertEqual(s.filesRejected, 0)
        XCTAssertGreaterThan(s.images, 10)
        XCTAssertEqual(Set(try c.stats().byClass.map(\.name)), ["gray_matter", "white_matter"], "126 CSF voxels fall under the 1000-voxel rule")

        // 2D slices: MetaImage (.mhd + .raw), NRRD (.nhdr) and PNG, each with the PNG brain mask.
        let slices = dir.appendingPathComponent("slices")
        for f in ["BrainProtonDensitySliceBorder20.mhd", "BrainProtonDensitySliceBorder20.raw"] {
            try link(try data("itk/\(f)"), slices.appendingPathComponent("images/\(f)"))
        }
        var nhdr = try String(contentsOf: try data("itk/BrainProtonDensitySliceBorder20.nhdr"), encoding: .utf8)
        nhdr = nhdr.replacingOccurrences(of: "data file: ", with: "data file: \(try data("itk").path)/")
        try nhdr.write(to: slices.appendingPathComponent("images/nrrd.nhdr"), atomically: true, encoding: .utf8)
        try link(try data("itk/BrainProtonDensitySliceBorder20.png"), slices.appendingPathComponent("images/png.png"))
        for stem in ["BrainProtonDensitySliceBorder20", "nrrd", "png"] {
            try link(try data("itk/BrainProtonDensitySliceBorder20Mask.png"), slices.appendingPathComponent("masks/\(stem).png"))
        }
        let c2 = try Catalog(path: dir.appendingPathComponent("slices.sqlite").path)
        let s2 = try runIngest(slices, catalog: c2, manifest: try manifest("itk-brain-slices.yaml"))
        let errors = try c2.errors().map(\.message)
        XCTAssertEqual(s2.filesRejected, 0, "\(errors)")
        XCTAssertEqual(s2.images, 3)
        // The same pixels in three formats normalise to one stored image, and the masks agree.
        XCTAssertEqual(try c2.stats().blobs, 1)
        let masks = try c2.query(Selection())
        XCTAssertEqual(Set(masks.map(\.area)).count, 1)
        XCTAssertEqual(Set(masks.map(\.bbox)).count, 1)
        // 221×257 px → 257 → 256: content 220×256.
        let mask = try ImageIO.read(try data("itk/BrainProtonDensitySliceBorder20Mask.png"))
        let sourceArea = mask.voxels.filter { $0 > 127 }.count
        XCTAssertEqual(Double(masks[0].area), Double(sourceArea) * pow(256.0 / 257.0, 2), accuracy: Double(sourceArea) * 0.02)
    }
}
