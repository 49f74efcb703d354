// Frame decisions from probabilities, exactly as iad_tf/postprocess.py and
// iad_tf/inference/predict.py (song_instruments) and segments.py compute them:
// per-class thresholds (p >= t in float32), majority-vote median window, song-level presence
// gate (mean of the top `seconds` of each class's probabilities; one_of groups keep their
// best present member), then instruments and segments. Pure functions, no DOM.

/** Presence confidence of a model without a presence gate (predict's default). */
export const DEFAULT_CONFIDENCE_SECONDS = 3.0;

/** probs: Float32Array (frames * C) row-major -> Uint8Array decisions (frames * C). */
export function binarize(probs, frames, C, thresholds) {
  const t = Float32Array.from(thresholds); // numpy casts the thresholds to float32
  const out = new Uint8Array(frames * C);
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < C; c++) out[i * C + c] = probs[i * C + c] >= t[c] ? 1 : 0;
  }
  return out;
}

/** Majority vote over an odd `window` along time, edges padded by repeating the end frames. */
export function medianFilter(dec, frames, C, window) {
  if (window <= 1 || frames === 0) return Uint8Array.from(dec);
  if (window % 2 === 0) throw new Error(`median window must be odd, got ${window}`);
  const half = (window - 1) / 2;
  const out = new Uint8Array(frames * C);
  for (let c = 0; c < C; c++) {
    const at = (i) => dec[Math.min(Math.max(i, 0), frames - 1) * C + c];
    let votes = 0;
    for (let j = -half; j <= half; j++) votes += at(j);
    for (let i = 0; i < frames; i++) {
      out[i * C + c] = votes > half ? 1 : 0;
      votes += at(i + half + 1) - at(i - half);
    }
  }
  return out;
}

/** (C,) mean of the `topFrames` highest probabilities of each class. */
export function presenceScores(probs, frames, C, topFrames) {
  const scores = new Float64Array(C);
  if (frames === 0) return scores;
  const k = Math.min(Math.max(1, topFrames), frames);
  const col = new Float32Array(frames);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < frames; i++) col[i] = probs[i * C + c];
    col.sort();
    let s = 0;
    for (let i = frames - k; i < frames; i++) s += col[i];
    scores[c] = Math.fround(s / k);
  }
  return scores;
}

/** The presence gate of a metadata dict: {threshold, seconds, oneOf: [[class index]]} or null. */
export function presenceGate(meta) {
  const p = meta.presence;
  if (!p || Object.keys(p).length === 0) return null;
  const oneOf = (p.one_of || []).map((g) =>
    g.map((c) => {
      if (typeof c === "number") return c;
      const i = meta.classes.indexOf(c);
      if (i < 0) throw new Error(`presence.one_of names an unknown class ${c}`);
      return i;
    }),
  );
  return { threshold: Number(p.threshold), seconds: Number(p.seconds), oneOf };
}

export function topFrames(seconds, frameSeconds) {
  // Python's round() is round-half-even; the two differ only on exact .5 ties.
  const x = seconds / frameSeconds;
  const r = Math.round(x);
  const even = Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
  return Math.max(1, even);
}

/** bool (C,) presence from scores. */
export function presentFromScores(gate, scores) {
  const present = Array.from(scores, (s) => s >= gate.threshold);
  for (const group of gate.oneOf) {
    if (group.filter((c) => present[c]).length > 1) {
      let best = -1;
      for (const c of group) if (present[c] && (best < 0 || scores[c] > scores[best])) best = c;
      for (const c of group) present[c] = false;
      present[best] = true;
    }
  }
  return present;
}

/** A song's decisions, presence and instruments from its probabilities and model metadata.
 *  Returns {decisions: Uint8Array (frames * C), present: bool[], instruments, segments}. */
export function decideSong(probs, frames, meta, durationS, medianWindow = null) {
  const C = meta.classes.length;
  const fs = meta.feature_config.hop_length / meta.feature_config.sample_rate;
  const window = medianWindow ?? meta.median_window;
  let decisions = medianFilter(binarize(probs, frames, C, meta.thresholds), frames, C, window);
  const gate = presenceGate(meta);
  let present = new Array(C).fill(true);
  if (gate) {
    present = presentFromScores(gate, presenceScores(probs, frames, C, topFrames(gate.seconds, fs)));
    for (let i = 0; i < frames; i++) {
      for (let c = 0; c < C; c++) if (!present[c]) decisions[i * C + c] = 0;
    }
  }
  const confGate = gate || { threshold: 0, seconds: DEFAULT_CONFIDENCE_SECONDS, oneOf: [] };
  const conf = presenceScores(probs, frames, C, topFrames(confGate.seconds, fs));
  return {
    decisions,
    present,
    instruments: songInstruments(meta.classes, decisions, frames, conf, fs),
    segments: toSegments(decisions, probs, frames, meta.classes, fs, durationS),
  };
}

function round(x, digits) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Classes with an active frame: {instrument, confidence, seconds_active}, most active first. */
export function songInstruments(classes, decisions, frames, conf, frameSeconds) {
  const C = classes.length;
  const out = [];
  for (let c = 0; c < C; c++) {
    let active = 0;
    for (let i = 0; i < frames; i++) active += decisions[i * C + c];
    if (active > 0) {
      out.push({
        instrument: classes[c],
        confidence: round(conf[c], 4),
        seconds_active: round(active * frameSeconds, 2),
      });
    }
  }
  out.sort((a, b) => b.seconds_active - a.seconds_active || (a.instrument < b.instrument ? -1 : 1));
  return out;
}

/** [start, end) runs of active frames of class c. */
export function runs(decisions, frames, C, c) {
  const out = [];
  let start = -1;
  for (let i = 0; i <= frames; i++) {
    const on = i < frames && decisions[i * C + c] === 1;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      out.push([start, i]);
      start = -1;
    }
  }
  return out;
}

/** Segments {instrument, start_s, end_s, confidence (mean probability)} sorted by start. */
export function toSegments(decisions, probs, frames, classes, frameSeconds, durationS) {
  const C = classes.length;
  const out = [];
  for (let c = 0; c < C; c++) {
    for (const [a, b] of runs(decisions, frames, C, c)) {
      let s = 0;
      for (let i = a; i < b; i++) s += probs[i * C + c];
      const end = durationS == null ? b * frameSeconds : Math.min(b * frameSeconds, durationS);
      out.push({
        instrument: classes[c],
        start_s: round(a * frameSeconds, 4),
        end_s: round(end, 4),
        confidence: round(s / (b - a), 4),
      });
    }
  }
  out.sort((x, y) => x.start_s - y.start_s || (x.instrument < y.instrument ? -1 : 1));
  return out;
}
