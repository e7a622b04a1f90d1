// CLIP text encoders of Stable Diffusion: SD1's HF CLIPTextModel (names under
// cond_stage_model.transformer.text_model.) and SD2's OpenCLIP tower (names under
// cond_stage_model.model.). Both are pre-LN transformers with a causal mask; they
// differ in names, in the fused q/k/v projection of OpenCLIP and in the MLP activation.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/cancel.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "core/weights.h"
#include "nn/layers.h"

namespace nd {

// Mirrors TextEncoderConfig in lib/loading/types.ts.
struct TextEncoderConfig {
  enum class Kind { kClip, kOpenClip };
  enum class Activation { kQuickGelu, kGelu };
  Kind kind = Kind::kClip;
  int64_t hidden = 768;
  int64_t layers = 12;  // transformer layers present in the checkpoint
  int64_t heads = 12;
  int64_t intermediate = 3072;
  int64_t vocab_size = 49408;
  int64_t max_positions = 77;
  Activation activation = Activation::kQuickGelu;
  int64_t default_layers_to_run = 12;  // SD2: layers - 1 (the penultimate layer)
  int64_t pad_token = 49407;
};

struct TextEncodeOptions {
  // Transformer layers to run, 0..layers; -1 = config.default_layers_to_run.
  // diffusers' clip_skip=k is default_layers_to_run - k.
  int64_t layers_to_run = -1;
  // Apply the final layer norm after the last layer run (what SD1/SD2 pipelines do, clip skip included).
  bool final_layer_norm = true;
};

class ClipTextEncoder {
 public:
  // Looks up and shape-checks every weight the config names; throws nd::Error naming the tensor.
  ClipTextEncoder(std::shared_ptr<const WeightStore> weights, const TextEncoderConfig& config);

  const TextEncoderConfig& config() const { return config_; }
  // The checkpoint names of one tower (CLIP and OpenCLIP differ only in these; clip_text.cc lists both).
  struct Names;

  // ids [batch, tokens] (tokens <= max_positions, each id in [0, vocab_size)) -> [batch, tokens, hidden],
  // computed with the process compute pool; `cancel` is checked between layers (ERR_ABORTED).
  Buffer encode(ThreadPool& pool, const CancelFlag& cancel, const int32_t* ids, int64_t batch, int64_t tokens,
                const TextEncodeOptions& options) const;

 private:
  // One projection: y[:, column : column + out] = x W^T + b.
  struct Projection {
    nn::Linear linear;
    int64_t column = 0;
  };
  struct Layer {
    nn::LayerNorm ln1, ln2;
    std::vector<Projection> qkv;  // one fused [3C, C] projection (OpenCLIP) or q, k, v (CLIP)
    nn::Linear out_proj, fc1, fc2;
  };
  void load(const Names& names);
  // q, k, v stored back to back (e.g. OpenCLIP's fused in_proj mapped as three row ranges) run as one projection.
  std::vector<Projection> fuse_if_adjacent(std::vector<Projection> qkv);
  void run_layer(Compute& c, const Layer& layer, float* hidden, int64_t batch, int64_t tokens, float* scratch_norm,
                 float* scratch_qkv, float* scratch_attn, float* scratch_mlp) const;

  std::shared_ptr<const WeightStore> weights_;
  TextEncoderConfig config_;
  const Backend& be_;
  WeightRef token_embedding_;                  // [vocab, C], file dtype (large: not widened)
  const float* position_embedding_ = nullptr;  // [max_positions, C]
  nn::LayerNorm final_ln_;
  std::vector<Layer> layers_;
  std::vector<std::unique_ptr<std::vector<float>>> fused_biases_;  // [3C] bias of each fused q/k/v projection
};

}  // namespace nd
