// Native core checks under AddressSanitizer + UndefinedBehaviorSanitizer (ctest; tools/native-tests.sh):
// every fixture checkpoint opens and every tensor view is readable end to end; the thread pool
// covers every item and carries task errors; the arena keeps live blocks apart.
// Usage: core_test <fixtures-dir>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/safetensors.h"
#include "core/threadpool.h"

namespace {

int failures = 0;
#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

void fixtures(const std::string& dir) {
  size_t files = 0, tensors = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".safetensors") continue;
    const auto file = nd::SafetensorsFile::open(entry.path().string());
    ++files;
    CHECK(file->file_size() == std::filesystem::file_size(entry.path()));
    for (const auto& e : file->entries()) {
      const nd::Tensor t = file->tensor(e.name);
      CHECK(t.nbytes() == e.end - e.begin);
      uint64_t sum = 0;  // read every byte: ASan flags a view outside the mapping
      const auto* p = static_cast<const uint8_t*>(t.data);
      for (size_t i = 0; i < t.nbytes(); ++i) sum += p[i];
      (void)sum;
      if (nd::is_float(t.dtype) && t.numel() > 0) (void)nd::load_as_f32(t.data, t.dtype, (size_t)t.numel() - 1);
      ++tensors;
    }
  }
  std::printf("fixtures: %zu files, %zu tensors read\n", files, tensors);
  CHECK(files >= 10);
}

void thread_pool() {
  for (int threads : {1, 2, 5}) {
    nd::ThreadPool pool(threads);
    for (int64_t n : {0, 1, 3, 1000}) {
      std::vector<std::atomic<int>> seen(n);
      pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) seen[i]++;
      });
      for (auto& s : seen) CHECK(s.load() == 1);
    }
    bool caught = false;
    try {
      pool.run_tasks(100, [](int64_t t, int) {
        if (t == 42) nd::fail(nd::code::kAborted, "stop");
      });
    } catch (const nd::Error& e) {
      caught = e.code() == nd::code::kAborted;
    }
    CHECK(caught);
  }
}

void arena() {
  nd::Arena a(1024);
  std::vector<std::pair<unsigned char*, size_t>> blocks;
  for (size_t i = 0; i < 50; ++i) {
    const size_t bytes = (i * 97) % 700 + 1;
    auto* p = static_cast<unsigned char*>(a.alloc(bytes, size_t(1) << (i % 8)));
    CHECK(reinterpret_cast<uintptr_t>(p) % (size_t(1) << (i % 8)) == 0);
    std::memset(p, (int)i, bytes);
    blocks.emplace_back(p, bytes);
  }
  for (size_t i = 0; i < blocks.size(); ++i)
    for (size_t k = 0; k < blocks[i].second; ++k) CHECK(blocks[i].first[k] == (unsigned char)i);
  const size_t reserved = a.reserved();
  a.reset();
  for (size_t i = 0; i < 50; ++i) a.alloc((i * 97) % 700 + 1, size_t(1) << (i % 8));
  CHECK(a.reserved() == reserved);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: core_test <fixtures-dir>\n");
    return 2;
  }
  try {
    fixtures(argv[1]);
    thread_pool();
    arena();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    return 1;
  }
  std::printf("core_test: %s (%d failed checks)\n", failures ? "FAILED" : "ok", failures);
  return failures ? 1 : 0;
}
