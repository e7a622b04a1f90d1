// libFuzzer target for SafetensorsFile::parse (tools/fuzz.sh builds and runs it). Any input
// must either parse into views that lie inside the image or throw nd::Error; anything else
// (a crash, a sanitizer report, another exception type) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/errors.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = nd::SafetensorsFile::parse(data, size, "fuzz-input");
    volatile uint8_t sink = 0;
    for (const auto& e : file->entries()) {
      const nd::Tensor t = file->tensor(e.name);
      // The element count times the element size must not wrap: a validated shape describes
      // exactly the bytes of its span (a wrapped product could pass as an empty tensor).
      uint64_t count = 1;
      for (int64_t d : t.shape) {
        if (d < 0 || __builtin_mul_overflow(count, (uint64_t)d, &count)) __builtin_trap();
      }
      uint64_t exact = 0;
      if (__builtin_mul_overflow(count, (uint64_t)nd::dtype_size(t.dtype), &exact)) __builtin_trap();
      if (exact != e.end - e.begin) __builtin_trap();
      const size_t bytes = t.nbytes();
      if (bytes != e.end - e.begin) __builtin_trap();  // view size must equal the validated span
      // Touch the first and last byte: AddressSanitizer reports a view outside the input.
      if (bytes > 0) sink ^= static_cast<const uint8_t*>(t.data)[0] ^ static_cast<const uint8_t*>(t.data)[bytes - 1];
    }
    (void)sink;
    if (file->file_size() != size) __builtin_trap();
  } catch (const nd::Error&) {
    // Malformed input rejected with a typed error: the expected outcome.
  }
  return 0;
}
