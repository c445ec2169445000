// The drawing pad, and turning a drawing into an MNIST-like input: crop to the ink, shrink it
// (area averaging) so its longer side is 20 px, then place it in a 28×28 image with its
// centre of mass at the centre, as MNIST's digits were prepared.

/** Lets the user draw white strokes on a black canvas; calls `onStroke` while drawing. */
export function drawingPad(canvas, onStroke) {
  const ctx = canvas.getContext('2d');
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [
      ((e.clientX - r.left) * canvas.width) / r.width,
      ((e.clientY - r.top) * canvas.height) / r.height,
    ];
  };
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    last = at(e);
    line(last, last);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!last) return;
    const p = at(e);
    line(last, p);
    last = p;
    onStroke(false);
  });
  const end = () => {
    if (!last) return;
    last = null;
    onStroke(true);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);

  function line(a, b) {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = canvas.width / 14; // about MNIST's stroke width, relative to the digit
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(...a);
    ctx.lineTo(...b);
    ctx.stroke();
  }
  return { clear };
}

/** The drawing as 784 floats in [0, 1] (row-major 28×28), or null when nothing is drawn. */
export function toMnist(canvas) {
  const { width: w, height: h } = canvas;
  const rgba = canvas.getContext('2d').getImageData(0, 0, w, h).data;
  const ink = new Float32Array(w * h);
  let [x0, y0, x1, y1] = [w, h, -1, -1];
  for (let i = 0; i < w * h; i++) {
    const v = rgba[4 * i] / 255;
    ink[i] = v;
    if (v > 0.05) {
      const x = i % w;
      const y = (i - x) / w;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  if (x1 < 0) return null;

  // Shrink the ink's bounding box so its longer side is 20 px.
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const scale = 20 / Math.max(bw, bh);
  const sw = Math.max(1, Math.round(bw * scale));
  const sh = Math.max(1, Math.round(bh * scale));
  const small = new Float32Array(sw * sh);
  for (let ty = 0; ty < sh; ty++) {
    for (let tx = 0; tx < sw; tx++) {
      // Average the source pixels this target pixel covers.
      const sx0 = x0 + Math.floor((tx * bw) / sw);
      const sx1 = x0 + Math.max(Math.floor(((tx + 1) * bw) / sw), Math.floor((tx * bw) / sw) + 1);
      const sy0 = y0 + Math.floor((ty * bh) / sh);
      const sy1 = y0 + Math.max(Math.floor(((ty + 1) * bh) / sh), Math.floor((ty * bh) / sh) + 1);
      let sum = 0;
      for (let y = sy0; y < sy1; y++) for (let x = sx0; x < sx1; x++) sum += ink[y * w + x];
      small[ty * sw + tx] = sum / ((sx1 - sx0) * (sy1 - sy0));
    }
  }

  // Centre of mass, moved to the centre of the 28×28 image.
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const v = small[y * sw + x];
      mass += v;
      cx += v * (x + 0.5);
      cy += v * (y + 0.5);
    }
  }
  const dx = Math.round(14 - cx / mass);
  const dy = Math.round(14 - cy / mass);
  const out = new Float32Array(784);
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const tx = x + dx;
      const ty = y + dy;
      if (tx >= 0 && tx < 28 && ty >= 0 && ty < 28)
        out[ty * 28 + tx] = Math.min(1, small[y * sw + x]);
    }
  }
  return out;
}

/** Shows a 28×28 input on a small canvas, as the model sees it. */
export function showInput(canvas, pixels) {
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = Math.round(255 * (pixels ? pixels[i] : 0));
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}
