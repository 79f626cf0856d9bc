import ArgumentParser
import Catalog
import Eval
import Foundation

struct LeaderboardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaderboard",
        abstract: "Write the evaluations in the catalog as a report: Markdown, an HTML page, CSV, JSON, SVG charts and PNG thumbnails.",
        discussion: """
            Runs side by side for every protocol output: modality × class and per dataset, Dice and NSD with 95 % \
            case-bootstrap intervals (cases are patients or volumes; groups under 5 cases get no interval), the paired \
            difference from the reference run with a Wilcoxon signed-rank test over cases (Holm-corrected), ranking \
            stability, Dice against points and clicks per modality, and the best, median and worst mask of each run \
            and group. Runs are compared only on the masks all of them scored with the same first prompts.

            Examples:
              medcat leaderboard --out report
              medcat leaderboard --run lite_medsam --run finetuned --baseline lite_medsam --out report
            """)

    @OptionGroup var common: CatalogOptions
    @Option(name: .customLong("run"), help: "Evaluation to include (repeatable; default: every finished one).") var runs: [String] = []
    @Option(help: "The reference run differences are taken from (default: the first run).") var baseline: String?
    @Option(help: "Output folder.") var out: String = "leaderboard"
    @Option(help: "Bootstrap resamples for the confidence intervals (0: none).") var bootstrap: Int = 1000
    @Flag(help: "Leave the thumbnails out.") var noThumbnails = false

    func validate() throws {
        guard bootstrap >= 0 else { throw ValidationError("--bootstrap must be 0 or more") }
    }

    func run() throws {
        let catalog = try Catalog(path: common.catalog)
        let report = try LeaderboardReport.build(catalog: catalog, runs: runs, baseline: baseline, resamples: bootstrap, thumbnails: !noThumbnails)
        let files = try report.write(to: URL(fileURLWithPath: out))
        print("\(report.runs.count) evaluations → \(out)/leaderboard.{md,html,csv,json}, comparison.csv, \(files.filter { $0.hasPrefix("charts/") }.count) charts, "
              + "\(report.thumbnails.count) thumbnails")
    }
}
