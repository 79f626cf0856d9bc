import Foundation
import Imaging

public enum SliceAxis: String, CaseIterable, Codable, Sendable {
    case axial = "z", coronal = "y", sagittal = "x"
}

/// Settings of one ingest run (documented defaults in the README; recorded with the run).
public struct IngestOptions: Sendable {
    /// Output side in pixels: longest side resized to this, then padded to a square.
    public var size = 256
    public var axes: [SliceAxis] = [.axial]
    /// One mask per connected component instead of one per class.
    public var instances = false
    /// Keep slices that have no mask.
    public var keepEmpty = false
    /// Components under this many pixels in a 2D slice (source grid) are dropped.
    public var minMaskPixels = 100
    /// 3D components under this many voxels are dropped before slicing.
    public var minComponentVoxels = 1000
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Replaces the manifest's and the modality's intensity policy.
    public var intensity: IntensityPolicy?
    /// Modality of datasets whose manifest (or dataset.json) does not say it.
    public var modality: String?
    /// Class of the foreground of generic mask folders (default: the dataset's name).
    public var className: String?
    /// Try again files that an earlier run rejected, even if unchanged.
    public var retryRejected = false
    /// Inflate compressed images to their end, so that the CRC covers them whole. Otherwise an image
    /// is inflated only as far as its last labelled slice (truncation is still caught by its trailer).
    public var verifyCRC = false
    /// Record DICOM file paths and series UIDs in the catalog and logs instead of salted hashes
    /// (off by default: folder names of clinical exports often carry patient identifiers).
    public var keepPaths = false

    public init() {}

    /// The settings that change what a unit becomes (not how fast).
    var outputSettings: String {
        "size=\(size) axes=\(axes.map(\.rawValue).joined()) instances=\(instances) keepEmpty=\(keepEmpty) minMask=\(minMaskPixels) "
            + "minComponent=\(minComponentVoxels) intensity=\(intensity?.description ?? "default") modality=\(modality ?? "manifest")"
            + (className.map { " class=\($0)" } ?? "")
    }

    var json: String {
        let d: [String: Any] = [
            "size": size, "axes": axes.map(\.rawValue).joined(), "instances": instances, "keep_empty": keepEmpty,
            "min_mask_pixels": minMaskPixels, "min_component_voxels": minComponentVoxels, "workers": workers,
            "intensity": intensity?.description ?? "default", "modality": modality ?? "manifest", "keep_paths": keepPaths,
            "verify_crc": verifyCRC, "class": className ?? "folder name",
        ]
        return String(decoding: try! JSONSerialization.data(withJSONObject: d, options: .sortedKeys), as: UTF8.self)
    }
}
