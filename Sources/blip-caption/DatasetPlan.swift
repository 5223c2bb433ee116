import BLIPClient
import Foundation

/// What a run over a dataset does with each image: which are skipped (their caption file exists
/// and `--existing skip`), and, for each one captioned, the caption file and index records written.
final class DatasetPlan {
    let toCaption: [ImageInput]
    /// Images not sent because their caption file exists.
    let skipped: Int
    private let dataset: DatasetArguments
    private let index: DatasetIndex?

    /// Decides what to skip and rewrites the index keeping the records of the skipped images (made
    /// from their caption files where the index lacks them) and of images outside this run.
    /// - Throws: `InputError` when the index cannot be written.
    init(inputs: [ImageInput], dataset: DatasetArguments, shard: ShardSelection?) throws {
        self.dataset = dataset
        var toCaption: [ImageInput] = [], skippedFiles: [(image: String, file: CaptionFile)] = []
        for input in inputs {
            guard let path = input.path, let ext = dataset.sidecar else { toCaption.append(input); continue }
            let file = CaptionFile(image: path, extension: ext)
            AtomicFile.removeLeftover(of: file.path)
            if dataset.existing == .skip && file.exists {
                skippedFiles.append((path, file))
            } else {
                toCaption.append(input)
            }
        }
        self.toCaption = toCaption
        skipped = skippedFiles.count
        guard let metadata = dataset.metadata else { index = nil; return }
        let index = DatasetIndex(path: shard.map { metadata.replacingOccurrences(of: "{shard}", with: "\($0.index)") } ?? metadata)
        let captioned = Set(toCaption.compactMap(\.path).map(index.fileName))
        var kept = try index.existingRecords().filter { !captioned.contains($0.fileName) }
        let recorded = Set(kept.map(\.fileName))
        for (image, file) in skippedFiles where !recorded.contains(index.fileName(of: image)) {
            kept += (file.lines() ?? []).map { DatasetIndex.Record(fileName: index.fileName(of: image), text: $0) }
        }
        try index.start(keeping: kept)
        self.index = index
    }

    /// Writes one captioned image's caption file and index records (standard input has neither).
    /// - Throws: `InputError` when a file cannot be written.
    func record(_ input: ImageInput, response: CaptionResponse, prompt: String?) throws {
        guard let path = input.path, dataset.writesFiles else { return }
        let captions = response.promptResults(prompt: prompt).map { (prompt: $0.prompt, text: $0.candidates.first?.text ?? "") }
        var lines = dataset.lines(captions)
        if let ext = dataset.sidecar {
            let file = CaptionFile(image: path, extension: ext)
            lines = file.merged(lines, mode: dataset.existing, join: dataset.join)
            try file.write(lines)
        }
        if let index {
            try index.append(lines.map { DatasetIndex.Record(fileName: index.fileName(of: path), text: $0) })
        }
    }
}

/// What a run did, for its last line on stderr.
struct RunSummary {
    var captioned = 0
    var failed = 0
    /// No daemon can be reached: every image would fail the same way.
    var fatal = false
    /// The signal that stopped the run early.
    var interruptedBy: Int32?
    var elapsed = 0.0

    func line(skipped: Int) -> String {
        let rate = elapsed > 0 ? Double(captioned) / elapsed : 0
        let stopped = interruptedBy.map { $0 == SIGINT ? " (interrupted)" : " (terminated)" } ?? ""
        return "blip-caption: captioned \(captioned), skipped \(skipped) (already captioned), failed \(failed) in "
            + String(format: "%.1f s, %.2f images/s", elapsed, rate) + stopped
    }
}

/// SIGINT and SIGTERM while captioning: the first stops sending (the calls in flight finish and
/// are written), a second ends the process at once (caption files and index records are whole
/// either way).
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var received: Int32?
    private var sources: [DispatchSourceSignal] = []

    init() {
        for number in [SIGINT, SIGTERM] {
            Glibc.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.receive(number) }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal received, if any.
    var signal: Int32? { lock.withLock { received } }

    private func receive(_ number: Int32) {
        let first = lock.withLock { () -> Bool in
            defer { if received == nil { received = number } }
            return received == nil
        }
        if first {
            StandardError().write("\nblip-caption: stopping: no more images are sent; the ones in flight are written (again to quit now)")
        } else {
            exit(128 + number)
        }
    }

    /// Restores the signals' default actions.
    func stop() {
        for source in sources { source.cancel() }
        Glibc.signal(SIGINT, SIG_DFL)
        Glibc.signal(SIGTERM, SIG_DFL)
    }
}
