// THE log-mel of iad_tf/audio.py (logmel_frames / frames_logmel) in JavaScript, for models
// that take log-mel windows: periodic Hann, power spectrum by a radix-2 real FFT, Slaney mel
// filterbank (librosa's), compression "db" or "log10_1p". Float64 throughout, float32 out.

const F_SP = 200.0 / 3;
const MIN_LOG_HZ = 1000.0;
const MIN_LOG_MEL = MIN_LOG_HZ / F_SP;
const LOGSTEP = Math.log(6.4) / 27.0;

function hzToMel(hz) {
  return hz >= MIN_LOG_HZ ? MIN_LOG_MEL + Math.log(Math.max(hz, 1e-10) / MIN_LOG_HZ) / LOGSTEP : hz / F_SP;
}
function melToHz(mel) {
  return mel >= MIN_LOG_MEL ? MIN_LOG_HZ * Math.exp(LOGSTEP * (mel - MIN_LOG_MEL)) : F_SP * mel;
}

/** Slaney filters as sparse rows: [{first, weights: Float64Array}] (n_mels). */
export function melFilterbank(sampleRate, nFft, nMels, fmin, fmax) {
  const top = fmax == null ? sampleRate / 2 : fmax;
  const bins = nFft / 2 + 1;
  const fftFreqs = Float64Array.from({ length: bins }, (_, k) => (k * sampleRate) / nFft);
  const lo = hzToMel(fmin);
  const hi = hzToMel(top);
  const melF = Float64Array.from({ length: nMels + 2 }, (_, i) => melToHz(lo + ((hi - lo) * i) / (nMels + 1)));
  const rows = [];
  for (let m = 0; m < nMels; m++) {
    const enorm = 2.0 / (melF[m + 2] - melF[m]);
    const w = new Float64Array(bins);
    let first = -1;
    let last = -1;
    for (let k = 0; k < bins; k++) {
      const lower = -(melF[m] - fftFreqs[k]) / (melF[m + 1] - melF[m]);
      const upper = (melF[m + 2] - fftFreqs[k]) / (melF[m + 2] - melF[m + 1]);
      const v = Math.max(0, Math.min(lower, upper)) * enorm;
      w[k] = v;
      if (v > 0) {
        if (first < 0) first = k;
        last = k;
      }
    }
    rows.push(first < 0 ? { first: 0, weights: new Float64Array(0) } : { first, weights: w.slice(first, last + 1) });
  }
  return rows;
}

/** In-place iterative radix-2 complex FFT of (re, im), n a power of two. */
function fft(re, im, cos, sin) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const c = cos[k * step];
        const s = sin[k * step];
        const a = start + k;
        const b = a + half;
        const tr = re[b] * c + im[b] * s;
        const ti = im[b] * c - re[b] * s;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
}

/** Log-mel of frames cut from padded audio: new LogMel(cfg).frame(samples, offset) -> Float32Array (n_mels). */
export class LogMel {
  constructor(cfg) {
    const n = cfg.n_fft;
    if (n & (n - 1)) throw new Error(`n_fft ${n} is not a power of two`);
    this.cfg = cfg;
    this.window = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    this.cos = Float64Array.from({ length: n / 2 }, (_, k) => Math.cos((2 * Math.PI * k) / n));
    this.sin = Float64Array.from({ length: n / 2 }, (_, k) => Math.sin((2 * Math.PI * k) / n));
    this.rows = melFilterbank(cfg.sample_rate, n, cfg.n_mels, cfg.fmin, cfg.fmax);
    this.re = new Float64Array(n);
    this.im = new Float64Array(n);
    this.power = new Float64Array(n / 2 + 1);
    this.offsetDb = 10 * Math.log10(Math.max(cfg.amin, Math.abs(cfg.ref)));
  }

  /** Log-mel (n_mels) of samples[offset .. offset + n_fft) into out (Float32Array view). */
  frame(samples, offset, out) {
    const { cfg, re, im, power } = this;
    const n = cfg.n_fft;
    for (let i = 0; i < n; i++) {
      re[i] = samples[offset + i] * this.window[i];
      im[i] = 0;
    }
    fft(re, im, this.cos, this.sin);
    for (let k = 0; k <= n / 2; k++) {
      let p = re[k] * re[k] + im[k] * im[k];
      if (cfg.power !== 2.0) p = p ** (cfg.power / 2.0);
      power[k] = p;
    }
    for (let m = 0; m < this.rows.length; m++) {
      const { first, weights } = this.rows[m];
      let s = 0;
      for (let k = 0; k < weights.length; k++) s += weights[k] * power[first + k];
      out[m] = this.compress(s);
    }
    return out;
  }

  compress(s) {
    const cfg = this.cfg;
    if (cfg.compression === "log10_1p") return Math.log10(1 + cfg.log_gain * s);
    return 10 * Math.log10(Math.max(cfg.amin, s)) - this.offsetDb;
  }
}
