import Foundation
import XCTest

@testable import TestSupport

/// Two nodes that are separate network hosts: two network namespaces joined by a veth pair, one
/// rank in each, each with its own copy of the pack and no catalog. Node 1 reaches node 0 only
/// through the veth link, and binds Gloo by its host name; node 0 binds by GLOO_SOCKET_IFNAME.
final class MultiNodeCLITests: BinaryTestCase {
    /// Runs a command, returns its status and what it printed.
    @discardableResult
    static func sh(_ args: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testTwoNodesInNetworkNamespacesTrainLikeOne() throws {
        let id = Int(getpid()) % 200 + 20
        let (a, b) = ("medcat-\(id)-a", "medcat-\(id)-b")
        let (linkA, linkB) = ("mcv\(id)a", "mcv\(id)b")
        let (addressA, addressB) = ("10.231.\(id).1", "10.231.\(id).2")
        // Left by a killed run with this process id.
        for stale in [a, b] { Self.sh(["ip", "netns", "del", stale]) }
        Self.sh(["ip", "link", "del", linkA])
        let made = Self.sh(["ip", "netns", "add", a])
        try XCTSkipIf(made.status != 0, "cannot make network namespaces here (ip netns add: \(made.output.trimmingCharacters(in: .whitespacesAndNewlines)))")
        let hostsFolder = URL(fileURLWithPath: "/etc/netns/\(b)")
        defer {
            Self.sh(["ip", "netns", "del", a]); Self.sh(["ip", "netns", "del", b])
            try? FileManager.default.removeItem(at: hostsFolder)
        }
        // Node 1 resolves this machine's host name to its own veth address (ip netns exec mounts
        // /etc/netns/NAME/hosts over /etc/hosts), as a real node resolves its own name.
        try FileManager.default.createDirectory(at: hostsFolder, withIntermediateDirectories: true)
        try "127.0.0.1 localhost\n\(addressB) \(ProcessInfo.processInfo.hostName)\n".write(to: hostsFolder.appendingPathComponent("hosts"), atomically: true, encoding: .utf8)
        for command in [["ip", "netns", "add", b],
                        ["ip", "link", "add", linkA, "type", "veth", "peer", "name", linkB],
                        ["ip", "link", "set", linkA, "netns", a], ["ip", "link", "set", linkB, "netns", b],
                        ["ip", "-n", a, "addr", "add", addressA + "/24", "dev", linkA], ["ip", "-n", b, "addr", "add", addressB + "/24", "dev", linkB],
                        ["ip", "-n", a, "link", "set", linkA, "up"], ["ip", "-n", b, "link", "set", linkB, "up"],
                        ["ip", "-n", a, "link", "set", "lo", "up"], ["ip", "-n", b, "link", "set", "lo", "up"]] {
            let r = Self.sh(command)
            XCTAssertEqual(r.status, 0, "\(command.joined(separator: " ")): \(r.output)")
            if r.status != 0 { return }
        }
        let nodeBAddresses = Self.sh(["ip", "-n", b, "-4", "addr"]).output
        XCTAssertTrue(nodeBAddresses.contains(addressB) && !nodeBAddresses.contains(addressA), "the master address is not node 1's: \(nodeBAddresses)")

        // One pack, copied to each node; the catalog and its shards removed.
        try Self.kits(3, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw", "--size", "64"])
        let all = ["--split", "train", "--split", "val", "--split", "test"]
        try medcat(["pack", "--shards", "2"] + all)
        let fm = FileManager.default
        let packs = dir.appendingPathComponent("medcat.packs")
        let made1 = try XCTUnwrap(fm.contentsOfDirectory(atPath: packs.path).first { !$0.hasPrefix(".") })
        for node in ["node0", "node1"] {
            try fm.createDirectory(at: dir.appendingPathComponent(node), withIntermediateDirectories: true)
            try fm.copyItem(at: packs.appendingPathComponent(made1), to: dir.appendingPathComponent("\(node)/pack"))
        }
        for item in try fm.contentsOfDirectory(atPath: dir.path) where item.hasPrefix("medcat") { try fm.removeItem(at: dir.appendingPathComponent(item)) }

        let options = ["--preset", "vit_debug", "--steps", "4", "--checkpoint-every", "2", "--batch-size", "4", "--masks-per-image", "2", "--click-passes", "1",
                       "--lr", "1e-3", "--adam-eps", "1e-6", "--val-images", "0"]
        try medcat(["train", "--out", "one", "--pack", "node0/pack"] + options)

        /// Both nodes at once, each in its namespace; what each printed.
        func nodes(_ extra: [String] = []) throws -> [String] {
            var processes: [Process] = [], outputs: [Pipe] = []
            for (rank, ns) in [a, b].enumerated() {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                var args = ["ip", "netns", "exec", ns, "env"]
                if rank == 0 { args.append("GLOO_SOCKET_IFNAME=\(linkA)") }
                args += [Self.binary.path, "train", "--out", "two-\(rank)", "--pack", "node\(rank)/pack", "--nnodes", "2", "--node-rank", "\(rank)",
                         "--master", "\(addressA):\(29000 + id)"] + options + extra
                p.arguments = args
                p.currentDirectoryURL = dir
                let pipe = Pipe()
                p.standardOutput = pipe
                p.standardError = pipe
                try p.run()
                processes.append(p)
                outputs.append(pipe)
            }
            // A hung rendezvous must not hang the suite.
            let deadline = Date().addingTimeInterval(300)
            while processes.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
            for p in processes where p.isRunning { p.terminate() }
            let printed = outputs.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
            for (rank, p) in processes.enumerated() {
                p.waitUntilExit()
                XCTAssertEqual(p.terminationStatus, 0, "node \(rank): \(printed[rank])")
            }
            return printed
        }
        func assertLikeOneProcess(_ message: String) throws {
            let one = try tensors("one/model-000004.safetensors"), two = try tensors("two-0/model-000004.safetensors")
            XCTAssertEqual(Set(one.keys), Set(two.keys))
            var worst: Float = 0
            for (name, x) in one { for (u, v) in zip(x, two[name]!) { worst = max(worst, abs(u - v)) } }
            XCTAssertLessThan(worst, 1e-5, "largest parameter difference between one process and two nodes, \(message)")
        }

        let printed = try nodes()
        XCTAssertTrue(printed[0].contains("model: two-0/model-000004.safetensors"), printed[0])
        try assertLikeOneProcess("straight through")
        XCTAssertFalse(fm.fileExists(atPath: dir.appendingPathComponent("two-1").path), "only rank 0 writes")

        // Killed after step 2: node 0 resumes from its folder and hands the state to node 1, which has none.
        for f in ["model-000004.safetensors", "state-000004.safetensors"] { try fm.removeItem(at: dir.appendingPathComponent("two-0/\(f)")) }
        try Data(#"{"model":"model-000002.safetensors","state":"state-000002.safetensors","step":"2"}"#.utf8)
            .write(to: dir.appendingPathComponent("two-0/last.json"))
        let resumed = try nodes(["--resume"])
        XCTAssertTrue(resumed[0].contains("resumed at step 2"), resumed[0])
        try assertLikeOneProcess("resumed after step 2")
    }

    /// torchrun itself (torch.distributed.run from the Python torch that `make bench` installs)
    /// starts two medcat processes: its agent serves the rendezvous store, and the result is one
    /// process's.
    func testTorchrunLaunchesTwoProcessesThatTrainLikeOne() throws {
        let pyref = PackageFiles.root.appendingPathComponent(".deps/pyref")
        try XCTSkipUnless(FileManager.default.fileExists(atPath: pyref.appendingPathComponent("torch/distributed/run.py").path),
                          "torchrun comes with the Python torch in .deps/pyref, which make bench installs")
        try Self.kits(3, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw", "--size", "64"])
        let options = ["--preset", "vit_debug", "--steps", "4", "--checkpoint-every", "4", "--batch-size", "4", "--masks-per-image", "2", "--click-passes", "1",
                       "--lr", "1e-3", "--adam-eps", "1e-6", "--val-images", "0", "--split", "train", "--split", "val", "--split", "test"]
        try medcat(["train", "--out", "one"] + options)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["PYTHONPATH=\(pyref.path)", "python3", "-m", "torch.distributed.run", "--no-python", "--nproc-per-node", "2",
                       "--master-port", "\(29300 + Int(getpid()) % 500)", Self.binary.path, "train", "--out", "two"] + options
        p.currentDirectoryURL = dir
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, printed)
        let one = try tensors("one/model-000004.safetensors"), two = try tensors("two/model-000004.safetensors")
        var worst: Float = 0
        for (name, x) in one { for (u, v) in zip(x, two[name]!) { worst = max(worst, abs(u - v)) } }
        XCTAssertLessThan(worst, 1e-5, "largest parameter difference between one process and torchrun's two")
    }
}
