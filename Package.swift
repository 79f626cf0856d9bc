// swift-tools-version:6.0
import PackageDescription

// Dependencies point down: medcat (CLI) → Ingest → Imaging, Catalog → CCodecs (Debian's C codecs), CDicom (GDCM).
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
        .target(
            name: "CCodecs",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [
                .linkedLibrary("png"), .linkedLibrary("z"), .linkedLibrary("jpeg"),
                .linkedLibrary("tiff"), .linkedLibrary("gif"), .linkedLibrary("deflate"),
                .linkedLibrary("xxhash"), .linkedLibrary("sqlite3"),
            ]
        ),
        // GDCM (Debian's libgdcm-dev) behind a C header: DICOM parsing and every compressed transfer syntax.
        .target(
            name: "CDicom",
            cxxSettings: [.unsafeFlags(["-I/usr/include/gdcm-3.0", "-O2"])],
            linkerSettings: [.linkedLibrary("gdcmMSFF"), .linkedLibrary("gdcmDSED"), .linkedLibrary("gdcmCommon")]
        ),
        .target(name: "Imaging", dependencies: ["CCodecs", "CDicom"]),
        .target(name: "Catalog", dependencies: ["CCodecs", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(
            name: "Ingest",
            dependencies: ["CCodecs", "Imaging", "Catalog", "Yams", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "medcat",
            dependencies: ["Ingest", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "medcat-catalog-bench", dependencies: ["Catalog"], path: "bench/CatalogBench"),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CatalogTests", dependencies: ["Catalog"]),
        // DICOM files written by the tests (a small explicit-VR writer and one annotated scene).
        .target(name: "DICOMFixtures", dependencies: ["Imaging"], path: "Tests/DICOMFixtures"),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "DICOMFixtures"]),
        .testTarget(name: "CLITests", dependencies: ["medcat", "DICOMFixtures"]),
    ],
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
