// Windows over a song and the stitching of their outputs, as iad_tf/inference/windows.py:
// windows of W frames every H frames while they end before the song's last frame, then one
// ending at the last frame (a song shorter than W: one window from 0); overlapping outputs are
// cross-faded with edge ramps over the overlap and normalised.

/** Float32Array (W,): ramp up over `overlap` frames at both edges, 1 inside. */
export function edgeWeights(window, overlap) {
  const w = new Float32Array(window).fill(1);
  const r = Math.min(Math.max(overlap, 0), Math.floor(window / 2));
  for (let k = 0; k < r; k++) {
    const v = Math.fround((k + 1) / (r + 1));
    w[k] = v;
    w[window - 1 - k] = v;
  }
  return w;
}

/** Start frames of the windows covering `frames` frames (frames >= 1). */
export function windowStarts(frames, window, hop) {
  const starts = [];
  let s = 0;
  for (; s + window < frames; s += hop) starts.push(s);
  starts.push(frames < window ? 0 : frames - window);
  return starts;
}

/** Accumulates window outputs (k, C) at their start frames; finish() -> Float32Array. */
export class Stitcher {
  constructor(window, hop, classes) {
    this.window = window;
    this.C = classes;
    this.weights = edgeWeights(window, window - hop);
    this.acc = new Float64Array(0);
    this.wsum = new Float64Array(0);
    this.end = 0;
  }

  grow(frames) {
    if (frames <= this.wsum.length) return;
    const n = Math.max(frames, 2 * this.wsum.length, 1024);
    const acc = new Float64Array(n * this.C);
    acc.set(this.acc);
    const wsum = new Float64Array(n);
    wsum.set(this.wsum);
    this.acc = acc;
    this.wsum = wsum;
  }

  /** probs: Float32Array (>= k * C) of one window; only its first k frames are used. */
  add(start, probs, k) {
    this.grow(start + k);
    const C = this.C;
    for (let i = 0; i < k; i++) {
      const w = this.weights[i];
      for (let c = 0; c < C; c++) this.acc[(start + i) * C + c] += Math.fround(probs[i * C + c] * w);
      this.wsum[start + i] += w;
    }
    this.end = Math.max(this.end, start + k);
  }

  finish() {
    const C = this.C;
    const out = new Float32Array(this.end * C);
    for (let i = 0; i < this.end; i++) {
      if (!(this.wsum[i] > 0)) throw new Error(`frame ${i} is not covered by any window`);
      for (let c = 0; c < C; c++) out[i * C + c] = this.acc[i * C + c] / this.wsum[i];
    }
    return out;
  }
}
