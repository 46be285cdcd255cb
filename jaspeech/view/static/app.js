// jaspeech view: the page. Plain JS, no dependencies. The URL hash holds the state
// (#overview, #rows?filters, #row/<config>/<n>, #rejects?filters), so back/forward and links work.
// Corpus text is untrusted: it only ever goes into textContent, never into HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const count = (x) => Number(x).toLocaleString("en-US");

function safeHref(url) {  // only http(s) links from the data: no javascript: or data: URLs
  try {
    const u = new URL(url);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (e) {
    return null;
  }
}

async function api(path) {
  const r = await fetch(path, {headers: {accept: "application/json"}});
  let body;
  try { body = await r.json(); } catch (e) { body = {error: `${r.status} ${r.statusText}`}; }
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

function showError(message) {
  const p = $("#error");
  p.textContent = message || "";
  p.hidden = !message;
}

function parseHash() {
  const h = location.hash.slice(1) || "overview";
  const q = h.indexOf("?");
  const path = q < 0 ? h : h.slice(0, q);
  return {parts: path.split("/"), params: new URLSearchParams(q < 0 ? "" : h.slice(q + 1))};
}

function show(tab) {
  for (const s of $$("main > section.tab")) s.hidden = s.id !== tab;
  for (const a of $$("header nav a")) a.classList.toggle("active", a.id === `tab-${tab === "row" ? "rows" : tab}`);
}

// ------------------------------------------------------------------------------------------ overview

let overview = null;
let lastRows = "#rows";
let lastRejects = "#rejects";

async function loadOverview() {
  overview = await api("/api/overview");
  $("#folder").textContent = overview.folder;
  document.title = `jaspeech view: ${overview.folder}`;
  const tbody = $("#config-table tbody");
  tbody.replaceChildren();
  for (const c of overview.configs) {
    const input = c.rows + c.rejects;
    const reasons = Object.entries(c.reject_reasons).map(([r, n]) =>
      el("a", {href: `#rejects?config=${encodeURIComponent(c.config)}&reason=${encodeURIComponent(r)}`,
               class: "chip"}, `${r} ${count(n)}`));
    const models = [c.tts, c.asr, c.captioner].filter((x) => x).join(" / ");
    tbody.append(el("tr", {},
      el("td", {}, el("a", {href: `#rows?config=${encodeURIComponent(c.config)}`}, c.config)),
      el("td", {class: "n"}, count(c.rows)), el("td", {class: "n"}, num(c.hours, 2)),
      el("td", {class: "n"}, el("a", {href: `#rejects?config=${encodeURIComponent(c.config)}`}, count(c.rejects)),
        c.rejects_with_audio ? el("span", {class: "muted"}, ` (${count(c.rejects_with_audio)} with audio)`) : null,
        c.retaken ? el("div", {class: "muted", title: "rows kept from a retake of a spoken turn (turns[].takes > 1)"},
          `${count(c.retaken)} kept after a retake`) : null),
      el("td", {class: "n"}, input ? `${(100 * c.rows / input).toFixed(1)} %` : "–"),
      el("td", {class: "n"}, num(c.median_kana_cer)), el("td", {class: "n"}, num(c.median_ovrl, 2)),
      el("td", {class: "n"}, c.speakers.length || "–"),
      el("td", {}, models || "–"), el("td", {}, reasons)));
  }
  $("#warnings").replaceChildren(...overview.warnings.map((w) => el("li", {}, w)));
  $("#plots").replaceChildren(...overview.plots.map((p) =>
    el("figure", {}, el("img", {src: p.url, alt: p.title}), el("figcaption", {}, p.title))));
  if (!overview.plots.length) {
    $("#plots").append(el("p", {class: "muted"}, "No plots in assets/: run `jaspeech card DIR` to draw them."));
  }
  for (const form of [$("#row-filters"), $("#reject-filters")]) {
    const select = form.elements.config;
    select.replaceChildren(el("option", {value: ""}, "all"),
      ...overview.configs.map((c) => el("option", {value: c.config}, c.config)));
  }
}

// ------------------------------------------------------------------------------------------- filters

function fillForm(form, params) {
  for (const input of form.elements) {
    if (!input.name || input === document.activeElement) continue;
    if (input.type === "checkbox") input.checked = params.get(input.name) === input.value;
    else input.value = params.get(input.name) || "";
  }
}

function formParams(form, keep) {
  const params = new URLSearchParams();
  for (const input of form.elements) {
    if (!input.name) continue;
    if (input.type === "checkbox") { if (input.checked) params.set(input.name, input.value); }
    else if (input.value.trim() !== "") params.set(input.name, input.value.trim());
  }
  for (const [k, v] of keep) params.set(k, v);
  return params;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function watchForm(form, tab, keepKeys) {
  const apply = () => {
    const current = parseHash().params;
    const keep = keepKeys.filter((k) => current.has(k)).map((k) => [k, current.get(k)]);
    location.hash = `${tab}?${formParams(form, keep)}`;
  };
  const later = debounce(apply, 250);
  const now = (e) => e.target.tagName === "SELECT" || e.target.type === "checkbox";
  form.addEventListener("change", (e) => {
    if (!now(e)) return;
    if (e.target.name === "config" && form.elements.speaker) form.elements.speaker.value = "";  // speakers differ
    apply();
  });
  form.addEventListener("input", (e) => { if (!now(e)) later(); });
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  form.addEventListener("reset", () => setTimeout(apply, 0));
}

function setSpeakers(configName) {
  const select = $("#row-filters").elements.speaker;
  const names = new Set();
  for (const c of overview.configs) if (!configName || c.config === configName) c.speakers.forEach((s) => names.add(s));
  const current = select.value;
  select.replaceChildren(el("option", {value: ""}, "all"),
    ...[...names].sort().map((s) => el("option", {value: s}, s)));
  select.value = names.has(current) ? current : "";
}

function pager(root, data, go) {
  const last = Math.min(data.offset + data.limit, data.total);
  $(".page-info", root).textContent = data.total ? `${count(data.offset + 1)}–${count(last)} of ${count(data.total)}` : "";
  const [prev, next] = $$("button", root);
  prev.disabled = data.offset <= 0;
  next.disabled = last >= data.total;
  prev.onclick = () => go(Math.max(0, data.offset - data.limit));
  next.onclick = () => go(data.offset + data.limit);
}

function withParam(tab, params, key, value) {
  const p = new URLSearchParams(params);
  if (value === null || value === "") p.delete(key); else p.set(key, value);
  return `#${tab}?${p}`;
}

// ---------------------------------------------------------------------------------------------- rows

let rowsRequest = 0;

async function loadRows(params) {
  const form = $("#row-filters");
  setSpeakers(params.get("config") || "");
  fillForm(form, params);
  $("#row-pager").querySelector("select").value = params.get("limit") || "50";
  const mine = ++rowsRequest;
  const data = await api(`/api/rows?${params}`);
  if (mine !== rowsRequest) return;  // a newer filter is already on its way
  lastRows = location.hash || "#rows";
  const sort = params.get("sort") || "position";
  const order = params.get("order") || "asc";
  for (const th of $$("#row-table th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === sort);
    th.dataset.order = th.dataset.sort === sort ? order : "";
  }
  $("#row-summary").textContent = `${count(data.total)} rows, ${num(data.hours, 2)} h of speech`;
  const tbody = $("#row-table tbody");
  tbody.replaceChildren(...data.rows.map((r) => {
    const href = `#row/${encodeURIComponent(r.config)}/${r.n}`;
    return el("tr", {"data-href": href},
      el("td", {}, r.config), el("td", {}, el("a", {href}, r.id)), el("td", {}, r.speaker || "–"),
      el("td", {class: "n"}, num(r.duration, 2)), el("td", {class: "n"}, num(r.cer)),
      el("td", {class: "n"}, num(r.kana_cer)), el("td", {class: "n"}, num(r.ovrl, 2)),
      el("td", {class: "n"}, num(r.silence, 2)), el("td", {class: "text"}, r.text || ""));
  }));
  if (!data.rows.length) tbody.append(el("tr", {}, el("td", {colspan: 9, class: "muted"}, "No row matches these filters.")));
  pager($("#row-pager"), data, (offset) => { location.hash = withParam("rows", params, "offset", String(offset)); });
}

// ----------------------------------------------------------------------------------------------- row

function renderDiff(diff) {
  const spoken = el("div", {class: "line"}, el("span", {class: "label"}, "text"));
  const heard = el("div", {class: "line"}, el("span", {class: "label"}, "heard"));
  for (const s of diff) {
    if (s.op === "equal") { spoken.append(s.a); heard.append(s.b); continue; }
    if (s.a) spoken.append(el("del", {title: s.op === "replace" ? `heard as “${s.b}”` : "not heard"}, s.a));
    if (s.b) heard.append(el("ins", {title: s.op === "replace" ? `spoken as “${s.a}”` : "not spoken"}, s.b));
  }
  return [spoken, heard];
}

function diffBlock(d) {
  return el("div", {class: "diff"},
    el("div", {class: "raw"}, renderDiff(d.raw)), el("div", {class: "normalized"}, renderDiff(d.normalized)));
}

function scores(t) {
  const parts = [];
  if (t.duration !== null && t.duration !== undefined) parts.push(`${num(t.duration, 2)} s`);
  if (t.cer !== null && t.cer !== undefined) parts.push(`CER ${num(t.cer)}`);
  if (t.kana_cer !== null && t.kana_cer !== undefined) parts.push(`kana-CER ${num(t.kana_cer)}`);
  if (t.text_logprob !== null && t.text_logprob !== undefined) parts.push(`forced ${num(t.text_logprob, 2)}/piece`);
  if (t.worst_span) parts.push(`worst 「${t.worst_span}」 ${num(t.worst_deficit, 2)}`);
  if (t.takes > 1) parts.push(`take ${t.takes}`);
  const box = el("div", {class: "scores"}, parts.join(" · "));
  if (t.dnsmos) {
    const d = t.dnsmos;
    box.append(el("div", {class: "quality", title: "DNSMOS P.835 (SIG speech, BAK background, OVRL overall) and P.808, 1-5"},
      `DNSMOS OVRL ${num(d.ovrl, 2)} · SIG ${num(d.sig, 2)} · BAK ${num(d.bak, 2)} · P.808 ${num(d.p808, 2)}`));
  }
  if (t.signal) {
    const g = t.signal;
    box.append(el("div", {class: "signal", title: "signal checks of the stored clip"},
      `peak ${num(g.peak, 3)} · clipped ${num(100 * g.clipping, 2)} % · ${num(g.rms_db, 1)} dBFS · silence: ` +
      `leading ${num(g.leading_silence, 2)} s, trailing ${num(g.trailing_silence, 2)} s, longest inside ${num(g.longest_silence, 2)} s`));
  }
  return box;
}

function player(url) {
  return el("audio", {controls: true, preload: "metadata", src: url});
}

function spokenTurn(t, heading) {
  const box = el("div", {class: `turn ${t.role || ""}`}, el("div", {class: "role"}, heading));
  if (t.audio_url) box.append(player(t.audio_url));
  if (t.diff) box.append(diffBlock(t.diff));
  else {
    box.append(el("div", {class: "text"}, t.text || ""));
    if (t.audio_url) box.append(el("div", {class: "muted"}, "no transcript (built with --asr none)"));
  }
  box.append(scores(t));
  return box;
}

function link(url, text) {
  const href = safeHref(url);
  return href ? el("a", {href, rel: "noopener noreferrer", target: "_blank"}, text || url) : (text || url || "–");
}

const SHOWN_APART = new Set(["chosen", "rejected", "caption", "labels", "license", "uploader", "title", "freesound_url"]);

async function loadRow(config, n) {
  const r = await api(`/api/row/${encodeURIComponent(config)}/${encodeURIComponent(n)}`);
  const f = r.fields;
  $("#row-title").textContent = `${r.config} · row ${r.n + 1} of ${count(r.rows_in_config)} · ${f.id ?? ""}`;
  $("#row-back").href = lastRows;
  const prev = $("#row-prev"), next = $("#row-next");
  prev.hidden = r.n <= 0;
  next.hidden = r.n + 1 >= r.rows_in_config;
  prev.href = `#row/${encodeURIComponent(r.config)}/${r.n - 1}`;
  next.href = `#row/${encodeURIComponent(r.config)}/${r.n + 1}`;
  $("#row-fields").replaceChildren(...Object.entries(f).filter(([k]) => !SHOWN_APART.has(k)).map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", {}, v === null ? "–" : typeof v === "number" ? String(+v.toFixed(4)) : String(v)))));
  const body = $("#row-body");
  body.replaceChildren();
  if (r.turns) {
    r.turns.forEach((t, i) => {
      const heading = t.role === "system" ? `turn ${i}: system prompt (text, never spoken)`
        : `turn ${i}: ${t.role}${t.audio_url ? " (spoken)" : ""}`;
      body.append(t.audio_url || t.transcript ? spokenTurn(t, heading)
        : el("div", {class: `turn ${t.role || ""}`}, el("div", {class: "role"}, heading), el("div", {class: "text"}, t.text || "")));
    });
  }
  if ("chosen" in f && "rejected" in f) {
    body.append(el("div", {class: "pair"},
      el("div", {class: "turn chosen"}, el("div", {class: "role"}, "chosen"), el("div", {class: "text"}, f.chosen || "")),
      el("div", {class: "turn rejected"}, el("div", {class: "role"}, "rejected"), el("div", {class: "text"}, f.rejected || ""))));
  }
  if ("caption" in f) {
    const clip = el("div", {class: "turn clip"}, el("div", {class: "role"}, "clip"));
    if (r.audio_url) clip.append(player(r.audio_url));
    clip.append(el("div", {class: "text caption"}, f.caption || ""),
      el("div", {class: "chips"}, (f.labels || []).map((l) => el("span", {class: "chip"}, l))),
      el("div", {class: "attribution"}, "licence: ", link(f.license), " · ",
        `“${f.title ?? ""}” by ${f.uploader ?? "unknown"} · `, link(f.freesound_url, "on Freesound")));
    body.append(clip);
  } else if (r.segments) {
    body.prepend(duplexTimeline(r, f.duration));
    r.segments.forEach((g, i) => {
      const when = `${num(g.start, 2)}-${num(g.end, 2)} s` + (g.gap === null ? "" : ` · gap ${num(g.gap, 3)} s`);
      body.append(spokenTurn(g, `segment ${i}: ${g.kind} · ${g.role} · channel ${g.channel} · ${when}`));
    });
  } else if (r.audio_url) {
    body.append(el("div", {class: "turn clip"}, player(r.audio_url)));
  }
}

// A full-duplex row: the stereo recording (channel 0 assistant, channel 1 user) over its two-lane timeline.
// Each lane draws its channel's turns and backchannels at their times; a click plays from there.
function duplexTimeline(r, duration) {
  const audio = player(r.audio_url);
  const total = duration || Math.max(...r.segments.map((g) => g.end || 0), 1);
  const lanes = [0, 1].map((ch) => {
    const lane = el("div", {class: "lane", title: ch === 0 ? "channel 0: assistant" : "channel 1: user"},
      el("span", {class: "lane-label"}, ch === 0 ? "assistant (L)" : "user (R)"));
    r.segments.forEach((g, i) => {
      if (g.channel !== ch) return;
      const words = r.words.filter((w) => w.segment === i).map((w) => w.word).join(" ");
      const box = el("div", {class: `seg seg-${g.kind}`, title: `${g.kind} ${num(g.start, 2)}-${num(g.end, 2)} s: ${words}`},
        g.kind === "backchannel" ? g.text : "");
      box.style.left = `${(100 * g.start) / total}%`;
      box.style.width = `${(100 * (g.end - g.start)) / total}%`;
      box.addEventListener("click", () => { audio.currentTime = g.start; audio.play(); });
      lane.append(box);
    });
    return lane;
  });
  const cursor = el("div", {class: "cursor"});
  audio.addEventListener("timeupdate", () => { cursor.style.left = `${(100 * audio.currentTime) / total}%`; });
  return el("div", {class: "turn duplex"}, el("div", {class: "role"}, "stereo recording and its timeline"), audio,
    el("div", {class: "timeline"}, ...lanes, cursor));
}

// ------------------------------------------------------------------------------------------- rejects

let rejectsRequest = 0;

async function loadRejects(params) {
  fillForm($("#reject-filters"), params);
  const mine = ++rejectsRequest;
  const data = await api(`/api/rejects?${params}`);
  if (mine !== rejectsRequest) return;
  lastRejects = location.hash || "#rejects";
  const reason = params.get("reason") || "";
  const total = Object.values(data.by_reason).reduce((a, b) => a + b, 0);
  $("#reasons").replaceChildren(
    el("a", {class: `chip${reason ? "" : " active"}`, href: withParam("rejects", params, "reason", null)}, `all ${count(total)}`),
    ...Object.entries(data.by_reason).map(([name, n]) => el("a", {
      class: `chip${name === reason ? " active" : ""}`, "data-reason": name,
      href: withParam("rejects", (() => { const p = new URLSearchParams(params); p.delete("offset"); return p; })(), "reason", name),
    }, `${name} ${count(n)}`)));
  $("#reject-summary").textContent = `${count(data.total)} rejected input rows, ${count(data.with_audio)} with audio`;
  const tbody = $("#reject-table tbody");
  tbody.replaceChildren();
  for (const r of data.rows) {
    const detail = el("td", {class: "text"}, r.detail || "");
    for (const a of r.audio) {
      detail.append(spokenTurn({...a, role: "user", audio_url: a.audio_url}, `turn ${a.turn} (spoken)`));
    }
    tbody.append(el("tr", {class: r.audio.length ? "has-audio" : ""},
      el("td", {}, r.config), el("td", {class: "n"}, r.source_index ?? "–"), el("td", {}, r.source_id ?? "–"),
      el("td", {}, r.reason), detail));
  }
  if (!data.rows.length) tbody.append(el("tr", {}, el("td", {colspan: 5, class: "muted"}, "No rejected row matches.")));
  pager($("#reject-pager"), data, (offset) => { location.hash = withParam("rejects", params, "offset", String(offset)); });
}

// ------------------------------------------------------------------------------------------- routing

async function route() {
  const {parts, params} = parseHash();
  showError("");
  try {
    if (!overview) await loadOverview();
    if (parts[0] === "rows") { show("rows"); await loadRows(params); }
    else if (parts[0] === "row" && parts.length === 3) { show("row"); await loadRow(decodeURIComponent(parts[1]), parts[2]); }
    else if (parts[0] === "rejects") { show("rejects"); await loadRejects(params); }
    else show("overview");
  } catch (e) {
    showError(e.message);
  }
}

$("#tab-rows").addEventListener("click", (e) => { e.preventDefault(); location.hash = lastRows; });
$("#tab-rejects").addEventListener("click", (e) => { e.preventDefault(); location.hash = lastRejects; });
$("#row-table tbody").addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-href]");
  if (tr && !e.target.closest("a")) location.hash = tr.dataset.href;
});
for (const th of $$("#row-table th[data-sort]")) {
  th.addEventListener("click", () => {
    const params = parseHash().params;
    const same = (params.get("sort") || "position") === th.dataset.sort;
    params.set("sort", th.dataset.sort);
    params.set("order", same && params.get("order") !== "desc" ? "desc" : "asc");
    params.delete("offset");
    location.hash = `rows?${params}`;
  });
}
$("#row-pager select").addEventListener("change", (e) => {
  location.hash = withParam("rows", (() => { const p = parseHash().params; p.delete("offset"); return p; })(), "limit", e.target.value);
});
$("#normalized").addEventListener("change", (e) => document.body.classList.toggle("show-normalized", e.target.checked));
watchForm($("#row-filters"), "rows", ["sort", "order", "limit"]);
watchForm($("#reject-filters"), "rejects", ["reason"]);
window.addEventListener("hashchange", route);
route();
