import ArgumentParser
import Catalog
import Eval
import Foundation

struct LeaderboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaderboard",
        abstract: "Write the evaluations in the catalog as Markdown, one self-contained HTML page, CSV and JSON.",
        discussion: """
            Results per protocol overall, by modality, class and dataset (mean over masks and over classes, 95 % \
            bootstrap intervals), 3D results per volume, the Dice-per-click curve, and thumbnails of each run's best \
            and worst masks.

            Examples:
              medcat leaderboard --out report
              medcat leaderboard --run lite_medsam --run finetuned --out report
            """)

    @OptionGroup var common: CatalogOptions
    @Option(name: .customLong("run"), help: "Evaluation to include (repeatable; default: every finished one).") var runs: [String] = []
    @Option(help: "Output folder.") var out: String = "leaderboard"
    @Option(help: "Bootstrap resamples for the confidence intervals (0: none).") var bootstrap: Int = 1000
    @Flag(help: "Leave the thumbnails out of the HTML page.") var noThumbnails = false

    func validate() throws {
        guard bootstrap >= 0 else { throw ValidationError("--bootstrap must be 0 or more") }
    }

    func run() throws {
        let catalog = try Catalog(path: common.catalog)
        let report = try LeaderboardReport.build(catalog: catalog, runs: runs, resamples: bootstrap, thumbnails: !noThumbnails)
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let md = report.markdown()
        try Data(md.utf8).write(to: dir.appendingPathComponent("leaderboard.md"))
        try Data(report.html().utf8).write(to: dir.appendingPathComponent("leaderboard.html"))
        try Data(report.csv().utf8).write(to: dir.appendingPathComponent("leaderboard.csv"))
        try report.json().write(to: dir.appendingPathComponent("leaderboard.json"))
        print("\(report.runs.count) evaluations → \(out)/leaderboard.{md,html,csv,json}")
    }
}
