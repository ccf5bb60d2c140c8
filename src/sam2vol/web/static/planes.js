// Linked planes and a 3D render of the volume with its labels, drawn by NiiVue (vendored in
// static/vendor/niivue, BSD-2). The slice view stays the place for prompts and edits; here the
// three planes share a crosshair with it, the image's window follows a right-drag, and the
// labels are refreshed after every change.

import { api } from "./api.js";

const hexToRgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

export class PlanesView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} handlers onWorld(mm): the crosshair was moved here by the user (RAS mm)
   */
  constructor(canvas, handlers) {
    this.canvas = canvas;
    this.handlers = handlers;
    this.nv = null;
    this.sid = null;
    this.labels = null;
    this.labelsRevision = -1;
    this.pending = null;
    this.busy = Promise.resolve();
    this.ready = false;
    this.error = null;
    this.render3D = !PlanesView.softwareGL();
  }

  /** WebGL2 and the vendored NiiVue are there. */
  static available() {
    return typeof window.niivue !== "undefined" && !!document.createElement("canvas").getContext("webgl2");
  }

  /** WebGL drawn by the CPU (SwiftShader, llvmpipe): a 3D render there blocks the page for seconds. */
  static softwareGL() {
    const gl = document.createElement("canvas").getContext("webgl2");
    const info = gl && gl.getExtension("WEBGL_debug_renderer_info");
    const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    return /swiftshader|llvmpipe|software/i.test(name);
  }

  /** Show or hide the 3D render tile. */
  setRender3D(on) {
    this.render3D = on;
    if (!this.nv) return;
    const { SHOW_RENDER } = window.niivue;
    this.nv.opts.multiplanarShowRender = on ? SHOW_RENDER.ALWAYS : SHOW_RENDER.NEVER;
    this.nv.drawScene();
  }

  async open(sid) {
    const { Niivue, NVImage, SLICE_TYPE, SHOW_RENDER, DRAG_MODE, MULTIPLANAR_TYPE } = window.niivue;
    this.sid = sid;
    this.ready = false;
    this.labels = null;
    this.labelsRevision = -1;
    if (!this.nv) {
      this.nv = new Niivue({
        backColor: [0.05, 0.055, 0.07, 1],
        show3Dcrosshair: true,
        isRadiologicalConvention: true,
        multiplanarShowRender: this.render3D ? SHOW_RENDER.ALWAYS : SHOW_RENDER.NEVER,
        multiplanarLayout: MULTIPLANAR_TYPE.GRID,
        dragMode: DRAG_MODE.contrast,
        dragAndDropEnabled: false,
        crosshairWidth: 1,
        isOrientCube: false,
        logLevel: "error",
      });
      await this.nv.attachToCanvas(this.canvas);
      // NiiVue also reports the location when volumes are added; only a moved crosshair counts.
      this.nv.onLocationChange = (loc) => {
        if (!this.ready || !loc || !loc.mm || !this.crosshairMoved()) return;
        this.handlers.onWorld(Array.from(loc.mm).slice(0, 3));
      };
    }
    for (const v of [...this.nv.volumes]) this.nv.removeVolume(v);
    const buffer = await api.bytes(`sessions/${sid}/image.nii.gz`);
    if (sid !== this.sid) return;
    const image = await NVImage.loadFromUrl({ url: "image.nii.gz", name: "image.nii.gz", buffer });
    this.nv.addVolume(image);
    this.nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
    this.crosshairMoved();
    this.ready = true;
  }

  /** Move the crosshair to a world point (RAS mm) without reporting it back. */
  moveTo(mm) {
    if (!this.ready) return;
    this.nv.scene.crosshairPos = this.nv.mm2frac(mm);
    this.crosshairMoved();
    this.nv.drawScene();
  }

  /** Whether the crosshair moved since the last call. */
  crosshairMoved() {
    const now = Array.from(this.nv.scene.crosshairPos);
    const moved = !this.lastCrosshair || now.some((v, i) => Math.abs(v - this.lastCrosshair[i]) > 1e-6);
    this.lastCrosshair = now;
    return moved;
  }

  /** Show the label map of `revision` with the objects' colours (newest request wins). */
  refreshLabels(revision, objects) {
    if (!this.ready || revision === this.labelsRevision) return;
    this.pending = { revision, objects };
    this.busy = this.busy.then(() => this.loadPending()).catch((err) => { this.error = err.message; });
    return this.busy;
  }

  async loadPending() {
    const job = this.pending;
    this.pending = null;
    if (!job || !this.ready || job.revision === this.labelsRevision) return;
    const { NVImage } = window.niivue;
    const sid = this.sid;
    const buffer = await api.bytes(`sessions/${sid}/labels.nii.gz`);
    if (sid !== this.sid) return;
    const labels = await NVImage.loadFromUrl({ url: "labels.nii.gz", name: "labels.nii.gz", buffer });
    const ids = [0, ...job.objects.map((o) => o.id)];
    const rgb = [[0, 0, 0], ...job.objects.map((o) => hexToRgb(o.color))];
    labels.setColormapLabel({
      R: rgb.map((c) => c[0]), G: rgb.map((c) => c[1]), B: rgb.map((c) => c[2]),
      A: [0, ...job.objects.map((o) => (o.hidden ? 0 : 255))], I: ids,
    });
    if (this.labels) this.nv.removeVolume(this.labels);
    this.labels = labels;
    this.nv.addVolume(labels);
    this.nv.setOpacity(this.nv.volumes.indexOf(labels), 0.55);
    this.labelsRevision = job.revision;
  }
}
