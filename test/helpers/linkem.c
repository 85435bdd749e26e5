// linkem: a tiny link emulator for tests on kernels built without netem (CONFIG_NET_SCH_NETEM).
// It forwards Ethernet frames between two interfaces of its network namespace through raw
// packet sockets: frames that arrive on FROM leave on TO after DELAY_MS, except LOSS_PERCENT of
// them, which are dropped; frames that arrive on TO leave on FROM at once. Put between a
// host's veth and its bridge, it acts like `tc qdisc add dev <the host's end> root netem delay
// DELAY_MS loss LOSS_PERCENT%`. Offloaded frames (GSO, partial checksums) are passed through
// with their virtio-net header, so TCP works across it unchanged.
//   linkem FROM TO DELAY_MS LOSS_PERCENT      prints "ready" once both sockets are bound; runs until killed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (256 * 1024)
#define QUEUE 8192

struct frame {
  uint64_t due_ms;
  size_t len;
  unsigned char *data;
};

static struct frame queue[QUEUE];
static size_t head, count;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int open_on(const char *name) {
  int ifindex = (int)if_nametoindex(name);
  if (ifindex == 0) die(name);
  int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) die("PACKET_VNET_HDR");
  int size = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind");
  struct packet_mreq mreq = {.mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC};
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) die("PACKET_MR_PROMISC");
  return fd;
}

/** Reads one frame that arrived on the interface (not one sent from it); 0 when none is left. */
static ssize_t receive(int fd, unsigned char *buf) {
  for (;;) {
    struct sockaddr_ll from;
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd, buf, MAX_FRAME, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      die("recvfrom");
    }
    if (from.sll_pkttype == PACKET_OUTGOING || n > MAX_FRAME || n < (ssize_t)sizeof(struct virtio_net_hdr)) continue;
    return n;
  }
}

static void transmit(int fd, const unsigned char *buf, size_t len) {
  // A frame the other side cannot take (full buffers, a vanished link) is lost, as on a wire.
  while (send(fd, buf, len, MSG_DONTWAIT) < 0 && errno == EINTR) {
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: linkem FROM TO DELAY_MS LOSS_PERCENT\n");
    return 2;
  }
  int from = open_on(argv[1]);
  int to = open_on(argv[2]);
  uint64_t delay = strtoull(argv[3], NULL, 10);
  double loss = strtod(argv[4], NULL) / 100.0;
  srand48((long)getpid() ^ (long)now_ms());
  static unsigned char buf[MAX_FRAME];
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int timeout = -1;
    if (count > 0) {
      uint64_t due = queue[head].due_ms, now = now_ms();
      timeout = due > now ? (int)(due - now) : 0;
    }
    struct pollfd fds[2] = {{.fd = from, .events = POLLIN}, {.fd = to, .events = POLLIN}};
    if (poll(fds, 2, timeout) < 0 && errno != EINTR) die("poll");
    if (fds[0].revents & POLLIN) {
      ssize_t n;
      while ((n = receive(from, buf)) > 0) {
        if (drand48() < loss || count == QUEUE) continue;
        struct frame *f = &queue[(head + count) % QUEUE];
        f->data = malloc((size_t)n);
        if (!f->data) die("malloc");
        memcpy(f->data, buf, (size_t)n);
        f->len = (size_t)n;
        f->due_ms = now_ms() + delay;
        count++;
      }
    }
    if (fds[1].revents & POLLIN) {
      ssize_t n;
      while ((n = receive(to, buf)) > 0) transmit(from, buf, (size_t)n);
    }
    uint64_t now = now_ms();
    while (count > 0 && queue[head].due_ms <= now) {
      transmit(to, queue[head].data, queue[head].len);
      free(queue[head].data);
      head = (head + 1) % QUEUE;
      count--;
    }
  }
}
