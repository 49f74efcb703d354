// A user's audio file -> mono float32 chunks at the model's sample rate, with one-line errors.
// Compressed files (mp3/ogg/flac/...) up to MAX_COMPRESSED_BYTES are decoded whole by Web Audio
// at their own rate (read from the file's header); WAV files are read in chunks of
// CHUNK_SECONDS (bounded memory at any length). Channels are averaged, as
// iad_tf.audio.decode does. Resampling: when the model's rate divides the file's (44.1 kHz ->
// 22.05 kHz), the soxr-like filter of resample.js (what predict runs, within 0.2 dB in the
// top mel band); other ratios fall back to the browser's resampler, and the page says so
// (its earlier roll-off lowers the top mel bands by up to 7 dB). Chunks carry a margin of the
// filter's length on both sides, cut off again, so chunk seams do not show.

import { Resampler, resampleSignal } from "./resample.js";

export const MAX_COMPRESSED_BYTES = 64 * 1024 * 1024;
/** Longest compressed file decoded at once (its decoded samples are held in memory). */
export const MAX_DECODE_SECONDS = 30 * 60;
export const CHUNK_SECONDS = 30;
const MARGIN_SECONDS = 0.05;

export class AudioFileError extends Error {}

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

function gcd(a, b) {
  return b ? gcd(b, a % b) : a;
}

async function decodeBytes(bytes, sampleRate) {
  const ctx = new OfflineAudioContext(1, 1, sampleRate);
  try {
    return await ctx.decodeAudioData(bytes);
  } catch {
    return null;
  }
}

function mono(buffer) {
  const n = buffer.length;
  const out = new Float32Array(n);
  const k = buffer.numberOfChannels;
  for (let c = 0; c < k; c++) {
    const ch = buffer.getChannelData(c);
    for (let i = 0; i < n; i++) out[i] += ch[i];
  }
  if (k > 1) for (let i = 0; i < n; i++) out[i] /= k;
  return out;
}

/** The sample rate a compressed file decodes at, from its header (mp3, flac, ogg vorbis/opus),
 *  or null when unknown. */
export function sniffRate(b) {
  const ascii = (o, n) => String.fromCharCode(...b.subarray(o, o + n));
  if (ascii(0, 4) === "fLaC" && b.length > 21) return (b[18] << 12) | (b[19] << 4) | (b[20] >> 4);
  if (ascii(0, 4) === "OggS") {
    const text = ascii(0, Math.min(b.length, 512));
    if (text.includes("OpusHead")) return 48000;
    const i = text.indexOf("\x01vorbis");
    if (i >= 0 && i + 16 <= b.length) return new DataView(b.buffer, b.byteOffset).getUint32(i + 12, true);
    return null;
  }
  let pos = 0;
  if (ascii(0, 3) === "ID3" && b.length > 10) {
    pos = 10 + ((b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9]) + (b[5] & 0x10 ? 10 : 0);
  }
  for (; pos + 4 <= b.length; pos++) {
    if (b[pos] !== 0xff || (b[pos + 1] & 0xe0) !== 0xe0) continue;
    const version = (b[pos + 1] >> 3) & 3;
    const layer = (b[pos + 1] >> 1) & 3;
    const bitrate = b[pos + 2] >> 4;
    const rateIndex = (b[pos + 2] >> 2) & 3;
    if (version === 1 || layer === 0 || bitrate === 0 || bitrate === 15 || rateIndex === 3) continue;
    const base = [44100, 48000, 32000][rateIndex];
    return version === 3 ? base : version === 2 ? base / 2 : base / 4;
  }
  return null;
}

/** Seconds of a compressed file estimated from its header: exact for FLAC (STREAMINFO's
 *  sample count), for mp3 from the Xing/Info header's frame count (VBR) or else the first
 *  frame's bit rate (exact for constant bit rates);
 *  null when unknown. */
export function estimateSeconds(b, size) {
  const ascii = (o, n) => String.fromCharCode(...b.subarray(o, o + n));
  if (ascii(0, 4) === "fLaC" && b.length > 26) {
    const rate = (b[18] << 12) | (b[19] << 4) | (b[20] >> 4);
    const samples = (b[21] & 0x0f) * 2 ** 32 + ((b[22] << 24) >>> 0) + (b[23] << 16) + (b[24] << 8) + b[25];
    return rate > 0 && samples > 0 ? samples / rate : null;
  }
  let pos = 0;
  if (ascii(0, 3) === "ID3" && b.length > 10) {
    pos = 10 + ((b[6] << 21) | (b[7] << 14) | (b[8] << 7) | b[9]) + (b[5] & 0x10 ? 10 : 0);
  }
  const KBPS = {
    3: [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], // MPEG-1 layer III
    2: [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // MPEG-2/2.5 layer III
  };
  for (; pos + 4 <= b.length; pos++) {
    if (b[pos] !== 0xff || (b[pos + 1] & 0xe0) !== 0xe0) continue;
    const version = (b[pos + 1] >> 3) & 3;
    const layer = (b[pos + 1] >> 1) & 3;
    const index = b[pos + 2] >> 4;
    if (version === 1 || layer !== 1 || index === 0 || index === 15) continue; // layer III only
    const rate = [44100, 48000, 32000][(b[pos + 2] >> 2) & 3] / (version === 3 ? 1 : version === 2 ? 2 : 4);
    const perFrame = version === 3 ? 1152 : 576;
    // a Xing/Info (VBR) header in the first frame holds the frame count
    const first = ascii(pos, Math.min(200, b.length - pos));
    const tag = Math.max(first.indexOf("Xing"), first.indexOf("Info"));
    if (tag >= 0 && pos + tag + 12 <= b.length) {
      const v = new DataView(b.buffer, b.byteOffset);
      if (v.getUint32(pos + tag + 4) & 1) return (v.getUint32(pos + tag + 8) * perFrame) / rate;
    }
    const kbps = KBPS[version === 3 ? 3 : 2][index];
    return ((size - pos) * 8) / (kbps * 1000);
  }
  return null;
}

/** WAV header: {format, channels, rate, bits, dataStart, dataBytes} or null if not a WAV. */
export function parseWavHeader(view) {
  const tag = (o) => String.fromCharCode(view.getUint8(o), view.getUint8(o + 1), view.getUint8(o + 2), view.getUint8(o + 3));
  if (view.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") return null;
  let pos = 12;
  let fmt = null;
  while (pos + 8 <= view.byteLength) {
    const id = tag(pos);
    const size = view.getUint32(pos + 4, true);
    if (id === "fmt ") {
      let format = view.getUint16(pos + 8, true);
      if (format === 0xfffe && size >= 26) format = view.getUint16(pos + 32, true);
      fmt = {
        format,
        channels: view.getUint16(pos + 10, true),
        rate: view.getUint32(pos + 12, true),
        bits: view.getUint16(pos + 22, true),
      };
    } else if (id === "data") {
      if (!fmt) return null;
      return { ...fmt, dataStart: pos + 8, dataBytes: size };
    }
    pos += 8 + size + (size & 1);
  }
  return null;
}

function pcmToMono(bytes, h) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const B = h.bits / 8;
  const frames = Math.floor(bytes.byteLength / (B * h.channels));
  const out = new Float32Array(frames);
  const read =
    h.format === 3
      ? B === 4
        ? (o) => view.getFloat32(o, true)
        : (o) => view.getFloat64(o, true)
      : B === 1
        ? (o) => (view.getUint8(o) - 128) / 128
        : B === 2
          ? (o) => view.getInt16(o, true) / 32768
          : B === 3
            ? (o) => ((view.getUint8(o) | (view.getUint8(o + 1) << 8) | (view.getInt8(o + 2) << 16)) / 8388608)
            : (o) => view.getInt32(o, true) / 2147483648;
  for (let i = 0; i < frames; i++) {
    let s = 0;
    for (let c = 0; c < h.channels; c++) s += read((i * h.channels + c) * B);
    out[i] = s / h.channels;
  }
  return out;
}

/** A float32 mono WAV file (bytes) of samples at rate. */
function wavBytes(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 4);
  const v = new DataView(buf);
  const put = (o, s) => [...s].forEach((ch, i) => v.setUint8(o + i, ch.charCodeAt(0)));
  put(0, "RIFF");
  v.setUint32(4, 36 + samples.length * 4, true);
  put(8, "WAVE");
  put(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 3, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 32, true);
  put(36, "data");
  v.setUint32(40, samples.length * 4, true);
  new Float32Array(buf, 44).set(samples);
  return buf;
}

/**
 * Decode `file` (a File/Blob) and call `onChunk(Float32Array)` with consecutive mono chunks at
 * `sampleRate`; `onProgress(fraction)` as it goes. Returns {seconds, channels, sourceRate,
 * chunked}. Throws AudioFileError with a one-line message for files it cannot use.
 */
export async function decodeFile(file, sampleRate, onChunk, onProgress = () => {}) {
  if (file.size === 0) throw new AudioFileError(`${file.name}: empty file (0 bytes)`);
  const head = new Uint8Array(await file.slice(0, 1 << 16).arrayBuffer());
  const wav = parseWavHeader(new DataView(head.buffer));
  if (wav && [1, 3].includes(wav.format) && wav.channels > 0 && wav.bits % 8 === 0) {
    return decodeWavChunks(file, wav, sampleRate, onChunk, onProgress);
  }
  if (file.size > MAX_COMPRESSED_BYTES) {
    const mb = (file.size / 1048576).toFixed(0);
    throw new AudioFileError(
      `${file.name}: ${mb} MB of compressed audio is more than this page decodes at once ` +
        `(${MAX_COMPRESSED_BYTES / 1048576} MB); convert it to WAV (read in chunks) or use iad-tf predict`,
    );
  }
  const estimate = estimateSeconds(head, file.size);
  if (estimate !== null && estimate > MAX_DECODE_SECONDS) {
    throw new AudioFileError(
      `${file.name}: about ${Math.round(estimate / 60)} minutes of compressed audio is more than this page ` +
        `decodes at once (${MAX_DECODE_SECONDS / 60} minutes); convert it to WAV (read in chunks) or use iad-tf predict`,
    );
  }
  const native = sniffRate(head);
  const exact = native !== null && native % sampleRate === 0;
  const decoded = await decodeBytes(await file.arrayBuffer(), exact ? native : sampleRate);
  if (!decoded) {
    throw new AudioFileError(`${file.name}: cannot decode audio: not an audio file this browser can read (mp3/flac/wav/ogg), or corrupt`);
  }
  if (decoded.length === 0) throw new AudioFileError(`${file.name}: audio is empty`);
  let y = mono(decoded);
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i])) throw new AudioFileError(`${file.name}: audio holds NaN or infinite samples`);
  }
  if (exact) y = await resampleSignal(y, native, sampleRate);
  const step = sampleRate * CHUNK_SECONDS;
  for (let s = 0; s < y.length; s += step) {
    await onChunk(y.subarray(s, Math.min(y.length, s + step)));
    onProgress(Math.min(1, (s + step) / y.length));
    await nextTask(); // let the page paint the progress and answer input between chunks
  }
  const seconds = decoded.length / decoded.sampleRate;
  return { seconds, channels: decoded.numberOfChannels, sourceRate: exact ? native : null, chunked: false, browserResampled: !exact };
}

async function decodeWavChunks(file, h, sampleRate, onChunk, onProgress) {
  const frameBytes = (h.bits / 8) * h.channels;
  const dataBytes = Math.min(h.dataBytes, file.size - h.dataStart);
  const total = Math.floor(dataBytes / frameBytes);
  if (total === 0) throw new AudioFileError(`${file.name}: audio is empty`);
  // chunk and margin lengths in whole units of src/g samples map to whole output samples
  const g = gcd(h.rate, sampleRate);
  const unitIn = h.rate / g;
  const unitOut = sampleRate / g;
  const exact = h.rate % sampleRate === 0;
  const chunkUnits = Math.max(1, Math.round((CHUNK_SECONDS * h.rate) / unitIn));
  const filterMargin = exact && h.rate !== sampleRate ? new Resampler(h.rate, sampleRate).margin : 0;
  const marginUnits = Math.max(1, Math.ceil(Math.max(MARGIN_SECONDS * h.rate, filterMargin) / unitIn));
  let produced = 0;
  for (let startU = 0; startU * unitIn < total; startU += chunkUnits) {
    const a = startU * unitIn;
    const b = Math.min(total, (startU + chunkUnits) * unitIn);
    const lead = Math.min(a, marginUnits * unitIn);
    const tail = Math.min(total - b, marginUnits * unitIn);
    const bytes = new Uint8Array(
      await file.slice(h.dataStart + (a - lead) * frameBytes, h.dataStart + (b + tail) * frameBytes).arrayBuffer(),
    );
    const y = pcmToMono(bytes, h);
    let out;
    if (h.rate === sampleRate) {
      out = y.subarray(lead, lead + (b - a));
    } else if (exact) {
      const r = await resampleSignal(y, h.rate, sampleRate);
      const skip = (lead / unitIn) * unitOut;
      const end = b === total ? Math.round((total * sampleRate) / h.rate) : (b / unitIn) * unitOut;
      out = r.slice(skip, skip + Math.max(0, end - produced));
    } else {
      const decoded = await decodeBytes(wavBytes(y, h.rate), sampleRate);
      if (!decoded) throw new AudioFileError(`${file.name}: the browser could not resample its ${h.rate} Hz audio`);
      const r = decoded.getChannelData(0);
      const skip = (lead / unitIn) * unitOut;
      const end = b === total ? Math.round((total * sampleRate) / h.rate) : (b / unitIn) * unitOut;
      out = r.slice(skip, skip + Math.max(0, end - produced));
    }
    produced += out.length;
    await onChunk(out);
    onProgress(b / total);
    await nextTask();
  }
  return { seconds: total / h.rate, channels: h.channels, sourceRate: h.rate, chunked: total > chunkUnits * unitIn, browserResampled: !exact };
}
