import CNetMP

extension OSThread {
    /// Pins the calling thread to one CPU (sched_setaffinity); false if the system refused.
    @discardableResult
    public static func pinCurrent(toCPU cpu: Int) -> Bool {
        guard let cpu = Int32(exactly: cpu), cpu >= 0 else { return false }
        return netmp_pin_current_thread(cpu) == 0
    }
}
