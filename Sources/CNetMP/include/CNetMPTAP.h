#ifndef CNETMP_TAP_H
#define CNETMP_TAP_H

#include <stdint.h>

/// The TAP calls Swift cannot import (the TUN ioctls are macros over structures).

/// TUN_F_* offloads a TAP reader accepts (TUNSETOFFLOAD).
#define NETMP_TAP_OFFLOAD_CSUM 0x01
#define NETMP_TAP_OFFLOAD_TSO4 0x02

/// Opens one queue of the TAP device `name` (Ethernet frames, no packet information, always
/// multi-queue so more queues can be attached later), non-blocking and close-on-exec.
/// `create` 0 refuses a device that does not exist yet (-ENODEV) instead of creating it.
/// `vnet_header` sets IFF_VNET_HDR with a 10-byte virtio-net header and asks for `offloads`.
/// `netns_fd` >= 0: the device is looked up (or made) in that network namespace; the calling
/// thread enters it for the open and returns to its own namespace after.
/// Returns the descriptor, or -errno. `name_out` (16 bytes) receives the device's name.
int netmp_tap_open(const char *name, int create, int vnet_header, unsigned offloads, int netns_fd,
                   char *name_out);

/// Moves the calling thread into the network namespace `netns_fd` (setns with CLONE_NEWNET), so
/// that sockets it makes belong there (they stay there whatever the thread does next).
/// Returns 0 or -errno.
int netmp_enter_netns(int netns_fd);

#endif
