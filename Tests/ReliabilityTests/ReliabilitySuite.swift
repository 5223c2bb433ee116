import Testing

/// Every test here runs the real `blip-captiond` binary on the tiny-a model; they run one at a
/// time so timings and fd/RSS measurements do not disturb each other on a 2-core machine.
@Suite("Reliability: the real daemon under bad input and faults", .serialized)
struct ReliabilitySuite {}
