// The iad_tf_metadata JSON embedded in a .tflite flatbuffer (Model.metadata -> Model.buffers),
// read with a few lines of flatbuffer arithmetic: the page needs no flatbuffer library.
// Mirrors iad_tf/inference/embedded.py (read_embedded).

export const METADATA_NAME = "iad_tf_metadata";

// Model table fields (TFLite schema): buffers = 4, metadata = 6, signature_defs = 7.
const MODEL_BUFFERS = 4;
const MODEL_METADATA = 6;

function field(view, table, index) {
  // Absolute position of field `index` of the table at `table`, or 0 when absent.
  const vtable = table - view.getInt32(table, true);
  const vsize = view.getUint16(vtable, true);
  const slot = 4 + 2 * index;
  if (slot >= vsize) return 0;
  const off = view.getUint16(vtable + slot, true);
  return off ? table + off : 0;
}

function deref(view, pos) {
  return pos + view.getUint32(pos, true);
}

function vector(view, table, index) {
  // [start, length] of a vector field, or null when absent.
  const pos = field(view, table, index);
  if (!pos) return null;
  const vec = deref(view, pos);
  return [vec + 4, view.getUint32(vec, true)];
}

function string(bytes, view, table, index) {
  const v = vector(view, table, index);
  return v ? new TextDecoder().decode(bytes.subarray(v[0], v[0] + v[1])) : "";
}

/** The embedded metadata object of TFLite bytes (Uint8Array), or null if there is none.
 *  Throws an Error naming the problem for bytes that are not a TFLite model. */
export function readEmbedded(bytes) {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== "TFL3") {
    throw new Error("not a TFLite model (no 'TFL3' identifier)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const model = deref(view, 0);
  const metas = vector(view, model, MODEL_METADATA);
  const buffers = vector(view, model, MODEL_BUFFERS);
  if (!metas || !buffers) return null;
  for (let i = 0; i < metas[1]; i++) {
    const entry = deref(view, metas[0] + 4 * i);
    if (string(bytes, view, entry, 0) !== METADATA_NAME) continue;
    const bufPos = field(view, entry, 1);
    const index = bufPos ? view.getUint32(bufPos, true) : 0;
    if (index >= buffers[1]) throw new Error(`${METADATA_NAME} points at a missing buffer`);
    const buffer = deref(view, buffers[0] + 4 * index);
    let raw = null;
    const offPos = field(view, buffer, 1);
    const offset = offPos ? Number(view.getBigUint64(offPos, true)) : 0;
    if (offset > 1) {
      const sizePos = field(view, buffer, 2);
      const size = sizePos ? Number(view.getBigUint64(sizePos, true)) : 0;
      raw = bytes.subarray(offset, offset + size);
    } else {
      const data = vector(view, buffer, 0);
      raw = data ? bytes.subarray(data[0], data[0] + data[1]) : new Uint8Array(0);
    }
    const value = JSON.parse(new TextDecoder().decode(raw));
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error(`embedded ${METADATA_NAME} is not a JSON object`);
    }
    return value;
  }
  return null;
}
