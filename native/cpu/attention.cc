// Placeholder: reference attention until the fused tiled kernel lands.
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::cpu {

void attention(ThreadPool& pool, const AttentionArgs& args) {
  (void)pool;
  ref::attention(args);
}

}  // namespace nd::cpu
