import Foundation
import XCTest

@testable import TestSupport

/// `medcat eval` and `medcat leaderboard` through the binary: the arguments and selections they refuse.
final class EvalCLITests: BinaryTestCase {
    func testBadArguments() throws {
        try assertRejected([
            (["eval", "--checkpoint", "x.pth", "--protocol", "lasso"], "The value 'lasso' is invalid for '--protocol <protocol>'"),
            (["eval", "--checkpoint", "x.pth", "--box-jitter", "lots"], "--box-jitter must be"),
            (["eval", "--checkpoint", "x.pth", "--clicks", "0"], "--clicks must be at least 1"),
            (["eval", "--checkpoint", "x.pth", "--workers", "0"], "--workers must be at least 1"),
            (["eval", "--checkpoint", "x.pth", "--threads", "0"], "--threads must be at least 1"),
            (["eval", "--checkpoint", "x.pth", "--split", "holdout"], "The value 'holdout' is invalid for '--split <split>'"),
            (["leaderboard", "--bootstrap=-1"], "--bootstrap must be 0 or more"),
        ])
        try Self.kits(1, at: dir.appendingPathComponent("raw/KiTS19"))
        try medcat(["ingest", "raw"])
        let (_, none) = try medcat(["leaderboard"], expect: 1)
        XCTAssertTrue(none.contains("no finished evaluation in the catalog"), none)
        // The selection is refused before the checkpoint is read: the weights need not be there.
        let weights = PackageFiles.root.appendingPathComponent(".deps/data/lite_medsam.pth").path
        let (_, empty) = try medcat(["eval", "--checkpoint", weights, "--dataset", "kits19", "--class", "kidney", "--split", "test",
                                     "--modality", "mr_t1"], expect: 1)
        XCTAssertTrue(empty.contains("unknown modality 'mr_t1'; the catalog has: ct"), empty)
        try medcat(["catalog", "split", "--ratios", "1,0,0"])
        let (_, nothing) = try medcat(["eval", "--checkpoint", weights], expect: 64)
        XCTAssertTrue(nothing.contains("no masks match the selection (split test)"), nothing)
    }
}
