import Foundation

public enum ImageFormat: String, CaseIterable, Sendable {
    case nifti, nrrd, metaImage = "metaimage", png, jpeg, tiff, gif, bmp

    public var isVolumetric: Bool { self == .nifti || self == .nrrd || self == .metaImage }
}

/// Reads any supported file into a `Volume`, choosing the codec from the file name.
public enum ImageIO {
    public static func format(of url: URL) -> ImageFormat? {
        let name = url.lastPathComponent.lowercased()
        if name.hasSuffix(".nii") || name.hasSuffix(".nii.gz") { return .nifti }
        switch url.pathExtension.lowercased() {
        case "nrrd", "nhdr": return .nrrd
        case "mha", "mhd": return .metaImage
        case "png": return .png
        case "jpg", "jpeg": return .jpeg
        case "tif", "tiff": return .tiff
        case "gif": return .gif
        case "bmp": return .bmp
        default: return nil
        }
    }

    public static func isImageFile(_ url: URL) -> Bool { format(of: url) != nil }

    public static func read(_ url: URL) throws -> Volume {
        guard let format = format(of: url) else { throw ImagingError("unsupported file type") }
        switch format {
        case .nifti: return try NIfTI.read(url)
        case .nrrd: return try NRRD.read(url)
        case .metaImage: return try MetaImage.read(url)
        case .png, .jpeg, .tiff, .gif, .bmp:
            let data = try Data(contentsOf: url, options: .alwaysMapped)
            if data.isEmpty { throw ImagingError("file is empty") }
            return try Raster.decode(data, format: format)
        }
    }
}
