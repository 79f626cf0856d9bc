import Foundation

/// Progress on a terminal (a bar redrawn in place) or as periodic log lines otherwise.
public final class Progress {
    let interactive: Bool
    let emit: (String) -> Void
    var total = 0, done = 0, slices = 0
    var started = Date(), lastDraw = Date.distantPast

    public init(interactive: Bool, emit: @escaping (String) -> Void) {
        self.interactive = interactive
        self.emit = emit
    }

    func begin(total: Int) {
        self.total = total; done = 0; slices = 0; started = Date(); lastDraw = .distantPast
    }

    func advance(slices n: Int) {
        done += 1; slices += n
        let now = Date()
        guard done == total || now.timeIntervalSince(lastDraw) >= (interactive ? 0.2 : 10) else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(started), 1e-3)
        let rate = Double(slices) / elapsed
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let line = String(format: "%d/%d files  %d slices  %.1f slices/s  ETA %@", done, total, slices, rate, Self.clock(eta))
        if interactive {
            let width = 24, filled = total > 0 ? width * done / total : width
            emit("\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] " + line + "\u{1B}[K")
        } else {
            emit("ingest: " + line + "\n")
        }
    }

    func finish() { if interactive && total > 0 { emit("\n") } }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
