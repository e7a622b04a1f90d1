// Typed errors: every failure the addon reports carries a stable code that the
// TypeScript layer exposes as DiffusionError.code.
#pragma once
#include <stdexcept>
#include <string>

namespace nd {

namespace code {
inline constexpr const char* kInvalidArgument = "ERR_INVALID_ARGUMENT";
inline constexpr const char* kInvalidFile = "ERR_INVALID_FILE";  // malformed checkpoint / safetensors
inline constexpr const char* kIo = "ERR_IO";                     // missing file, directory, read failure
inline constexpr const char* kUnsupported = "ERR_UNSUPPORTED";   // unknown architecture / dtype
inline constexpr const char* kShapeMismatch = "ERR_SHAPE_MISMATCH";
inline constexpr const char* kAborted = "ERR_ABORTED";
inline constexpr const char* kOutOfMemory = "ERR_OUT_OF_MEMORY";
inline constexpr const char* kNoCuda = "ERR_NO_CUDA";
inline constexpr const char* kDisposed = "ERR_DISPOSED";
inline constexpr const char* kInternal = "ERR_INTERNAL";
}  // namespace code

class Error : public std::runtime_error {
 public:
  Error(std::string error_code, const std::string& message)
      : std::runtime_error(message), code_(std::move(error_code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

[[noreturn]] inline void fail(const char* error_code, const std::string& message) { throw Error(error_code, message); }

// "Expected <what> for <name> but received <value>"
[[noreturn]] inline void fail_expected(const char* error_code, const std::string& what, const std::string& name,
                                       const std::string& received) {
  throw Error(error_code, "Expected " + what + " for " + name + " but received " + received);
}

}  // namespace nd
