import Foundation

/// Runs `work` on worker threads and hands the results back in submission order, so that what the
/// caller records does not depend on which worker finished first. At most `window` inputs are in
/// flight, which bounds memory.
final class OrderedWorkers<Input, Output>: @unchecked Sendable {
    private let cond = NSCondition()
    private var queue: [(Int, Input)] = []
    private var results: [Int: (Input, Result<Output, Error>)] = [:]
    private var submitted = 0, delivered = 0, stopped = false
    let window: Int

    /// `setUp` runs once on each worker thread before any work: every worker is set up before
    /// the first input is taken (libtorch's thread settings clear caches that other workers use).
    init(workers: Int, window: Int, setUp: @escaping @Sendable () -> Void, work: @escaping (Input) throws -> Output) {
        self.window = max(window, workers)
        let ready = DispatchGroup()
        for _ in 0..<workers {
            ready.enter()
            let t = Thread { [self] in
                setUp()
                ready.leave()
                while let (i, input) = take() {
                    let r = Result { try work(input) }
                    cond.lock(); results[i] = (input, r); cond.broadcast(); cond.unlock()
                }
            }
            t.stackSize = 8 << 20
            t.start()
        }
        ready.wait()
    }

    var inFlight: Int { cond.lock(); defer { cond.unlock() }; return submitted - delivered }

    func submit(_ input: Input) {
        cond.lock(); queue.append((submitted, input)); submitted += 1; cond.broadcast(); cond.unlock()
    }

    /// The oldest undelivered input with its output, waiting for it; rethrows what its work threw.
    func next() throws -> (Input, Output) {
        cond.lock(); defer { cond.unlock() }
        while results[delivered] == nil { cond.wait() }
        let (input, r) = results.removeValue(forKey: delivered)!
        delivered += 1
        return (input, try r.get())
    }

    /// Workers finish the input they hold and take no more.
    func stop() { cond.lock(); stopped = true; cond.broadcast(); cond.unlock() }

    private func take() -> (Int, Input)? {
        cond.lock(); defer { cond.unlock() }
        while queue.isEmpty && !stopped { cond.wait() }
        return stopped ? nil : queue.removeFirst()
    }
}
