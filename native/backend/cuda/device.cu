#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device.h"

namespace nd::cuda {

RuntimeInfo query_runtime() {
  RuntimeInfo info;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.total_memory = p.totalGlobalMem;
    d.multiprocessors = p.multiProcessorCount;
    d.max_threads_per_block = p.maxThreadsPerBlock;
    d.shared_memory_per_block = p.sharedMemPerBlock;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) d.free_memory = free_b;
    info.devices.push_back(d);
  }
  if (info.devices.empty() && info.error.empty()) info.error = "no CUDA device found";
  return info;
}

DeviceInfo require_device() {
  RuntimeInfo info = query_runtime();
  if (info.devices.empty()) fail(code::kNoCuda, "No usable CUDA device: " + info.error);
  ND_CUDA_CHECK(cudaSetDevice(info.devices[0].index));
  return info.devices[0];
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t err = cudaMalloc(&ptr_, bytes);
  if (err != cudaSuccess) {
    ptr_ = nullptr;
    cudaGetLastError();
    fail(code::kOutOfMemory,
         "Could not allocate " + std::to_string(bytes) + " bytes of GPU memory: " + cudaGetErrorString(err));
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceBuffer::upload(const void* host, size_t bytes) {
  if (bytes > bytes_) fail(code::kInternal, "upload of " + std::to_string(bytes) + " bytes into a smaller buffer");
  ND_CUDA_CHECK(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice));
}

void DeviceBuffer::download(void* host, size_t bytes) const {
  if (bytes > bytes_) fail(code::kInternal, "download of " + std::to_string(bytes) + " bytes from a smaller buffer");
  ND_CUDA_CHECK(cudaMemcpy(host, ptr_, bytes, cudaMemcpyDeviceToHost));
}

void synchronize() {
  ND_CUDA_CHECK(cudaGetLastError());
  ND_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace nd::cuda
