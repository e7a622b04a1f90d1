// Cancellation of a long native call. The caller owns a flag word (the addon keeps the JS Int32Array passed as
// `cancel` alive for the call; JS sets it with Atomics.store on AbortSignal's abort). The model graphs poll it
// between layers (the tiled VAE between tiles), so an abort stops a forward within one layer's time.
#pragma once
#include <cstdint>

#include "core/errors.h"

namespace nd {

struct CancelFlag {
  const int32_t* word = nullptr;  // null: not cancellable

  bool requested() const { return word != nullptr && __atomic_load_n(word, __ATOMIC_RELAXED) != 0; }
  // Throws ERR_ABORTED once the flag is set.
  void check() const {
    if (requested()) fail(code::kAborted, "The operation was aborted");
  }
};

}  // namespace nd
