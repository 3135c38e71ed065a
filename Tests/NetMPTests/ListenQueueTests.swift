import XCTest

@testable import NetMP
@testable import NetMPInet
@testable import NetMPInterfaces
@testable import NetMPLocal
@testable import NetMPRuntime
@testable import NetMPSockets

/// The listen queues by themselves, as TCP will drive them: children handshaking on the
/// incomplete queue, promoted to the complete queue, the oldest incomplete dropped when full.
final class ListenQueueTests: StackTestCase {
    private func child() throws -> Socket {
        try stack.localDomain.makeSocket(type: .stream, registry: stack.sockets)
    }

    func testIncompleteChildrenArePromotedInOrderAndTheOldestDroppedWhenFull() throws {
        let queue = ListenQueue()
        queue.setBacklog(2)
        let (a, b, c) = (try child(), try child(), try child())
        XCTAssertEqual(queue.addIncomplete(a).accepted, true)
        XCTAssertTrue(a.state.contains(.inIncompleteQueue))
        XCTAssertNil(queue.addIncomplete(b).dropped)
        // Full: the oldest incomplete child makes room.
        let third = queue.addIncomplete(c)
        XCTAssertTrue(third.accepted)
        XCTAssertTrue(third.dropped === a)
        XCTAssertFalse(a.state.contains(.inIncompleteQueue))
        XCTAssertEqual(queue.counts.incomplete, 2)
        XCTAssertFalse(queue.promote(a), "a dropped child cannot be promoted")
        XCTAssertTrue(queue.promote(c))
        XCTAssertTrue(c.state.contains(.inCompleteQueue))
        XCTAssertFalse(c.state.contains(.inIncompleteQueue))
        XCTAssertTrue(queue.promote(b))
        XCTAssertEqual(queue.completeCount.load(ordering: .relaxed), 2)
        XCTAssertTrue(queue.takeComplete() === c)
        XCTAssertTrue(queue.takeComplete() === b)
        XCTAssertNil(queue.takeComplete())
        XCTAssertEqual(queue.completeCount.load(ordering: .relaxed), 0)
        for socket in [a, b, c] { socket.close() }
    }

    func testCompleteQueueRefusesPastTheBacklogAndCloseHandsBackEveryChild() throws {
        let queue = ListenQueue()
        queue.setBacklog(1)
        let (a, b, c) = (try child(), try child(), try child())
        XCTAssertTrue(queue.addComplete(a))
        XCTAssertFalse(queue.addComplete(b))
        XCTAssertTrue(queue.addIncomplete(c).accepted)
        queue.remove(c)
        XCTAssertEqual(queue.counts.incomplete, 0)
        XCTAssertTrue(queue.addIncomplete(c).accepted)
        let children = queue.close()
        XCTAssertEqual(Set(children.map(ObjectIdentifier.init)), Set([a, c].map(ObjectIdentifier.init)))
        XCTAssertTrue(children.allSatisfy { !$0.state.containsAny([.inCompleteQueue, .inIncompleteQueue]) })
        XCTAssertFalse(queue.addComplete(b), "a closed queue takes nothing")
        XCTAssertFalse(queue.addIncomplete(b).accepted)
        for socket in [a, b, c] { socket.close() }
    }

    func testBacklogIsClampedToOneAndTheMaximum() {
        let queue = ListenQueue()
        queue.setBacklog(0)
        XCTAssertEqual(queue.limit, 1)
        queue.setBacklog(1 << 30)
        XCTAssertEqual(queue.limit, ListenQueue.maximumBacklog)
    }

    /// A listen that runs after its socket's close (the race a listen and a close can run)
    /// must not reopen the queue: nobody would accept or abort what lands on it.
    func testAClosedQueueStaysClosedWhenTheBacklogIsSetAgain() throws {
        let queue = ListenQueue()
        queue.setBacklog(4)
        XCTAssertEqual(queue.close().count, 0)
        queue.setBacklog(4)
        let late = try child()
        XCTAssertFalse(queue.addComplete(late))
        XCTAssertFalse(queue.addIncomplete(late).accepted)
        XCTAssertEqual(queue.counts.complete, 0)
        late.close()
    }
}
