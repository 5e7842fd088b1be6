/**
 * The weights an architecture expects, as a table computed from its ArchConfig: names in module
 * (= parameter) layout, and for every dimension the config.json keys it comes from, so a checkpoint
 * that disagrees with its config is reported by key before any buffer or layer is allocated.
 * Each model family writes one function producing this table next to its modules; a test holds it
 * equal to the built model's parameters.
 */

/** One dimension: its size and the config.json keys whose product gives it. */
export interface Dim {
  size: number;
  /** [key, value] factors; a derived factor's key reads e.g. "hidden_size / num_attention_heads". */
  keys: [string, number][];
}

export interface ExpectedWeight {
  name: string;
  shape: Dim[];
}

export interface WeightTable {
  /** Weights outside the decoder layers (embeddings, final norm, head). */
  global: ExpectedWeight[];
  /** The weights of layer i; called only once the layer count agrees with the checkpoint. */
  layer(i: number): ExpectedWeight[];
  /** Names of layer i's weights start with `${layerPrefix}${i}.`. */
  layerPrefix: string;
  /** The config.json key of the layer count, and its value. */
  layersKey: string;
  numLayers: number;
}

/** A dimension given by one key, or by the product of several. */
export function dim(...keys: [string, number][]): Dim {
  return { size: keys.reduce((a, [, v]) => a * v, 1), keys };
}

/** The weight and (optional) bias of a Linear(in → out): weight (out, in). */
export function linearWeights(name: string, inDim: Dim, outDim: Dim, bias: boolean): ExpectedWeight[] {
  const w: ExpectedWeight[] = [{ name: `${name}.weight`, shape: [outDim, inDim] }];
  if (bias) w.push({ name: `${name}.bias`, shape: [outDim] });
  return w;
}
