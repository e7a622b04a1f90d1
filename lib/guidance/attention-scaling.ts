// Attention-entropy scaling (docs/design.md §5.1): each self-attention layer's softmax scale becomes
// λ = sqrt(ln N / ln T)/√d, N = the layer's key tokens at the requested size (true h·w), T = at the model's
// native size, both clamped to ≥ 2. The native U-Net applies the factor per layer (native/models/unet.cc,
// attention_call); this module holds the same formula for tests and the option's resolution.

export const ATTENTION_SCALING = ['auto', 'entropy', 'none'] as const;
export type AttentionScaling = (typeof ATTENTION_SCALING)[number];

/** sqrt(ln N / ln T) with N, T clamped to ≥ 2 (1 when N = T). */
export function entropyScaleFactor(n: number, t: number): number {
  return Math.sqrt(Math.log(Math.max(n, 2)) / Math.log(Math.max(t, 2)));
}

/** The softmax scale λ of a self-attention layer with head dimension d. */
export function entropyScale(n: number, t: number, headDim: number): number {
  return entropyScaleFactor(n, t) / Math.sqrt(headDim);
}

/**
 * The native latent size to pass to the U-Net (undefined = stock scale): 'entropy' always, 'auto' whenever
 * the latent differs from the native latent, 'none' never.
 */
export function nativeLatentSizeFor(
  mode: AttentionScaling,
  latent: { h: number; w: number },
  nativeLatent: { h: number; w: number },
) {
  const scale = mode === 'entropy' || (mode === 'auto' && (latent.h !== nativeLatent.h || latent.w !== nativeLatent.w));
  return scale ? { h: nativeLatent.h, w: nativeLatent.w } : undefined;
}
