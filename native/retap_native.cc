// Node-API addon: loads the retap BPF programs (embedded skeleton), attaches them, polls the ring
// buffer on a dedicated thread and hands JS one Buffer per batch of records.
//
// Life cycle: open -> configure -> load -> attach -> poll, with one cleanup path (Capture::Close)
// used by stop(), errors in open(), and the destructor.

#include <napi.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
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

struct Batch {
  std::vector<uint8_t> bytes;
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

constexpr size_t kBatchFlushBytes = 4 << 20;

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Capture",
                       {
                           InstanceMethod("addTarget", &Capture::AddTarget),
                           InstanceMethod("removeTarget", &Capture::RemoveTarget),
                           InstanceMethod("attachTls", &Capture::AttachTls),
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
    uint64_t ring = cfg.Has("ringBufferBytes") ? cfg.Get("ringBufferBytes").As<Napi::Number>().Int64Value() : (64 << 20);
    uint32_t cap = cfg.Has("perCallCapBytes") ? cfg.Get("perCallCapBytes").As<Napi::Number>().Uint32Value() : (1 << 20);
    bool all = cfg.Has("captureAll") && cfg.Get("captureAll").ToBoolean().Value();
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
    int err = bpf_map__set_max_entries(skel_->maps.events, static_cast<uint32_t>(ring));
    if (err) Close(), Fail(env, "sizing the ring buffer failed", err);
    // A signal (a profiler's SIGPROF, a busy machine) can interrupt verification with EAGAIN: retry.
    for (int attempt = 0; attempt < 5; attempt++) {
      err = retap_bpf__load(skel_);
      if (err != -EAGAIN) break;
      TakeLog();
    }
    if (err) Close(), Fail(env, "loading the BPF programs failed", err);
    err = retap_bpf__attach(skel_);
    if (err) Close(), Fail(env, "attaching the syscall tracepoints failed", err);

    rb_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &Capture::OnRecord, this, nullptr);
    if (!rb_) {
      int e = errno;
      Close();
      Fail(env, "creating the ring buffer reader failed", e);
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
    Close();
  }

 private:
  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Capture*>(ctx);
    if (!self->batch_) self->batch_ = new Batch();
    auto& b = self->batch_->bytes;
    uint32_t len = static_cast<uint32_t>(size);
    size_t at = b.size();
    size_t padded = (size + 7) & ~size_t(7);
    b.resize(at + 8 + padded);
    std::memcpy(b.data() + at, &len, 4);
    std::memset(b.data() + at + 4, 0, 4);
    std::memcpy(b.data() + at + 8, data, size);
    if (b.size() >= kBatchFlushBytes) self->Flush();
    return 0;
  }

  // step: hand the poller's records to JS: append to the batch already waiting for JS, or make it
  // the waiting batch and ask JS to take it; past the byte bound, drop and count
  void Flush() {
    Batch* b = batch_;
    batch_ = nullptr;
    if (!b || b->bytes.empty()) {
      delete b;
      return;
    }
    Shared* sh = shared_.get();
    bool call = false;
    {
      std::lock_guard<std::mutex> lock(sh->mu);
      if (sh->waiting) {
        if (sh->waiting->bytes.size() + b->bytes.size() > max_pending_bytes_) {
          sh->user_drops++;
        } else {
          sh->waiting->bytes.insert(sh->waiting->bytes.end(), b->bytes.begin(), b->bytes.end());
        }
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
      size_t n = batch->bytes.size();
      uint8_t* ptr = batch->bytes.data();
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
    while (running_.load()) {
      int n = ring_buffer__poll(rb_, poll_ms_);
      if (n < 0 && n != -EINTR) break;
      ring_buffer__consume(rb_);
      Flush();
    }
    ring_buffer__consume(rb_);
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
    links.swap(links_);
    ring_buffer* rb = rb_;
    retap_bpf* skel = skel_;
    rb_ = nullptr;
    skel_ = nullptr;
    auto free_all = [links, rb, skel] {
      for (auto* l : links) bpf_link__destroy(l);
      if (rb) ring_buffer__free(rb);
      if (skel) retap_bpf__destroy(skel);
    };
    if (background)
      std::thread(free_all).detach();
    else
      free_all();
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

  // SSL_read/SSL_write(_ex) entry probes plus one shared return probe each.
  Napi::Value AttachTls(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "attachTls(path)");
    std::string path = info[0].As<Napi::String>();
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
      bpf_link* in = bpf_program__attach_uprobe_opts(p.entry, -1, path.c_str(), 0, &in_opts);
      if (!in) {
        last_err = errno;
        continue;
      }
      LIBBPF_OPTS(bpf_uprobe_opts, out_opts);
      out_opts.func_name = p.fn;
      out_opts.retprobe = true;
      bpf_link* out = bpf_program__attach_uprobe_opts(skel_->progs.ssl_exit_probe, -1, path.c_str(), 0, &out_opts);
      if (!out) {
        last_err = errno;
        bpf_link__destroy(in);
        continue;
      }
      links_.push_back(in);
      links_.push_back(out);
      attached += 2;
    }
    if (attached == 0) Fail(env, "attaching TLS uprobes to " + path + " failed (no SSL_read/SSL_write symbol?)", last_err ? last_err : ENOENT);
    TakeLog();
    return Napi::Number::New(env, attached);
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
      Close(/*background=*/true);
    }
    return info.Env().Undefined();
  }

  retap_bpf* skel_ = nullptr;
  ring_buffer* rb_ = nullptr;
  std::vector<bpf_link*> links_;
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
  o.Set("maxIov", RETAP_MAX_IOV);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Capture::Define(env);
  auto* ref = new Napi::FunctionReference(Napi::Persistent(ctor));
  env.SetInstanceData(ref);
  exports.Set("open", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto* r = info.Env().GetInstanceData<Napi::FunctionReference>();
                return r->New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
              }));
  exports.Set("layout", Layout(env));
  exports.Set("version", Napi::String::New(env, "1"));
  return exports;
}

}  // namespace

NODE_API_MODULE(retap_native, Init)
