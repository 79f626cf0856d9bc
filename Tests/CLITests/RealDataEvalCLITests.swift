import Foundation
import Imaging
import XCTest

@testable import TestSupport

/// `medcat eval` and `medcat leaderboard` through the binary, with LiteMedSAM's real weights
/// (.deps/data/lite_medsam.pth) on a small KiTS-layout volume whose kidney and tumour stand out
/// from the background.
final class RealDataEvalCLITests: BinaryTestCase {
    func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(path))) as! [String: Any]
    }

    /// Overall results of one run: "protocol@step · output" → group.
    func overall(_ report: [String: Any], run: String, level: String = "mask", kind: String = "overall") -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for e in report["entries"] as! [[String: Any]] where e["run"] as? String == run && e["level"] as? String == level {
            let v = e["variant"] as! [String: Any]
            let key = "\(v["proto"]!)@\(v["step"]!)·\(v["output"]!)"
            for g in e["groups"] as! [[String: Any]] where g["kind"] as? String == kind { out[key + (kind == "overall" ? "" : "/\(g["name"]!)")] = g }
        }
        return out
    }

    func mean(_ g: [String: Any]?, _ metric: String) -> Double? { (g?[metric] as? [String: Any])?["mean"] as? Double }

    func testEvalRecordsReplaysAndReports() throws {
        let weights = try PackageFiles.realData("lite_medsam.pth").path
        try Self.kits(1, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw", "--workers", "2"])
        let all = ["--split", "train", "--split", "val", "--split", "test"]
        let (out, _) = try medcat(["eval", "--checkpoint", weights, "--name", "zero-shot", "--protocol", "box",
                                   "--protocol", "points3", "--protocol", "clicks", "--clicks", "3", "--save-prompts", "prompts.json"] + all)
        XCTAssertTrue(out.contains("evaluation 'zero-shot': 8 images, 13 masks"), out)
        XCTAssertTrue(out.contains("box · first"), out)

        // The saved box prompts are the masks' tight boxes, keyed by mask id.
        let files = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("prompts.json"))) as! [[String: Any]]
        XCTAssertEqual(files.map { $0["protocol"] as! String }, ["box", "points3", "clicks"])
        let (query, _) = try medcat(["catalog", "query"])
        let pairs = query.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(pairs.count, 13)
        let boxes = try XCTUnwrap(files[0]["prompts"] as? [String: [String: Any]])
        let byID = Dictionary(uniqueKeysWithValues: boxes.map { (Int($0.key)!, $0.value["box"] as? [Int]) })
        for p in pairs { XCTAssertEqual(byID[p["id"] as! Int], p["bbox"] as? [Int], "mask \(p["id"]!)") }

        // Replaying the prompts on the same model gives the same scores.
        try medcat(["eval", "--checkpoint", weights, "--name", "replayed", "--protocol", "box", "--prompts", "prompts.json"] + all)
        try medcat(["leaderboard", "--out", "report", "--bootstrap", "200"])
        let report = try json("report/leaderboard.json")
        // Another process (another hash seed) writes the same report, to the last digit.
        try medcat(["leaderboard", "--out", "again", "--bootstrap", "200"])
        for file in ["leaderboard.json", "leaderboard.md", "comparison.csv"] {
            XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("report/\(file)")),
                           try Data(contentsOf: dir.appendingPathComponent("again/\(file)")), file)
        }
        let zero = overall(report, run: "zero-shot"), replayed = overall(report, run: "replayed")
        let box = try XCTUnwrap(zero["box@0·first"])
        XCTAssertEqual(box["count"] as? Int, 13)
        XCTAssertEqual(mean(box, "dice"), mean(replayed["box@0·first"], "dice"))
        XCTAssertEqual(mean(box, "hd95"), mean(replayed["box@0·first"], "hd95"))
        // High-contrast boxes: LiteMedSAM with a box prompt segments them well.
        XCTAssertGreaterThan(try XCTUnwrap(mean(box, "dice")), 0.85)
        // One patient: 13 masks, one case, too few cases for an interval.
        let dice = try XCTUnwrap(box["dice"] as? [String: Any])
        XCTAssertEqual(dice["cases"] as? Int, 1)
        XCTAssertNil(dice["low"]); XCTAssertNil(dice["high"])
        XCTAssertNotNil(zero["points3@0·oracle"])
        XCTAssertNotNil(zero["clicks@3·first"])
        XCTAssertNil(zero["clicks@2·first"], "only the final click is a leaderboard entry")
        // Two classes, each with mean and count.
        let byClass = overall(report, run: "zero-shot", kind: "class")
        XCTAssertEqual(byClass["box@0·first/kidney"]?["count"] as? Int, 8)
        XCTAssertEqual(byClass["box@0·first/kidney_tumor"]?["count"] as? Int, 5)
        // 3D: one volume, two classes, slices stacked.
        let cases = overall(report, run: "zero-shot", level: "case", kind: "class")
        XCTAssertEqual(cases["box@0·first/kidney"]?["count"] as? Int, 1)
        XCTAssertGreaterThan(try XCTUnwrap(mean(cases["box@0·first/kidney"], "dice")), 0.85)
        // Curves per modality: Dice after 3 points, and after each of 3 clicks.
        let curves = try XCTUnwrap(report["curves"] as? [[String: Any]])
        let clicks = try XCTUnwrap(curves.first { $0["run"] as? String == "zero-shot" && $0["kind"] as? String == "clicks" })
        XCTAssertEqual(clicks["modality"] as? String, "ct"); XCTAssertEqual(clicks["x"] as? [Int], [1, 2, 3])
        XCTAssertEqual((clicks["dice"] as? [Any])?.count, 3)
        XCTAssertEqual(curves.first { $0["kind"] as? String == "points" }?["x"] as? [Int], [3])

        // The runs side by side: the replayed run saw the same prompts, so every mask is compared
        // and every difference is zero (nothing to test).
        let tables = try XCTUnwrap(report["tables"] as? [[String: Any]])
        let matrix = try XCTUnwrap(tables.first {
            ($0["variant"] as? [String: Any])?["proto"] as? String == "box" && ($0["variant"] as? [String: Any])?["output"] as? String == "first"
                && $0["level"] as? String == "mask" && $0["grouping"] as? String == "modality · class" && $0["metric"] as? String == "dice"
        })
        XCTAssertEqual(matrix["runs"] as? [String], ["zero-shot", "replayed"])
        let rows = try XCTUnwrap(matrix["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["group"] as? [String] }, [["ct", "kidney"], ["ct", "kidney_tumor"]])
        XCTAssertEqual(rows.map { $0["items"] as? Int }, [8, 5]); XCTAssertEqual(rows.map { $0["left_out"] as? Int }, [0, 0])
        for row in rows {
            let cells = try XCTUnwrap(row["cells"] as? [[String: Any]])
            let difference = try XCTUnwrap(cells[1]["difference"] as? [String: Any])
            XCTAssertEqual(try XCTUnwrap(difference["mean"] as? Double), 0, accuracy: 1e-12)
            XCTAssertNil(difference["p"])
        }

        // The other formats: the page and the Markdown show the same charts and thumbnails, files
        // in the report folder; nothing is fetched from elsewhere and no file path is written.
        let folder = dir.appendingPathComponent("report")
        let html = try String(contentsOf: folder.appendingPathComponent("leaderboard.html"), encoding: .utf8)
        for needle in ["<table class=sortable>", "<svg", "id=thumbgroup", "kidney_tumor", "zero-shot", "<script>", "id=protocol", "id=output", "id=metric"] {
            XCTAssertTrue(html.contains(needle), "HTML lacks \(needle)")
        }
        XCTAssertFalse(html.contains("src=\"http") || html.contains("<link"), "the page fetches nothing")
        XCTAssertFalse(html.contains(dir.path))
        let md = try String(contentsOf: folder.appendingPathComponent("leaderboard.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("| box · first | zero-shot |"), md)
        XCTAssertTrue(md.contains("| ct | kidney | 1† | 8 |"), md)
        XCTAssertTrue(md.contains("† fewer than 5 cases: too few for an interval or a test."), md)
        let charts = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("charts").path).sorted()
        XCTAssertEqual(charts, ["box-vs-points.svg", "curves-ct.svg", "dice-box-first.svg"])
        for chart in charts {
            XCTAssertTrue(md.contains("(charts/\(chart))"), "the Markdown shows \(chart)")
            XCTAssertTrue(try String(contentsOf: folder.appendingPathComponent("charts/\(chart)"), encoding: .utf8).hasPrefix("<svg xmlns="))
        }
        let thumbs = try XCTUnwrap(FileManager.default.enumerator(atPath: folder.appendingPathComponent("thumbs").path)?.allObjects as? [String])
            .filter { $0.hasSuffix(".png") }
        // Two runs × two classes × best, median and worst.
        XCTAssertEqual(thumbs.count, 12, "\(thumbs)")
        for t in thumbs {
            XCTAssertTrue(md.contains("(thumbs/\(t))"), "the Markdown shows \(t)")
            XCTAssertEqual(try Raster.decode(Data(contentsOf: folder.appendingPathComponent("thumbs/\(t)")), format: .png).components, 3)
        }
        let csv = try String(contentsOf: folder.appendingPathComponent("leaderboard.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("run,model,protocol,step,output,level,group_kind,group,count,metric,mean,ci_low,ci_high,n,cases,undefined\n"))
        XCTAssertTrue(csv.contains("zero-shot,lite_medsam.pth,box,0,first,mask,overall,all,13,dice,"), csv)
        let comparison = try String(contentsOf: folder.appendingPathComponent("comparison.csv"), encoding: .utf8)
        XCTAssertTrue(comparison.contains("mask,box,0,first,modality · class,ct · kidney,dice,replayed,zero-shot,1,8,0,"), comparison)

        // A name in use needs --replace.
        let (_, taken) = try medcat(["eval", "--checkpoint", weights, "--name", "replayed", "--protocol", "box"] + all, expect: 1)
        XCTAssertTrue(taken.contains("an evaluation named 'replayed' exists"), taken)
    }

    /// Two workers record what one records, row for row, when each has the libtorch threads the
    /// one had (a different thread count rounds libtorch's convolutions differently).
    func testTwoWorkersRecordWhatOneRecords() throws {
        let weights = try PackageFiles.realData("lite_medsam.pth").path
        try Self.kits(1, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw"])
        let settings = ["--checkpoint", weights, "--split", "train", "--split", "val", "--split", "test",
                        "--protocol", "box", "--protocol", "points1", "--protocol", "clicks", "--clicks", "3"]
        try medcat(["eval", "--name", "one", "--workers", "1", "--threads", "1", "--save-prompts", "one.json"] + settings)
        try medcat(["eval", "--name", "two", "--workers", "2", "--threads", "2", "--save-prompts", "two.json"] + settings)

        let rows = try ["one", "two"].map { try storedRows(run: $0) }
        XCTAssertEqual(rows[0].map { $0.split(separator: " ").prefix(2).joined(separator: " ") }, ["eval_masks 130", "eval_cases 12", "eval_examples 6"],
                       "two classes: the best, median and worst mask of each")
        XCTAssertEqual(rows[0], rows[1])
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("one.json")), try Data(contentsOf: dir.appendingPathComponent("two.json")))
    }

    /// Cross-validation: two parts, each another checkpoint file scoring other masks, make one run
    /// that scores every mask as one evaluation of the whole selection does.
    func testPartsAddUpToOneEvaluation() throws {
        let weights = try PackageFiles.realData("lite_medsam.pth")
        try Self.kits(1, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw"])
        let copy = dir.appendingPathComponent("fold2.pth")
        try Data(contentsOf: weights).write(to: copy)
        let settings = ["--split", "train", "--split", "val", "--split", "test", "--protocol", "box", "--protocol", "points1"]
        try medcat(["eval", "--checkpoint", weights.path, "--name", "whole"] + settings)
        try medcat(["eval", "--checkpoint", weights.path, "--name", "cv", "--class", "kidney"] + settings)
        let (added, _) = try medcat(["eval", "--checkpoint", copy.path, "--name", "cv", "--add", "--class", "kidney_tumor"] + settings)
        XCTAssertTrue(added.contains("evaluation 'cv' (a part added): ") && added.contains(" images, 5 masks"), added)
        // A mask decoded in a batch of other masks has its predicted IoU rounded otherwise (about
        // 1e-7); its scores are the same.
        let scores = "protocol, step, output, mask_id, dice, iou, nsd, hd95, prompt_key"
        let whole = try storedRows(run: "whole", maskColumns: scores), parts = try storedRows(run: "cv", maskColumns: scores)
        XCTAssertEqual(Array(whole.prefix(2)), Array(parts.prefix(2)), "every mask's and every volume's scores")
        XCTAssertEqual(whole[0].split(separator: " ").prefix(2).joined(separator: " "), "eval_masks 52", "13 masks, 2 protocols, 2 outputs")

        try medcat(["leaderboard", "--out", "report", "--bootstrap", "50"])
        let md = try String(contentsOf: dir.appendingPathComponent("report/leaderboard.md"), encoding: .utf8)
        let hash = String(try XCTUnwrap(md.split(separator: "\n").first { $0.hasPrefix("| whole |") }).split(separator: "|")[2]
            .trimmingCharacters(in: .whitespaces))
        XCTAssertEqual(hash.count, 12)
        XCTAssertTrue(md.contains("| cv | lite_medsam.pth + fold2.pth | \(hash) + \(hash) |"), md)

        // A part scores masks the run has not; it is scored alike; it adds to a finished run.
        let (_, again) = try medcat(["eval", "--checkpoint", copy.path, "--name", "cv", "--add", "--class", "kidney"] + settings, expect: 1)
        XCTAssertTrue(again.contains("the evaluation 'cv' has scored 8 of this selection's masks"), again)
        let (_, other) = try medcat(["eval", "--checkpoint", copy.path, "--name", "whole", "--add", "--class", "kidney",
                                     "--split", "train", "--split", "val", "--split", "test", "--protocol", "box"], expect: 1)
        XCTAssertTrue(other.contains("the evaluation 'whole' was scored with another protocol list"), other)
        let (_, missing) = try medcat(["eval", "--checkpoint", copy.path, "--name", "nothing", "--add"] + settings, expect: 1)
        XCTAssertTrue(missing.contains("no evaluation named 'nothing' to add to"), missing)
        let (_, both) = try medcat(["eval", "--checkpoint", copy.path, "--name", "cv", "--add", "--replace"] + settings, expect: 64)
        XCTAssertTrue(both.contains("--add and --replace exclude each other"), both)
    }

    /// Every score row of a run, read by Python's sqlite3 (floats as repr, which round-trips): one
    /// line per table, masks, volumes and examples.
    func storedRows(run name: String, maskColumns: String = "protocol, step, output, mask_id, dice, iou, nsd, hd95, predicted_iou, prompt_key") throws -> [String] {
        let dump = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            for table, columns in [("eval_masks", "\(maskColumns)"),
                                   ("eval_cases", "protocol, step, output, source_id, axis, class_id, instance, slices, dice, iou, nsd, hd95"),
                                   ("eval_examples", "protocol, step, output, kind, mask_id, dice, width, height, prediction")]:
                rows = db.execute(f"SELECT {columns} FROM {table} WHERE run_id = (SELECT id FROM eval_runs WHERE name = ?) ORDER BY {columns}",
                                  (sys.argv[2],)).fetchall()
                print(table, len(rows), repr(rows))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", dump, dir.appendingPathComponent("medcat.sqlite").path, name]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return text.split(separator: "\n").map(String.init)
    }
}
