// The page: load the session (model, and what `iad-tf predict` wrote, if anything), run the
// model on a dropped or picked file in this tab, draw the instruments and the roll, follow
// playback. State for tests: body[data-state] = loading | ready | working | done | error, and
// window.iadView = {meta, variant, result, timing}.

import { loadLiteRt, loadAndCompile } from "./vendor/litertjs/core.js";
import { readEmbedded } from "./tflite_meta.js";
import { decideSong } from "./postprocess.js";
import { SongRunner } from "./runner.js";
import { decodeFile, AudioFileError } from "./audio.js";
import { drawRoll, drawCurve, rowAt, LABEL } from "./roll.js";

const $ = (id) => document.getElementById(id);
const view = (window.iadView = { meta: null, variant: null, result: null, timing: null, session: null });
let model = null;

function setState(state) {
  document.body.dataset.state = state;
}

function message(text, kind = "") {
  $("message").textContent = text;
  $("message").className = kind;
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function start() {
  const session = await (await fetch("session.json")).json();
  view.session = session;
  if (session.predictions?.length) showSongList(session.predictions);
  if (!session.model) {
    $("model-name").textContent = "no model: showing saved predictions only";
    setState("ready");
    return;
  }
  const bytes = await fetchBytes(session.model.url);
  const meta = readEmbedded(bytes);
  if (!meta) throw new Error(`${session.model.name}: no embedded iad_tf_metadata (export it with iad-tf export)`);
  view.meta = meta;
  // threads need cross-origin isolation (iad-tf view sends the headers; a static host may not)
  // ?threads=N caps them (the benchmark compares with predict's single thread)
  const cap = Number(new URLSearchParams(location.search).get("threads")) || 4;
  const numThreads = self.crossOriginIsolated === true ? Math.max(1, Math.min(cap, navigator.hardwareConcurrency || 1)) : 1;
  await loadLiteRt(new URL("vendor/litertjs/wasm/", document.baseURI).href, { threads: numThreads > 1 });
  model = await loadAndCompile(bytes, { accelerator: "wasm", cpuOptions: { numThreads } });
  view.threads = numThreads;
  const names = model.getInputDetails().map((d) => d.name);
  view.variant = names.some((n) => n.includes("audio")) ? "waveform" : "mel";
  $("model-name").textContent = `${session.model.name} (${view.variant} in, ${meta.feature_config.sample_rate} Hz, ${meta.classes.length} instruments)`;
  setState("ready");
}

async function analyse(file) {
  if (!model) return message("the model is not loaded yet", "error");
  setState("working");
  message(`decoding and analysing ${file.name}…`);
  $("progress").hidden = false;
  $("progress").value = 0;
  const meta = view.meta;
  const t0 = performance.now();
  const runner = new SongRunner(model, meta, view.variant);
  try {
    const info = await decodeFile(file, meta.feature_config.sample_rate, (chunk) => runner.feed(chunk), (f) => {
      $("progress").value = f;
    });
    const probs = await runner.finish();
    const frames = runner.frames;
    const t1 = performance.now();
    const decided = decideSong(probs, frames, meta, info.seconds);
    const t2 = performance.now();
    view.timing = {
      total_ms: t2 - t0,
      model_ms: runner.modelMs,
      logmel_ms: runner.melMs,
      decode_ms: t1 - t0 - runner.modelMs - runner.melMs, // decode, resample, windows, stitching
      decide_ms: t2 - t1,
      windows: runner.windows,
      seconds: info.seconds,
    };
    const notes = [];
    if (info.channels > 2) notes.push(`${info.channels} channels averaged to mono, as iad-tf predict does`);
    if (info.chunked) notes.push(`read in chunks of 30 s`);
    if (info.browserResampled) {
      notes.push(`resampled to ${meta.feature_config.sample_rate} Hz by the browser, not by predict's filter: probabilities differ a little`);
    }
    const truth = await truthFor(frames, meta.classes.length);
    show({ name: file.name, probs, frames, meta, seconds: info.seconds, ...decided, audioUrl: URL.createObjectURL(file), truth });
    message(notes.length ? `note: ${notes.join("; ")}` : "", notes.length ? "note" : "");
    $("timing").textContent = `analysed ${info.seconds.toFixed(1)} s of audio in ${(view.timing.total_ms / 1000).toFixed(2)} s (${runner.windows} model windows, ${(runner.modelMs / 1000).toFixed(2)} s in the model)`;
    setState("done");
  } catch (err) {
    const text = err instanceof AudioFileError ? err.message : `${file.name}: ${err.message || err}`;
    message(text, "error");
    setState("error");
  } finally {
    $("progress").hidden = true;
  }
}

/** The session's annotation (iad-tf view --truth) on `frames` frames, or null. */
async function truthFor(frames, C) {
  const t = view.session.truth;
  if (!t) return null;
  const raw = await fetchBytes(t.url);
  const out = new Uint8Array(frames * C); // frames after the annotation's end: silent
  out.set(raw.subarray(0, Math.min(raw.length, frames * C)));
  return out;
}

function showSongList(predictions) {
  $("songs-line").hidden = false;
  const sel = $("songs");
  sel.innerHTML = '<option value="">choose a song…</option>';
  predictions.forEach((p, i) => sel.add(new Option(p.name, String(i))));
  sel.onchange = () => sel.value !== "" && openPrediction(predictions[Number(sel.value)]);
}

async function openPrediction(p) {
  setState("working");
  message(`opening ${p.name}…`);
  try {
    const doc = await (await fetch(p.json)).json();
    const raw = await fetchBytes(p.probs);
    const C = doc.classes.length;
    const probs = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    const frames = probs.length / C;
    const dec = await fetchBytes(p.decisions);
    const truth = p.truth ? await fetchBytes(p.truth) : null;
    show({
      name: p.name,
      probs,
      frames,
      meta: { classes: doc.classes },
      frameSeconds: doc.frame_seconds,
      seconds: doc.duration_s,
      decisions: dec,
      instruments: doc.instruments,
      segments: doc.segments,
      audioUrl: p.audio,
      truth,
    });
    message(p.audio ? "" : "the audio file named in the prediction was not found: no playback", p.audio ? "" : "note");
    setState("done");
  } catch (err) {
    message(`${p.name}: ${err.message || err}`, "error");
    setState("error");
  }
}

function show(r) {
  view.result = r;
  r.frameSeconds ??= r.meta.feature_config.hop_length / r.meta.feature_config.sample_rate;
  $("result").hidden = false;
  $("title").textContent = r.name;
  const player = $("player");
  if (r.audioUrl) player.src = r.audioUrl;
  else player.removeAttribute("src");
  const list = $("instruments");
  list.innerHTML = "";
  if (!r.instruments.length) list.innerHTML = "<li>no instrument detected</li>";
  for (const inst of r.instruments) {
    const li = document.createElement("li");
    li.dataset.instrument = inst.instrument;
    li.innerHTML = `<b></b> ${inst.confidence.toFixed(2)}, ${inst.seconds_active.toFixed(1)} s`;
    li.querySelector("b").textContent = inst.instrument;
    li.onclick = () => seekTo(inst.instrument);
    list.appendChild(li);
  }
  redraw();
  $("legend").textContent = r.truth
    ? "rows: instruments predicted or annotated; green: predicted and annotated, orange: predicted only, grey: annotated only. Click a row to hear it, hover for its probability."
    : "rows: instruments detected; shade: probability, bar: decision. Click a row to hear it, hover for its probability.";
}

function redraw() {
  const r = view.result;
  if (!r) return;
  r.rows = drawRoll($("roll"), r);
  drawCurve($("curve"), r, r.hoverRow ?? r.rows[0] ?? null);
}

function seekTo(instrument) {
  const r = view.result;
  const seg = r.segments.find((s) => s.instrument === instrument);
  if (!seg) return;
  const player = $("player");
  player.currentTime = seg.start_s;
  player.play().catch(() => {});
}

function followPlayback() {
  const r = view.result;
  const player = $("player");
  if (r && r.seconds > 0) {
    const x = LABEL + Math.min(1, player.currentTime / r.seconds) * ($("roll").clientWidth - LABEL);
    $("playhead").style.left = `${x}px`;
  }
  requestAnimationFrame(followPlayback);
}

function wire() {
  $("file").addEventListener("change", (e) => e.target.files[0] && analyse(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer.files[0];
    if (f) analyse(f);
  });
  const roll = $("roll");
  roll.addEventListener("mousemove", (e) => {
    const r = view.result;
    if (!r) return;
    const row = rowAt(roll, r, e.offsetY);
    if (row !== r.hoverRow) {
      r.hoverRow = row;
      drawCurve($("curve"), r, row);
    }
  });
  roll.addEventListener("click", (e) => {
    const r = view.result;
    const row = r && rowAt(roll, r, e.offsetY);
    if (row != null) seekTo(r.meta.classes[row]);
  });
  window.addEventListener("resize", redraw);
  requestAnimationFrame(followPlayback);
}

wire();
start().catch((err) => {
  message(`could not start: ${err.message || err}`, "error");
  setState("error");
});
