#include "core/mmap.h"

#include <cerrno>
#include <cstring>

#include "core/errors.h"

#if defined(_WIN32)
// Windows: CreateFileMapping + MapViewOfFile (the POSIX calls below do not exist there).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

namespace nd {

namespace {
std::string last_error() { return "Windows error " + std::to_string((unsigned long)GetLastError()); }
}  // namespace

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int wide_len = MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, nullptr, 0);
  std::wstring wide((size_t)(wide_len > 0 ? wide_len : 1), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, wide.data(), wide_len);
  const DWORD attrs = GetFileAttributesW(wide.c_str());
  if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
    fail(code::kIo, "Expected a regular file for " + path + " but received a directory");
  HANDLE file =
      CreateFileW(wide.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) fail(code::kIo, "Could not open " + path + ": " + last_error());
  LARGE_INTEGER size;
  if (!GetFileSizeEx(file, &size)) {
    const std::string e = last_error();
    CloseHandle(file);
    fail(code::kIo, "Could not stat " + path + ": " + e);
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = (size_t)size.QuadPart;
  if (m->size_ > 0) {
    HANDLE mapping = CreateFileMappingW(file, nullptr, PAGE_READONLY, 0, 0, nullptr);
    void* p = mapping ? MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0) : nullptr;
    const std::string e = p ? std::string() : last_error();
    if (mapping) CloseHandle(mapping);  // the view keeps the mapping alive
    if (!p) {
      CloseHandle(file);
      fail(code::kIo, "Could not map " + path + ": " + e);
    }
    m->data_ = static_cast<const uint8_t*>(p);
  }
  CloseHandle(file);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) UnmapViewOfFile(data_);
}

}  // namespace nd

#else  // POSIX
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

namespace nd {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(code::kIo, "Could not open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(code::kIo, "Could not stat " + path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(code::kIo, "Expected a regular file for " + path + " but received a " +
                        (S_ISDIR(st.st_mode) ? "directory" : "special file"));
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = (size_t)st.st_size;
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      fail(code::kIo, "Could not map " + path + ": " + std::strerror(e));
    }
    m->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace nd
#endif  // POSIX
