import Glibc

/// The kernel's reference for `netmp bench connections`: the slab memory of idle loopback TCP
/// connections (both ends in one kernel), each having exchanged the same bytes as NetMP's, by the
/// kernel's own accounting (/proc/slabinfo: active objects times object size, over the caches a
/// TCP socket allocates), since the RSS of this process would not see it. Needs a readable
/// /proc/slabinfo (root) and two descriptors per connection; other processes' sockets are noise.
enum KernelConnectionMemory {
    /// The caches an idle TCP socket and its descriptor live in.
    static let caches: Set<String> = [
        "TCP", "request_sock_TCP", "sock_inode_cache", "filp", "dentry", "tcp_bind_bucket", "tcp_bind2_bucket",
        "skbuff_head_cache", "skbuff_fclone_cache", "skbuff_small_head",
    ]

    /// Bytes in `caches` now, or nil when /proc/slabinfo cannot be read.
    static func slabBytes() -> Int? {
        guard let file = fopen("/proc/slabinfo", "r") else { return nil }
        defer { fclose(file) }
        var total = 0
        var line = [CChar](repeating: 0, count: 1024)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ")
            guard fields.count > 3, caches.contains(String(fields[0])), let active = Int(fields[1]),
                let size = Int(fields[3])
            else { continue }
            total += active * size
        }
        return total
    }

    /// The most connections the descriptor limit allows (raising the soft limit to the hard one).
    static func connectionLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let usable = Int(clamping: limit.rlim_cur) - 64
        return Swift.max(0, usable / 2)
    }

    private static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = port.bigEndian
        return address
    }

    /// Opens `count` loopback connections, exchanges `payload` bytes each way on each (checked),
    /// lets delayed ACKs go, and returns the slab bytes per connection; nil when it cannot.
    static func bytesPerConnection(count: Int, payload: Int) -> Double? {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { return nil }
        defer { close(listener) }
        var bound = address(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &bound) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 4096) == 0
                    && getsockname(listener, $0, &length) == 0
            }
        }
        guard ok else { return nil }
        let port = UInt16(bigEndian: bound.sin_port)
        guard let before = slabBytes() else { return nil }
        var descriptors: [Int32] = []
        descriptors.reserveCapacity(2 * count)
        defer { for fd in descriptors { close(fd) } }
        let request = [UInt8]((0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let reply = [UInt8]((0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) })
        var scratch = [UInt8](repeating: 0, count: payload)
        for _ in 0..<count {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard client >= 0 else { return nil }
            descriptors.append(client)
            var target = address(port: port)
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            let server = accept(listener, nil, nil)
            guard connected == 0, server >= 0 else { return nil }
            descriptors.append(server)
            guard exchange(request, from: client, to: server, scratch: &scratch),
                exchange(reply, from: server, to: client, scratch: &scratch)
            else { return nil }
        }
        // Delayed ACKs (40 ms and more) go out; the connections are then idle.
        usleep(300_000)
        guard let after = slabBytes() else { return nil }
        return Double(after - before) / Double(Swift.max(1, count))
    }

    /// Writes `bytes` on `from` and reads them whole on `to`; false if they differ.
    private static func exchange(_ bytes: [UInt8], from: Int32, to: Int32, scratch: inout [UInt8]) -> Bool {
        let written = bytes.withUnsafeBytes { write(from, $0.baseAddress, $0.count) }
        guard written == bytes.count else { return false }
        var got = 0
        while got < bytes.count {
            let n = scratch.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return read(to, base + got, bytes.count - got)
            }
            if n <= 0 { return false }
            got += n
        }
        return scratch == bytes
    }
}
