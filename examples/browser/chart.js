// A line chart on a canvas, no library: named series of (x, y) points, drawn to fit, with
// axes, a few gridlines and a legend.

const PAD = { left: 44, right: 12, top: 26, bottom: 24 };

export class Chart {
  /** `series`: { name: { color, dashed? } }; `yRange`: fixed [min, max], or null to fit. */
  constructor(canvas, { title, series, yRange = null, format = (v) => v.toFixed(2) }) {
    this.canvas = canvas;
    this.title = title;
    this.styles = series;
    this.yRange = yRange;
    this.format = format;
    this.data = Object.fromEntries(Object.keys(series).map((k) => [k, []]));
    this.xMax = 1;
    this.draw();
  }

  reset(xMax) {
    for (const k of Object.keys(this.data)) this.data[k] = [];
    this.xMax = xMax;
    this.draw();
  }

  add(name, x, y) {
    if (!Number.isFinite(y)) return;
    this.data[name].push([x, y]);
    this.draw();
  }

  bounds() {
    if (this.yRange) return this.yRange;
    const ys = Object.values(this.data).flatMap((pts) => pts.map((p) => p[1]));
    if (ys.length === 0) return [0, 1];
    const hi = Math.max(...ys);
    return [0, hi > 0 ? hi * 1.1 : 1];
  }

  draw() {
    const { canvas } = this;
    // Draw at the screen's pixel density so lines stay sharp.
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);

    const [y0, y1] = this.bounds();
    const px = (x) => PAD.left + (x / this.xMax) * (w - PAD.left - PAD.right);
    const py = (y) => h - PAD.bottom - ((y - y0) / (y1 - y0)) * (h - PAD.top - PAD.bottom);

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#555';
    ctx.strokeStyle = '#e4e4e4';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      ctx.beginPath();
      ctx.moveTo(PAD.left, py(y));
      ctx.lineTo(w - PAD.right, py(y));
      ctx.stroke();
      ctx.fillText(this.format(y), PAD.left - 6, py(y));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const step = Math.max(1, Math.ceil(this.xMax / 10));
    for (let x = 0; x <= this.xMax; x += step) ctx.fillText(String(x), px(x), h - PAD.bottom + 6);

    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#222';
    ctx.font = '600 12px system-ui, sans-serif';
    ctx.fillText(this.title, PAD.left, 12);
    let legendX = PAD.left + ctx.measureText(this.title).width + 16;
    ctx.font = '11px system-ui, sans-serif';

    for (const [name, style] of Object.entries(this.styles)) {
      ctx.strokeStyle = style.color;
      ctx.fillStyle = style.color;
      ctx.lineWidth = 2;
      ctx.setLineDash(style.dashed ? [5, 3] : []);
      ctx.beginPath();
      this.data[name].forEach(([x, y], i) =>
        i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y)),
      );
      ctx.stroke();
      if (style.dots)
        for (const [x, y] of this.data[name]) ctx.fillRect(px(x) - 2, py(y) - 2, 4, 4);
      ctx.beginPath();
      ctx.moveTo(legendX, 12);
      ctx.lineTo(legendX + 16, 12);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillText(name, legendX + 20, 12);
      legendX += 28 + ctx.measureText(name).width;
    }
  }
}
