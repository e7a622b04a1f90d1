#include "nn/profile.h"

#include <time.h>

namespace nd::prof {
namespace {

constexpr int kOps = (int)Op::kCount;
std::atomic<bool> g_enabled{false};
std::atomic<int64_t> g_wall_ns[kOps], g_cpu_ns[kOps], g_calls[kOps];

int64_t now_ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

}  // namespace

const char* op_name(Op op) {
  static const char* names[kOps] = {"conv",       "linear",      "attention", "group_norm",
                                    "layer_norm", "elementwise", "copy",      "forward"};
  const int i = (int)op;
  return i >= 0 && i < kOps ? names[i] : "unknown";
}

bool enabled() { return g_enabled.load(std::memory_order_relaxed); }
void set_enabled(bool on) { g_enabled.store(on); }

void reset() {
  for (int i = 0; i < kOps; ++i) g_wall_ns[i] = g_cpu_ns[i] = g_calls[i] = 0;
}

Totals totals(Op op) {
  const int i = (int)op;
  return Totals{(double)g_wall_ns[i].load() * 1e-9, (double)g_cpu_ns[i].load() * 1e-9, g_calls[i].load()};
}

Scope::Scope(Op op) : op_(op), on_(enabled()) {
  if (!on_) return;
  wall0_ = now_ns(CLOCK_MONOTONIC);
  cpu0_ = now_ns(CLOCK_PROCESS_CPUTIME_ID);
}

Scope::~Scope() {
  if (!on_) return;
  const int i = (int)op_;
  g_cpu_ns[i] += now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0_;
  g_wall_ns[i] += now_ns(CLOCK_MONOTONIC) - wall0_;
  g_calls[i] += 1;
}

}  // namespace nd::prof
