import Foundation

/// Writes DICOM Part 10 files in explicit VR little endian: enough of the standard for the tests to
/// build CT series, DICOM-SEG and RTSTRUCT objects whose content they know exactly.
enum DICOMWriter {
    indirect enum Value {
        case text(String, String)          // VR, value (several values joined by "\")
        case u16(UInt16)
        case bytes(String, [UInt8])        // OB or OW
        case sequence([[Element]])
    }

    struct Element {
        var group: UInt16, element: UInt16, value: Value
        init(_ group: UInt16, _ element: UInt16, _ value: Value) { self.group = group; self.element = element; self.value = value }
    }

    static func text(_ g: UInt16, _ e: UInt16, _ vr: String, _ s: String) -> Element { Element(g, e, .text(vr, s)) }
    static func us(_ g: UInt16, _ e: UInt16, _ v: Int) -> Element { Element(g, e, .u16(UInt16(v))) }
    static func seq(_ g: UInt16, _ e: UInt16, _ items: [[Element]]) -> Element { Element(g, e, .sequence(items)) }
    static func ds(_ values: [Double]) -> String { values.map { String(format: "%.6g", $0) }.joined(separator: "\\") }

    static func write(_ elements: [Element], sopClass: String, sopInstance: String, to url: URL) throws {
        let meta = encode([
            Element(0x0002, 0x0001, .bytes("OB", [0, 1])), text(0x0002, 0x0002, "UI", sopClass), text(0x0002, 0x0003, "UI", sopInstance),
            text(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1"), text(0x0002, 0x0012, "UI", "1.2.826.0.1.3680043.10.1234"),
        ])
        var out = [UInt8](repeating: 0, count: 128) + Array("DICM".utf8)
        out += [0x02, 0x00, 0x00, 0x00] + Array("UL".utf8) + le16(4) + le32(meta.count) + meta
        out += encode(elements + [text(0x0008, 0x0016, "UI", sopClass), text(0x0008, 0x0018, "UI", sopInstance)])
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(out).write(to: url)
    }

    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
    static func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }

    static func encode(_ elements: [Element]) -> [UInt8] {
        var out: [UInt8] = []
        for e in elements.sorted(by: { ($0.group, $0.element) < ($1.group, $1.element) }) {
            out += le16(Int(e.group)) + le16(Int(e.element))
            switch e.value {
            case .text(let vr, let s):
                var b = Array(s.utf8)
                if b.count % 2 == 1 { b.append(vr == "UI" ? 0 : 0x20) }
                out += Array(vr.utf8) + le16(b.count) + b
            case .u16(let v):
                out += Array("US".utf8) + le16(2) + le16(Int(v))
            case .bytes(let vr, var b):
                if b.count % 2 == 1 { b.append(0) }
                out += Array(vr.utf8) + [0, 0] + le32(b.count) + b
            case .sequence(let items):
                var body: [UInt8] = []
                for item in items {
                    let content = encode(item)
                    body += [0xfe, 0xff, 0x00, 0xe0] + le32(content.count) + content
                }
                out += Array("SQ".utf8) + [0, 0] + le32(body.count) + body
            }
        }
        return out
    }
}
