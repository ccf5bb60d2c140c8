// The slice viewer: one canvas drawing a slice, its mask overlay and prompt markers,
// and turning mouse input into clicks, boxes, scrolling, zoom and pan.

const CLICK_SLOP_PX = 5;
const POSITIVE = "#3cb44b";
// Patient directions at the top, bottom, left and right of each view (radiological convention).
const EDGES = {
  axial: ["A", "P", "R", "L"],
  coronal: ["S", "I", "R", "L"],
  sagittal: ["S", "I", "A", "P"],
};
const NEGATIVE = "#e6194b";

export class SliceViewer {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} handlers onPoint(row, col, positive, t0), onBox(r0, c0, r1, c1, t0),
   *   onScroll(step), onHover(pixel | null), onStroke(tool, points, radius, t0)
   */
  constructor(canvas, handlers) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.handlers = handlers;
    this.info = null;
    this.image = null;
    this.overlay = null;
    this.overlayVisible = true;
    this.opacity = 0.8;
    this.marks = [];
    this.line = null;
    this.caption = "";
    this.pending = null;
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
    this.drag = null;
    this.tool = "prompt"; // prompt | brush | eraser | fill
    this.brushRadius = 4; // slice pixels
    this.hover = null;
    new ResizeObserver(() => this.draw()).observe(canvas);
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", () => { this.drag = null; this.draw(); });
    canvas.addEventListener("pointerleave", () => { this.hover = null; this.handlers.onHover(null); this.draw(); });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
  }

  /** Show another view (a ViewInfo from the server); zoom resets when the view changes. */
  setView(info) {
    if (!this.info || this.info.name !== info.name) this.fit();
    this.info = info;
  }

  fit() {
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
  }

  /** Where the slice sits on the canvas, in CSS pixels. */
  layout() {
    const W = this.canvas.clientWidth;
    const H = this.canvas.clientHeight;
    const { rows, cols, row_mm: rowMm, col_mm: colMm } = this.info;
    const scale = 0.98 * Math.min(W / (cols * colMm), H / (rows * rowMm)) * this.zoom;
    const w = cols * colMm * scale;
    const h = rows * rowMm * scale;
    return {
      ox: (W - w) / 2 + this.pan.x, oy: (H - h) / 2 + this.pan.y, w, h,
      cw: colMm * scale, rh: rowMm * scale,
    };
  }

  /** Client (page) coordinates of a pixel's centre. */
  pixelToClient(row, col) {
    const rect = this.canvas.getBoundingClientRect();
    const L = this.layout();
    return { x: rect.left + L.ox + (col + 0.5) * L.cw, y: rect.top + L.oy + (row + 0.5) * L.rh };
  }

  /** The slice pixel under a client point, or null outside the slice. */
  clientToPixel(x, y) {
    if (!this.info) return null;
    const rect = this.canvas.getBoundingClientRect();
    const L = this.layout();
    const col = Math.floor((x - rect.left - L.ox) / L.cw);
    const row = Math.floor((y - rect.top - L.oy) / L.rh);
    if (row < 0 || col < 0 || row >= this.info.rows || col >= this.info.cols) return null;
    return { row, col };
  }

  down(e) {
    if (!this.info) return;
    this.canvas.focus();
    this.canvas.setPointerCapture(e.pointerId);
    const pan = e.button === 1 || (e.button === 0 && e.altKey);
    this.drag = {
      x: e.clientX, y: e.clientY, button: e.button, shift: e.shiftKey, pan,
      panStart: { ...this.pan }, box: false,
    };
    if (pan) e.preventDefault();
    const p = this.clientToPixel(e.clientX, e.clientY);
    if (!pan && e.button === 0 && this.tool !== "prompt" && p) {
      this.drag.stroke = [[p.row, p.col]];
      this.draw();
    }
  }

  move(e) {
    const d = this.drag;
    if (!d) {
      this.hover = this.clientToPixel(e.clientX, e.clientY);
      this.handlers.onHover(this.hover);
      if (this.tool === "brush" || this.tool === "eraser") this.draw();
      return;
    }
    if (d.stroke) {
      if (this.tool === "fill") return;
      const p = this.clamp(e.clientX, e.clientY);
      const last = d.stroke[d.stroke.length - 1];
      if (p.row !== last[0] || p.col !== last[1]) d.stroke.push([p.row, p.col]);
      this.hover = p;
      this.draw();
      return;
    }
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (d.pan) {
      this.pan = { x: d.panStart.x + dx, y: d.panStart.y + dy };
      this.draw();
    } else if (d.button === 0 && !d.shift && Math.hypot(dx, dy) > CLICK_SLOP_PX) {
      d.box = true;
      d.cx = e.clientX;
      d.cy = e.clientY;
      this.draw();
    }
  }

  up(e) {
    const d = this.drag;
    this.drag = null;
    if (!d || d.pan) return;
    const t0 = performance.now();
    if (d.stroke) {
      this.pendingStroke = { points: d.stroke, tool: this.tool, radius: this.brushRadius };
      this.draw();
      this.handlers.onStroke(this.tool, d.stroke, this.brushRadius, t0);
      return;
    }
    if (d.box) {
      const a = this.clamp(d.x, d.y);
      const b = this.clamp(e.clientX, e.clientY);
      this.draw();
      if (a && b) this.handlers.onBox(a.row, a.col, b.row, b.col, t0);
      return;
    }
    if (d.button !== 0 && d.button !== 2) return;
    const p = this.clientToPixel(e.clientX, e.clientY);
    if (!p) return;
    const positive = d.button === 0 && !d.shift;
    this.pending = { ...p, positive };
    this.draw();
    this.handlers.onPoint(p.row, p.col, positive, t0);
  }

  /** The pixel nearest a client point, kept inside the slice (for box corners). */
  clamp(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    const L = this.layout();
    const col = Math.floor((x - rect.left - L.ox) / L.cw);
    const row = Math.floor((y - rect.top - L.oy) / L.rh);
    const { rows, cols } = this.info;
    return { row: Math.min(rows - 1, Math.max(0, row)), col: Math.min(cols - 1, Math.max(0, col)) };
  }

  wheel(e) {
    if (!this.info) return;
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) {
      const rect = this.canvas.getBoundingClientRect();
      const L = this.layout();
      const factor = Math.exp(-e.deltaY * 0.002);
      const zoom = Math.min(20, Math.max(0.5, this.zoom * factor));
      const mx = e.clientX - rect.left;
      const my = e.clientY - rect.top;
      // keep the point under the cursor in place
      const fx = (mx - L.ox) / L.w;
      const fy = (my - L.oy) / L.h;
      this.zoom = zoom;
      const M = this.layout();
      this.pan.x += mx - (M.ox + fx * M.w);
      this.pan.y += my - (M.oy + fy * M.h);
      this.draw();
    } else {
      this.handlers.onScroll(e.deltaY > 0 ? -1 : 1);
    }
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const W = c.clientWidth;
    const H = c.clientHeight;
    if (c.width !== Math.round(W * dpr) || c.height !== Math.round(H * dpr)) {
      c.width = Math.round(W * dpr);
      c.height = Math.round(H * dpr);
    }
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    if (!this.info || !this.image) return;
    const L = this.layout();
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.image, L.ox, L.oy, L.w, L.h);
    if (this.overlay && this.overlayVisible) {
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = this.opacity;
      ctx.drawImage(this.overlay, L.ox, L.oy, L.w, L.h);
      ctx.globalAlpha = 1;
    }
    if (this.line) this.drawLine(L);
    this.drawLabels(L, W, H);
    for (const mark of this.marks) this.drawMark(L, mark);
    if (this.pending) {
      this.drawPoint(L, this.pending.row, this.pending.col, this.pending.positive, "#ffffff");
    }
    const stroke = this.drag && this.drag.stroke
      ? { points: this.drag.stroke, tool: this.tool, radius: this.brushRadius } : this.pendingStroke;
    if (stroke && stroke.tool !== "fill") this.drawStroke(L, stroke);
    if (this.hover && (this.tool === "brush" || this.tool === "eraser")) {
      ctx.strokeStyle = this.tool === "brush" ? "#ffffff" : "#ff6b6b";
      ctx.beginPath();
      ctx.arc(L.ox + (this.hover.col + 0.5) * L.cw, L.oy + (this.hover.row + 0.5) * L.rh,
        Math.max(1, (this.brushRadius + 0.5) * L.cw), 0, 2 * Math.PI);
      ctx.stroke();
    }
    const d = this.drag;
    if (d && d.box) {
      const rect = c.getBoundingClientRect();
      ctx.strokeStyle = "#ffffff";
      ctx.setLineDash([5, 4]);
      ctx.strokeRect(d.x - rect.left, d.y - rect.top, d.cx - d.x, d.cy - d.y);
      ctx.setLineDash([]);
    }
  }

  /** A brush or eraser stroke not yet answered by the server. */
  drawStroke(L, stroke) {
    const ctx = this.ctx;
    ctx.save();
    ctx.globalAlpha = 0.5;
    ctx.fillStyle = stroke.tool === "brush" ? "#ffffff" : "#000000";
    for (const [row, col] of stroke.points) {
      ctx.beginPath();
      ctx.arc(L.ox + (col + 0.5) * L.cw, L.oy + (row + 0.5) * L.rh, Math.max(1, (stroke.radius + 0.5) * L.cw), 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  }

  drawLabels(L, W, H) {
    const ctx = this.ctx;
    const [top, bottom, left, right] = EDGES[this.info.name] || ["", "", "", ""];
    ctx.font = "bold 13px system-ui, sans-serif";
    ctx.fillStyle = "rgba(255, 214, 10, 0.9)";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText(top, Math.min(W - 10, Math.max(10, L.ox + L.w / 2)), Math.max(4, L.oy + 4));
    ctx.textBaseline = "bottom";
    ctx.fillText(bottom, Math.min(W - 10, Math.max(10, L.ox + L.w / 2)), Math.min(H - 4, L.oy + L.h - 4));
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    ctx.fillText(left, Math.max(4, L.ox + 4), L.oy + L.h / 2);
    ctx.textAlign = "right";
    ctx.fillText(right, Math.min(W - 4, L.ox + L.w - 4), L.oy + L.h / 2);
    if (this.caption) {
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillStyle = "rgba(230, 232, 235, 0.85)";
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillText(this.caption, 8, 6);
    }
  }

  drawLine(L) {
    const ctx = this.ctx;
    ctx.strokeStyle = "rgba(255, 214, 10, 0.7)";
    ctx.setLineDash([6, 5]);
    ctx.beginPath();
    if (this.line.kind === "row") {
      const y = L.oy + (this.line.index + 0.5) * L.rh;
      ctx.moveTo(L.ox, y);
      ctx.lineTo(L.ox + L.w, y);
    } else {
      const x = L.ox + (this.line.index + 0.5) * L.cw;
      ctx.moveTo(x, L.oy);
      ctx.lineTo(x, L.oy + L.h);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  drawMark(L, mark) {
    const ctx = this.ctx;
    if (mark.box) {
      const [r0, c0, r1, c1] = mark.box;
      ctx.strokeStyle = mark.color;
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 3]);
      ctx.strokeRect(L.ox + c0 * L.cw, L.oy + r0 * L.rh, (c1 - c0 + 1) * L.cw, (r1 - r0 + 1) * L.rh);
      ctx.setLineDash([]);
      ctx.lineWidth = 1;
    }
    for (const [row, col, positive] of mark.points) this.drawPoint(L, row, col, positive, mark.color);
  }

  drawPoint(L, row, col, positive, ring) {
    const ctx = this.ctx;
    const x = L.ox + (col + 0.5) * L.cw;
    const y = L.oy + (row + 0.5) * L.rh;
    ctx.beginPath();
    ctx.arc(x, y, 6, 0, 2 * Math.PI);
    ctx.fillStyle = positive ? POSITIVE : NEGATIVE;
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = ring;
    ctx.stroke();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#ffffff";
    ctx.beginPath();
    ctx.moveTo(x - 3, y);
    ctx.lineTo(x + 3, y);
    if (positive) {
      ctx.moveTo(x, y - 3);
      ctx.lineTo(x, y + 3);
    }
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}
