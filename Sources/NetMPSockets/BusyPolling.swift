/// Devices a waiting thread reads itself while it spins (Linux's busy polling, SO_BUSY_POLL).
///
/// A blocked call spins before it posts a waiter; on a stack whose interface is a device that
/// another thread reads (a TAP queue), the answer it spins for would otherwise reach it only
/// after the device's reader thread woke, read and handed it over. Polling the device in the
/// spin takes the frame the moment it arrives and runs its input on the spinning thread (as the
/// owner, by direct dispatch): no wake-up between the device and the socket.
package protocol BusyPolling: AnyObject, Sendable {
    /// A thread starts spinning: the devices' reader threads stand aside until `endBusyPoll`.
    /// Returns how many devices it began on, to be given back to `endBusyPoll` (a device
    /// added meanwhile was not begun, so it must not be ended).
    func beginBusyPoll() -> Int
    /// Reads and delivers what the devices have ready now, without blocking; true if a frame
    /// was delivered.
    func busyPoll() -> Bool
    /// The spin is over. `blocking`: the thread goes on to sleep, so the readers must take over
    /// at once; otherwise the thread got what it waited for and will likely spin again soon.
    func endBusyPoll(blocking: Bool, begun: Int)
}
