// swift-tools-version:6.0
import PackageDescription

// libtorch: the pinned PyPI wheel that tools/setup.sh unpacks into .deps/torch, or a user's own
// (e.g. a CUDA build) through MEDCAT_LIBTORCH=/path (a folder with include/ and lib/). The rpath is
// set here because SwiftPM drops it from pkg-config files.
let libtorch = Context.environment["MEDCAT_LIBTORCH"] ?? "\(Context.packageDirectory)/.deps/torch/torch"

// Dependencies point down (the README draws them): medcat (CLI) → Trainer → Eval → SAM → Torch →
// CTorch (libtorch); SAM → Prompts → Imaging → CCodecs (Debian's codecs), CDicom (GDCM); medcat →
// Ingest → Imaging, Catalog. Catalog is the store ingest writes and training and eval read.
// Geometry (boxes), Hashing and CProcess sit at the bottom. Every module a target imports is listed
// in its dependencies, even where another one brings it.
let package = Package(
    name: "medcat",
    products: [
        .executable(name: "medcat", targets: ["medcat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // Debian's image and compression codecs behind a C header (libpng and libjpeg longjmp).
        .target(
            name: "CCodecs",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [
                .linkedLibrary("png"), .linkedLibrary("z"), .linkedLibrary("jpeg"),
                .linkedLibrary("tiff"), .linkedLibrary("gif"), .linkedLibrary("deflate"), .linkedLibrary("isal"),
            ]
        ),
        .target(name: "CHash", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("xxhash")]),
        // Binds values to the catalog's prepared statements without boxing them (its insert hot path).
        .target(name: "CSQLiteBind", linkerSettings: [.linkedLibrary("sqlite3")]),
        // Allocator settings and the crash note of the batch commands.
        .target(name: "CProcess"),
        // GDCM (Debian's libgdcm-dev) behind a C header: DICOM parsing and every compressed transfer syntax.
        .target(
            name: "CDicom",
            cxxSettings: [.unsafeFlags(["-I/usr/include/gdcm-3.0", "-O2"])],
            linkerSettings: [.linkedLibrary("gdcmMSFF"), .linkedLibrary("gdcmDSED"), .linkedLibrary("gdcmCommon")]
        ),
        // libtorch behind a C header; its headers want C++20. c10d's Gloo backend needs Debian's
        // libgloo-dev headers (the wheel ships the symbols, not gloo's headers).
        .target(
            name: "CTorch",
            cxxSettings: [.unsafeFlags([
                "-std=c++20", "-O2", "-w", "-D_GLIBCXX_USE_CXX11_ABI=1", "-DUSE_C10D_GLOO",
                "-I\(libtorch)/include", "-I\(libtorch)/include/torch/csrc/api/include",
            ])],
            linkerSettings: [
                .unsafeFlags(["-L\(libtorch)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(libtorch)/lib"]),
                .linkedLibrary("torch_cpu"), .linkedLibrary("c10"), .linkedLibrary("dl"),
            ]
        ),
        .target(name: "Torch", dependencies: ["CTorch"]),
        .target(name: "SAM", dependencies: ["Torch", "Prompts", "Geometry"]),
        // Content hashes (XXH3) and stable keys (FNV-1a); boxes on images and in volumes.
        .target(name: "Hashing", dependencies: ["CHash"]),
        .target(name: "Geometry"),
        .target(name: "Imaging", dependencies: ["CCodecs", "CDicom", "Geometry"]),
        // Box, point and click simulation from ground truth, shared by training and evaluation.
        .target(name: "Prompts", dependencies: ["Imaging", "Geometry"]),
        .target(name: "Trainer", dependencies: ["SAM", "Torch", "Prompts", "Eval", "Catalog", "Geometry", "Hashing"]),
        .target(name: "Eval", dependencies: ["SAM", "Torch", "Prompts", "Catalog", "Imaging", "Geometry", "Hashing", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "Catalog", dependencies: ["CCodecs", "CSQLiteBind", "Hashing", "Geometry", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(
            name: "Ingest",
            dependencies: ["CProcess", "Imaging", "Catalog", "Hashing", "Geometry", "Yams", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "medcat",
            dependencies: ["Ingest", "Eval", "Trainer", "SAM", "Torch", "Prompts", "Catalog", "Imaging", "CProcess", "Hashing", "Geometry",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(name: "medcat-catalog-bench", dependencies: ["Catalog", "Geometry"], path: "bench/CatalogBench"),
        .executableTarget(name: "medcat-sam-bench", dependencies: ["SAM", "Torch", "Trainer", "Catalog", "CProcess", "Imaging"], path: "bench/SamBench"),
        .executableTarget(name: "medcat-eval-bench", dependencies: ["Eval"], path: "bench/EvalBench"),
        // What the test targets share: a fresh folder per test, the seeded generator, the real data's
        // paths, DICOM files written by the tests (a small explicit-VR writer and one annotated scene)
        // and datasets in the public layouts, as downloaded. Imaging only: through it, GRDB's SQL
        // operators would reach every test target's arithmetic and slow type-checking past its limit.
        .target(name: "TestSupport", dependencies: ["Imaging"], path: "Tests/TestSupport"),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog", "Geometry", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "TorchTests", dependencies: ["Torch"]),
        .testTarget(name: "SAMTests", dependencies: ["SAM", "Torch", "Imaging", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainerTests", dependencies: ["Trainer", "Eval", "Ingest", "SAM", "Torch", "Prompts", "Catalog", "Imaging", "TestSupport",
                                                     .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "EvalTests", dependencies: ["Eval", "Prompts", "Catalog", "Imaging", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")], resources: [.copy("Fixtures")]),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "Catalog", "Imaging", "Hashing", "TestSupport",
                                                    .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "CLITests", dependencies: ["medcat", "Imaging", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
