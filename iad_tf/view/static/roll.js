// Drawing: the piano roll (one row per instrument detected or annotated; probability as
// shade, decisions as bars, truth vs prediction colours) and one row's probability curve.

const ROW = 22;
/** Width (px) of the row labels left of the plot. */
export const LABEL = 150;

/** Class indices shown as rows: detected or annotated, in class order. */
function rows(r) {
  const C = r.meta.classes.length;
  const out = [];
  for (let c = 0; c < C; c++) {
    let on = false;
    for (let i = 0; i < r.frames && !on; i++) {
      on = r.decisions[i * C + c] === 1 || (r.truth && r.truth[i * C + c] === 1);
    }
    if (on) out.push(c);
  }
  return out;
}

export function drawRoll(canvas, r) {
  const shown = rows(r);
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = Math.max(1, shown.length) * ROW + 18;
  canvas.style.height = `${height}px`;
  canvas.width = width * dpr;
  canvas.height = height * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, width, height);
  const C = r.meta.classes.length;
  const plotW = width - LABEL;
  const cols = Math.max(1, Math.floor(plotW));
  const perCol = r.frames / cols;
  shown.forEach((c, k) => {
    const y = k * ROW;
    g.fillStyle = k % 2 ? "#f6f8fa" : "#ffffff";
    g.fillRect(0, y, width, ROW);
    g.fillStyle = "#1d232b";
    g.font = "12px system-ui, sans-serif";
    g.fillText(r.meta.classes[c], 4, y + 15);
    for (let x = 0; x < cols; x++) {
      const a = Math.floor(x * perCol);
      const b = Math.max(a + 1, Math.floor((x + 1) * perCol));
      let p = 0;
      let d = 0;
      let t = 0;
      for (let i = a; i < Math.min(b, r.frames); i++) {
        p = Math.max(p, r.probs[i * C + c]);
        d |= r.decisions[i * C + c];
        if (r.truth) t |= r.truth[i * C + c];
      }
      g.fillStyle = `rgba(58, 123, 213, ${(0.35 * p).toFixed(3)})`;
      g.fillRect(LABEL + x, y + 1, 1, ROW - 2);
      if (d || t) {
        g.fillStyle = !r.truth ? "#3a7bd5" : d && t ? "#2e9d4f" : d ? "#e58a00" : "#9aa6b2";
        g.fillRect(LABEL + x, y + 6, 1, ROW - 12);
      }
    }
  });
  g.fillStyle = "#66707c";
  g.font = "11px system-ui, sans-serif";
  const yAxis = shown.length * ROW + 13;
  const step = niceStep(r.seconds);
  for (let s = 0; s <= r.seconds; s += step) {
    g.fillText(`${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`, LABEL + (s / r.seconds) * plotW, yAxis);
  }
  return shown;
}

function niceStep(seconds) {
  for (const s of [5, 10, 15, 30, 60, 120, 300, 600]) if (seconds / s <= 12) return s;
  return 1200;
}

/** Class index under the mouse at offsetY, or null. */
export function rowAt(canvas, r, offsetY) {
  const k = Math.floor(offsetY / ROW);
  return r.rows && k >= 0 && k < r.rows.length ? r.rows[k] : null;
}

export function drawCurve(canvas, r, c) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight || 90;
  canvas.width = width * dpr;
  canvas.height = height * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, width, height);
  if (c == null) return;
  const C = r.meta.classes.length;
  const plotW = width - LABEL;
  g.fillStyle = "#1d232b";
  g.font = "12px system-ui, sans-serif";
  g.fillText(`${r.meta.classes[c]}: probability`, 4, 15);
  const t = r.meta.thresholds?.[c];
  if (t != null) {
    g.strokeStyle = "#e58a00";
    g.beginPath();
    g.moveTo(LABEL, height * (1 - t));
    g.lineTo(width, height * (1 - t));
    g.stroke();
  }
  g.strokeStyle = "#3a7bd5";
  g.beginPath();
  for (let x = 0; x < plotW; x++) {
    const a = Math.floor((x * r.frames) / plotW);
    const b = Math.max(a + 1, Math.floor(((x + 1) * r.frames) / plotW));
    let p = 0;
    for (let i = a; i < Math.min(b, r.frames); i++) p = Math.max(p, r.probs[i * C + c]);
    const y = (height - 2) * (1 - p) + 1;
    if (x === 0) g.moveTo(LABEL + x, y);
    else g.lineTo(LABEL + x, y);
  }
  g.stroke();
}
