#define _GNU_SOURCE
#include "CNetMPTAP.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int tap_open_here(const char *name, int create, int vnet_header, unsigned offloads, char *name_out) {
    if (strlen(name) >= IFNAMSIZ) return -ENAMETOOLONG;
    if (!create && if_nametoindex(name) == 0) return -ENODEV;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? -ENODEV : -errno;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE | (vnet_header ? IFF_VNET_HDR : 0);
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    if (vnet_header) {
        int size = 10;  // struct virtio_net_hdr, without num_buffers
        unsigned flags = 0;
        if (offloads & NETMP_TAP_OFFLOAD_CSUM) flags |= TUN_F_CSUM;
        if (offloads & NETMP_TAP_OFFLOAD_TSO4) flags |= TUN_F_TSO4;
        if (ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 || ioctl(fd, TUNSETOFFLOAD, flags) < 0) {
            int error = errno;
            close(fd);
            return -error;
        }
    }
    if (name_out) {
        memcpy(name_out, request.ifr_name, IFNAMSIZ);
        name_out[IFNAMSIZ - 1] = 0;
    }
    return fd;
}

int netmp_tap_open(const char *name, int create, int vnet_header, unsigned offloads, int netns_fd,
                   char *name_out) {
    if (netns_fd < 0) return tap_open_here(name, create, vnet_header, offloads, name_out);
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
        int error = errno;
        close(home);
        return -error;
    }
    int result = tap_open_here(name, create, vnet_header, offloads, name_out);
    // Back home; should that fail, the caller learns it (the thread is still in the namespace).
    if (setns(home, CLONE_NEWNET) < 0) {
        if (result >= 0) close(result);
        result = -errno;
    }
    close(home);
    return result;
}

int netmp_enter_netns(int netns_fd) { return setns(netns_fd, CLONE_NEWNET) < 0 ? -errno : 0; }
