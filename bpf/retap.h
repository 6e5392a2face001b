/* Records shared by bpf/retap.bpf.c (producer) and native/ + capture/ (consumers).
 * Fixed-size little-endian structs; every record starts with `u32 type`. A data record is followed
 * by `len` payload bytes. Keep capture/events.ts in step with this file (the addon exports the
 * sizes and offsets it was built with, and the decoder checks them at start).
 */
#ifndef RETAP_H
#define RETAP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Payload bytes per data record; larger reads/writes become several records. Power of two. */
#define RETAP_CHUNK 16384
/* iovec entries followed per readv/writev/recvmsg/sendmsg call. */
#define RETAP_MAX_IOV 64

enum retap_event_type {
  RETAP_EV_DATA = 1,      /* payload of one socket or TLS read/write (or a piece of it) */
  RETAP_EV_OPEN = 2,      /* a tracked connection: accept/connect, or first data on an older socket */
  RETAP_EV_CLOSE = 3,     /* close() of a tracked connection */
  RETAP_EV_TLS_BIND = 4,  /* an SSL object is now known to run over this connection */
  RETAP_EV_PROC = 5,      /* a target process exec'd (user space looks for TLS libraries and Go) */
  RETAP_EV_LOOP = 6,      /* node's event loop: a callback begins, or a thread-pool request starts/ends */
};

/* What a RETAP_EV_LOOP record says (the low byte of the loop probes' attach cookie). */
enum retap_loop_kind {
  RETAP_LOOP_TURN = 0,      /* a libuv callback begins: what ran before worked for nobody in particular */
  RETAP_LOOP_REQ_START = 1, /* a thread-pool request is queued: req is the call's 2nd argument */
  RETAP_LOOP_REQ_DONE = 2,  /* its completion callback begins: req is the call's 1st argument */
  RETAP_LOOP_REQ_START1 = 3, /* a request starts whose call takes it 1st (uv_tcp_connect) */
};

enum retap_dir {
  RETAP_DIR_IN = 0,  /* read by the observed process */
  RETAP_DIR_OUT = 1, /* written by the observed process */
};

enum retap_data_flags {
  RETAP_F_TLS = 1,       /* plaintext from SSL_read/SSL_write (key: the SSL object) or Go crypto/tls (key: the *tls.Conn) */
  RETAP_F_SIZE_ONLY = 2, /* bytes happened but were not copied (cap, sendfile): a known-size gap */
  RETAP_F_SENDFILE = 4,
};

enum retap_role {
  RETAP_ROLE_UNKNOWN = 0, /* socket existed before capture began */
  RETAP_ROLE_SERVER = 1,  /* accepted */
  RETAP_ROLE_CLIENT = 2,  /* connected */
};

/* Attach cookie bits of the OpenSSL probes (user space plans them: capture/openssl.ts). Bit 32 of
 * every entry probe's cookie (OpenSSL and Go): attached for one process, not for every process. */
enum {
  RETAP_SSL_RWSTATE_MASK = 0xffff, /* SSL.rwstate offset + 1, 0 when unknown */
  RETAP_SSL_EX = 1 << 16,          /* (ssl, buf, size_t num, size_t *done) -> int 1/0 */
  RETAP_SSL_OUT = 1 << 17,         /* a write */
  RETAP_SSL_INT_LEN = 1 << 18,     /* (ssl, buf, int num) -> int bytes */
};

enum retap_counter {
  RETAP_C_EVENTS = 0,    /* records submitted */
  RETAP_C_BYTES,         /* payload bytes submitted */
  RETAP_C_RB_DROPS,      /* records the ring buffer had no room for */
  RETAP_C_TRUNCATIONS,   /* calls above the per-call cap (only sizes recorded past it) */
  RETAP_C_SENDFILE,      /* sendfile calls on tracked sockets (size only) */
  RETAP_C_MMSG,          /* sendmmsg/recvmmsg calls by targets (counted, not decoded) */
  RETAP_C_CONNS,         /* connections opened */
  RETAP_C_TLS_CALLS,     /* SSL_read/SSL_write calls seen from targets */
  RETAP_C_IOV_TRUNC,     /* iovec arrays longer than RETAP_MAX_IOV (rest recorded as size only) */
  RETAP_C_GO_TLS_CALLS,  /* Go crypto/tls (*Conn).Read/Write calls seen from targets */
  RETAP_C_GO_NO_FD,      /* of those, calls whose socket could not be read through the tls.Conn */
  RETAP_C_HELD,          /* target processes held at exec until their executable was looked at */
  RETAP_C_GO_LATE,       /* Go Reads that returned after their socket was closed (bytes not kept) */
  RETAP_C_MAX,
};

struct retap_data {
  __u32 type;
  __u16 flags;
  __u8 dir;
  __u8 _pad0;
  __u32 tgid;
  __u32 tid;
  __u64 key; /* fd, or SSL* when RETAP_F_TLS */
  __u64 gen; /* connection (or SSL object) generation: its creation time */
  __u64 ts;  /* CLOCK_MONOTONIC ns */
  __u64 pos; /* byte position of this record's first byte in its stream */
  __u32 len; /* payload bytes that follow */
  __u32 size; /* bytes this record stands for: == len, or more when RETAP_F_SIZE_ONLY */
  __u8 data[RETAP_CHUNK];
};
#define RETAP_DATA_HDR 56 /* offsetof(struct retap_data, data) */

struct retap_open {
  __u32 type;
  __u16 family; /* AF_INET or AF_INET6 */
  __u8 role;
  __u8 _pad0;
  __u32 tgid;
  __u32 tid;
  __u64 fd;
  __u64 gen;
  __u64 ts;
  __u64 cgroup;
  __u16 lport;
  __u16 rport;
  __u32 _pad1;
  __u8 laddr[16]; /* IPv4 in the first 4 bytes */
  __u8 raddr[16];
  char comm[16];
};

struct retap_close {
  __u32 type;
  __u32 _pad0;
  __u32 tgid;
  __u32 tid;
  __u64 fd;
  __u64 gen;
  __u64 ts;
  __u64 bytes_in;
  __u64 bytes_out;
};

struct retap_tls_bind {
  __u32 type;
  __u32 _pad0;
  __u32 tgid;
  __u32 tid;
  __u64 ssl;
  __u64 ssl_gen;
  __u64 fd;
  __u64 gen;
  __u64 ts;
};

struct retap_proc {
  __u32 type;
  __u32 ppid;
  __u32 tgid;
  __u32 exec; /* 1: exec, 0: fork */
  __u64 ts;
  char comm[16];
  __u32 held; /* 1: stopped (SIGSTOP) until user space has looked at its executable */
  __u32 _pad0;
  __u64 exe_dev; /* the executable's inode, as the kernel names it (s_dev, i_ino) */
  __u64 exe_ino;
};

struct retap_loop {
  __u32 type;
  __u32 kind; /* enum retap_loop_kind */
  __u32 tgid;
  __u32 tid;
  __u64 req; /* the uv_req_t* of REQ_START(1) / REQ_DONE, 0 for TURN */
  __u64 ts;
};

/* Where a Go binary keeps what the probes read (per binary; user space fills it from DWARF or from
 * its table by Go version, and passes its index in go_layouts as the probes' attach cookie). */
struct retap_go_layout {
  __u32 tls_conn;     /* crypto/tls.Conn.conn: a net.Conn interface (itab, data pointer) */
  __u32 tcp_conn_fd;  /* *net.TCPConn -> its *netFD (TCPConn.conn + conn.fd) */
  __u32 netfd_sysfd;  /* netFD.pfd + poll.FD.Sysfd */
  __u32 netfd_family; /* netFD.family */
  __u32 netfd_sotype; /* netFD.sotype */
  __u32 g_stack_lo;   /* runtime.g.stack.lo */
  __u32 g_stack_hi;   /* runtime.g.stack.hi */
  __u32 _pad0;
};
#define RETAP_GO_LAYOUTS 64

#endif
