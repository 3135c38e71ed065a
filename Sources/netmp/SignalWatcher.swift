import Glibc

/// SIGINT, SIGTERM and SIGUSR1 taken synchronously: blocked in every thread (call `block()`
/// before any thread starts, so they all inherit the mask), then waited for with a timeout
/// on the main thread, which also drives the progress line.
enum SignalWatcher {
    enum Event {
        case stop(Int32)
        case report
        case tick
    }

    private static func watchedSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGUSR1)
        return set
    }

    static func block() {
        var set = watchedSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The next signal, or `.tick` after `seconds` without one.
    static func next(within seconds: Int) -> Event {
        var set = watchedSet()
        var timeout = timespec(tv_sec: seconds, tv_nsec: 0)
        let signal = sigtimedwait(&set, nil, &timeout)
        switch signal {
        case SIGINT, SIGTERM: return .stop(signal)
        case SIGUSR1: return .report
        default: return .tick
        }
    }
}
