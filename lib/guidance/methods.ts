// The guidance methods of GenerateOptions.guidance (docs/design.md §5): the one list options, CLI and server read.
//   cfg             classifier-free guidance, ε_u + w(ε_c − ε_u) (cfg.ts)
//   s-cfg           semantic-aware CFG: w scaled per region from cross/self attention (scfg.ts)
//   cfg++           manifold-constrained CFG, λ ∈ [0, 1] (samplers take StepExtras.uncondOutput)
//   characteristic  characteristic guidance, a fixed-point solve per step (characteristic.ts)
export const GUIDANCE_METHODS = ['cfg', 's-cfg', 'cfg++', 'characteristic'] as const;
export type GuidanceMethod = (typeof GUIDANCE_METHODS)[number];
