import CDicom
import Foundation

/// A DICOM tag (group, element).
public struct Tag: Hashable, Sendable, CustomStringConvertible {
    public var group: UInt16, element: UInt16
    public init(_ group: UInt16, _ element: UInt16) { self.group = group; self.element = element }
    public var description: String { String(format: "(%04X,%04X)", group, element) }
}

/// One parsed DICOM file, read through GDCM (every transfer syntax Debian's GDCM decodes: JPEG
/// baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE, deflate, big-endian, implicit VR).
public final class DICOMFile {
    let handle: OpaquePointer
    public let url: URL

    /// With `headerOnly`, parsing stops at Pixel Data: enough to group and order a series.
    public init(_ url: URL, headerOnly: Bool = false) throws {
        var err = [CChar](repeating: 0, count: 512)
        guard let h = mc_dcm_open(url.path, headerOnly ? 1 : 0, &err, err.count) else {
            throw ImagingError(String(cString: err))
        }
        handle = h
        self.url = url
    }

    deinit { mc_dcm_close(handle) }

    public var root: DICOMItem { DICOMItem(file: self, pointer: mc_dcm_root(handle)) }
    public var hasPixels: Bool { mc_dcm_has_pixels(handle) != 0 }
    public var transferSyntax: String {
        var buf = [CChar](repeating: 0, count: 80)
        _ = mc_dcm_transfer_syntax(handle, &buf, buf.count)
        return String(cString: buf)
    }

    /// Decoded frames, each rows×columns×samples values, with the modality rescale (slope and
    /// intercept) applied, MONOCHROME1 inverted, and 1-bit data unpacked to 0/1.
    public func frames(slope: Double = 1, intercept: Double = 0) throws -> (columns: Int, rows: Int, samples: Int, frames: [[Float]]) {
        var info = mc_dcm_pixel_info()
        var err = [CChar](repeating: 0, count: 512)
        guard mc_dcm_decode(handle, &info, &err, err.count) == 0 else { throw ImagingError(String(cString: err)) }
        var raw = [UInt8](repeating: 0, count: info.length)
        guard mc_dcm_take_pixels(handle, &raw, raw.count, &err, err.count) == 0 else { throw ImagingError(String(cString: err)) }
        let (cols, rows, samples, count) = (Int(info.columns), Int(info.rows), Int(info.samples), Int(info.frames))
        let perFrame = cols * rows * samples
        guard perFrame > 0, count > 0 else { throw ImagingError("pixel data has no samples (\(cols)×\(rows), \(count) frames)") }
        let bits = Int(info.bits_allocated), signed = info.is_signed != 0
        guard [1, 8, 16, 32].contains(bits) else { throw ImagingError("\(bits) bits allocated per sample is not supported") }
        let (total, overflow) = perFrame.multipliedReportingOverflow(by: count)
        guard !overflow, total < 1 << 34 else { throw ImagingError("pixel data of \(cols)×\(rows)×\(samples) in \(count) frames is implausibly large") }
        let needed = bits == 1 ? (total + 7) / 8 : total * bits / 8
        guard raw.count >= needed else { throw ImagingError("pixel data holds \(raw.count) bytes; \(cols)×\(rows)×\(count) frames need \(needed)") }
        // Samples come back little-endian: the volumetric codecs' conversion serves; 1-bit is unpacked here.
        let type: VoxelType = switch (bits, signed) {
        case (8, false), (1, _): .uint8
        case (8, true): .int8
        case (16, false): .uint16
        case (16, true): .int16
        case (32, false): .uint32
        default: .int32
        }
        var values = raw.withUnsafeBytes { r in
            bits == 1 ? (0..<total).map { Float((r[$0 >> 3] >> ($0 & 7)) & 1) } : Voxels.convert(r, offset: 0, count: total, type: type, bigEndian: false)
        }
        if info.monochrome1 != 0, let top = values.max(), let bottom = values.min() {
            // 0 is white in MONOCHROME1: flip within the stored range so bright means dense, as in MONOCHROME2.
            for i in values.indices { values[i] = top + bottom - values[i] }
        }
        if slope != 1 || intercept != 0 {
            let (s, b) = (Float(slope), Float(intercept))
            for i in values.indices { values[i] = values[i] * s + b }
        }
        let frames = (0..<count).map { Array(values[$0 * perFrame..<($0 + 1) * perFrame]) }
        return (cols, rows, samples, frames)
    }
}

/// A data set inside a file: the root or an item of a sequence. Keeps its file alive.
public struct DICOMItem {
    let file: DICOMFile
    let pointer: OpaquePointer?

    /// The element's value as text (numbers converted; several values separated by "\").
    public func string(_ tag: Tag) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = mc_dcm_text(file.handle, pointer, tag.group, tag.element, &buf, buf.count)
        if n < 0 { return nil }
        if Int(n) >= buf.count {
            buf = [CChar](repeating: 0, count: Int(n) + 1)
            _ = mc_dcm_text(file.handle, pointer, tag.group, tag.element, &buf, buf.count)
        }
        return String(cString: buf)
    }

    public func strings(_ tag: Tag) -> [String] {
        string(tag)?.split(separator: "\\", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } ?? []
    }

    public func doubles(_ tag: Tag) -> [Double]? {
        let parts = strings(tag)
        // "nan", "inf" and 1e400 parse as Doubles; no attribute medcat reads may hold them.
        let values = parts.compactMap(Double.init).filter(\.isFinite)
        return values.isEmpty || values.count != parts.count ? nil : values
    }

    public func double(_ tag: Tag) -> Double? { doubles(tag)?.first }
    public func int(_ tag: Tag) -> Int? { strings(tag).first.flatMap { Int($0) ?? Double($0).flatMap { Int(exactly: $0.rounded(.towardZero)) } } }

    /// The items of a sequence (empty when absent).
    public func items(_ tag: Tag) -> [DICOMItem] {
        let n = Int(mc_dcm_count(file.handle, pointer, tag.group, tag.element))
        return (0..<max(0, n)).compactMap { i in
            mc_dcm_item_at(file.handle, pointer, tag.group, tag.element, Int32(i)).map { DICOMItem(file: file, pointer: $0) }
        }
    }

    public func item(_ tag: Tag) -> DICOMItem? { items(tag).first }
}

/// The attributes medcat reads, by name.
public extension Tag {
    static let sopClassUID = Tag(0x0008, 0x0016), sopInstanceUID = Tag(0x0008, 0x0018)
    static let modality = Tag(0x0008, 0x0060), seriesDescription = Tag(0x0008, 0x103E)
    static let codeValue = Tag(0x0008, 0x0100), codingSchemeDesignator = Tag(0x0008, 0x0102), codeMeaning = Tag(0x0008, 0x0104)
    static let segmentedPropertyTypeModifierCodeSequence = Tag(0x0062, 0x0011)
    static let referencedSeriesSequence = Tag(0x0008, 0x1115), referencedSOPInstanceUID = Tag(0x0008, 0x1155)
    static let referencedFrameNumber = Tag(0x0008, 0x1160)
    static let sourceImageSequence = Tag(0x0008, 0x2112), derivationImageSequence = Tag(0x0008, 0x9124)
    static let patientID = Tag(0x0010, 0x0020)
    static let studyInstanceUID = Tag(0x0020, 0x000D), seriesInstanceUID = Tag(0x0020, 0x000E)
    static let seriesNumber = Tag(0x0020, 0x0011), instanceNumber = Tag(0x0020, 0x0013)
    static let imagePositionPatient = Tag(0x0020, 0x0032), imageOrientationPatient = Tag(0x0020, 0x0037)
    static let frameOfReferenceUID = Tag(0x0020, 0x0052)
    static let planePositionSequence = Tag(0x0020, 0x9113), planeOrientationSequence = Tag(0x0020, 0x9116)
    static let samplesPerPixel = Tag(0x0028, 0x0002), numberOfFrames = Tag(0x0028, 0x0008)
    static let rows = Tag(0x0028, 0x0010), columns = Tag(0x0028, 0x0011), pixelSpacing = Tag(0x0028, 0x0030)
    static let sliceThickness = Tag(0x0018, 0x0050)
    static let pixelMeasuresSequence = Tag(0x0028, 0x9110), pixelValueTransformationSequence = Tag(0x0028, 0x9145)
    static let rescaleIntercept = Tag(0x0028, 0x1052), rescaleSlope = Tag(0x0028, 0x1053)
    static let segmentationType = Tag(0x0062, 0x0001), segmentSequence = Tag(0x0062, 0x0002)
    static let segmentNumber = Tag(0x0062, 0x0004), segmentLabel = Tag(0x0062, 0x0005)
    static let segmentIdentificationSequence = Tag(0x0062, 0x000A), referencedSegmentNumber = Tag(0x0062, 0x000B)
    static let maximumFractionalValue = Tag(0x0062, 0x000E), segmentedPropertyTypeCodeSequence = Tag(0x0062, 0x000F)
    static let sharedFunctionalGroupsSequence = Tag(0x5200, 0x9229), perFrameFunctionalGroupsSequence = Tag(0x5200, 0x9230)
    static let referencedFrameOfReferenceSequence = Tag(0x3006, 0x0010), rtReferencedStudySequence = Tag(0x3006, 0x0012)
    static let rtReferencedSeriesSequence = Tag(0x3006, 0x0014), contourImageSequence = Tag(0x3006, 0x0016)
    static let structureSetROISequence = Tag(0x3006, 0x0020), roiNumber = Tag(0x3006, 0x0022), roiName = Tag(0x3006, 0x0026)
    static let referencedFrameOfReferenceUID = Tag(0x3006, 0x0024)
    static let roiContourSequence = Tag(0x3006, 0x0039), contourSequence = Tag(0x3006, 0x0040)
    static let contourGeometricType = Tag(0x3006, 0x0042), contourData = Tag(0x3006, 0x0050)
    static let referencedROINumber = Tag(0x3006, 0x0084)
}

/// SOP classes medcat treats specially.
public enum SOPClass {
    public static let segmentation = "1.2.840.10008.5.1.4.1.1.66.4"
    public static let rtStructureSet = "1.2.840.10008.5.1.4.1.1.481.3"
}
