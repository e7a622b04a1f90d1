// safetensors reader: 8-byte little-endian header length, JSON header, raw data.
// Every size and offset read from the file is validated before use; tensors are
// zero-copy views into the read-only mapping.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "core/tensor.h"

namespace nd {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // offsets relative to the data section
};

class SafetensorsFile {
 public:
  // Header length above this is refused (the format's own reader uses 100 MB).
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

  // Throws nd::Error: ERR_IO (missing, directory), ERR_INVALID_FILE (malformed),
  // ERR_UNSUPPORTED (unknown dtype). Messages name the file and the tensor.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // Parses an in-memory image (fuzzing, tests); `bytes` must outlive the result.
  static std::shared_ptr<SafetensorsFile> parse(const uint8_t* bytes, size_t size, const std::string& label);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const SafetensorsEntry* find(const std::string& name) const;
  // View of a tensor; keeps the mapping alive. Throws ERR_INVALID_ARGUMENT if absent.
  Tensor tensor(const std::string& name) const;
  uint64_t header_bytes() const { return header_bytes_; }
  // 8 + header + data section: the size of the whole file (or image).
  uint64_t file_size() const { return 8 + header_bytes_ + data_size_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_size_ = 0;
  uint64_t header_bytes_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace nd
