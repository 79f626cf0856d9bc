import Catalog
import Foundation
import Ingest
import Logging

/// Ingests `root` into `catalog` with the built-in manifests, as `medcat ingest` does. Log lines go
/// to `log`, or nowhere.
func runIngest(_ root: URL, catalog: Catalog, options: IngestOptions = IngestOptions(), manifest: Manifest? = nil,
               log: RecordingLog? = nil) throws -> IngestSummary {
    let handler: any LogHandler = log ?? SwiftLogNoOpLogHandler()
    return try IngestRunner(catalog: catalog, library: try ManifestLibrary.builtin(), options: options,
                            log: Logger(label: "test") { _ in handler }, progress: nil)
        .run(root: root, manifest: manifest)
}
