// Song -> per-frame probabilities with an exported iad-tf model in LiteRT.js, fed block by
// block (bounded memory): mono samples at the model's rate arrive in chunks; each window runs
// as soon as its samples are in. Waveform models (input `audio`) get each window's samples
// with its centring context, exactly as iad_tf/inference/waveform.py cuts them; log-mel models
// (input `mel`) get LogMel frames (logmel.js), cut as iad_tf/inference/windows.py cuts them.

import { Tensor } from "./vendor/litertjs/core.js";
import { LogMel } from "./logmel.js";
import { Stitcher } from "./windows.js";

/** Growing sample store that forgets what no later window needs. */
class Samples {
  constructor() {
    this.data = new Float32Array(1 << 16);
    this.base = 0; // absolute index of data[0]
    this.length = 0; // samples stored from base
  }
  get total() {
    return this.base + this.length;
  }
  push(chunk) {
    if (this.length + chunk.length > this.data.length) {
      const grown = new Float32Array(Math.max(2 * this.data.length, this.length + chunk.length));
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    this.data.set(chunk, this.length);
    this.length += chunk.length;
  }
  /** Copy absolute samples [from, from + n) into out; zeros outside what was pushed. */
  read(from, n, out) {
    out.fill(0);
    const a = Math.max(from, this.base);
    const b = Math.min(from + n, this.total);
    if (b > a) out.set(this.data.subarray(a - this.base, b - this.base), a - from);
    return out;
  }
  forget(before) {
    const d = Math.min(Math.max(0, before - this.base), this.length);
    if (d === 0) return;
    this.data.copyWithin(0, d, this.length);
    this.base += d;
    this.length -= d;
  }
}

export class SongRunner {
  /** model: CompiledModel, meta: embedded metadata, variant: "waveform" | "mel". */
  constructor(model, meta, variant) {
    this.model = model;
    this.meta = meta;
    this.variant = variant;
    const f = meta.feature_config;
    this.cfg = f;
    this.W = meta.window_frames;
    this.H = meta.hop_frames;
    this.C = meta.classes.length;
    this.half = f.n_fft / 2;
    this.samples = new Samples();
    this.stitcher = new Stitcher(this.W, this.H, this.C);
    this.next = 0; // start frame of the next regular window
    this.windows = 0;
    this.modelMs = 0;
    this.melMs = 0; // log-mel in JS (log-mel models)
    if (variant === "waveform") {
      this.inputLength = (this.W - 1) * f.hop_length + f.n_fft;
      this.input = new Float32Array(this.inputLength);
    } else {
      this.logmel = new LogMel(f);
      this.frameBuf = new Float32Array(f.n_fft);
      this.mel = new Float32Array(0); // (frames, n_mels) computed from melBase on
      this.melBase = 0;
      this.melFrames = 0; // frames computed (absolute count)
      this.input = new Float32Array(this.W * f.n_mels);
    }
  }

  /** Frames of a song of n samples (librosa center=True). */
  framesFor(n) {
    return 1 + Math.floor(n / this.cfg.hop_length);
  }

  async feed(chunk) {
    this.samples.push(chunk);
    const hop = this.cfg.hop_length;
    const total = this.samples.total;
    if (this.variant === "mel") this.computeMel(false);
    // a regular window ends before the song's last frame, and all its samples are in
    while (this.next + this.W < this.framesFor(total) && this.ready(this.next)) {
      await this.runWindow(this.next, this.W);
      this.next += this.H;
    }
    const keepFrom = Math.min(this.next, Math.max(0, this.framesFor(total) - this.W));
    this.samples.forget(keepFrom * hop - this.half);
    if (this.variant === "mel") this.forgetMel(keepFrom);
  }

  ready(start) {
    if (this.variant === "mel") return start + this.W <= this.melFrames;
    const lastSample = (start + this.W - 1) * this.cfg.hop_length + this.half; // song index
    return lastSample < this.samples.total;
  }

  /** Probabilities Float32Array (frames * C) of the whole song; call after the last feed. */
  async finish() {
    const n = this.framesFor(this.samples.total);
    if (this.samples.total === 0) throw new Error("the audio holds no samples");
    this.final = true;
    if (this.variant === "mel") this.computeMel(true);
    while (this.next + this.W < n) {
      await this.runWindow(this.next, this.W);
      this.next += this.H;
    }
    const last = n < this.W ? 0 : n - this.W;
    await this.runWindow(last, Math.min(this.W, n - last));
    this.frames = n;
    return this.stitcher.finish();
  }

  async runWindow(start, real) {
    const f = this.cfg;
    let inputs;
    if (this.variant === "waveform") {
      this.samples.read(start * f.hop_length - this.half, this.inputLength, this.input);
      inputs = { audio: new Tensor(this.input, [1, this.inputLength]) };
    } else {
      this.melWindow(start, this.input);
      inputs = { mel: new Tensor(this.input, [1, this.W, f.n_mels]) };
    }
    const t0 = performance.now();
    const out = await this.model.run(inputs);
    this.modelMs += performance.now() - t0;
    for (const t of Object.values(inputs)) t.delete();
    const probs = out.probs.toTypedArray();
    this.stitcher.add(start, probs, real);
    for (const t of Object.values(out)) t.delete();
    this.windows += 1;
  }

  // ---- log-mel models: frames from the samples, then windows of frames
  computeMel(final) {
    const t0 = performance.now();
    this.computeMelFrames(final);
    this.melMs += performance.now() - t0;
  }

  computeMelFrames(final) {
    const f = this.cfg;
    const M = f.n_mels;
    const total = this.samples.total;
    const n = this.framesFor(total);
    // frame t needs song samples [t*hop - n_fft/2, t*hop + n_fft/2); past the end they are 0
    let t = this.melFrames;
    const lastReady = final ? n - 1 : Math.floor((total - this.half) / f.hop_length) - 1;
    if (lastReady < t) return;
    const add = lastReady - t + 1;
    const have = this.melFrames - this.melBase;
    if ((have + add) * M > this.mel.length) {
      const grown = new Float32Array(Math.max(2 * this.mel.length, (have + add) * M));
      grown.set(this.mel.subarray(0, have * M));
      this.mel = grown;
    }
    for (; t <= lastReady; t++) {
      this.samples.read(t * f.hop_length - this.half, f.n_fft, this.frameBuf);
      this.logmel.frame(this.frameBuf, 0, this.mel.subarray((t - this.melBase) * M, (t - this.melBase + 1) * M));
    }
    this.melFrames = lastReady + 1;
  }

  forgetMel(before) {
    const M = this.cfg.n_mels;
    const d = Math.min(Math.max(0, before - this.melBase), this.melFrames - this.melBase);
    if (d === 0) return;
    this.mel.copyWithin(0, d * M, (this.melFrames - this.melBase) * M);
    this.melBase += d;
  }

  melWindow(start, out) {
    const M = this.cfg.n_mels;
    const avail = Math.min(this.W, this.melFrames - start);
    out.set(this.mel.subarray((start - this.melBase) * M, (start - this.melBase + avail) * M));
    if (avail < this.W) out.fill(this.silenceDb(), avail * M); // a song shorter than a window
  }

  silenceDb() {
    return this.logmel.compress(0);
  }
}
