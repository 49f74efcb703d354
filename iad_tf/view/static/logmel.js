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

/** In-place iterative radix-2 complex FFT of (re, im) (length n, a power of two) with a
 *  precomputed bit-reversal permutation and twiddles cos/sin(2 pi k / n), k < n / 2. */
function fft(re, im, rev, cos, sin) {
  const n = re.length;
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (i < j) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0, w = 0; k < half; k++, w += step) {
        const c = cos[w];
        const s = sin[w];
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

/** Log-mel of frames cut from padded audio: new LogMel(cfg).frame(samples, offset, out) fills
 *  out (n_mels). The power spectrum of the n_fft real samples comes from one complex FFT of
 *  n_fft / 2 points (even samples real, odd imaginary), untangled. */
export class LogMel {
  constructor(cfg) {
    const n = cfg.n_fft;
    if (n & (n - 1) || n < 4) throw new Error(`n_fft ${n} is not a power of two`);
    const h = n / 2;
    this.cfg = cfg;
    this.window = Float64Array.from({ length: n }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
    this.cosH = Float64Array.from({ length: h / 2 }, (_, k) => Math.cos((2 * Math.PI * k) / h));
    this.sinH = Float64Array.from({ length: h / 2 }, (_, k) => Math.sin((2 * Math.PI * k) / h));
    this.cosN = Float64Array.from({ length: h + 1 }, (_, k) => Math.cos((2 * Math.PI * k) / n));
    this.sinN = Float64Array.from({ length: h + 1 }, (_, k) => Math.sin((2 * Math.PI * k) / n));
    const bits = Math.log2(h);
    this.rev = Uint32Array.from({ length: h }, (_, i) => {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      return r;
    });
    this.rows = melFilterbank(cfg.sample_rate, n, cfg.n_mels, cfg.fmin, cfg.fmax);
    this.re = new Float64Array(h);
    this.im = new Float64Array(h);
    this.power = new Float64Array(h + 1);
    this.offsetDb = 10 * Math.log10(Math.max(cfg.amin, Math.abs(cfg.ref)));
  }

  /** Log-mel (n_mels) of samples[offset .. offset + n_fft) into out (Float32Array view). */
  frame(samples, offset, out) {
    const { cfg, re, im, power, window } = this;
    const h = cfg.n_fft / 2;
    for (let i = 0; i < h; i++) {
      re[i] = samples[offset + 2 * i] * window[2 * i];
      im[i] = samples[offset + 2 * i + 1] * window[2 * i + 1];
    }
    fft(re, im, this.rev, this.cosH, this.sinH);
    for (let k = 0; k <= h; k++) {
      const a = re[k % h];
      const b = im[k % h];
      const m = (h - k) % h;
      const c = re[m];
      const d = im[m];
      const er = (a + c) / 2; // even part
      const ei = (b - d) / 2;
      const or = (b + d) / 2; // odd part
      const oi = -(a - c) / 2;
      const cr = this.cosN[k];
      const sr = this.sinN[k];
      const xr = er + cr * or + sr * oi;
      const xi = ei + cr * oi - sr * or;
      let p = xr * xr + xi * xi;
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
