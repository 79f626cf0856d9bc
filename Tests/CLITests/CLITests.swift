import Foundation
import Imaging
import XCTest

@testable import TestSupport

/// Ingest, catalog, export and manifests through the built binary.
final class CLITests: BinaryTestCase {
    func testHelpListsEveryCommandWithExamples() throws {
        let (out, _) = try medcat(["--help"])
        for word in ["ingest", "catalog", "export", "manifests", "predict", "pack", "train", "eval", "leaderboard", "Examples:"] { XCTAssertTrue(out.contains(word), "help lacks \(word)") }
        let (ingestHelp, _) = try medcat(["ingest", "--help"])
        for word in ["--catalog", "--workers", "--size", "--axes", "--instances", "--window", "--manifest", "--verify-crc"] {
            XCTAssertTrue(ingestHelp.contains(word), "ingest help lacks \(word)")
        }
    }

    func testBadArgumentsAreValidationErrors() throws {
        try assertRejected([
            (["ingest", ".", "--axes", "q"], "The value 'q' is invalid for '--axes <axes>'"),
            (["ingest", ".", "--window", "wide"], "WIDTH/LEVEL"),
            (["catalog", "query", "--split", "False"], "The value 'False' is invalid for '--split <split>'"),
            (["ingest", ".", "--percentile", "0.5/100.5"], "0 ≤ low < high ≤ 100"),
            (["ingest", ".", "--window", "0/40"], "window width must be positive"),
            (["ingest", ".", "--modality", "xray"], "unknown modality 'xray'"),
            (["blend", "--start", "a.pth", "--tuned", "b.safetensors", "--out", "c.safetensors", "--alpha", "1.5"], "--alpha must be between 0 and 1 (got 1.5)"),
        ])
    }

    /// An image whose gzip CRC is damaged (its voxels intact): ingested by default, which inflates it
    /// only to its last labelled slice; rejected with --verify-crc, which inflates it to its end.
    func testVerifyCRCRejectsAnImageWhoseCRCIsDamaged() throws {
        let kase = dir.appendingPathComponent("raw/KiTS19/case_00000")
        try FileManager.default.createDirectory(at: kase, withIntermediateDirectories: true)
        let size = [32, 32, 12], n = 32 * 32 * 12
        let grid = (spacing: [1.0, 1, 2.5], origin: [0.0, 0, 0])
        // A 10×10×6 kidney in slices 2…7: 600 voxels, over the 3D threshold once it is lowered.
        let labels = (0..<n).map { i -> Float in (2..<8).contains(i / 1024) && (8..<18).contains(i % 32) && (8..<18).contains(i / 32 % 32) ? 1 : 0 }
        try NIfTI.write(Volume(size: size, spacing: grid.spacing, origin: grid.origin, voxels: (0..<n).map { Float($0 % 400 - 200) }),
                        to: kase.appendingPathComponent("imaging.nii.gz"), datatype: .int16)
        try NIfTI.write(Volume(size: size, spacing: grid.spacing, origin: grid.origin, voxels: labels),
                        to: kase.appendingPathComponent("segmentation.nii.gz"), datatype: .uint8)
        let image = kase.appendingPathComponent("imaging.nii.gz")
        var bytes = try Data(contentsOf: image)
        bytes[bytes.count - 8] ^= 0xff
        try bytes.write(to: image)
        let flags = ["--size", "64", "--min-component-voxels", "100", "--min-mask-pixels", "10"]
        let (out, _) = try medcat(["ingest", "raw"] + flags)
        XCTAssertTrue(out.contains("6 images"), out)
        try medcat(["ingest", "raw", "--catalog", "verified.sqlite", "--verify-crc"] + flags, expect: 2)
        let (errors, _) = try medcat(["catalog", "errors", "--catalog", "verified.sqlite"])
        XCTAssertTrue(errors.contains("imaging.nii.gz") && errors.contains("read image"), errors)
    }

    /// A DICOM tree through the binary: what ingest prints, the catalog's stats, pairs and errors,
    /// and an export carry no patient id, name, UID, folder or file name.
    func testDICOMIngestKeepsIdentifiersOutOfEveryOutput() throws {
        try DICOMScene.write(to: dir.appendingPathComponent("raw"))
        let runs = [
            try medcat(["ingest", "raw", "--size", "64"], expect: 2),
            try medcat(["catalog", "stats"]), try medcat(["catalog", "stats", "--json"]),
            try medcat(["catalog", "query"]), try medcat(["catalog", "errors"]), try medcat(["catalog", "errors", "--json"]),
            try medcat(["export", "--format", "sa-med2d", "--out", "export"]),
        ]
        let exported = try FileManager.default.subpathsOfDirectory(atPath: dir.appendingPathComponent("export").path)
        let printed = runs.map { $0.out + $0.err }.joined(separator: "\n") + exported.joined(separator: "\n")
        for secret in [DICOMScene.patientID, "DOE", "JANE", DICOMScene.folder, DICOMScene.ctSeriesUID, DICOMScene.studyUID, "IM0", "structures", "notes.txt"] {
            XCTAssertFalse(printed.contains(secret), "'\(secret)' was printed or exported")
        }
        let pairs = runs[3].out.split(separator: "\n")
        XCTAssertEqual(pairs.count, 14)
        XCTAssertTrue(pairs.allSatisfy { $0.contains("\"dataset\":\"dicom\"") && $0.contains("\"case\":\"patient-") }, "\(pairs.first ?? "")")
        let errors = runs[4].out
        for reason in ["missing slice", "unreadable DICOM file", "not a DICOM file"] { XCTAssertTrue(errors.contains(reason), errors) }
        XCTAssertTrue(exported.contains { $0.hasSuffix(".png") })
    }

    func testIngestStatsQueryErrorsExport() throws {
        let raw = dir.appendingPathComponent("raw/KiTS19")
        try Self.kits(3, at: raw)
        try Data("broken".utf8).write(to: raw.appendingPathComponent("case_00002/imaging.nii.gz"))
        let (out, _) = try medcat(["ingest", "raw", "--workers", "2"], expect: 2)
        XCTAssertTrue(out.contains("2 files done, 0 unchanged, 1 rejected; 16 images, 26 masks"), out)
        XCTAssertTrue(out.contains("see `medcat catalog errors`"), out)

        let (statsJSON, _) = try medcat(["catalog", "stats", "--json"])
        let stats = try JSONSerialization.jsonObject(with: Data(statsJSON.utf8)) as! [String: Any]
        XCTAssertEqual(stats["images"] as? Int, 16)
        XCTAssertEqual(stats["masks"] as? Int, 26)
        XCTAssertEqual(stats["rejected_files"] as? Int, 1)
        let (statsText, _) = try medcat(["catalog", "stats"])
        XCTAssertTrue(statsText.contains("kits19"), statsText)
        XCTAssertTrue(statsText.contains("kidney_tumor"), statsText)
        XCTAssertFalse(statsText.contains(dir.path), "stats must not print file paths")

        let (lines, _) = try medcat(["catalog", "query", "--modality", "ct", "--class", "kidney_tumor"])
        let rows = lines.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(rows.count, 10)
        for r in rows {
            for key in ["id", "dataset", "case", "modality", "class", "split"] { XCTAssertNotNil(r[key], "query row lacks \(key)") }
            XCTAssertEqual(r["class"] as? String, "kidney_tumor")
            XCTAssertEqual(r["area"] as? Int, 64 * 64)
        }
        let (count, _) = try medcat(["catalog", "query", "--class", "kidney", "--count"])
        XCTAssertEqual(count.trimmingCharacters(in: .whitespacesAndNewlines), "16")
        let (_, unknown) = try medcat(["catalog", "query", "--class", "liver"], expect: 1)
        XCTAssertTrue(unknown.contains("unknown class 'liver'"), unknown)

        let (errors, _) = try medcat(["catalog", "errors"])
        XCTAssertTrue(errors.contains("kits19/case_00002/imaging.nii.gz: read image: NIfTI"), errors)
        let (errorsJSON, _) = try medcat(["catalog", "errors", "--json"])
        XCTAssertEqual(errorsJSON.split(separator: "\n").count, 1)

        let (exported, _) = try medcat(["export", "--format", "sa-med2d", "--out", "sa", "--class", "kidney_tumor"])
        XCTAssertTrue(exported.contains("exported 10 images and 10 masks"), exported)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("sa/masks").path).count, 10)
    }

    func testManifestsCommand() throws {
        let (list, _) = try medcat(["manifests"])
        for name in ["kits19", "brats2021", "msd-task03-liver", "isic2018", "kvasir-seg", "drive", "acdc", "camus", "nnunet", "paired"] {
            XCTAssertTrue(list.contains(name), "\(name) missing from `medcat manifests`")
        }
        let (yaml, _) = try medcat(["manifests", "kits19"])
        XCTAssertTrue(yaml.contains("layout: kits"), yaml)
    }

    /// SIGKILL at arbitrary moments, then resume: the final catalog equals an uninterrupted run's.
    func testKilledIngestResumesToTheSameCatalog() throws {
        let raw = dir.appendingPathComponent("raw/KiTS19")
        try Self.kits(24, at: raw, size: 128)
        try medcat(["ingest", "raw", "--catalog", "reference.sqlite", "--workers", "2"])
        let (reference, _) = try medcat(["catalog", "query", "--catalog", "reference.sqlite"])
        XCTAssertEqual(reference.split(separator: "\n").count, 24 * 13)
        var killedMidway = 0
        for (n, delay) in [0.05, 0.15, 0.3, 0.5, 0.8].enumerated() {
            let db = "killed\(n).sqlite"
            let p = Process()
            p.executableURL = Self.binary
            p.arguments = ["ingest", "raw", "--catalog", db, "--workers", "2"]
            p.currentDirectoryURL = dir
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: delay)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { killedMidway += 1 }
            let (out, _) = try medcat(["ingest", "raw", "--catalog", db, "--workers", "1"])
            XCTAssertTrue(out.contains("0 rejected"), out)
            let (resumed, _) = try medcat(["catalog", "query", "--catalog", db])
            XCTAssertEqual(resumed, reference, "catalog after a kill at \(delay) s differs from an uninterrupted run")
            // Every stored mask is readable and passes its checksum: export them all.
            let (exported, _) = try medcat(["export", "--catalog", db, "--format", "webdataset", "--out", "wds\(n)"])
            XCTAssertTrue(exported.contains("\(24 * 8) images and \(24 * 13) masks"), exported)
        }
        XCTAssertGreaterThan(killedMidway, 0, "no run was killed before it finished; make the dataset larger")
    }
}
