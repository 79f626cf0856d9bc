import ArgumentParser
import Catalog
import Foundation
import Ingest

struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Inspect and query the catalog.",
        discussion: """
            Examples:
              medcat catalog stats --json
              medcat catalog query --modality ct --class kidney_tumor --split train --limit 10
              medcat catalog query --dataset brats2021 --count
              medcat catalog errors
              medcat catalog split --ratios 0.7,0.15,0.15 --seed 1
              medcat catalog map-class tumor_bed --to tumor
            """,
        subcommands: [Stats.self, Query.self, Errors.self, SplitCommand.self, MapClass.self]
    )

    /// Filters shared by commands that select image–mask pairs.
    struct Filters: ParsableArguments {
        @Option(name: .customLong("modality"), help: "Modality (repeatable), e.g. ct, mr_t1.")
        var modalities: [String] = []
        @Option(name: .customLong("class"), help: "Class name (repeatable), e.g. liver.")
        var classes: [String] = []
        @Option(name: .customLong("dataset"), help: "Dataset name (repeatable).")
        var datasets: [String] = []
        @Option(name: .customLong("split"), help: "Split (repeatable).")
        var splits: [Split] = []

        var selection: Selection { Selection(modalities: modalities, classes: classes, datasets: datasets, splits: splits) }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Counts per modality, class, dataset and split.")
        @OptionGroup var common: CatalogOptions
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let s = try Catalog(path: common.catalog).stats()
            if json { print(try Output.json(s, pretty: true)); return }
            print("\(s.datasets) datasets, \(s.cases) cases, \(s.images) images, \(s.masks) masks (\(s.blobs) stored images); \(s.sourceFiles) source files, \(s.rejectedFiles) rejected")
            func section(_ title: String, _ rows: [CatalogStats.Row], cases: Bool) {
                guard !rows.isEmpty else { return }
                print("\n" + Output.table([title, "images", "masks"] + (cases ? ["cases"] : []),
                                          rows.map { [$0.name, "\($0.images)", "\($0.masks)"] + (cases ? ["\($0.cases ?? 0)"] : []) }))
            }
            section("modality", s.byModality, cases: false)
            section("dataset", s.byDataset, cases: true)
            section("split", s.bySplit, cases: true)
            if !s.byClass.isEmpty { print("\n" + Output.table(["class", "masks"], s.byClass.map { [$0.name, "\($0.masks)"] })) }
            if !s.unmapped.isEmpty {
                print("\n" + Output.table(["unmapped class", "masks", "datasets"], s.unmapped.map { [$0.name, "\($0.masks)", $0.datasets.joined(separator: ", ")] }))
                print("map one onto a class of classes.yaml (or rename it): medcat catalog map-class \(s.unmapped[0].name) --to CLASS")
            }
            if let d = s.duplicates, d.sharedImages > 0 {
                print("\n\(d.sharedImages) stored images are shared by several cases (\(d.groupedCases) cases, kept in one split per group)")
                if !d.crossDataset.isEmpty {
                    print(Output.table(["datasets sharing images", "images"], d.crossDataset.map { [$0.datasets.joined(separator: " + "), "\($0.images)"] }))
                }
            }
        }
    }

    struct MapClass: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "map-class",
            abstract: "Map a class onto another (or rename it) without re-ingesting; later ingests remember it.",
            discussion: """
                The masks of NAME join the class TARGET if the catalog has it, else NAME is renamed TARGET.
                Examples:
                  medcat catalog map-class lesion --to liver_tumor
                  medcat catalog map-class tumor_bed --to surgical_bed
                """)
        @OptionGroup var common: CatalogOptions
        @Argument(help: "The class to map (usually an unmapped one; see `medcat catalog stats`).") var name: String
        @Option(help: "The class it becomes: a classes.yaml name or alias, or a new name.") var to: String

        func validate() throws {
            guard !to.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--to must name a class") }
        }

        func run() throws {
            let vocabulary = try ManifestLibrary.builtin().vocabulary
            let target = vocabulary.resolve(to) ?? to
            let catalog = try Catalog(path: common.catalog)
            switch try catalog.mapClass(name, to: target, targetIsKnown: vocabulary.contains(target)) {
            case let .merged(masks): print("\(masks) masks of '\(name)' are now '\(target)'")
            case .renamed: print("'\(name)' is now called '\(target)'\(vocabulary.contains(target) ? "" : " (not in classes.yaml: still unmapped)")")
            }
        }
    }

    struct Query: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Image–mask pairs matching the filters, one JSON object per line.",
            discussion: "Example: medcat catalog query --modality ct --class kidney_tumor --split train --limit 10")
        @OptionGroup var common: CatalogOptions
        @OptionGroup var filters: Filters
        @Option(help: "At most this many pairs.") var limit: Int?
        @Flag(help: "Print mask ids only.") var ids = false
        @Flag(help: "Print the number of matching pairs only.") var count = false

        func run() throws {
            let catalog = try Catalog(path: common.catalog)
            if count { print(try catalog.count(filters.selection)); return }
            var after: Int64 = 0, printed = 0
            // Pages keep memory flat on selections of millions of pairs.
            while limit.map({ printed < $0 }) ?? true {
                let page = try catalog.query(filters.selection, limit: min(10_000, (limit ?? .max) - printed), afterID: after)
                guard let last = page.last else { break }
                var out = ""
                for r in page { out += (ids ? String(r.id) : try Output.json(r)) + "\n" }
                FileHandle.standardOutput.write(Data(out.utf8))
                printed += page.count
                after = last.id
            }
        }
    }

    struct Errors: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Files that were rejected, and why.")
        @OptionGroup var common: CatalogOptions
        @Option(help: "Only this dataset.") var dataset: String?
        @Flag(help: "Print JSON lines.") var json = false

        func run() throws {
            let errors = try Catalog(path: common.catalog).errors(dataset: dataset)
            if json { for e in errors { print(try Output.json(e)) }; return }
            if errors.isEmpty { print("no errors"); return }
            for e in errors { print("\(e.dataset ?? "?")/\(e.path): \(e.stage): \(e.message)") }
        }
    }

    struct SplitCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "split",
            abstract: "Re-assign case-level splits with new ratios or seed (deterministic).",
            discussion: """
                Examples:
                  medcat catalog split --ratios 0.7,0.15,0.15 --seed 1
                  medcat catalog split --dataset colin27-aal=train --dataset itk-kmeans=test
                """)
        @OptionGroup var common: CatalogOptions
        @Option(help: "train,val,test ratios.") var ratios: String = "0.8,0.1,0.1"
        @Option(help: "Seed of the assignment.") var seed: UInt64 = 0
        @Option(name: .customLong("dataset"), help: "NAME=SPLIT: put a whole dataset in one split (repeatable).") var datasets: [String] = []

        func validate() throws {
            let r = ratios.split(separator: ",").compactMap { Double($0) }
            guard r.count == 3, r.allSatisfy({ $0 >= 0 }), r.reduce(0, +) > 0 else { throw ValidationError("--ratios must be three non-negative numbers, e.g. 0.8,0.1,0.1") }
            _ = try fixed()
        }

        func fixed() throws -> [String: Split] {
            var out: [String: Split] = [:]
            for d in datasets {
                let parts = d.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let s = Split(name: parts[1]) else { throw ValidationError("--dataset takes NAME=train|val|test (got '\(d)')") }
                out[parts[0]] = s
            }
            return out
        }

        func run() throws {
            let r = ratios.split(separator: ",").compactMap { Double($0) }
            let catalog = try Catalog(path: common.catalog)
            let fixed = try fixed()
            let known = Set(try catalog.stats().byDataset.map(\.name))
            for name in fixed.keys where !known.contains(name) {
                throw ValidationError("--dataset: unknown dataset '\(name)'; the catalog has: \(known.sorted().joined(separator: ", "))")
            }
            try catalog.resplit(SplitPolicy(train: r[0], val: r[1], test: r[2], seed: seed, datasets: fixed.isEmpty ? nil : fixed))
            for row in try catalog.stats().bySplit { print("\(row.name): \(row.cases ?? 0) cases, \(row.images) images, \(row.masks) masks") }
        }
    }
}
