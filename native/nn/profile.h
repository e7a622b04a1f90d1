// Op-level timers for the model graphs (off unless enabled: one relaxed atomic load per op).
// `ND_TIMED(Conv, cpu::conv2d(...));` charges the op's wall time and the process CPU time it
// used (all threads) to its category; the bench (`bench sd15 --profile`) reads the totals through
// the `profile` binding. Categories are by op type so a U-Net step's time splits into conv,
// linear, attention, norms, elementwise and copies.
#pragma once
#include <atomic>
#include <cstdint>

namespace nd::prof {

enum class Op : int { Conv, Linear, Attention, GroupNorm, LayerNorm, Elementwise, Copy, Forward, kCount };
const char* op_name(Op op);

bool enabled();
void set_enabled(bool on);
void reset();

struct Totals {
  double wall_s = 0, cpu_s = 0;
  int64_t calls = 0;
};
Totals totals(Op op);

class Scope {
 public:
  explicit Scope(Op op);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Op op_;
  bool on_;
  int64_t wall0_ = 0, cpu0_ = 0;
};

}  // namespace nd::prof

#define ND_TIMED(op, ...)                                  \
  do {                                                     \
    ::nd::prof::Scope nd_timed_scope_(::nd::prof::Op::op); \
    __VA_ARGS__;                                           \
  } while (0)
