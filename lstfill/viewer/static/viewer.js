// lstfill's offline viewer: the maps of each job per date (input beside product, with a colour
// bar), the time series of a clicked pixel, every job's metric tables and the training runs.
// Data come from data/index.js and data/<job>.js (lstfill/viewer/build.py writes them); maps are
// uint16 codes, row-differenced and zlib-compressed (lstfill/viewer/encode.py).
"use strict";

const DATA = window.LSTFILL;
const state = { job: null, t: 0, maps: [], overlays: [], markers: [], frames: new Map(), chart: null, pixel: null, series: [] };
window.lstfillViewer = state; // for tests and the curious: what is shown now

const SERIES_COLOURS = ["#1565c0", "#e65100", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457"];

function element(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = element("script", { src });
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(s);
  });
}

async function jobData(job) {
  if (!DATA.jobs[job]) await loadScript(`data/${job}.js`);
  return DATA.jobs[job];
}

// ---------------------------------------------------------------------------------- decoding

async function inflate(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  const buffer = await new Response(stream).arrayBuffer();
  const view = new DataView(buffer);
  const codes = new Uint16Array(buffer.byteLength / 2);
  for (let i = 0; i < codes.length; i++) codes[i] = view.getUint16(2 * i, true);
  return codes;
}

// The values (Float32Array, NaN = no data) of frame `i` of `panel`, decoded once.
async function frameValues(panel, i) {
  const key = `${state.job}/${panel.key}/${i}`;
  if (!state.frames.has(key)) {
    state.frames.set(key, inflate(panel.frames[i]).then((diff) => {
      const { width, height, offset, step } = panel;
      const out = new Float32Array(width * height);
      for (let r = 0; r < height; r++) {
        let code = 0;
        for (let c = 0; c < width; c++) {
          code = (code + diff[r * width + c]) & 0xffff;
          out[r * width + c] = code === 0 ? NaN : offset + step * (code - 1);
        }
      }
      return out;
    }));
  }
  return state.frames.get(key);
}

// ---------------------------------------------------------------------------------- colours

function lut(kind) {
  const hex = DATA.index.colours[kind];
  const table = new Uint8Array(768);
  for (let i = 0; i < 768; i++) table[i] = parseInt(hex.substr(2 * i, 2), 16);
  return table;
}

function quantile(values, q) {
  const finite = values.filter((v) => !Number.isNaN(v)).sort();
  if (!finite.length) return NaN;
  return finite[Math.min(finite.length - 1, Math.floor(q * finite.length))];
}

// The colour stretch of each kind at the shown date: the 2nd to 98th percentile of every panel
// of that kind together (intervals from 0), so input and product share one colour bar.
function stretches(panels, values) {
  const byKind = {};
  panels.forEach((p, i) => {
    if (!values[i]) return;
    const stride = Math.max(1, Math.floor(values[i].length / 20000));
    const sample = [];
    for (let j = 0; j < values[i].length; j += stride) sample.push(values[i][j]);
    (byKind[p.kind] = byKind[p.kind] || []).push(...sample);
  });
  const out = {};
  for (const [kind, sample] of Object.entries(byKind)) {
    const floats = Float32Array.from(sample);
    let lo = quantile(floats, 0.02);
    let hi = quantile(floats, 0.98);
    if (kind === "uncertainty") lo = 0;
    if (!(hi > lo)) hi = lo + 1;
    out[kind] = [lo, hi];
  }
  return out;
}

function render(panel, values, range) {
  const canvas = element("canvas");
  canvas.width = panel.width;
  canvas.height = panel.height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(panel.width, panel.height);
  const table = lut(panel.kind);
  const [lo, hi] = range;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) continue; // transparent
    const k = Math.max(0, Math.min(255, Math.round(((v - lo) / (hi - lo)) * 255)));
    image.data.set([table[3 * k], table[3 * k + 1], table[3 * k + 2], 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
  return canvas.toDataURL();
}

function colourBar(kind, range, units) {
  const bar = element("div", { class: "colourbar" });
  const canvas = element("canvas", { width: 256, height: 1 });
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(256, 1);
  const table = lut(kind);
  for (let k = 0; k < 256; k++) image.data.set([table[3 * k], table[3 * k + 1], table[3 * k + 2], 255], 4 * k);
  ctx.putImageData(image, 0, 0);
  const digits = kind === "ndvi" ? 2 : 1;
  bar.append(element("span", {}, range[0].toFixed(digits)), canvas,
    element("span", {}, `${range[1].toFixed(digits)} ${units === "1" ? "" : units}`));
  return bar;
}

// ---------------------------------------------------------------------------------- maps

function clearMaps() {
  state.maps.forEach((m) => m.remove());
  Object.assign(state, { maps: [], overlays: [], markers: [], pixel: null });
  document.getElementById("panels").replaceChildren();
  const box = document.getElementById("series");
  box.replaceChildren();
  delete box.dataset.points;
  if (state.chart) state.chart.destroy();
  state.chart = null;
}

// The region's extent in map units: the finest panel's pixels (every panel covers the region).
function extent(job) {
  const ref = job.panels.reduce((a, p) => (p.width * p.height > a.width * a.height ? p : a));
  return [ref.height, ref.width];
}

function buildMaps(job) {
  clearMaps();
  const [height, width] = extent(job);
  const bounds = [[0, 0], [height, width]];
  let syncing = false;
  for (const panel of job.panels) {
    const box = element("div", { class: "panel", "data-panel": panel.key });
    const mapDiv = element("div", { class: "map" });
    box.append(element("h3", {}, panel.title), mapDiv, element("div", { class: "empty" }),
      element("div", { class: "bar" }));
    document.getElementById("panels").append(box);
    const map = L.map(mapDiv, { crs: L.CRS.Simple, attributionControl: false, zoomSnap: 0.25, minZoom: -4 });
    map.fitBounds(bounds);
    const overlay = L.imageOverlay("data:,", bounds).addTo(map);
    map.on("move", () => {
      if (syncing) return;
      syncing = true;
      state.maps.forEach((m) => m !== map && m.setView(map.getCenter(), map.getZoom(), { animate: false }));
      syncing = false;
    });
    map.on("click", (e) => showPixel(job, e.latlng.lng / width, 1 - e.latlng.lat / height));
    state.maps.push(map);
    state.overlays.push(overlay);
  }
}

async function showDate(job, t) {
  state.t = t;
  document.getElementById("date").value = t;
  document.getElementById("date-label").textContent = job.times[t].replace("T", " ").replace("Z", " UTC");
  const values = await Promise.all(job.panels.map((p) => (p.at[t] >= 0 ? frameValues(p, p.at[t]) : null)));
  if (state.t !== t) return; // a later date was asked for meanwhile
  const ranges = stretches(job.panels, values);
  job.panels.forEach((panel, i) => {
    const box = document.querySelector(`.panel[data-panel="${panel.key}"]`);
    const empty = box.querySelector(".empty");
    const bar = box.querySelector(".bar");
    if (!values[i]) {
      state.overlays[i].setUrl("data:,");
      empty.textContent = "none on this date";
      bar.replaceChildren();
      return;
    }
    empty.textContent = "";
    state.overlays[i].setUrl(render(panel, values[i], ranges[panel.kind]));
    bar.replaceChildren(colourBar(panel.kind, ranges[panel.kind], panel.units));
  });
  document.body.dataset.drawn = `${state.job}:${t}`;
}

// ---------------------------------------------------------------------------------- series

async function pixelSeries(panel, fx, fy) {
  const col = Math.floor(fx * panel.width);
  const row = Math.floor(fy * panel.height);
  const values = await Promise.all(panel.frames.map((_, i) => frameValues(panel, i)));
  const times = panel.times.map((t) => Date.parse(t) / 1000);
  return [times, values.map((v) => {
    const x = v[row * panel.width + col];
    return Number.isNaN(x) ? null : x;
  })];
}

async function showPixel(job, fx, fy) {
  if (fx < 0 || fx >= 1 || fy < 0 || fy >= 1) return;
  state.pixel = [fx, fy];
  const [height, width] = extent(job);
  const at = [height * (1 - fy), width * fx];
  state.markers.forEach((m) => m.remove());
  state.markers = state.maps.map((m) => L.circleMarker(at, { radius: 5, color: "#00e5ff", weight: 2 }).addTo(m));
  const tables = [];
  const specs = [];
  state.series = [];
  for (const s of job.series) {
    const panel = job.panels.find((p) => p.key === s.panel);
    const [times, values] = await pixelSeries(panel, fx, fy);
    state.series.push({ panel: s.panel, times, values });
    if (s.interval) {
      const half = job.panels.find((p) => p.key === s.interval);
      const [, widths] = await pixelSeries(half, fx, fy);
      tables.push([times, values.map((v, i) => (v === null || widths[i] === null ? null : v - widths[i]))]);
      tables.push([times, values.map((v, i) => (v === null || widths[i] === null ? null : v + widths[i]))]);
      specs.push({ label: "90 % low", band: true }, { label: "90 % high", band: true });
    }
    tables.push([times, values]);
    specs.push(s);
  }
  const data = uPlot.join(tables);
  const units = job.panels[0].units === "1" ? "" : ` (${job.panels[0].units})`;
  const series = [{ label: "date" }];
  let colour = 0;
  for (const s of specs) {
    if (s.band) {
      series.push({ label: s.label, stroke: "rgba(230,81,0,0.35)", width: 1, spanGaps: true });
    } else if (s.style === "points") {
      const c = SERIES_COLOURS[colour++ % 6];
      series.push({ label: s.label, stroke: c, paths: () => null, points: { show: true, size: 8, fill: c } });
    } else {
      series.push({ label: s.label, stroke: SERIES_COLOURS[colour++ % 6], width: 2, spanGaps: true, points: { show: false } });
    }
  }
  const bands = [];
  specs.forEach((s, i) => {
    if (s.band && specs[i + 1] && specs[i + 1].band) bands.push({ series: [i + 2, i + 1], fill: "rgba(230,81,0,0.15)" });
  });
  if (state.chart) state.chart.destroy();
  const box = document.getElementById("series");
  state.chart = new uPlot({
    width: Math.max(500, box.clientWidth - 10), height: 300, series, bands,
    axes: [{}, { label: `${job.panels[0].kind === "ndvi" ? "NDVI" : "LST"}${units}`, size: 60 }],
    scales: { x: { time: true } },
  }, data, box);
  const shown = data.slice(1).reduce((n, ys) => n + ys.filter((y) => y != null).length, 0);
  box.dataset.points = shown;
  const row = Math.floor(fy * job.panels[0].height);
  const col = Math.floor(fx * job.panels[0].width);
  document.getElementById("series-title").textContent = `Time series at row ${row}, column ${col} of "${job.panels[0].title}"`;
}

// ---------------------------------------------------------------------------------- tables

function formatCell(column, value) {
  if (value === null || value === undefined) return "\u2014";
  if (column === "n" || column.startsWith("n_")) return Math.round(value).toLocaleString("en");
  return Number(value).toPrecision(4);
}

function lowerIsBetter(column) {
  return /^(rmse|mae|mse)/.test(column) || column.startsWith("rmse ");
}

function metricTable(job, table, selected) {
  const node = element("table", { "data-job": job, "data-table": table.key });
  const head = element("tr");
  head.append(element("th", {}, "method"), ...table.columns.map((c) => element("th", {}, c)));
  node.append(element("thead"), element("tbody"));
  node.tHead.append(head);
  const best = table.columns.map((c, j) => {
    if (!lowerIsBetter(c)) return null;
    const vals = table.rows.map((r) => r[j + 1]).filter((v) => v !== null);
    return vals.length ? Math.min(...vals) : null;
  });
  for (const row of table.rows) {
    const [method, ...cells] = row;
    const tr = element("tr", { "data-method": method });
    if (method.startsWith("model_")) tr.classList.add("model");
    if (selected && method === `model_${selected}`) tr.classList.add("selected");
    tr.append(element("td", {}, method));
    cells.forEach((v, j) => {
      const td = element("td", {}, formatCell(table.columns[j], v));
      if (best[j] !== null && v === best[j]) td.classList.add("best");
      tr.append(td);
    });
    node.tBodies[0].append(tr);
  }
  return node;
}

function metricSection(job, target, heading) {
  const m = DATA.index.metrics[job];
  if (!m) return;
  if (heading) target.append(element("h2", {}, heading));
  if (m.protocol) target.append(element("p", { class: "table-note" }, m.protocol));
  for (const table of m.tables) {
    target.append(element("h3", {}, table.title), metricTable(job, table, m.selected));
    if (table.note) target.append(element("p", { class: "table-note" }, table.note));
  }
}

function buildMetrics() {
  const target = document.getElementById("metrics");
  for (const { job, title } of DATA.index.jobs) metricSection(job, target, title);
  for (const job of Object.keys(DATA.index.metrics)) {
    if (!DATA.index.jobs.some((j) => j.job === job)) metricSection(job, target, job);
  }
  if (!target.children.length) target.append(element("p", {}, "No metrics for this region."));
}

function buildRuns() {
  const target = document.getElementById("runs");
  const { columns, rows } = DATA.index.runs;
  target.append(element("h2", {}, "Training runs"));
  if (!rows.length) {
    target.append(element("p", {}, "No training run for this region."));
    return;
  }
  const table = element("table", { id: "runs-table" });
  const head = element("tr");
  head.append(...columns.map((c) => element("th", {}, c)));
  table.append(head);
  for (const row of rows) {
    const tr = element("tr");
    tr.append(...row.map((v) => element("td", {}, v)));
    table.append(tr);
  }
  const scroll = element("div", { class: "scroll" });
  scroll.append(table);
  target.append(scroll);
}

// ---------------------------------------------------------------------------------- tabs

async function openJob(name) {
  const job = await jobData(name);
  state.job = name;
  document.getElementById("job-note").textContent = job.note || "";
  const slider = document.getElementById("date");
  slider.max = job.times.length - 1;
  buildMaps(job);
  const metrics = document.getElementById("job-metrics");
  metrics.replaceChildren();
  metricSection(name, metrics, "Metrics");
  await showDate(job, Math.floor((job.times.length - 1) / 2));
}

function select(tab) {
  document.querySelectorAll("nav button").forEach((b) => b.setAttribute("aria-selected", b.dataset.tab === tab));
  const isJob = DATA.index.jobs.some((j) => j.job === tab);
  document.getElementById("job").hidden = !isJob;
  document.getElementById("metrics").hidden = tab !== "metrics";
  document.getElementById("runs").hidden = tab !== "runs";
  if (isJob) return openJob(tab);
  return Promise.resolve();
}

function main() {
  document.getElementById("region").textContent = `\u00b7 region ${DATA.index.region}`;
  document.title = `lstfill viewer: ${DATA.index.region}`;
  const tabs = document.getElementById("tabs");
  const names = [...DATA.index.jobs.map((j) => [j.job, j.title.split(" (")[0]]), ["metrics", "Metrics"], ["runs", "Training runs"]];
  for (const [tab, label] of names) {
    const b = element("button", { type: "button", role: "tab", "data-tab": tab }, label);
    b.onclick = () => select(tab);
    tabs.append(b);
  }
  const others = DATA.index.regions.filter((r) => r !== DATA.index.region);
  if (others.length) document.getElementById("regions").append("Other regions:");
  for (const region of others) {
    // every viewer sits at results/<region>/viewer/, so a sibling is two folders up
    document.getElementById("regions").append(element("a", { href: `../../${region}/viewer/index.html` }, region));
  }
  buildMetrics();
  buildRuns();
  const step = (d) => {
    const job = DATA.jobs[state.job];
    if (job) showDate(job, Math.max(0, Math.min(job.times.length - 1, state.t + d)));
  };
  document.getElementById("date").oninput = (e) => showDate(DATA.jobs[state.job], Number(e.target.value));
  document.getElementById("prev").onclick = () => step(-1);
  document.getElementById("next").onclick = () => step(1);
  select(DATA.index.jobs.length ? DATA.index.jobs[0].job : "metrics");
}

main();
