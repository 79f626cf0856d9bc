import Catalog
import Foundation
import Imaging
@testable import TestSupport
import XCTest
@testable import Eval

/// The leaderboard page in a real browser (Debian's headless `chromium`): a generated catalog of 50
/// runs over 200 modality · class groups; the page sorts, switches views, draws without console
/// errors, and is interactive within 2 s.
final class LeaderboardPageTests: TemporaryDirectoryTestCase {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs headless Chromium on `page`; returns stdout and stderr.
    func chromium(_ arguments: [String], page: URL) throws -> (out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try XCTUnwrap(Self.chromium))
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--user-data-dir=" + dir.appendingPathComponent("profile").path]
            + arguments + [page.absoluteString]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return (String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// What the test does in the page, after the page's own script: sort by a run's column both
    /// ways, switch metric and output, and write what it saw into #result.
    static let harness = #"""
        <script>
        (function () {
          var out = { ready: Number(document.body.dataset.ready), errors: window.__errors };
          function col(i) { return Array.prototype.map.call(document.querySelectorAll('#matrix tbody tr'), function (tr) { return tr.cells[i].dataset.v; }); }
          function th(i) { return document.querySelectorAll('#matrix thead th')[i]; }
          out.rows = document.querySelectorAll('#matrix tbody tr').length;
          out.headers = Array.prototype.map.call(document.querySelectorAll('#matrix thead th'), function (t) { return t.textContent; });
          th(4).click(); out.sortedDown = col(4).map(Number);
          th(4).click(); out.sortedUp = col(4).map(Number);
          out.firstDice = document.querySelector('#matrix tbody tr').cells[4].dataset.v;
          var metric = document.getElementById('metric'); metric.value = 'NSD'; metric.dispatchEvent(new Event('change'));
          out.nsdRows = document.querySelectorAll('#matrix tbody tr').length;
          out.firstNSD = document.querySelector('#matrix tbody tr').cells[4].dataset.v;
          function values(id) { return Array.prototype.map.call(document.getElementById(id).options, function (o) { return o.value; }); }
          out.protocols = values('protocol'); out.outputs = values('output');
          var output = document.getElementById('output'); output.value = 'oracle'; output.dispatchEvent(new Event('change'));
          out.firstOracleNSD = document.querySelector('#matrix tbody tr').cells[4].dataset.v;
          var grouping = document.getElementById('grouping'); grouping.value = 'dataset'; grouping.dispatchEvent(new Event('change'));
          out.datasetRows = Array.prototype.map.call(document.querySelectorAll('#matrix tbody tr'), function (tr) { return tr.cells[0].textContent; });
          out.stabilityRows = document.querySelectorAll('#stability tbody tr').length;
          out.errors = window.__errors;
          var pre = document.createElement('pre'); pre.id = 'result'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
        })();
        </script>
        """#

    func testPageSortsSwitchesAndStaysQuickWithFiftyRunsAndTwoHundredGroups() throws {
        _ = try XCTUnwrap(Self.chromium, "Debian's chromium is missing: run ./tools/setup.sh")
        // Few resamples: the page carries the same data whatever their number, and the test stays short.
        let report = try LeaderboardReport.build(catalog: try GeneratedEvaluations.catalog(at: dir, runs: 50), resamples: 20, thumbnails: false)
        XCTAssertEqual(report.table(.init(proto: "box", step: 0, output: "first"), .modalityClass, .dice)?.rows.count, 200)
        let folder = dir.appendingPathComponent("report")
        try report.write(to: folder)
        let page = try String(contentsOf: folder.appendingPathComponent("leaderboard.html"), encoding: .utf8)
        let errorTrap = "<head><script>window.__errors = []; window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });"
            + " var ce = console.error; console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); };</script>"
        let instrumented = page.replacingOccurrences(of: "<head>", with: errorTrap).replacingOccurrences(of: "</body>", with: Self.harness + "</body>")
        let testPage = folder.appendingPathComponent("test.html")
        try Data(instrumented.utf8).write(to: testPage)

        let (dom, log) = try chromium(["--dump-dom"], page: testPage)
        XCTAssertFalse(log.contains("Uncaught"), log)
        let text = try XCTUnwrap(dom.range(of: "<pre id=\"result\">").map { String(dom[$0.upperBound...].prefix { $0 != "<" }) }, "the harness ran: \(dom.suffix(500))")
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.replacingOccurrences(of: "&amp;", with: "&").utf8)) as? [String: Any])
        XCTAssertEqual((result["errors"] as? [Any])?.count, 0, "console errors: \(result["errors"] ?? "")")
        let ready = try XCTUnwrap(result["ready"] as? Double)
        XCTAssertLessThan(ready, 2000, "interactive after \(ready) ms")
        print("leaderboard page with 50 runs × 200 groups interactive after \(Int(ready)) ms")
        XCTAssertEqual(result["rows"] as? Int, 200)
        let headers = try XCTUnwrap(result["headers"] as? [String])
        XCTAssertEqual(Array(headers.prefix(5)), ["modality", "class", "cases", "masks", "model_0 (ref.)"])
        XCTAssertEqual(headers.count, 4 + 50 + 2 * 49, "a column per run, then Δ and p per run against the reference")
        let down = try XCTUnwrap(result["sortedDown"] as? [Double]), up = try XCTUnwrap(result["sortedUp"] as? [Double])
        XCTAssertEqual(down, down.sorted(by: >)); XCTAssertEqual(up, up.sorted()); XCTAssertEqual(Set(down), Set(up))
        XCTAssertEqual(result["nsdRows"] as? Int, 200)
        XCTAssertNotEqual(result["firstDice"] as? String, result["firstNSD"] as? String, "the metric switch redrew the table")
        XCTAssertEqual(result["protocols"] as? [String], ["box"]); XCTAssertEqual(result["outputs"] as? [String], ["first", "oracle"])
        XCTAssertNotEqual(result["firstOracleNSD"] as? String, result["firstNSD"] as? String, "the output switch redrew the table")
        XCTAssertEqual(result["datasetRows"] as? [String], ["ct_set", "fundus_set", "mr_set", "us_set"])
        XCTAssertEqual(result["stabilityRows"] as? Int, 4)

        let shot = dir.appendingPathComponent("leaderboard.png")
        _ = try chromium(["--screenshot=" + shot.path, "--window-size=1280,1600", "--hide-scrollbars"], page: testPage)
        let png = try Raster.decode(Data(contentsOf: shot), format: .png)
        XCTAssertEqual(png.size, [1280, 1600, 1])
    }
}
