#include "core/weights.h"

namespace nd {

size_t WeightStore::add_file(const std::string& path) {
  files_.push_back(SafetensorsFile::open(path));
  return files_.size() - 1;
}

void WeightStore::map(const std::string& canonical, size_t file_index, const std::string& tensor_name,
                      int64_t row_begin, int64_t row_end) {
  if (file_index >= files_.size())
    fail_expected(code::kInvalidArgument, "a file index below " + std::to_string(files_.size()),
                  "weight \"" + canonical + "\"", std::to_string(file_index));
  Tensor t = files_[file_index]->tensor(tensor_name);
  if (row_begin >= 0 || row_end >= 0) {
    const int64_t rows = t.rank() ? t.shape[0] : 0;
    if (row_begin < 0 || row_end <= row_begin || row_end > rows)
      fail_expected(code::kInvalidArgument, "a row range within [0, " + std::to_string(rows) + ")",
                    "weight \"" + canonical + "\"",
                    "[" + std::to_string(row_begin) + ", " + std::to_string(row_end) + ")");
    const size_t row_bytes = rows ? t.nbytes() / (size_t)rows : 0;
    t.data = static_cast<const uint8_t*>(t.data) + (size_t)row_begin * row_bytes;
    t.shape[0] = row_end - row_begin;
  }
  entries_[canonical] = std::move(t);
}

const Tensor& WeightStore::get(const std::string& canonical) const {
  auto it = entries_.find(canonical);
  if (it == entries_.end()) fail(code::kInvalidFile, "Missing weight \"" + canonical + "\" in the checkpoint");
  return it->second;
}

const Tensor& WeightStore::get(const std::string& canonical, const Shape& expected) const {
  const Tensor& t = get(canonical);
  if (t.numel() != numel(expected))
    fail(code::kShapeMismatch, "Expected shape " + shape_str(expected) + " for weight \"" + canonical +
                                   "\" but received " + shape_str(t.shape));
  if (!is_float(t.dtype))
    fail(code::kUnsupported,
         "Expected a float dtype for weight \"" + canonical + "\" but received " + dtype_name(t.dtype));
  return t;
}

const std::vector<float>& WeightStore::f32(const std::string& canonical) const {
  std::lock_guard<std::mutex> lock(widened_mutex_);
  auto it = widened_.find(canonical);
  if (it != widened_.end()) return it->second;
  const Tensor& t = get(canonical);
  if (!is_float(t.dtype))
    fail(code::kUnsupported,
         "Expected a float dtype for weight \"" + canonical + "\" but received " + dtype_name(t.dtype));
  return widened_.emplace(canonical, t.to_f32()).first->second;
}

std::vector<std::string> WeightStore::with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (auto it = entries_.lower_bound(prefix); it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it)
    out.push_back(it->first);
  return out;
}

}  // namespace nd
