// A low-resolution preview of the sampler state without running the VAE. Stable Diffusion latents
// [1, 4, H/8, W/8]: a fixed linear map from the 4 latent channels to RGB (the widely used "latent RGB
// factors" fitted for SD 1.x/2.x), one pixel per latent cell. Pixel-space states (the layered model's
// x̂0, [1, 3, H, W] in [−1, 1]) are the image itself. The channel count is read from the length.
// Cheap enough to send with progress events.
import { encodePNG } from '../image/png.js';

const FACTORS = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

const byte = (v: number) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));

/**
 * State of an image of `width`×`height` pixels → data:image/png;base64 URL, or undefined if its length fits
 * neither [1, 4, height/8, width/8] latents nor a [1, 3, height, width] pixel-space state.
 */
export function latentPreview(latents: Float32Array, width: number, height: number): string | undefined {
  const pixels = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || pixels <= 0) return undefined;
  if (latents.length === 3 * pixels) {
    const rgb = new Uint8Array(pixels * 3);
    for (let p = 0; p < pixels; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = byte(latents[c * pixels + p]);
    return `data:image/png;base64,${encodePNG(rgb, width, height, 3).toString('base64')}`;
  }
  const w = width / 8,
    h = height / 8;
  const plane = w * h;
  if (!Number.isInteger(w) || !Number.isInteger(h) || latents.length !== 4 * plane) return undefined;
  const rgb = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += latents[k * plane + p] * FACTORS[k][c];
      rgb[p * 3 + c] = byte(v);
    }
  }
  return `data:image/png;base64,${encodePNG(rgb, w, h, 3).toString('base64')}`;
}
