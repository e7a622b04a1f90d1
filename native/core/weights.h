// Canonical-name weight lookup for the model graphs. Canonical names are the
// original LDM single-file keys (model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.*); lib/loading maps diffusers folders onto them. Tensors stay
// in their file dtype inside the mapping; small parameters are widened once and cached.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace nd {

class WeightStore {
 public:
  // Opens (and validates) a file once; returns its index.
  size_t add_file(const std::string& path);
  // canonical -> tensor `tensor_name` of file `file_index`; with rows = [begin, end) the
  // canonical tensor is that contiguous row range (dimension 0) of the stored one (SD2's fused
  // OpenCLIP in_proj holds q, k, v as row blocks) — still a zero-copy view.
  void map(const std::string& canonical, size_t file_index, const std::string& tensor_name, int64_t row_begin = -1,
           int64_t row_end = -1);

  bool has(const std::string& canonical) const { return entries_.count(canonical) != 0; }
  // The tensor; ERR_INVALID_FILE naming the tensor when it is missing.
  const Tensor& get(const std::string& canonical) const;
  // The tensor after checking its element count (any shape with that count, e.g. [C,C] vs [C,C,1,1]).
  const Tensor& get(const std::string& canonical, const Shape& expected) const;
  // Widened f32 copy of a float tensor, cached (biases, norm parameters, embeddings).
  const std::vector<float>& f32(const std::string& canonical) const;
  const float* f32_or_null(const std::string& canonical) const {
    return has(canonical) ? f32(canonical).data() : nullptr;
  }
  // Canonical names with this prefix, sorted.
  std::vector<std::string> with_prefix(const std::string& prefix) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, Tensor> entries_;
  mutable std::map<std::string, std::vector<float>> widened_;
  mutable std::mutex widened_mutex_;
};

}  // namespace nd
