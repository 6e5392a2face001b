// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* retap capture: socket payloads from syscall tracepoints, TLS plaintext from uprobes on OpenSSL and
 * on Go's crypto/tls.
 *
 * Every hook filters first (our own process out, then target tgid / cgroup), stashes the call's
 * arguments at entry and emits at exit, when the byte count is known. Connections are keyed by
 * tgid<<32|fd with a generation (creation time) so a reused fd starts a new stream. Each data
 * record carries its stream position, so user space sees loss as gaps instead of corruption.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "retap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define SIGSTOP 19

/* configuration fixed at load (rodata) */
const volatile __u32 self_tgid = 0;
const volatile __u32 capture_all = 0;
const volatile __u32 per_call_cap = 1 << 20;
/* records are submitted without waking the poller (it polls every few ms) until this much waits */
const volatile __u64 wakeup_bytes = 256 << 10;
/* stop a target at exec until user space has looked at an executable it has not seen (Go TLS) */
const volatile __u32 hold_exec = 0;

/* set by user space while TLS probes are attached per process: user space hears of every new target
 * process, and (with hold_exec) every one is held at fork and exec until its probes are attached,
 * not only those running an executable user space has not seen */
volatile __u32 tls_per_process = 0;

/* set by user space at stop: every hook returns at once (detaching takes the kernel seconds) */
volatile __u32 paused = 0;

/* targets, updated by user space at run time */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, __u8);
} target_tgids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u64);
  __type(value, __u8);
} target_cgroups SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u16);
  __type(value, __u8);
} target_ports SEC(".maps");

/* how many ports are in target_ports (index 0), so the empty case costs no lookup */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} port_count SEC(".maps");

struct conn {
  __u64 gen;
  __u64 pos[2];
  __u64 ssl;    /* SSL* bound to this socket, 0 if none */
  __u8 ignored; /* not a TCP socket, or filtered out by port */
  __u8 tls;     /* ciphertext: not emitted */
  __u8 role;
  __u8 looks_tls; /* its first bytes were a TLS record: a candidate for memory-BIO binding */
  __u8 _pad[4];
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u64); /* tgid<<32 | fd */
  __type(value, struct conn);
} conns SEC(".maps");

enum { K_BUF = 0, K_IOV = 1, K_ACCEPT = 2, K_CONNECT = 3, K_SENDFILE = 4 };

struct call {
  __u64 fd;
  __u64 buf; /* buffer, or iovec array */
  __u64 n;   /* iovcnt for K_IOV */
  __u32 kind;
  __u32 dir;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct call);
} calls SEC(".maps");

struct ssl_key {
  __u32 tgid;
  __u32 _pad;
  __u64 ssl;
};

struct ssl_state {
  __u64 gen;
  __u64 pos[2];
  __u64 conn; /* tgid<<32|fd once bound, else 0 */
  __u64 conn_gen;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct ssl_key);
  __type(value, struct ssl_state);
} ssls SEC(".maps");

struct ssl_call {
  __u64 ssl;
  __u64 buf;
  __u64 out_len; /* size_t* for the _ex variants, else 0 */
  __u32 dir;
  __u32 ex;
  __u64 sock;    /* tgid<<32|fd of a socket the call touched, 0 if none */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct ssl_call);
} ssl_calls SEC(".maps");

/* Per-thread memory for memory-BIO TLS (node): the socket last read before SSL_read, and an
 * SSL object whose SSL_write wrote no socket yet (its ciphertext goes out on the next write). */
struct thread_tls {
  __u64 last_read;
  __u64 pending_write_ssl;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct thread_tls);
} threads SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct retap_data);
} scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RETAP_C_MAX);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 << 20); /* resized by user space before load */
} events SEC(".maps");

static __always_inline void count(__u32 which, __u64 n)
{
  __u64 *v = bpf_map_lookup_elem(&counters, &which);
  if (v)
    *v += n;
}

static __always_inline int submit_flags(void *rec, __u64 size, __u64 flags)
{
  if (bpf_ringbuf_output(&events, rec, size, flags) < 0) {
    count(RETAP_C_RB_DROPS, 1);
    return -1;
  }
  count(RETAP_C_EVENTS, 1);
  return 0;
}

static __always_inline int submit(void *rec, __u64 size)
{
  /* a wakeup per record costs the traced syscall an IPI: wake only when data piles up */
  __u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
  return submit_flags(rec, size, flags);
}

/* step: is the current task one we capture? */
static __always_inline int is_target(__u32 tgid)
{
  if (paused || tgid == self_tgid)
    return 0;
  if (capture_all)
    return 1;
  if (bpf_map_lookup_elem(&target_tgids, &tgid))
    return 1;
  __u64 cg = bpf_get_current_cgroup_id();
  return bpf_map_lookup_elem(&target_cgroups, &cg) != NULL;
}

static __always_inline int port_wanted(__u16 lport, __u16 rport)
{
  __u32 zero = 0;
  __u32 *n = bpf_map_lookup_elem(&port_count, &zero);
  if (!n || *n == 0)
    return 1;
  return bpf_map_lookup_elem(&target_ports, &lport) || bpf_map_lookup_elem(&target_ports, &rport);
}

static __always_inline struct sock *fd_sock(__u32 fd)
{
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
    return NULL;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
  if (!f)
    return NULL;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & S_IFMT) != S_IFSOCK)
    return NULL;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock)
    return NULL;
  return BPF_CORE_READ(sock, sk);
}

/* step: start tracking fd as a connection (or remember it is not one) */
static __always_inline struct conn *conn_open(__u32 tgid, __u32 tid, __u32 fd, __u8 role)
{
  __u64 key = ((__u64)tgid << 32) | fd;
  struct conn c = {};
  c.gen = bpf_ktime_get_ns();
  c.role = role;
  c.ignored = 1;

  struct sock *sk = fd_sock(fd);
  struct retap_open ev = {};
  if (sk) {
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    __u16 type = BPF_CORE_READ(sk, sk_type);
    if ((family == AF_INET || family == AF_INET6) && type == SOCK_STREAM) {
      ev.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
      ev.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
      if (port_wanted(ev.lport, ev.rport)) {
        c.ignored = 0;
        ev.family = family;
        if (family == AF_INET) {
          BPF_CORE_READ_INTO(&ev.laddr, sk, __sk_common.skc_rcv_saddr);
          BPF_CORE_READ_INTO(&ev.raddr, sk, __sk_common.skc_daddr);
        } else {
          BPF_CORE_READ_INTO(&ev.laddr, sk, __sk_common.skc_v6_rcv_saddr);
          BPF_CORE_READ_INTO(&ev.raddr, sk, __sk_common.skc_v6_daddr);
        }
      }
    }
  }
  bpf_map_update_elem(&conns, &key, &c, BPF_ANY);
  if (c.ignored)
    return bpf_map_lookup_elem(&conns, &key);

  ev.type = RETAP_EV_OPEN;
  ev.role = role;
  ev.tgid = tgid;
  ev.tid = tid;
  ev.fd = fd;
  ev.gen = c.gen;
  ev.ts = c.gen;
  ev.cgroup = bpf_get_current_cgroup_id();
  bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
  submit(&ev, sizeof(ev));
  count(RETAP_C_CONNS, 1);
  return bpf_map_lookup_elem(&conns, &key);
}

/* ---- payload emission: one bounded loop over (iovec, chunk) pairs ---- */

struct emit_ctx {
  __u64 base;     /* buffer, or iovec array when iov */
  __u64 iovcnt;
  __u64 total;    /* bytes to account for */
  __u64 copy;     /* bytes to copy (<= total, the per-call cap) */
  __u64 done;     /* bytes accounted so far */
  __u64 iov_i;
  __u64 iov_base; /* current segment */
  __u64 iov_left;
  __u64 pos;
  __u64 key;
  __u64 gen;
  __u64 ts;
  __u32 tgid;
  __u32 tid;
  __u16 flags;
  __u8 dir;
  __u8 iov;
};

/* The loop state lives in a per-CPU map, not on the stack: the verifier then sees its fields as
 * unknown scalars and verifies the callback once, instead of once per distinct constant. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct emit_ctx);
} emit_state SEC(".maps");

static long emit_one(__u32 i, void *unused)
{
  __u32 zero = 0;
  struct emit_ctx *c = bpf_map_lookup_elem(&emit_state, &zero);
  if (!c)
    return 1;
  if (c->done >= c->copy)
    return 1;
  if (c->iov) {
    if (c->iov_left == 0) { /* next segment; an empty one costs a round (rounds allow for it) */
      if (c->iov_i >= c->iovcnt || c->iov_i >= RETAP_MAX_IOV)
        return 1;
      struct iovec v = {};
      bpf_probe_read_user(&v, sizeof(v), (void *)(c->base + c->iov_i * sizeof(struct iovec)));
      c->iov_i++;
      c->iov_base = (__u64)v.iov_base;
      c->iov_left = v.iov_len;
      if (c->iov_left == 0)
        return 0;
    }
  }
  struct retap_data *d = bpf_map_lookup_elem(&scratch, &zero);
  if (!d)
    return 1;
  __u64 n = c->copy - c->done;
  if (c->iov && n > c->iov_left)
    n = c->iov_left;
  if (n > RETAP_CHUNK)
    n = RETAP_CHUNK;
  __u64 src = c->iov ? c->iov_base : c->base + c->done;
  n &= (RETAP_CHUNK << 1) - 1; /* for the verifier: n <= RETAP_CHUNK already */
  if (n > RETAP_CHUNK)
    return 1;
  if (bpf_probe_read_user(d->data, n, (void *)src) < 0)
    n = 0; /* unreadable memory: record as a size-only gap below */
  d->type = RETAP_EV_DATA;
  d->flags = c->flags | (n ? 0 : RETAP_F_SIZE_ONLY);
  d->dir = c->dir;
  d->tgid = c->tgid;
  d->tid = c->tid;
  d->key = c->key;
  d->gen = c->gen;
  d->ts = c->ts;
  d->pos = c->pos + c->done;
  __u64 step = c->copy - c->done;
  if (c->iov && step > c->iov_left)
    step = c->iov_left;
  if (step > RETAP_CHUNK)
    step = RETAP_CHUNK;
  d->len = n;
  d->size = step;
  if (submit(d, RETAP_DATA_HDR + n) == 0)
    count(RETAP_C_BYTES, n);
  c->done += step;
  if (c->iov) {
    c->iov_base += step;
    c->iov_left -= step;
  }
  return 0;
}

/* step: emit `total` bytes at stream position `pos`; returns nothing, positions are the caller's */
static __always_inline void emit(struct emit_ctx *init)
{
  __u32 zero = 0;
  struct emit_ctx *c = bpf_map_lookup_elem(&emit_state, &zero);
  if (!c)
    return;
  *c = *init;
  c->copy = c->total;
  if (c->copy > per_call_cap) {
    c->copy = per_call_cap;
    count(RETAP_C_TRUNCATIONS, 1);
  }
  __u32 rounds = (c->copy / RETAP_CHUNK) + 1 + (c->iov ? RETAP_MAX_IOV : 0);
  bpf_loop(rounds, emit_one, NULL, 0);
  c = bpf_map_lookup_elem(&emit_state, &zero);
  if (!c)
    return;
  if (c->done < c->total) { /* past the cap, or iovecs beyond RETAP_MAX_IOV: a known-size gap */
    if (c->iov && c->iov_i >= RETAP_MAX_IOV)
      count(RETAP_C_IOV_TRUNC, 1);
    struct retap_data *d = bpf_map_lookup_elem(&scratch, &zero);
    if (!d)
      return;
    d->type = RETAP_EV_DATA;
    d->flags = c->flags | RETAP_F_SIZE_ONLY;
    d->dir = c->dir;
    d->tgid = c->tgid;
    d->tid = c->tid;
    d->key = c->key;
    d->gen = c->gen;
    d->ts = c->ts;
    d->pos = c->pos + c->done;
    d->len = 0;
    d->size = c->total - c->done;
    submit(d, RETAP_DATA_HDR);
  }
}

/* ---- syscalls ---- */

static __always_inline int enter(__u64 fd, __u64 buf, __u64 n, __u32 kind, __u32 dir)
{
  __u64 id = bpf_get_current_pid_tgid();
  if (!is_target(id >> 32))
    return 0;
  struct call c = { .fd = fd, .buf = buf, .n = n, .kind = kind, .dir = dir };
  bpf_map_update_elem(&calls, &id, &c, BPF_ANY);
  return 0;
}

static __always_inline void bind_ssl(__u32 tgid, __u32 tid, __u64 ssl, __u64 conn_key, struct conn *c)
{
  struct ssl_key sk = { .tgid = tgid, .ssl = ssl };
  struct ssl_state *s = bpf_map_lookup_elem(&ssls, &sk);
  if (!s) {
    struct ssl_state fresh = { .gen = bpf_ktime_get_ns() };
    bpf_map_update_elem(&ssls, &sk, &fresh, BPF_NOEXIST);
    s = bpf_map_lookup_elem(&ssls, &sk);
    if (!s)
      return;
  }
  if (s->conn == conn_key && s->conn_gen == c->gen)
    return;
  s->conn = conn_key;
  s->conn_gen = c->gen;
  c->tls = 1;
  c->ssl = ssl;
  struct retap_tls_bind ev = {
    .type = RETAP_EV_TLS_BIND,
    .tgid = tgid,
    .tid = tid,
    .ssl = ssl,
    .ssl_gen = s->gen,
    .fd = conn_key & 0xffffffff,
    .gen = c->gen,
    .ts = bpf_ktime_get_ns(),
  };
  submit(&ev, sizeof(ev));
}

static __always_inline int exit_data(long ret)
{
  __u64 id = bpf_get_current_pid_tgid();
  struct call *call = bpf_map_lookup_elem(&calls, &id);
  if (!call)
    return 0;
  struct call a = *call;
  bpf_map_delete_elem(&calls, &id);
  if (ret <= 0)
    return 0;

  __u32 tgid = id >> 32;
  __u64 key = ((__u64)tgid << 32) | (__u32)a.fd;
  struct conn *c = bpf_map_lookup_elem(&conns, &key);
  if (!c)
    c = conn_open(tgid, (__u32)id, (__u32)a.fd, RETAP_ROLE_UNKNOWN);
  if (!c || c->ignored)
    return 0;

  /* step: does the stream start like TLS? (record type 20-23, version 3.x) */
  __u64 d0 = a.dir & 1;
  if (c->pos[d0] == 0 && a.kind != K_SENDFILE) {
    __u64 src = a.buf;
    if (a.kind == K_IOV) {
      struct iovec v = {};
      bpf_probe_read_user(&v, sizeof(v), (void *)a.buf);
      src = (__u64)v.iov_base;
    }
    __u8 h[3] = {};
    if (ret >= 3 && bpf_probe_read_user(h, 3, (void *)src) == 0)
      c->looks_tls = h[0] >= 20 && h[0] <= 23 && h[1] == 3 && h[2] <= 4;
  }

  /* step: TLS correlation; ciphertext itself is never emitted */
  struct ssl_call *sc = bpf_map_lookup_elem(&ssl_calls, &id);
  if (sc) {
    sc->sock = key;
    bind_ssl(tgid, (__u32)id, sc->ssl, key, c);
  } else {
    /* memory BIOs: only sockets that carry TLS records can be an SSL object's transport */
    struct thread_tls *t = c->looks_tls ? bpf_map_lookup_elem(&threads, &id) : NULL;
    if (t) {
      if (a.dir == RETAP_DIR_IN)
        t->last_read = key;
      else if (t->pending_write_ssl) {
        bind_ssl(tgid, (__u32)id, t->pending_write_ssl, key, c);
        t->pending_write_ssl = 0;
      }
    } else if (c->looks_tls && a.dir == RETAP_DIR_IN) {
      struct thread_tls fresh = { .last_read = key };
      bpf_map_update_elem(&threads, &id, &fresh, BPF_ANY);
    }
  }
  __u64 dir = a.dir & 1;
  __u64 pos = c->pos[dir];
  c->pos[dir] += ret;
  if (c->tls)
    return 0;

  if (a.kind == K_SENDFILE) {
    count(RETAP_C_SENDFILE, 1);
    /* the bytes come from a file, not user memory: record only the size */
    struct retap_data *d;
    __u32 zero = 0;
    d = bpf_map_lookup_elem(&scratch, &zero);
    if (!d)
      return 0;
    d->type = RETAP_EV_DATA;
    d->flags = RETAP_F_SENDFILE | RETAP_F_SIZE_ONLY;
    d->dir = RETAP_DIR_OUT;
    d->tgid = tgid;
    d->tid = (__u32)id;
    d->key = (__u32)a.fd;
    d->gen = c->gen;
    d->ts = bpf_ktime_get_ns();
    d->pos = pos;
    d->len = 0;
    d->size = ret;
    submit(d, RETAP_DATA_HDR);
    return 0;
  }

  struct emit_ctx e = {
    .base = a.buf,
    .iovcnt = a.n,
    .total = ret,
    .pos = pos,
    .key = (__u32)a.fd,
    .gen = c->gen,
    .ts = bpf_ktime_get_ns(),
    .tgid = tgid,
    .tid = (__u32)id,
    .dir = dir,
    .iov = a.kind == K_IOV,
  };
  emit(&e);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], ctx->args[1], 0, K_BUF, RETAP_DIR_IN);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], ctx->args[1], 0, K_BUF, RETAP_DIR_IN);
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], ctx->args[1], 0, K_BUF, RETAP_DIR_OUT);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], ctx->args[1], 0, K_BUF, RETAP_DIR_OUT);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], ctx->args[1], ctx->args[2], K_IOV, RETAP_DIR_IN);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], ctx->args[1], ctx->args[2], K_IOV, RETAP_DIR_OUT);
}

static __always_inline int enter_msg(struct trace_event_raw_sys_enter *ctx, __u32 dir)
{
  __u64 id = bpf_get_current_pid_tgid();
  if (!is_target(id >> 32))
    return 0;
  struct user_msghdr m = {};
  bpf_probe_read_user(&m, sizeof(m), (void *)ctx->args[1]);
  struct call c = { .fd = ctx->args[0], .buf = (__u64)m.msg_iov, .n = m.msg_iovlen, .kind = K_IOV, .dir = dir };
  bpf_map_update_elem(&calls, &id, &c, BPF_ANY);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
  return enter_msg(ctx, RETAP_DIR_IN);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
  return enter_msg(ctx, RETAP_DIR_OUT);
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int enter_sendfile(struct trace_event_raw_sys_enter *ctx)
{
  return enter(ctx->args[0], 0, 0, K_SENDFILE, RETAP_DIR_OUT);
}

SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int exit_sendfile(struct trace_event_raw_sys_exit *ctx) { return exit_data(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
  if (is_target(bpf_get_current_pid_tgid() >> 32))
    count(RETAP_C_MMSG, 1);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int enter_recvmmsg(struct trace_event_raw_sys_enter *ctx)
{
  if (is_target(bpf_get_current_pid_tgid() >> 32))
    count(RETAP_C_MMSG, 1);
  return 0;
}

/* accept/connect: the socket's role is known here */
SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct trace_event_raw_sys_enter *ctx) { return enter(ctx->args[0], 0, 0, K_ACCEPT, 0); }
SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct trace_event_raw_sys_enter *ctx) { return enter(ctx->args[0], 0, 0, K_ACCEPT, 0); }
SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx) { return enter(ctx->args[0], 0, 0, K_CONNECT, 0); }

static __always_inline int exit_open(long ret)
{
  __u64 id = bpf_get_current_pid_tgid();
  struct call *call = bpf_map_lookup_elem(&calls, &id);
  if (!call)
    return 0;
  struct call a = *call;
  bpf_map_delete_elem(&calls, &id);
  if (a.kind == K_ACCEPT && ret >= 0)
    conn_open(id >> 32, (__u32)id, (__u32)ret, RETAP_ROLE_SERVER);
  else if (a.kind == K_CONNECT && (ret == 0 || ret == -EINPROGRESS))
    conn_open(id >> 32, (__u32)id, (__u32)a.fd, RETAP_ROLE_CLIENT);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx) { return exit_open(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx) { return exit_open(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx) { return exit_open(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!is_target(tgid))
    return 0;
  __u64 key = ((__u64)tgid << 32) | (__u32)ctx->args[0];
  struct conn *c = bpf_map_lookup_elem(&conns, &key);
  if (!c)
    return 0;
  if (!c->ignored) {
    struct retap_close ev = {
      .type = RETAP_EV_CLOSE,
      .tgid = tgid,
      .tid = (__u32)id,
      .fd = (__u32)ctx->args[0],
      .gen = c->gen,
      .ts = bpf_ktime_get_ns(),
      .bytes_in = c->pos[RETAP_DIR_IN],
      .bytes_out = c->pos[RETAP_DIR_OUT],
    };
    submit(&ev, sizeof(ev));
  }
  if (c->ssl) {
    struct ssl_key sk = { .tgid = tgid, .ssl = c->ssl };
    bpf_map_delete_elem(&ssls, &sk);
  }
  bpf_map_delete_elem(&conns, &key);
  return 0;
}

/* processes: children of target tgids become targets; user space hears of new processes (TLS
 * probes attached per process must be attached for the child too) and of execs (TLS libraries) */
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type, __u64 value) __weak __ksym;

/* Processes stopped at fork or exec, with the time: user space continues them (and sweeps this map). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, __u64);
} held SEC(".maps");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
  __u32 ptgid = parent->tgid;
  if (paused || ptgid == self_tgid || !bpf_map_lookup_elem(&target_tgids, &ptgid))
    return 0;
  __u32 tgid = child->tgid;
  if (tgid == ptgid)
    return 0; /* a thread: same process, same probes */
  __u8 one = 1;
  bpf_map_update_elem(&target_tgids, &tgid, &one, BPF_ANY);
  if (!tls_per_process)
    return 0; /* probes for every process: the child has them already */
  /* step: the child runs the parent's code with the parent's breakpoints, which the kernel removes
   * at their first hit (they belong to the parent's probes): stop it before its first instruction
   * until user space has attached its own */
  struct retap_proc ev = {
    .type = RETAP_EV_PROC,
    .ppid = ptgid,
    .tgid = tgid,
    .exec = 0,
    .ts = bpf_ktime_get_ns(),
  };
  __builtin_memcpy(ev.comm, child->comm, sizeof(ev.comm));
  int hold = hold_exec && bpf_send_signal_task != NULL &&
             bpf_map_update_elem(&held, &tgid, &ev.ts, BPF_ANY) == 0;
  ev.held = hold;
  if (submit_flags(&ev, sizeof(ev), hold ? BPF_RB_FORCE_WAKEUP : 0) < 0) {
    if (hold)
      bpf_map_delete_elem(&held, &tgid);
    return 0;
  }
  if (hold) {
    if (bpf_send_signal_task(child, SIGSTOP, PIDTYPE_TGID, 0) == 0)
      count(RETAP_C_HELD, 1);
    else
      bpf_map_delete_elem(&held, &tgid);
  }
  return 0;
}

/* Executables user space has looked at (for TLS probes); others hold their process at exec. */
struct exe_key {
  __u64 dev;
  __u64 ino;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct exe_key);
  __type(value, __u8);
} exe_seen SEC(".maps");


SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!is_target(tgid))
    return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct file *exe = BPF_CORE_READ(task, mm, exe_file);
  struct retap_proc ev = {
    .type = RETAP_EV_PROC,
    .ppid = BPF_CORE_READ(task, real_parent, tgid),
    .tgid = tgid,
    .exec = 1,
    .ts = bpf_ktime_get_ns(),
    .exe_dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev),
    .exe_ino = BPF_CORE_READ(exe, f_inode, i_ino),
  };
  bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
  /* step: a new executable? stop the process before its first instruction until user space has
   * attached what it needs (a Go program calls crypto/tls within milliseconds of starting) */
  struct exe_key ek = { .dev = ev.exe_dev, .ino = ev.exe_ino };
  if (hold_exec && ev.exe_ino && (tls_per_process || !bpf_map_lookup_elem(&exe_seen, &ek)) &&
      bpf_map_update_elem(&held, &tgid, &ev.ts, BPF_ANY) == 0)
    ev.held = 1;
  if (submit_flags(&ev, sizeof(ev), ev.held ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP) < 0) {
    if (ev.held)
      bpf_map_delete_elem(&held, &tgid); /* nobody would hear of it: do not hold */
    return 0;
  }
  if (ev.held) {
    if (bpf_send_signal(SIGSTOP) == 0)
      count(RETAP_C_HELD, 1);
    else
      bpf_map_delete_elem(&held, &tgid);
  }
  return 0;
}

/* ---- OpenSSL: SSL_read / SSL_write (+ _ex) ---- */

/* step: does this hit count? Probes attached for one process carry bit 32 of the attach cookie;
 * user space attaches the other kind before it switches (tls_per_process), so the switch is one
 * store: no call is recorded twice, none is missed. A probe attached for one process is only in
 * that target's memory (the kernel filters by memory map), so it needs no target lookup. */
static __always_inline int probe_wanted(void *ctx, __u32 tgid)
{
  __u32 per = (bpf_get_attach_cookie(ctx) >> 32) & 1;
  if (per != (tls_per_process != 0))
    return 0;
  if (per)
    return !paused && tgid != self_tgid;
  return is_target(tgid);
}

static __always_inline int ssl_enter(void *ctx, void *ssl, void *buf, void *out_len, __u32 dir, __u32 ex)
{
  __u64 id = bpf_get_current_pid_tgid();
  if (!probe_wanted(ctx, id >> 32))
    return 0;
  struct ssl_call c = { .ssl = (__u64)ssl, .buf = (__u64)buf, .out_len = (__u64)out_len, .dir = dir, .ex = ex };
  bpf_map_update_elem(&ssl_calls, &id, &c, BPF_ANY);
  return 0;
}

static __always_inline int ssl_exit(int ret) /* int: the upper half of rax is not defined */
{
  __u64 id = bpf_get_current_pid_tgid();
  struct ssl_call *call = bpf_map_lookup_elem(&ssl_calls, &id);
  if (!call)
    return 0;
  struct ssl_call a = *call;
  bpf_map_delete_elem(&ssl_calls, &id);
  __u32 tgid = id >> 32;
  count(RETAP_C_TLS_CALLS, 1);

  __u64 n = 0;
  if (a.ex) {
    if (ret == 1 && a.out_len) {
      __u64 got = 0;
      bpf_probe_read_user(&got, sizeof(got), (void *)a.out_len);
      n = got;
    }
  } else if (ret > 0) {
    n = ret;
  }

  struct ssl_key sk = { .tgid = tgid, .ssl = a.ssl };
  struct ssl_state *s = bpf_map_lookup_elem(&ssls, &sk);
  if (!s) {
    struct ssl_state fresh = { .gen = bpf_ktime_get_ns() };
    bpf_map_update_elem(&ssls, &sk, &fresh, BPF_NOEXIST);
    s = bpf_map_lookup_elem(&ssls, &sk);
    if (!s)
      return 0;
  }
  /* step: memory BIOs (node) touch no socket inside the call: correlate per thread */
  if (!a.sock && !s->conn) {
    struct thread_tls *t = bpf_map_lookup_elem(&threads, &id);
    if (t && a.dir == RETAP_DIR_IN && t->last_read) {
      __u64 key = t->last_read;
      struct conn *c = bpf_map_lookup_elem(&conns, &key);
      if (c && !c->ignored)
        bind_ssl(tgid, (__u32)id, a.ssl, key, c);
    } else if (a.dir == RETAP_DIR_OUT) {
      if (t) {
        t->pending_write_ssl = a.ssl;
      } else {
        struct thread_tls fresh = { .pending_write_ssl = a.ssl };
        bpf_map_update_elem(&threads, &id, &fresh, BPF_ANY);
      }
    }
    s = bpf_map_lookup_elem(&ssls, &sk);
    if (!s)
      return 0;
  }
  if (n == 0)
    return 0;
  __u64 dir = a.dir & 1;
  __u64 pos = s->pos[dir];
  s->pos[dir] += n;
  struct emit_ctx e = {
    .base = a.buf,
    .total = n,
    .pos = pos,
    .key = a.ssl,
    .gen = s->gen,
    .ts = bpf_ktime_get_ns(),
    .tgid = tgid,
    .tid = (__u32)id,
    .flags = RETAP_F_TLS,
    .dir = dir,
  };
  emit(&e);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter, void *ssl, void *buf, int num) { return ssl_enter(ctx, ssl, buf, 0, RETAP_DIR_IN, 0); }
SEC("uprobe")
int BPF_KPROBE(ssl_write_enter, void *ssl, void *buf, int num) { return ssl_enter(ctx, ssl, buf, 0, RETAP_DIR_OUT, 0); }
SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void *ssl, void *buf, __u64 num, void *readbytes)
{
  return ssl_enter(ctx, ssl, buf, readbytes, RETAP_DIR_IN, 1);
}
SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void *ssl, void *buf, __u64 num, void *written)
{
  return ssl_enter(ctx, ssl, buf, written, RETAP_DIR_OUT, 1);
}
SEC("uretprobe")
int BPF_KRETPROBE(ssl_exit_probe, long rax) { return ssl_exit((int)rax); }

/* ---- node: event-loop turns and thread-pool requests (capture/causal/node-loop.ts) ----
 * One program for every site; the attach cookie's low byte says what the site means (enum
 * retap_loop_kind), bit 32 that it was attached for one process (as the TLS probes). The record
 * goes into the same ring buffer as the data records, so user space sees a thread's turns in order
 * with its reads and writes. */
SEC("uprobe")
int BPF_KPROBE(node_loop, void *a1, void *a2)
{
  __u64 id = bpf_get_current_pid_tgid();
  if (!probe_wanted(ctx, id >> 32))
    return 0;
  __u32 kind = bpf_get_attach_cookie(ctx) & 0xff;
  struct retap_loop ev = {
    .type = RETAP_EV_LOOP,
    .kind = kind,
    .tgid = id >> 32,
    .tid = (__u32)id,
    .req = kind == RETAP_LOOP_REQ_START ? (__u64)a2 : kind == RETAP_LOOP_TURN ? 0 : (__u64)a1,
    .ts = bpf_ktime_get_ns(),
  };
  submit(&ev, sizeof(ev));
  return 0;
}

/* ---- Go crypto/tls: (*Conn).Read / (*Conn).Write ----
 * Go's register ABI (Go 1.17+, amd64): the receiver and the slice arrive in rax (c), rbx (b.ptr),
 * rcx (b.len); `n` comes back in rax; r14 holds the running goroutine's g.
 * Write: the plaintext is whole at entry, so it is recorded there, before its own ciphertext and
 * before any close of the socket by another goroutine (recorded at return, the last answer of a
 * connection was lost to such a close about one run in four).
 * Read: the plaintext exists only at return. Go moves goroutine stacks and moves goroutines between
 * threads, so no uretprobe: a probe on every return instruction of Read (user space found them by
 * decoding the function), paired with the entry by goroutine (its g pointer).
 */

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, RETAP_GO_LAYOUTS);
  __type(key, __u32);
  __type(value, struct retap_go_layout);
} go_layouts SEC(".maps");

struct go_call_key {
  __u32 tgid;
  __u32 _pad;
  __u64 g; /* the goroutine: its g is fixed for its life, whatever thread runs it */
};

struct go_call {
  __u64 conn;     /* *tls.Conn */
  __u64 buf;      /* b.ptr, or its distance below g.stack.hi when b is on the goroutine's stack */
  __u32 on_stack; /* the stack may move (grow) during the call: find b again from g at return */
  __u32 bound;    /* the entry tied the call to its socket */
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH); /* a goroutine that panics inside a call never returns */
  __uint(max_entries, 65536);
  __type(key, struct go_call_key);
  __type(value, struct go_call);
} go_calls SEC(".maps");

static __always_inline struct retap_go_layout *go_layout(struct pt_regs *ctx)
{
  __u32 i = (__u32)bpf_get_attach_cookie(ctx);
  return bpf_map_lookup_elem(&go_layouts, &i);
}

/* step: n plaintext bytes at buf, next in the direction's stream of the tls.Conn */
static __always_inline void go_emit(__u32 tgid, __u32 tid, __u64 conn, struct ssl_state *s, __u64 dir, __u64 buf, __u64 n)
{
  __u64 pos = s->pos[dir];
  s->pos[dir] += n;
  struct emit_ctx e = {
    .base = buf,
    .total = n,
    .pos = pos,
    .key = conn,
    .gen = s->gen,
    .ts = bpf_ktime_get_ns(),
    .tgid = tgid,
    .tid = tid,
    .flags = RETAP_F_TLS,
    .dir = dir,
  };
  emit(&e);
}

static __always_inline struct ssl_state *go_state(__u32 tgid, __u64 conn, int create)
{
  struct ssl_key sk = { .tgid = tgid, .ssl = conn };
  struct ssl_state *s = bpf_map_lookup_elem(&ssls, &sk);
  if (s || !create)
    return s;
  struct ssl_state fresh = { .gen = bpf_ktime_get_ns() };
  bpf_map_update_elem(&ssls, &sk, &fresh, BPF_NOEXIST);
  return bpf_map_lookup_elem(&ssls, &sk);
}

#if defined(__TARGET_ARCH_x86)
static __always_inline int go_tls_enter(struct pt_regs *ctx, __u32 dir)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (!probe_wanted(ctx, tgid))
    return 0;
  struct retap_go_layout *L = go_layout(ctx);
  if (!L)
    return 0;
  __u64 conn = ctx->ax, buf = ctx->bx, len = ctx->cx, g = ctx->r14;
  count(RETAP_C_GO_TLS_CALLS, 1);

  /* step: the socket: tls.Conn.conn (net.Conn: itab, data) -> *net.TCPConn -> *netFD -> Sysfd;
   * the netFD's family and type must say TCP, or the chain ran through something else */
  __u64 data = 0, netfd = 0;
  __s64 sysfd = -1, family = 0, sotype = 0;
  int found = bpf_probe_read_user(&data, 8, (void *)(conn + L->tls_conn + 8)) == 0 && data &&
              bpf_probe_read_user(&netfd, 8, (void *)(data + L->tcp_conn_fd)) == 0 && netfd &&
              bpf_probe_read_user(&sysfd, 8, (void *)(netfd + L->netfd_sysfd)) == 0 &&
              bpf_probe_read_user(&family, 8, (void *)(netfd + L->netfd_family)) == 0 &&
              bpf_probe_read_user(&sotype, 8, (void *)(netfd + L->netfd_sotype)) == 0 &&
              (family == AF_INET || family == AF_INET6) && sotype == SOCK_STREAM && sysfd >= 0 &&
              sysfd < (1 << 30);
  __u32 bound = 0;
  if (found) {
    /* step: bind the plaintext to its socket now, so the ciphertext of this very call is dropped */
    __u64 key = ((__u64)tgid << 32) | (__u32)sysfd;
    struct conn *c = bpf_map_lookup_elem(&conns, &key);
    if (!c)
      c = conn_open(tgid, (__u32)id, (__u32)sysfd, RETAP_ROLE_UNKNOWN);
    if (c && c->ignored)
      return 0; /* its socket is filtered out (port), so is its plaintext */
    if (c) {
      bind_ssl(tgid, (__u32)id, conn, key, c);
      bound = 1;
    }
  } else {
    count(RETAP_C_GO_NO_FD, 1);
  }

  if (dir == RETAP_DIR_OUT) {
    struct ssl_state *s = go_state(tgid, conn, 1);
    if (s && len > 0 && len < (1ULL << 40))
      go_emit(tgid, (__u32)id, conn, s, RETAP_DIR_OUT, buf, len);
    return 0;
  }

  /* step: stash the Read for its return, keyed by goroutine */
  struct go_call gc = { .conn = conn, .buf = buf, .bound = bound };
  __u64 lo = 0, hi = 0;
  bpf_probe_read_user(&lo, 8, (void *)(g + L->g_stack_lo));
  bpf_probe_read_user(&hi, 8, (void *)(g + L->g_stack_hi));
  if (buf >= lo && buf < hi) {
    gc.buf = hi - buf;
    gc.on_stack = 1;
  }
  struct go_call_key k = { .tgid = tgid, .g = g };
  bpf_map_update_elem(&go_calls, &k, &gc, BPF_ANY);
  return 0;
}

SEC("uprobe")
int go_tls_read_enter(struct pt_regs *ctx) { return go_tls_enter(ctx, RETAP_DIR_IN); }
SEC("uprobe")
int go_tls_write_enter(struct pt_regs *ctx) { return go_tls_enter(ctx, RETAP_DIR_OUT); }

/* At a return instruction of Read: n (Go int, all of rax) bytes of b are the plaintext. */
SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx)
{
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  struct go_call_key k = { .tgid = tgid, .g = ctx->r14 };
  struct go_call *p = bpf_map_lookup_elem(&go_calls, &k);
  if (!p)
    return 0;
  struct go_call a = *p;
  bpf_map_delete_elem(&go_calls, &k);
  __s64 n = (__s64)ctx->ax;
  if (paused || n <= 0)
    return 0;
  __u64 buf = a.buf;
  if (a.on_stack) {
    struct retap_go_layout *L = go_layout(ctx);
    __u64 hi = 0;
    if (!L || bpf_probe_read_user(&hi, 8, (void *)(k.g + L->g_stack_hi)) != 0)
      return 0;
    buf = hi - a.buf;
  }
  /* a bound call whose state is gone: another goroutine closed the socket meanwhile; its stream
   * has ended, so these bytes are counted as lost rather than starting a stream of their own */
  struct ssl_state *s = go_state(tgid, a.conn, !a.bound);
  if (!s) {
    count(RETAP_C_GO_LATE, 1);
    return 0;
  }
  go_emit(tgid, (__u32)id, a.conn, s, RETAP_DIR_IN, buf, n);
  return 0;
}
#else
/* Go TLS probes read amd64 registers; user space does not attach them elsewhere. */
SEC("uprobe")
int go_tls_read_enter(struct pt_regs *ctx) { return 0; }
SEC("uprobe")
int go_tls_write_enter(struct pt_regs *ctx) { return 0; }
SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx) { return 0; }
#endif
