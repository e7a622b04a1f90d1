// Read-only memory mapping of a weight file. Weights are used in place (zero copy).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nd {

class MappedFile {
 public:
  // Throws nd::Error (ERR_IO) when the path is missing, a directory, or unreadable.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace nd
