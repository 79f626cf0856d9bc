import Foundation
import Imaging
import XCTest

@testable import TestSupport

/// Runs the built `medcat` binary as a user would, each test in a fresh temporary folder, and
/// checks its exit status; subclasses check what it prints and writes.
class BinaryTestCase: TemporaryDirectoryTestCase {
    static var binary: URL {
        var d = Bundle.main.bundleURL
        while d.pathExtension == "xctest" || !FileManager.default.fileExists(atPath: d.appendingPathComponent("medcat").path) {
            d = d.deletingLastPathComponent()
            if d.path == "/" { break }
        }
        return d.appendingPathComponent("medcat")
    }

    @discardableResult
    func medcat(_ args: [String], expect: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> (out: String, err: String) {
        try Self.run(args, in: dir, expect: expect, file: file, line: line)
    }

    /// Runs the binary in `dir`, checks its exit status, returns stdout and stderr.
    static func run(_ args: [String], in dir: URL, expect: Int32 = 0, file: StaticString = #filePath, line: UInt = #line) throws -> (out: String, err: String) {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        p.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let result = (String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        XCTAssertEqual(p.terminationStatus, expect, "medcat \(args.joined(separator: " ")): \(result.1)", file: file, line: line)
        return result
    }

    /// Each row's arguments end with `status`, and stderr names the row's message; a failure
    /// names the row's arguments.
    func assertRejected(_ rows: [(arguments: [String], message: String)], status: Int32 = 64,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        for (arguments, message) in rows {
            let (_, err) = try medcat(arguments, expect: status, file: file, line: line)
            XCTAssertTrue(err.contains(message), "medcat \(arguments.joined(separator: " ")): \(err)", file: file, line: line)
        }
    }

    /// Every float tensor of a safetensors file, by name.
    func tensors(_ path: String) throws -> [String: [Float]] {
        let data = try Data(contentsOf: dir.appendingPathComponent(path))
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        var out: [String: [Float]] = [:]
        for (name, info) in header where name != "__metadata__" {
            let i = info as! [String: Any]
            guard i["dtype"] as? String == "F32" else { continue }
            let range = i["data_offsets"] as! [Int]
            out[name] = data.subdata(in: (8 + n + range[0])..<(8 + n + range[1])).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return out
    }

    /// `n` KiTS-style cases: 8 axial slices with a kidney box, 5 with a tumour box each. With
    /// `visible`, the boxes stand out from a textured background (for models to segment). Each case has
    /// its own pixels: cases that share an image would be put in one split.
    static func kits(_ n: Int, at root: URL, size: Int = 64, visible: Bool = false) throws {
        for c in 0..<n {
            let d = root.appendingPathComponent(String(format: "case_%05d", c))
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            var img = [Float](repeating: 0, count: size * size * 16), lab = img
            for k in 0..<16 { for j in 0..<size { for i in 0..<size {
                let p = (k * size + j) * size + i
                img[p] = Float(visible ? -300 + (i * 37 + j * 11) % 60 : -1000 + (i * 37 + j * 11 + k * 5 + c * 13) % 1400)
                if (10..<30).contains(i) && (10..<30).contains(j) && (2..<10).contains(k) { lab[p] = 1; if visible { img[p] = Float(200 - 8 * c) } }
                if (40..<56).contains(i) && (10..<26).contains(j) && (4..<9).contains(k) { lab[p] = 2; if visible { img[p] = Float(120 + 8 * c) } }
            } } }
            try NIfTI.write(Volume(size: [size, size, 16], spacing: [1, 1, 2.5], voxels: img), to: d.appendingPathComponent("imaging.nii.gz"), datatype: .int16, gzipLevel: 1)
            try NIfTI.write(Volume(size: [size, size, 16], spacing: [1, 1, 2.5], voxels: lab), to: d.appendingPathComponent("segmentation.nii.gz"), datatype: .uint8, gzipLevel: 1)
        }
    }
}
