import Foundation
import XCTest

@testable import TestSupport

/// `medcat train` through the binary: the debug model learns from scratch on a small KiTS-layout
/// catalog, a killed run resumes to the same losses, and the result evaluates like any checkpoint.
final class TrainCLITests: BinaryTestCase {
    /// The run's validation lines (metrics.jsonl), in order.
    func validations(_ run: String) throws -> [[String: Double]] {
        let text = try String(contentsOf: dir.appendingPathComponent("\(run)/metrics.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").compactMap { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return o["val_dice"] == nil ? nil : o.compactMapValues { $0 as? Double }
        }
    }

    /// step → loss, the last line logged for each step (a killed run may log a step twice).
    func losses(_ run: String) throws -> [Int: Double] {
        let text = try String(contentsOf: dir.appendingPathComponent("\(run)/metrics.jsonl"), encoding: .utf8)
        var out: [Int: Double] = [:]
        for line in text.split(separator: "\n") {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if let loss = o["loss"] as? Double { out[o["step"] as! Int] = loss }
        }
        return out
    }

    func testLearnsResumesAfterAKillAndEvaluates() throws {
        try Self.kits(3, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw", "--size", "64"])
        let (split, _) = try medcat(["catalog", "split", "--ratios", "0.5,0.5,0", "--seed", "3"])
        XCTAssertTrue(split.contains("train: 2 cases") && split.contains("val: 1 cases"), split)
        let options = ["--preset", "vit_debug", "--steps", "60", "--checkpoint-every", "20", "--batch-size", "4", "--masks-per-image", "2",
                       "--click-passes", "1", "--lr", "2e-3", "--warmup", "5", "--val-images", "8"]

        // Uninterrupted: held-out box Dice rises well above the untrained model's.
        let (out, _) = try medcat(["train", "--out", "a"] + options)
        let checks = try validations("a")
        XCTAssertEqual(checks.map { $0["step"] }, Array(stride(from: 0.0, through: 60, by: 4)), "validated before training and after each epoch of 4 steps")
        let (before, after) = (checks.first!, checks.last!)
        XCTAssertGreaterThan(after["val_box_dice"]!, before["val_box_dice"]! + 0.15, out)
        let straight = try losses("a")
        XCTAssertEqual(straight.count, 60)

        // Killed after its first checkpoint, then resumed: the same loss at every step.
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["train", "--out", "b"] + options
        p.currentDirectoryURL = dir
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        var seen = ""
        while !seen.contains("checkpoint model-000020") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run was killed mid-way")
        let (_, refused) = try medcat(["train", "--out", "b"] + options, expect: 64)
        XCTAssertTrue(refused.contains("b already holds a run: pass --resume"), refused)
        let (resumed, _) = try medcat(["train", "--out", "b", "--resume"] + options)
        XCTAssertTrue(resumed.contains("resumed at step"), resumed)
        XCTAssertEqual(try losses("b"), straight)
        let (_, changed) = try medcat(["train", "--out", "b", "--resume"] + options.map { $0 == "2e-3" ? "1e-3" : $0 }, expect: 1)
        XCTAssertTrue(changed.contains("state-000060.safetensors: was written with other training settings"), changed)

        // The checkpoint is a model like any other, and validation is `medcat eval` on the same
        // subset: its box and point protocols reproduce the trainer's validation Dice.
        try medcat(["eval", "--checkpoint", "a/model-000060.safetensors", "--split", "val", "--protocol", "box", "--protocol", "points1",
                    "--sample", "8", "--name", "debug"])
        try medcat(["leaderboard", "--out", "report", "--bootstrap", "0"])
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report/leaderboard.json"))) as! [String: Any]
        for proto in ["box", "points1"] {
            let entry = (report["entries"] as! [[String: Any]]).first {
                let v = $0["variant"] as! [String: Any]
                return $0["level"] as? String == "mask" && v["output"] as? String == "first" && v["proto"] as? String == proto
            }!
            let overall = (entry["groups"] as! [[String: Any]]).first { $0["kind"] as? String == "overall" }!
            XCTAssertEqual((overall["dice"] as! [String: Any])["mean"] as! Double, after["val_\(proto)_dice"]!, accuracy: 1e-6, proto)
        }
    }

    /// The light modes end to end: a LoRA run saves a plain model, an adapter run starts from it,
    /// and both checkpoints evaluate like any other.
    func testLoRAAndAdapterRunsEvaluate() throws {
        try Self.kits(2, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw", "--size", "64"])
        try medcat(["catalog", "split", "--ratios", "0.5,0.5,0", "--seed", "3"])
        let options = ["--steps", "3", "--batch-size", "2", "--masks-per-image", "2", "--click-passes", "1", "--val-images", "2"]
        let (lora, _) = try medcat(["train", "--preset", "vit_debug", "--tune", "lora", "--lora-rank", "2", "--out", "lora"] + options)
        XCTAssertTrue(lora.contains("training vit_debug (lora,"), lora)
        let plain = try tensors("lora/model-000003.safetensors")
        try medcat(["train", "--preset", "vit_debug", "--steps", "1", "--val-images", "0", "--out", "full"])
        XCTAssertEqual(Set(plain.keys), Set(try tensors("full/model-000001.safetensors").keys), "LoRA merges into the plain model's keys")
        XCTAssertEqual(try tensors("lora/lora-frozen.safetensors").count, 2, "the frozen qkv weights of the two blocks")

        let (adapter, _) = try medcat(["train", "--checkpoint", "lora/model-000003.safetensors", "--tune", "adapter", "--out", "adapter"] + options)
        XCTAssertTrue(adapter.contains("training vit_debug (adapter,"), adapter)
        let adapted = try tensors("adapter/model-000003.safetensors")
        XCTAssertEqual(adapted["image_encoder.blocks.0.Adapter.channel.0.weight"]?.count, 16 * 64)
        for (name, value) in plain where name.hasPrefix("image_encoder.") {
            XCTAssertEqual(adapted[name], value, "\(name) is frozen in adapter tuning")
        }
        for (run, model) in [("lora", "lora/model-000003.safetensors"), ("adapter", "adapter/model-000003.safetensors")] {
            let (out, _) = try medcat(["eval", "--checkpoint", model, "--split", "val", "--protocol", "box", "--name", run])
            XCTAssertTrue(out.contains("box"), out)
        }
    }

    /// Two processes (Gloo), each with half of every batch, reach the parameters one process does.
    func testTwoProcessesTrainLikeOne() throws {
        try Self.kits(3, at: dir.appendingPathComponent("raw/KiTS19"), visible: true)
        try medcat(["ingest", "raw", "--size", "64"])
        // eps 1e-6: gradients that are zero in exact arithmetic (attention key biases) differ in
        // rounding noise between batch splits, and Adam would scale that noise up to ±lr.
        let base = ["--preset", "vit_debug", "--steps", "6", "--checkpoint-every", "3", "--batch-size", "4", "--masks-per-image", "2", "--click-passes", "1",
                    "--lr", "1e-3", "--adam-eps", "1e-6", "--split", "train", "--split", "val", "--split", "test"]
        let options = base + ["--val-images", "0"]
        try medcat(["train", "--out", "one"] + options)
        let (out, _) = try medcat(["train", "--out", "two", "--nproc", "2"] + options)
        XCTAssertTrue(out.contains("model: two/model-000006.safetensors"), out)
        let one = try tensors("one/model-000006.safetensors"), two = try tensors("two/model-000006.safetensors")
        let halfway = try tensors("one/model-000003.safetensors")
        XCTAssertEqual(Set(one.keys), Set(two.keys))
        XCTAssertGreaterThan(one.count, 50)
        var worst = 0.0, moved = 0.0
        for (name, a) in one {
            for (x, y) in zip(a, two[name]!) { worst = max(worst, Double(abs(x - y))) }
            for (x, y) in zip(a, halfway[name]!) { moved = max(moved, Double(abs(x - y))) }
        }
        XCTAssertLessThan(worst, 1e-5, "largest parameter difference between one and two processes")
        XCTAssertGreaterThan(moved, 1e-3, "three steps move the weights far more than that")
        // `medcat blend` of the step-3 and step-6 models at α = 0.5: their mean, as a checkpoint.
        let (blended, _) = try medcat(["blend", "--start", "one/model-000003.safetensors", "--tuned", "one/model-000006.safetensors", "--alpha", "0.5", "--out", "mean.safetensors"])
        XCTAssertTrue(blended.contains("0.5 of the tuned model: mean.safetensors"), blended)
        let mean = try tensors("mean.safetensors")
        for (name, a) in one { for (k, x) in a.enumerated() { XCTAssertEqual(mean[name]![k], 0.5 * (x + halfway[name]![k]), accuracy: 1e-6, name) } }
        let (l1, l2) = (try losses("one"), try losses("two"))
        XCTAssertEqual(l1.count, 6)
        for (step, loss) in l1 { XCTAssertEqual(loss, l2[step]!, accuracy: 1e-5, "step \(step)") }

        // The one-process run's step-3 checkpoint resumed by two processes ends where one process did.
        let fm = FileManager.default, mixed = dir.appendingPathComponent("mixed")
        try fm.createDirectory(at: mixed, withIntermediateDirectories: true)
        for f in ["model-000003.safetensors", "state-000003.safetensors"] {
            try fm.copyItem(at: dir.appendingPathComponent("one/\(f)"), to: mixed.appendingPathComponent(f))
        }
        try Data(#"{"model":"model-000003.safetensors","state":"state-000003.safetensors","step":"3"}"#.utf8)
            .write(to: mixed.appendingPathComponent("last.json"))
        try medcat(["train", "--out", "mixed", "--nproc", "2", "--resume"] + options)
        let resumed = try tensors("mixed/model-000006.safetensors")
        for (name, a) in one { for (x, y) in zip(a, resumed[name]!) { XCTAssertEqual(x, y, accuracy: 1e-5, name) } }

        // Validation with early stop: rank 0 decides when to stop, and the other process stops with it.
        let stopping = base + ["--val-split", "train", "--val-images", "4", "--val-every", "2", "--early-stop", "1"]
        let (single, _) = try medcat(["train", "--out", "stop1"] + stopping)
        let (pair, _) = try medcat(["train", "--out", "stop2", "--nproc", "2"] + stopping)
        let singleChecks = try validations("stop1"), pairChecks = try validations("stop2")
        XCTAssertEqual(singleChecks.count, pairChecks.count, pair)
        let lastStep = Int(singleChecks.last!["step"]!)
        XCTAssertEqual(single.contains("early stop"), lastStep < 6, single)
        XCTAssertEqual(pair.contains("early stop at step \(lastStep)"), lastStep < 6, pair)
        let a1 = try tensors(String(format: "stop1/model-%06d.safetensors", lastStep)), a2 = try tensors(String(format: "stop2/model-%06d.safetensors", lastStep))
        for (name, a) in a1 { for (x, y) in zip(a, a2[name]!) { XCTAssertEqual(x, y, accuracy: 1e-5, name) } }

        // Packed into shards first (once; reused after). The pack's order keeps shards apart, so each
        // of two processes reads two of the four shards, and two processes still train like one.
        let all = ["--split", "train", "--split", "val", "--split", "test"]
        let (packed, _) = try medcat(["pack", "--shards", "4"] + all)
        XCTAssertTrue(packed.contains("packed 24 images in 4 shards (6–6 per shard)"), packed)
        let (again, _) = try medcat(["pack", "--shards", "4"] + all)
        XCTAssertTrue(again.contains("reused 24 images"), again)
        try medcat(["train", "--out", "packed1", "--shards", "4"] + options)
        try medcat(["train", "--out", "packed2", "--nproc", "2", "--shards", "4"] + options)
        let (packedOne, packedTwo) = (try tensors("packed1/model-000006.safetensors"), try tensors("packed2/model-000006.safetensors"))
        for (name, a) in packedOne { for (x, y) in zip(a, packedTwo[name]!) { XCTAssertEqual(x, y, accuracy: 1e-5, name) } }
    }

    func testBadArguments() throws {
        try assertRejected([
            (["train", "--out", "x"], "give --checkpoint FILE or --preset NAME"),
            (["train", "--out", "x", "--preset", "vit_q"], "The value 'vit_q' is invalid for '--preset <preset>'"),
            (["train", "--out", "x", "--preset", "vit_b", "--tune", "prefix"], "The value 'prefix' is invalid for '--tune <tune>'"),
            (["train", "--out", "x", "--preset", "tiny_vit", "--tune", "adapter"], "--tune adapter needs a ViT image encoder; tiny_vit has none"),
            (["train", "--out", "x", "--preset", "vit_b", "--tune", "lora", "--lora-rank", "0"], "--lora-rank must be at least 1"),
            (["train", "--out", "x", "--preset", "vit_b", "--lora-rank", "8"], "--lora-rank applies to --tune lora only"),
            (["train", "--out", "x", "--preset", "vit_b", "--points", "0"], "--points must be at least 1"),
            (["train", "--out", "x", "--preset", "vit_b", "--steps", "0"], "--steps must be at least 1"),
            (["train", "--out", "x", "--preset", "vit_b", "--focal-weight=-1"], "--focal-weight must be 0 or more"),
            (["train", "--out", "x", "--preset", "vit_b", "--box-jitter", "wide"], "--box-jitter must be"),
            (["train", "--out", "x", "--preset", "vit_b", "--val-split", "holdout"], "The value 'holdout' is invalid for '--val-split <val-split>'"),
            (["train", "--out", "x", "--preset", "vit_b", "--batch-size", "3", "--nproc", "2"], "--batch-size 3 must be a multiple of the 2 processes"),
            (["train", "--out", "x", "--preset", "vit_b", "--batch-size", "4", "--nproc", "2", "--nnodes", "3", "--master", "h:1"], "--batch-size 4 must be a multiple of the 6 processes"),
            (["train", "--out", "x", "--preset", "vit_b", "--shards", "3", "--nproc", "2"], "--shards 3 must be a multiple of the 2 processes"),
            (["train", "--out", "x", "--preset", "vit_b", "--nnodes", "2"], "--nnodes 2 needs --master ADDR:PORT"),
            (["train", "--out", "x", "--preset", "vit_b", "--nnodes", "2", "--node-rank", "2", "--master", "h:1"], "--node-rank must be in 0…1"),
            (["train", "--out", "x", "--preset", "vit_b", "--nnodes", "2", "--master", "10.0.0.1"], "--master takes ADDR:PORT (got '10.0.0.1')"),
            (["train", "--out", "x", "--preset", "vit_b", "--device", "gpu"], "--device must be cpu, cuda or cuda:N (got 'gpu')"),
            (["train", "--out", "x", "--preset", "vit_b", "--precision", "fp8"], "The value 'fp8' is invalid for '--precision <precision>'"),
            (["train", "--out", "x", "--preset", "vit_b", "--pack", "p", "--shards", "2"], "--pack holds its selection and shard count"),
            (["train", "--out", "x", "--preset", "vit_b", "--pack", "p", "--modality", "ct"], "--pack holds its selection and shard count"),
        ])
    }
}
