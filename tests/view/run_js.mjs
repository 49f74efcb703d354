// Run one function of the page's pure modules on JSON from stdin (tests/test_view_js.py).
// Input: {"module": "postprocess.js", "call": "decideSong", "args": [...], "typed": {...}}
// Arguments named in `typed` are converted to the typed array named ("Float32Array", ...).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const input = JSON.parse(readFileSync(0, "utf8"));
const mod = await import(pathToFileURL(`${input.static}/${input.module}`).href);
const args = input.args.map((a, i) => (input.typed?.[i] ? globalThis[input.typed[i]].from(a) : a));
const plain = (v) =>
  ArrayBuffer.isView(v) ? Array.from(v) : Array.isArray(v) ? v.map(plain) :
  v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;
let out;
if (input.call === "LogMel.frames") {
  const [cfg, padded, nFrames] = args;
  const lm = new mod.LogMel(cfg);
  const res = new Float32Array(nFrames * cfg.n_mels);
  for (let t = 0; t < nFrames; t++) lm.frame(padded, t * cfg.hop_length, res.subarray(t * cfg.n_mels, (t + 1) * cfg.n_mels));
  out = res;
} else if (input.call === "Resampler.run") {
  const [inRate, outRate, x] = args;
  const r = new mod.Resampler(inRate, outRate);
  out = r.run(x, 0, 0, r.outputLength(x.length));
} else if (input.call === "Stitcher") {
  const [window, hop, C, starts, windows, reals] = args;
  const s = new mod.Stitcher(window, hop, C);
  starts.forEach((st, i) => s.add(st, Float32Array.from(windows[i]), reals[i]));
  out = s.finish();
} else {
  out = mod[input.call](...args);
}
process.stdout.write(JSON.stringify(plain(out)));
