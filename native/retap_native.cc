// Node-API addon: loads the retap BPF programs (embedded skeleton), attaches them, polls the ring
// buffer on a dedicated thread and hands JS one Buffer per batch of records.
//
// Life cycle: open -> configure -> load -> attach -> poll, with one cleanup path (Capture::Close)
// used by stop(), errors in open(), and the destructor.

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <map>
#include <thread>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <csignal>
#include <fcntl.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "retap.h"
#include "retap.skel.h"

namespace {

// libbpf's own messages (verifier logs included) land here, so errors can quote their tail.
std::mutex g_log_mu;
std::string g_log;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  static const bool verbose = getenv("RETAP_LIBBPF_DEBUG") != nullptr;
  if (verbose) {
    va_list copy;
    va_copy(copy, args);
    vfprintf(stderr, fmt, copy);
    va_end(copy);
  }
  if (level == LIBBPF_DEBUG) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof(line), fmt, args);
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.append(line, n > 0 ? std::min<size_t>(n, sizeof(line) - 1) : 0);
  if (g_log.size() > 16384) g_log.erase(0, g_log.size() - 16384);
  return 0;
}

std::string TakeLog() {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::string out;
  out.swap(g_log);
  if (out.size() > 3000) out = "..." + out.substr(out.size() - 3000);
  return out;
}

std::string ErrnoText(int err) {
  if (err < 0) err = -err;
  return std::string(strerror(err)) + " (errno " + std::to_string(err) + ")";
}

std::string FixFor(int err) {
  if (err < 0) err = -err;
  if (err == EPERM || err == EACCES)
    return " Fix: run as root (or with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); check with `retap doctor`.";
  if (err == ENOENT)
    return " Fix: mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) and check the kernel has the "
           "syscall tracepoints; `retap doctor` lists what is missing.";
  if (err == ENOMEM || err == E2BIG)
    return " Fix: lower the ring buffer size or raise RLIMIT_MEMLOCK.";
  return " Run `retap doctor` for a check of this machine.";
}

[[noreturn]] void Fail(Napi::Env env, const std::string& what, int err) {
  std::string msg = what + ": " + ErrnoText(err) + "." + FixFor(err);
  std::string log = TakeLog();
  if (!log.empty()) msg += "\nlibbpf said:\n" + log;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err < 0 ? -err : err));
  e.Set("code", Napi::String::New(env, "RETAP_CAPTURE_UNAVAILABLE"));
  throw e;
}

// Records on their way to JS. A plain growable byte array: std::vector's resize would zero every
// byte before the record is copied over it, and the poller copies about 100 MB/s at full load.
struct Batch {
  uint8_t* data = nullptr;
  size_t size = 0;
  size_t cap = 0;
  Batch() = default;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  ~Batch() { std::free(data); }
  bool empty() const { return size == 0; }
  // Room for n more bytes; returns where they go (the caller fills them), or nullptr without memory.
  uint8_t* Grow(size_t n) {
    if (size + n > cap) {
      size_t next = std::max<size_t>({cap * 2, size + n, 64u << 10});
      auto* p = static_cast<uint8_t*>(std::realloc(data, next));
      if (!p) return nullptr;
      data = p;
      cap = next;
    }
    uint8_t* at = data + size;
    size += n;
    return at;
  }
};

// State shared with callbacks that may run after the Capture object is gone. At most one batch
// waits for JS at a time: while it waits, newer records are appended to it (bounded in bytes), so a
// busy JS thread costs memory, not records, and JS pays its per-call cost once per poll at most.
struct Shared {
  std::mutex mu;
  Batch* waiting = nullptr;  // guarded by mu
  std::atomic<uint64_t> user_drops{0};
  std::atomic<uint64_t> batches{0};
  Napi::FunctionReference drained;
  ~Shared() { delete waiting; }
};

// The reading side of the BPF ring buffer, mapped once. libbpf's reader maps the data area twice
// in a row, so that a record crossing the end reads as one piece; every page of both mappings is
// resident from mmap on (the kernel inserts them all), so a 64 MiB ring costs 128 MiB of RSS.
// Here a record that crosses the end is copied in two parts instead, and the ring costs its size.
class RingReader {
 public:
  // Returns 0 or a negative errno.
  int Open(int map_fd, size_t data_size) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = data_size;
    mask_ = data_size - 1;
    void* c = mmap(nullptr, page_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
    if (c == MAP_FAILED) return -errno;
    consumer_ = static_cast<unsigned long*>(c);
    // producer position page + the data area once (the kernel's mmap handler takes any length up
    // to the double mapping)
    void* p = mmap(nullptr, page_ + size_, PROT_READ, MAP_SHARED, map_fd, static_cast<off_t>(page_));
    if (p == MAP_FAILED) {
      int e = -errno;
      Close();
      return e;
    }
    producer_ = static_cast<unsigned long*>(p);
    data_ = static_cast<uint8_t*>(p) + page_;
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_ < 0) {
      int e = -errno;
      Close();
      return e;
    }
    epoll_event ev = {};
    ev.events = EPOLLIN;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, map_fd, &ev) < 0) {
      int e = -errno;
      Close();
      return e;
    }
    return 0;
  }

  // Waits up to `ms` for the kernel's wakeup; < 0 on an error other than EINTR.
  int Wait(int ms) {
    epoll_event ev;
    int n = epoll_wait(epoll_, &ev, 1, ms);
    return n < 0 && errno != EINTR ? -errno : 0;
  }

  // Hands every committed record to `fn(head, head_len, tail, tail_len)` (tail: the part that
  // wrapped to the start of the area, or empty) and gives the space back to the kernel.
  template <typename Fn>
  void Consume(Fn&& fn) {
    unsigned long cons = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    for (;;) {
      unsigned long prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
      if (cons >= prod) return;
      while (cons < prod) {
        // headers are 8-byte aligned in an area whose size is a multiple of 8: never split
        auto* hdr = reinterpret_cast<uint32_t*>(data_ + (cons & mask_));
        uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        if (len & BPF_RINGBUF_BUSY_BIT) return;  // reserved, not committed yet
        uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
        if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
          size_t at = (cons + BPF_RINGBUF_HDR_SZ) & mask_;
          size_t first = std::min<size_t>(size, size_ - at);
          fn(data_ + at, first, data_, size - first);
        }
        cons += (static_cast<unsigned long>(size) + BPF_RINGBUF_HDR_SZ + 7) & ~7ul;
        __atomic_store_n(consumer_, cons, __ATOMIC_RELEASE);
      }
    }
  }

  void Close() {
    if (epoll_ >= 0) close(epoll_);
    if (producer_) munmap(producer_, page_ + size_);
    if (consumer_) munmap(consumer_, page_);
    epoll_ = -1;
    producer_ = nullptr;
    consumer_ = nullptr;
    data_ = nullptr;
  }

 private:
  size_t page_ = 0, size_ = 0, mask_ = 0;
  unsigned long* consumer_ = nullptr;
  unsigned long* producer_ = nullptr;
  uint8_t* data_ = nullptr;
  int epoll_ = -1;
};

constexpr size_t kBatchFlushBytes = 4 << 20;

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Capture",
                       {
                           InstanceMethod("addTarget", &Capture::AddTarget),
                           InstanceMethod("removeTarget", &Capture::RemoveTarget),
                           InstanceMethod("attachTls", &Capture::AttachTls),
                           InstanceMethod("attachTlsSites", &Capture::AttachTlsSites),
                           InstanceMethod("attachGoTls", &Capture::AttachGoTls),
                           InstanceMethod("attachLoopSites", &Capture::AttachLoopSites),
                           InstanceMethod("detachPid", &Capture::DetachPid),
                           InstanceMethod("setTlsPerProcess", &Capture::SetTlsPerProcess),
                           InstanceMethod("releaseExec", &Capture::ReleaseExec),
                           InstanceMethod("heldProcesses", &Capture::HeldProcesses),
                           InstanceMethod("counters", &Capture::Counters),
                           InstanceMethod("stop", &Capture::Stop),
                       });
  }

  explicit Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "open(config): config object required");
    Napi::Object cfg = info[0].As<Napi::Object>();
    Napi::Value onBatch = cfg.Get("onBatch");
    if (!onBatch.IsFunction()) throw Napi::TypeError::New(env, "open(config): config.onBatch must be a function");
    uint32_t self_tgid = cfg.Has("selfTgid") ? cfg.Get("selfTgid").As<Napi::Number>().Uint32Value() : getpid();
    uint64_t ring = cfg.Has("ringBufferBytes") ? cfg.Get("ringBufferBytes").As<Napi::Number>().Int64Value() : (16 << 20);
    uint32_t cap = cfg.Has("perCallCapBytes") ? cfg.Get("perCallCapBytes").As<Napi::Number>().Uint32Value() : (1 << 20);
    bool all = cfg.Has("captureAll") && cfg.Get("captureAll").ToBoolean().Value();
    bool hold = cfg.Has("holdExec") && cfg.Get("holdExec").ToBoolean().Value();
    bool per_process = cfg.Has("tlsPerProcess") && cfg.Get("tlsPerProcess").ToBoolean().Value();
    max_pending_bytes_ = cfg.Has("maxPendingBytes") ? static_cast<size_t>(cfg.Get("maxPendingBytes").As<Napi::Number>().Int64Value()) : (128u << 20);
    poll_ms_ = cfg.Has("pollMs") ? cfg.Get("pollMs").As<Napi::Number>().Int32Value() : 2;
    uint64_t wakeup = cfg.Has("wakeupBytes") ? cfg.Get("wakeupBytes").As<Napi::Number>().Int64Value() : (256 << 10);
    if (ring < 4096 || (ring & (ring - 1)) != 0)
      throw Napi::RangeError::New(env, "ringBufferBytes must be a power of two of at least 4096");

    libbpf_set_print(LibbpfPrint);
    TakeLog();

    // open -> configure -> load -> attach
    skel_ = retap_bpf__open();
    if (!skel_) Fail(env, "opening the BPF object failed", errno);
    skel_->rodata->self_tgid = self_tgid;
    skel_->rodata->capture_all = all ? 1 : 0;
    skel_->rodata->per_call_cap = cap;
    skel_->rodata->wakeup_bytes = wakeup;
    skel_->rodata->hold_exec = hold ? 1 : 0;
    int err = bpf_map__set_max_entries(skel_->maps.events, static_cast<uint32_t>(ring));
    if (err) Close(), Fail(env, "sizing the ring buffer failed", err);
    // A signal (a profiler's SIGPROF, a busy machine) can interrupt verification with EAGAIN: retry.
    for (int attempt = 0; attempt < 5; attempt++) {
      err = retap_bpf__load(skel_);
      if (err != -EAGAIN) break;
      TakeLog();
    }
    if (err) Close(), Fail(env, "loading the BPF programs failed", err);
    // Targets go in before the programs attach: a port filter set afterwards would leave a window
    // in which `captureAll` lets every connection on the machine through.
    SeedTargets(env, cfg, "ports", skel_->maps.target_ports, 2);
    SeedTargets(env, cfg, "tgids", skel_->maps.target_tgids, 4);
    SeedTargets(env, cfg, "cgroups", skel_->maps.target_cgroups, 8);
    skel_->bss->tls_per_process = per_process ? 1 : 0;
    err = retap_bpf__attach(skel_);
    if (err) Close(), Fail(env, "attaching the syscall tracepoints failed", err);

    rb_ = new RingReader();
    err = rb_->Open(bpf_map__fd(skel_->maps.events), bpf_map__max_entries(skel_->maps.events));
    if (err) {
      Close();
      Fail(env, "mapping the ring buffer failed", err);
    }

    if (cfg.Get("onDrained").IsFunction()) shared_->drained = Napi::Persistent(cfg.Get("onDrained").As<Napi::Function>());
    std::shared_ptr<Shared> shared = shared_;
    tsfn_ = Napi::ThreadSafeFunction::New(env, onBatch.As<Napi::Function>(), "retap-capture", 0, 1,
                                          [shared](Napi::Env) {
                                            if (!shared->drained.IsEmpty()) shared->drained.Call({});
                                            shared->drained.Reset();
                                          });
    running_ = true;
    poller_ = std::thread([this] { Poll(); });
  }

  ~Capture() override {
    StopThread();
    ContinueHeld();
    Close();
  }

 private:
  // One record, in one or two parts (a record that wrapped around the end of the ring).
  void OnRecord(const uint8_t* head, size_t head_len, const uint8_t* tail, size_t tail_len) {
    if (!batch_) batch_ = new Batch();
    size_t size = head_len + tail_len;
    uint32_t len = static_cast<uint32_t>(size);
    size_t padded = (size + 7) & ~size_t(7);
    uint8_t* at = batch_->Grow(8 + padded);
    if (!at) {
      shared_->user_drops++;  // out of memory: the record is lost, and counted
      return;
    }
    std::memcpy(at, &len, 4);
    std::memset(at + 4, 0, 4);
    std::memcpy(at + 8, head, head_len);
    if (tail_len) std::memcpy(at + 8 + head_len, tail, tail_len);
    if (padded > size) std::memset(at + 8 + size, 0, padded - size);
    if (batch_->size >= kBatchFlushBytes) Flush();
  }

  // step: hand the poller's records to JS: append to the batch already waiting for JS, or make it
  // the waiting batch and ask JS to take it; past the byte bound, drop and count
  void Flush() {
    Batch* b = batch_;
    batch_ = nullptr;
    if (!b || b->empty()) {
      delete b;
      return;
    }
    Shared* sh = shared_.get();
    bool call = false;
    {
      std::lock_guard<std::mutex> lock(sh->mu);
      if (sh->waiting) {
        uint8_t* at = sh->waiting->size + b->size > max_pending_bytes_ ? nullptr : sh->waiting->Grow(b->size);
        if (!at)
          sh->user_drops++;
        else
          std::memcpy(at, b->data, b->size);
        delete b;
      } else {
        sh->waiting = b;
        call = true;
      }
    }
    if (!call) return;
    std::shared_ptr<Shared> keep = shared_;
    napi_status st = tsfn_.NonBlockingCall([keep](Napi::Env env, Napi::Function fn) {
      Batch* batch;
      {
        std::lock_guard<std::mutex> lock(keep->mu);
        batch = keep->waiting;
        keep->waiting = nullptr;
      }
      if (!batch) return;
      keep->batches++;
      size_t n = batch->size;
      uint8_t* ptr = batch->data;
      auto buf = Napi::Buffer<uint8_t>::New(env, ptr, n, [](Napi::Env, uint8_t*, Batch* owned) { delete owned; }, batch);
      fn.Call({buf});
    });
    if (st != napi_ok) {
      std::lock_guard<std::mutex> lock(sh->mu);
      if (sh->waiting) {
        sh->user_drops++;
        delete sh->waiting;
        sh->waiting = nullptr;
      }
    }
  }

  // Records come without wakeups (see submit() in retap.bpf.c) until data piles up, so the poller
  // also wakes on its own every poll_ms and consumes what is there.
  void Poll() {
    pthread_setname_np(pthread_self(), "retap-poll");
    auto record = [this](const uint8_t* h, size_t hl, const uint8_t* t, size_t tl) { OnRecord(h, hl, t, tl); };
    while (running_.load()) {
      if (rb_->Wait(poll_ms_) < 0) break;
      rb_->Consume(record);
      Flush();
    }
    rb_->Consume(record);
    Flush();
  }

  void StopThread() {
    if (poller_.joinable()) {
      running_ = false;
      poller_.join();
      tsfn_.Release();
    }
  }

  // The one cleanup path: links, ring buffer and skeleton leave the object at once, and are freed
  // here or, when `background` (detaching costs the kernel seconds), on a thread of their own.
  void Close(bool background = false) {
    std::vector<bpf_link*> links;
    for (auto& [pid, group] : links_) links.insert(links.end(), group.begin(), group.end());
    links_.clear();
    RingReader* rb = rb_;
    retap_bpf* skel = skel_;
    rb_ = nullptr;
    skel_ = nullptr;
    auto free_all = [links, rb, skel] {
      for (auto* l : links) bpf_link__destroy(l);
      if (rb) {
        rb->Close();
        delete rb;
      }
      if (skel) retap_bpf__destroy(skel);
    };
    if (background)
      std::thread(free_all).detach();
    else
      free_all();
  }

  // Initial targets from the open() config (an array of numbers or BigInts), before attach.
  void SeedTargets(Napi::Env env, Napi::Object cfg, const char* name, bpf_map* map, size_t key_size) {
    if (!cfg.Has(name) || !cfg.Get(name).IsArray()) return;
    Napi::Array list = cfg.Get(name).As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      uint64_t key;
      if (v.IsBigInt()) {
        bool lossless;
        key = v.As<Napi::BigInt>().Uint64Value(&lossless);
      } else {
        key = static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
      }
      uint8_t one = 1, present = 0;
      bool existed = bpf_map__lookup_elem(map, &key, key_size, &present, 1, 0) == 0;
      int err = bpf_map__update_elem(map, &key, key_size, &one, 1, BPF_ANY);
      if (err) Close(), Fail(env, "adding a capture target failed", err);
      if (!existed && map == skel_->maps.target_ports) UpdatePortCount(1);
    }
  }

  void CheckOpen(Napi::Env env) {
    if (!skel_) throw Napi::Error::New(env, "capture is stopped");
  }

  struct Target {
    bpf_map* map;
    uint64_t key;
    size_t key_size;
  };

  Target TargetOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "expected (kind, value)");
    std::string kind = info[0].As<Napi::String>();
    uint64_t v;
    if (info[1].IsBigInt()) {
      bool lossless;
      v = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
    } else {
      v = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    }
    if (kind == "tgid") return {skel_->maps.target_tgids, v, 4};
    if (kind == "cgroup") return {skel_->maps.target_cgroups, v, 8};
    if (kind == "port") return {skel_->maps.target_ports, v, 2};
    throw Napi::TypeError::New(env, "target kind must be tgid, cgroup or port");
  }

  void UpdatePortCount(int delta) {
    uint32_t zero = 0, n = 0;
    int fd = bpf_map__fd(skel_->maps.port_count);
    bpf_map_lookup_elem(fd, &zero, &n);
    n = static_cast<uint32_t>(std::max<int64_t>(0, static_cast<int64_t>(n) + delta));
    bpf_map_update_elem(fd, &zero, &n, BPF_ANY);
  }

  Napi::Value AddTarget(const Napi::CallbackInfo& info) {
    Target t = TargetOf(info);
    uint8_t one = 1;
    uint8_t present = 0;
    bool existed = bpf_map__lookup_elem(t.map, &t.key, t.key_size, &present, 1, 0) == 0;
    int err = bpf_map__update_elem(t.map, &t.key, t.key_size, &one, 1, BPF_ANY);
    if (err) Fail(info.Env(), "adding a capture target failed", err);
    if (!existed && t.map == skel_->maps.target_ports) UpdatePortCount(1);
    return info.Env().Undefined();
  }

  Napi::Value RemoveTarget(const Napi::CallbackInfo& info) {
    Target t = TargetOf(info);
    int err = bpf_map__delete_elem(t.map, &t.key, t.key_size, 0);
    if (!err && t.map == skel_->maps.target_ports) UpdatePortCount(-1);
    return info.Env().Undefined();
  }

  // The pid a probe is attached for: one process (the kernel then puts the breakpoints into that
  // process's memory only, so no other process traps), or -1 for every process mapping the file.
  static int PidArg(const Napi::CallbackInfo& info, size_t i) {
    if (info.Length() <= i || info[i].IsUndefined()) return -1;
    if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "pid must be a number (-1: every process)");
    int pid = info[i].As<Napi::Number>().Int32Value();
    return pid > 0 ? pid : -1;
  }

  // Bit 32 of an entry probe's cookie: attached for one process (bpf/retap.bpf.c link_live).
  static uint64_t PidCookie(int pid) { return pid > 0 ? 1ULL << 32 : 0; }

  // One uprobe of an all-or-nothing group: when it cannot be attached, the group's links made so
  // far are destroyed and the error says what was attached where.
  void AttachOne(Napi::Env env, bpf_program* prog, int pid, const std::string& path, uint64_t offset,
                 const bpf_uprobe_opts* opts, std::vector<bpf_link*>& made, const char* what) {
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), offset, opts);
    if (!link) {
      int err = errno;
      for (auto* m : made) bpf_link__destroy(m);
      char where[32];
      snprintf(where, sizeof(where), "0x%llx", static_cast<unsigned long long>(offset));
      Fail(env, std::string("attaching ") + what + " to " + path + " at offset " + where + " failed", err);
    }
    made.push_back(link);
  }

  // A group attached whole: kept with the process's links (detached with them); how many.
  Napi::Value KeepGroup(Napi::Env env, int pid, const std::vector<bpf_link*>& made) {
    auto& group = links_[pid];
    group.insert(group.end(), made.begin(), made.end());
    TakeLog();
    return Napi::Number::New(env, static_cast<double>(made.size()));
  }

  // SSL_read/SSL_write(_ex) entry probes plus one shared return probe each.
  Napi::Value AttachTls(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "attachTls(path, pid?)");
    std::string path = info[0].As<Napi::String>();
    int pid = PidArg(info, 1);
    struct Probe {
      const char* fn;
      bpf_program* entry;
    } probes[] = {
        {"SSL_read", skel_->progs.ssl_read_enter},
        {"SSL_write", skel_->progs.ssl_write_enter},
        {"SSL_read_ex", skel_->progs.ssl_read_ex_enter},
        {"SSL_write_ex", skel_->progs.ssl_write_ex_enter},
    };
    int attached = 0;
    int last_err = 0;
    for (auto& p : probes) {
      LIBBPF_OPTS(bpf_uprobe_opts, in_opts);
      in_opts.func_name = p.fn;
      in_opts.bpf_cookie = PidCookie(pid);
      bpf_link* in = bpf_program__attach_uprobe_opts(p.entry, pid, path.c_str(), 0, &in_opts);
      if (!in) {
        last_err = errno;
        continue;
      }
      LIBBPF_OPTS(bpf_uprobe_opts, out_opts);
      out_opts.func_name = p.fn;
      out_opts.retprobe = true;
      bpf_link* out = bpf_program__attach_uprobe_opts(skel_->progs.ssl_exit_probe, pid, path.c_str(), 0, &out_opts);
      if (!out) {
        last_err = errno;
        bpf_link__destroy(in);
        continue;
      }
      auto& group = links_[pid];
      group.push_back(in);
      group.push_back(out);
      attached += 2;
    }
    if (attached == 0) Fail(env, "attaching TLS uprobes to " + path + " failed (no SSL_read/SSL_write symbol?)", last_err ? last_err : ENOENT);
    TakeLog();
    return Napi::Number::New(env, attached);
  }

  // SSL probes at file offsets user space planned (capture/openssl.ts): [{ offset, kind, cookie }],
  // kind 'enter' (an entry program chosen by the cookie's RETAP_SSL_OUT / RETAP_SSL_EX bits) or
  // 'return' (the return probe; its offset is where the stack pointer is still the caller's).
  // All or nothing: on failure this call's probes are detached and the error names the offset.
  Napi::Value AttachTlsSites(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
      throw Napi::TypeError::New(env, "attachTlsSites(path, [{ offset, kind, cookie }], pid?)");
    std::string path = info[0].As<Napi::String>();
    Napi::Array list = info[1].As<Napi::Array>();
    int pid = PidArg(info, 2);
    std::vector<bpf_link*> made;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Object site = list.Get(i).As<Napi::Object>();
      uint64_t offset = static_cast<uint64_t>(site.Get("offset").As<Napi::Number>().Int64Value());
      std::string kind = site.Get("kind").As<Napi::String>();
      uint32_t cookie = site.Get("cookie").As<Napi::Number>().Uint32Value();
      bool out = cookie & RETAP_SSL_OUT, ex = cookie & RETAP_SSL_EX;
      LIBBPF_OPTS(bpf_uprobe_opts, opts);
      bpf_program* prog;
      if (kind == "enter") {
        prog = out ? (ex ? skel_->progs.ssl_write_ex_enter : skel_->progs.ssl_write_enter)
                   : (ex ? skel_->progs.ssl_read_ex_enter : skel_->progs.ssl_read_enter);
        opts.bpf_cookie = cookie | PidCookie(pid);
      } else if (kind == "return") {
        prog = skel_->progs.ssl_exit_probe;
        opts.retprobe = true;
      } else {
        for (auto* m : made) bpf_link__destroy(m);
        throw Napi::TypeError::New(env, "attachTlsSites: kind must be enter or return");
      }
      AttachOne(env, prog, pid, path, offset, &opts, made, "a TLS uprobe");
    }
    return KeepGroup(env, pid, made);
  }

  static uint32_t U32(Napi::Object o, const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("attachGoTls: ") + key + " must be a number");
    return v.As<Napi::Number>().Uint32Value();
  }

  static std::vector<uint64_t> Offsets(Napi::Object o, const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("attachGoTls: ") + key + " must be an array");
    Napi::Array a = v.As<Napi::Array>();
    std::vector<uint64_t> out;
    for (uint32_t i = 0; i < a.Length(); i++) out.push_back(static_cast<uint64_t>(a.Get(i).As<Napi::Number>().Int64Value()));
    return out;
  }

  // The index of a Go struct layout in go_layouts (equal layouts share one), for the attach cookie.
  uint32_t GoLayoutIndex(Napi::Env env, const retap_go_layout& l) {
    for (size_t i = 0; i < go_layouts_.size(); i++)
      if (std::memcmp(&go_layouts_[i], &l, sizeof(l)) == 0) return static_cast<uint32_t>(i);
    if (go_layouts_.size() >= RETAP_GO_LAYOUTS) throw Napi::Error::New(env, "too many distinct Go struct layouts in one capture");
    uint32_t i = static_cast<uint32_t>(go_layouts_.size());
    int err = bpf_map__update_elem(skel_->maps.go_layouts, &i, sizeof(i), &l, sizeof(l), BPF_ANY);
    if (err) Fail(env, "storing a Go struct layout failed", err);
    go_layouts_.push_back(l);
    return i;
  }

  // Go crypto/tls probes at file offsets user space computed: the entries of (*Conn).Read and
  // (*Conn).Write and every return instruction of Read. All or nothing: on failure the probes of
  // this call are detached and the error names the offset.
  Napi::Value AttachGoTls(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "attachGoTls(path, { layout, readEntry, writeEntry, readReturns }, pid?)");
    std::string path = info[0].As<Napi::String>();
    int pid = PidArg(info, 2);
    Napi::Object spec = info[1].As<Napi::Object>();
    if (!spec.Get("layout").IsObject()) throw Napi::TypeError::New(env, "attachGoTls: layout must be an object");
    Napi::Object lo = spec.Get("layout").As<Napi::Object>();
    retap_go_layout l = {};
    l.tls_conn = U32(lo, "tlsConn");
    l.tcp_conn_fd = U32(lo, "tcpConnFd");
    l.netfd_sysfd = U32(lo, "netFdSysfd");
    l.netfd_family = U32(lo, "netFdFamily");
    l.netfd_sotype = U32(lo, "netFdSotype");
    l.g_stack_lo = U32(lo, "gStackLo");
    l.g_stack_hi = U32(lo, "gStackHi");
    uint32_t index = GoLayoutIndex(env, l);
    struct Site {
      bpf_program* prog;
      uint64_t offset;
    };
    std::vector<Site> sites;
    for (uint64_t off : Offsets(spec, "readEntry")) sites.push_back({skel_->progs.go_tls_read_enter, off});
    for (uint64_t off : Offsets(spec, "writeEntry")) sites.push_back({skel_->progs.go_tls_write_enter, off});
    for (uint64_t off : Offsets(spec, "readReturns")) sites.push_back({skel_->progs.go_tls_ret, off});
    std::vector<bpf_link*> made;
    for (const Site& site : sites) {
      LIBBPF_OPTS(bpf_uprobe_opts, opts);
      opts.bpf_cookie = index | PidCookie(pid);
      AttachOne(env, site.prog, pid, path, site.offset, &opts, made, "a Go TLS uprobe");
    }
    return KeepGroup(env, pid, made);
  }

  // node event-loop probes at file offsets user space found (capture/causal/node-loop.ts):
  // [{ offset, kind }] with kind an enum retap_loop_kind. All or nothing, as attachTlsSites.
  Napi::Value AttachLoopSites(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
      throw Napi::TypeError::New(env, "attachLoopSites(path, [{ offset, kind }], pid?)");
    std::string path = info[0].As<Napi::String>();
    Napi::Array list = info[1].As<Napi::Array>();
    int pid = PidArg(info, 2);
    std::vector<bpf_link*> made;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Object site = list.Get(i).As<Napi::Object>();
      uint64_t offset = static_cast<uint64_t>(site.Get("offset").As<Napi::Number>().Int64Value());
      uint32_t kind = site.Get("kind").As<Napi::Number>().Uint32Value();
      if (kind > RETAP_LOOP_REQ_START1) {
        for (auto* m : made) bpf_link__destroy(m);
        throw Napi::TypeError::New(env, "attachLoopSites: kind must be 0 to 3 (enum retap_loop_kind)");
      }
      LIBBPF_OPTS(bpf_uprobe_opts, opts);
      opts.bpf_cookie = kind | PidCookie(pid);
      AttachOne(env, skel_->progs.node_loop, pid, path, offset, &opts, made, "an event-loop uprobe");
    }
    return KeepGroup(env, pid, made);
  }

  // Detach every probe attached for one process (it exited, or probes for every process replace
  // them), on a thread of its own: a detach costs the kernel milliseconds to seconds.
  Napi::Value DetachPid(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "detachPid(pid)");
    int pid = info[0].As<Napi::Number>().Int32Value();
    auto it = links_.find(pid);
    if (pid <= 0 || it == links_.end()) return Napi::Number::New(env, 0);
    std::vector<bpf_link*> links;
    links.swap(it->second);
    links_.erase(it);
    size_t n = links.size();
    std::thread([links] {
      for (auto* l : links) bpf_link__destroy(l);
    }).detach();
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // TLS probes attached per process: every new target process is reported (and held, when the
  // session holds at exec), since each one needs probes of its own.
  Napi::Value SetTlsPerProcess(const Napi::CallbackInfo& info) {
    if (skel_ && info.Length() >= 1) skel_->bss->tls_per_process = info[0].ToBoolean() ? 1 : 0;
    return info.Env().Undefined();
  }

  // A process held at exec: its executable has been looked at (remember it, so the next exec of
  // the same file runs on), and it may run now.
  Napi::Value ReleaseExec(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "releaseExec(tgid, dev?, ino?)");
    uint32_t tgid = info[0].As<Napi::Number>().Uint32Value();
    if (skel_ && info.Length() >= 3) {
      bool lossless;
      struct {
        uint64_t dev, ino;
      } key = {info[1].As<Napi::BigInt>().Uint64Value(&lossless), info[2].As<Napi::BigInt>().Uint64Value(&lossless)};
      uint8_t one = 1;
      bpf_map__update_elem(skel_->maps.exe_seen, &key, sizeof(key), &one, 1, BPF_ANY);
    }
    bool was_held = true;
    if (skel_) was_held = bpf_map__delete_elem(skel_->maps.held, &tgid, sizeof(tgid), 0) == 0;
    if (was_held) kill(static_cast<pid_t>(tgid), SIGCONT);
    return Napi::Boolean::New(env, was_held);
  }

  // Processes the kernel side stopped at exec and nobody has continued yet: [[tgid, sinceNs], …].
  Napi::Value HeldProcesses(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (!skel_) return out;
    int fd = bpf_map__fd(skel_->maps.held);
    uint32_t key, next;
    uint32_t* prev = nullptr;
    uint32_t n = 0;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      uint64_t ts = 0;
      if (bpf_map_lookup_elem(fd, &next, &ts) == 0) {
        Napi::Array pair = Napi::Array::New(env, 2);
        pair.Set(0u, Napi::Number::New(env, next));
        pair.Set(1u, Napi::Number::New(env, static_cast<double>(ts)));
        out.Set(n++, pair);
      }
      key = next;
      prev = &key;
    }
    return out;
  }

  // Continues every process still held at exec (stop, errors, teardown: nobody is left stopped).
  void ContinueHeld() {
    if (!skel_) return;
    int fd = bpf_map__fd(skel_->maps.held);
    uint32_t key;
    while (bpf_map_get_next_key(fd, nullptr, &key) == 0) {
      kill(static_cast<pid_t>(key), SIGCONT);
      if (bpf_map_delete_elem(fd, &key) != 0) break;
    }
  }

  // Sums the per-CPU kernel counters into last_ (kept after stop for a final read).
  void ReadCounters() {
    if (!skel_) return;
    int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> vals(ncpu > 0 ? ncpu : 1);
    int fd = bpf_map__fd(skel_->maps.counters);
    for (uint32_t k = 0; k < RETAP_C_MAX; k++) {
      uint64_t sum = 0;
      if (bpf_map_lookup_elem(fd, &k, vals.data()) == 0)
        for (auto v : vals) sum += v;
      last_[k] = sum;
    }
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    ReadCounters();
    const uint64_t* sums = last_;
    out.Set("events", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_EVENTS])));
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_BYTES])));
    out.Set("ringbufDrops", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_RB_DROPS])));
    out.Set("truncations", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_TRUNCATIONS])));
    out.Set("sendfileCalls", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_SENDFILE])));
    out.Set("mmsgCalls", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_MMSG])));
    out.Set("connections", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_CONNS])));
    out.Set("tlsCalls", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_TLS_CALLS])));
    out.Set("iovTruncations", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_IOV_TRUNC])));
    out.Set("goTlsCalls", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_GO_TLS_CALLS])));
    out.Set("goTlsNoSocket", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_GO_NO_FD])));
    out.Set("heldAtExec", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_HELD])));
    out.Set("goTlsLateReads", Napi::Number::New(env, static_cast<double>(sums[RETAP_C_GO_LATE])));
    out.Set("userDrops", Napi::Number::New(env, static_cast<double>(shared_->user_drops.load())));
    out.Set("batches", Napi::Number::New(env, static_cast<double>(shared_->batches.load())));
    return out;
  }

  // Pause the hooks (a flag in .bss the programs check first), drain the ring buffer and hand the
  // last batch to JS now; detaching costs the kernel seconds, so it happens on a thread of its own.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (skel_) {
      skel_->bss->paused = 1;
      StopThread();
      ReadCounters();
      ContinueHeld();
      Close(/*background=*/true);
    }
    return info.Env().Undefined();
  }

  retap_bpf* skel_ = nullptr;
  RingReader* rb_ = nullptr;
  std::map<int, std::vector<bpf_link*>> links_;  // by the pid attached for (-1: every process)
  std::vector<retap_go_layout> go_layouts_;
  std::thread poller_;
  std::atomic<bool> running_{false};
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  Batch* batch_ = nullptr;  // touched only by the poller thread
  size_t max_pending_bytes_ = 128u << 20;
  int poll_ms_ = 2;
  uint64_t last_[RETAP_C_MAX] = {};
};

Napi::Object Layout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("chunk", RETAP_CHUNK);
  o.Set("dataHeader", RETAP_DATA_HDR);
  o.Set("dataHeaderCheck", static_cast<double>(offsetof(struct retap_data, data)));
  o.Set("openSize", static_cast<double>(sizeof(struct retap_open)));
  o.Set("closeSize", static_cast<double>(sizeof(struct retap_close)));
  o.Set("tlsBindSize", static_cast<double>(sizeof(struct retap_tls_bind)));
  o.Set("procSize", static_cast<double>(sizeof(struct retap_proc)));
  o.Set("loopSize", static_cast<double>(sizeof(struct retap_loop)));
  o.Set("maxIov", RETAP_MAX_IOV);
  o.Set("goLayoutSize", static_cast<double>(sizeof(struct retap_go_layout)));
  return o;
}

// execNode(file, args): replaces this process with `file args…` (same pid, fds, environment).
// Node 20 has no exec; a recorder uses it to start again under the V8 flags that suit it (see
// bin/retap.js). Returns only on failure, with the errno.
Napi::Value ExecNode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "execNode(file, args[])");
  std::string file = info[0].As<Napi::String>();
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<std::string> args{file};
  for (uint32_t i = 0; i < list.Length(); i++) args.push_back(list.Get(i).As<Napi::String>());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // node marks its stdio close-on-exec at start: the new image must keep them
  for (int fd = 0; fd <= 2; fd++) {
    int f = fcntl(fd, F_GETFD);
    if (f >= 0 && (f & FD_CLOEXEC)) fcntl(fd, F_SETFD, f & ~FD_CLOEXEC);
  }
  execv(file.c_str(), argv.data());
  return Napi::Number::New(env, errno);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Capture::Define(env);
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));
  env.SetInstanceData(ref);
  exports.Set("open", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto* r = info.Env().GetInstanceData<Napi::FunctionReference>();
                return r->New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
              }));
  exports.Set("execNode", Napi::Function::New(env, ExecNode));
  exports.Set("layout", Layout(env));
  exports.Set("version", Napi::String::New(env, "1"));
  return exports;
}

}  // namespace

NODE_API_MODULE(retap_native, Init)
