// Tiled VAE decoding: peak activation memory of the full-resolution decoder levels
// grows with the image area (a 2048² image needs several GiB), so large latents are
// decoded in overlapping tiles and blended. The latent-resolution stage (conv_in and
// the mid block, whose attention is global) is small and runs on the whole latent;
// only the upsampling levels are tiled. Each tile's weight ramps linearly from ~0 to 1
// across the overlap on every edge that has a neighbour, and the output is the
// weight-normalised sum, so seams fade instead of showing.
#include <algorithm>
#include <cstring>

#include "models/vae.h"

namespace nd {
namespace {

// Tile start positions along one axis: stride size - overlap, the last tile flush with the end.
std::vector<int64_t> tile_starts(int64_t length, int64_t size, int64_t overlap) {
  if (length <= size) return {0};
  std::vector<int64_t> starts;
  for (int64_t p = 0;; p += size - overlap) {
    if (p + size >= length) {
      starts.push_back(length - size);
      break;
    }
    starts.push_back(p);
  }
  return starts;
}

// Blend weights along one axis of a tile of `extent` pixels: a ramp of `ramp` pixels on each side that
// borders another tile, 1 elsewhere. Always > 0, so the normalisation never divides by zero.
std::vector<float> ramp_weights(int64_t extent, int64_t ramp, bool ramp_start, bool ramp_end) {
  std::vector<float> w((size_t)extent, 1.f);
  if (ramp <= 0) return w;
  for (int64_t i = 0; i < extent; ++i) {
    if (ramp_start) w[(size_t)i] = std::min(w[(size_t)i], (float)((i + 0.5) / (double)ramp));
    if (ramp_end) w[(size_t)i] = std::min(w[(size_t)i], (float)((extent - i - 0.5) / (double)ramp));
  }
  return w;
}

}  // namespace

Buffer Vae::decode_tiled(ThreadPool& pool, const CancelFlag& cancel, const float* z, int64_t batch, int64_t height,
                         int64_t width, const VaeTileOptions& tiles) const {
  check_latents(batch, height, width);
  if (tiles.size < 4 || tiles.size > 4096)
    fail_expected(code::kInvalidArgument, "an integer in [4, 4096]", "tile.size", std::to_string(tiles.size));
  if (tiles.overlap < 0 || tiles.overlap > tiles.size / 2)
    fail_expected(code::kInvalidArgument, "an integer in [0, " + std::to_string(tiles.size / 2) + "]", "tile.overlap",
                  std::to_string(tiles.overlap));
  if (height <= tiles.size && width <= tiles.size) return decode(pool, cancel, z, batch, height, width);

  BufferPool acts;
  Arena arena;  // the BufferPool holds the VAE's activations; the arena stays empty
  Compute c{be_, pool, arena, cancel};
  const PooledBuffer features = decode_latent_stage(acts, c, z, batch, height, width);  // [B, C_last, h, w]
  const int64_t f = factor(), zc = features.dim(1), H = height * f, W = width * f;
  const int64_t th = std::min(tiles.size, height), tw = std::min(tiles.size, width);
  const std::vector<int64_t> ys = tile_starts(height, tiles.size, tiles.overlap);
  const std::vector<int64_t> xs = tile_starts(width, tiles.size, tiles.overlap);

  Buffer out({batch, kImageChannels, H, W});  // weighted sum, normalised at the end
  std::vector<float> weight_sum((size_t)(H * W), 0.f);
  for (size_t ty = 0; ty < ys.size(); ++ty)
    for (size_t tx = 0; tx < xs.size(); ++tx) {
      c.check_cancel();  // between tiles (decode_levels also checks between its blocks)
      const int64_t y0 = ys[ty], x0 = xs[tx];
      PooledBuffer tile(acts, {batch, zc, th, tw});
      for (int64_t bc = 0; bc < batch * zc; ++bc)  // feature window [B, C_last, th, tw]
        for (int64_t i = 0; i < th; ++i)
          std::memcpy(tile.data() + (bc * th + i) * tw, features.data() + (bc * height + y0 + i) * width + x0,
                      (size_t)tw * sizeof(float));
      const Buffer img = decode_levels(acts, c, std::move(tile));  // [B, 3, f·th, f·tw]
      const int64_t ph = th * f, pw = tw * f, py0 = y0 * f, px0 = x0 * f;
      const std::vector<float> wy = ramp_weights(ph, tiles.overlap * f, ty > 0, ty + 1 < ys.size());
      const std::vector<float> wx = ramp_weights(pw, tiles.overlap * f, tx > 0, tx + 1 < xs.size());
      pool.parallel_for(ph, [&](int64_t r0, int64_t r1, int) {
        for (int64_t i = r0; i < r1; ++i) {
          float* ws = weight_sum.data() + (py0 + i) * W + px0;
          for (int64_t j = 0; j < pw; ++j) ws[j] += wy[(size_t)i] * wx[(size_t)j];
          for (int64_t bc = 0; bc < batch * kImageChannels; ++bc) {
            const float* src = img.data() + (bc * ph + i) * pw;
            float* dst = out.data() + (bc * H + py0 + i) * W + px0;
            for (int64_t j = 0; j < pw; ++j) dst[j] += wy[(size_t)i] * wx[(size_t)j] * src[j];
          }
        }
      });
    }
  pool.parallel_for(batch * kImageChannels * H, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* ws = weight_sum.data() + (r % H) * W;
      float* dst = out.data() + r * W;
      for (int64_t j = 0; j < W; ++j) dst[j] /= ws[j];
    }
  });
  return out;
}

}  // namespace nd
