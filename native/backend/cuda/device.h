// CUDA device discovery and device memory. Everything here is host code callable from
// plain C++ (the addon binding); kernels live in the other .cu files of this folder.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nd::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  size_t total_memory = 0, free_memory = 0;
  int multiprocessors = 0;
  int max_threads_per_block = 0;
  size_t shared_memory_per_block = 0;
};

struct RuntimeInfo {
  int runtime_version = 0;  // e.g. 13000
  int driver_version = 0;   // 0 when no driver is installed
  std::vector<DeviceInfo> devices;
  std::string error;  // why no device is usable, when devices is empty
};

// Never throws for a missing GPU or driver: that is reported in `error`.
RuntimeInfo query_runtime();

// Selects the first device; ERR_NO_CUDA (with the runtime's reason) when there is none.
DeviceInfo require_device();

// Owned device allocation (cudaMalloc/cudaFree). Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

  void upload(const void* host, size_t bytes);
  void download(void* host, size_t bytes) const;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Waits for all queued work on the device and surfaces asynchronous kernel errors.
void synchronize();

}  // namespace nd::cuda
