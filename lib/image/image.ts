import { writeFile } from 'node:fs/promises';
import { invalid } from '../errors.js';
import { encodePNG } from './png.js';

/** An 8-bit interleaved RGB image with the parameters that made it. */
export class GeneratedImage {
  readonly channels = 3 as const;
  constructor(
    readonly width: number,
    readonly height: number,
    /** interleaved RGB, row-major, width·height·3 bytes */
    readonly data: Uint8Array,
    /** generation parameters as written into the PNG's "parameters" chunk */
    readonly parameters: string = '',
    /** the same pixels as floats in [0, 1], interleaved RGB (diffusers' output_type="np"), when kept */
    readonly float?: Float32Array,
  ) {}

  toPNG(): Buffer {
    return encodePNG(this.data, this.width, this.height, 3, this.parameters ? { parameters: this.parameters } : {});
  }

  /** Writes a PNG; the extension must say so (a .jpg holding PNG bytes would mislead every reader). */
  async toFile(path: string): Promise<void> {
    if (typeof path !== 'string' || !path.toLowerCase().endsWith('.png'))
      invalid('a path ending in .png (PNG is the format written)', 'path', path);
    await writeFile(path, this.toPNG());
  }
}

/**
 * Decoder output [1, 3, H, W] in [-1, 1] -> 8-bit interleaved RGB, as diffusers does:
 * (x / 2 + 0.5).clamp(0, 1) · 255, rounded.
 */
export function decodedToRGB(
  pixels: Float32Array,
  width: number,
  height: number,
  batchIndex = 0,
): { bytes: Uint8Array; float: Float32Array } {
  const plane = width * height;
  const base = batchIndex * 3 * plane;
  const bytes = new Uint8Array(plane * 3);
  const float = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = Math.min(1, Math.max(0, pixels[base + c * plane + i] / 2 + 0.5));
      float[i * 3 + c] = v;
      bytes[i * 3 + c] = Math.round(v * 255);
    }
  }
  return { bytes, float };
}
