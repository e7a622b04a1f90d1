// A low-resolution preview of latents without running the VAE: a fixed linear map from the 4 SD
// latent channels to RGB (the widely used "latent RGB factors" fitted for SD 1.x/2.x), one pixel per
// latent cell (1/8 of the image side). Cheap enough to send with progress events.
import { encodePNG } from '../../lib/image/png.js';

const FACTORS = [
  [0.3512, 0.2297, 0.3227],
  [0.325, 0.4974, 0.235],
  [-0.2829, 0.1762, 0.2721],
  [-0.212, -0.2616, -0.7177],
];

/** latents [1, 4, h, w] → data:image/png;base64 URL, or undefined if the shape does not match */
export function latentPreview(latents: Float32Array, w: number, h: number): string | undefined {
  const plane = w * h;
  if (!Number.isInteger(plane) || plane <= 0 || latents.length < 4 * plane) return undefined;
  const rgb = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += latents[k * plane + p] * FACTORS[k][c];
      rgb[p * 3 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
    }
  }
  return `data:image/png;base64,${encodePNG(rgb, w, h, 3).toString('base64')}`;
}
