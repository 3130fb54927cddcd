// The faceaffect page: upload an image or a video as a job, follow it, show what it made.
// Plain browser code and the server's own API: no library, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 400;
const SUMMARY_COLUMNS = ["track_id", "frames", "start", "end", "dominant", "dominant_probability",
                         "valence", "arousal"];

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (ignored) { /* not JSON */ }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function show(id, visible) { $(id).hidden = !visible; }

function fail(message) {
  $("error").textContent = message;
  show("error", true);
  show("progress", false);
}

function setProgress(text, fraction) {
  show("progress", true);
  $("status").textContent = text;
  if (fraction === null) { $("bar").removeAttribute("value"); } else { $("bar").value = fraction; }
}

function upload(file) {
  const form = new FormData();
  const options = {};
  const fps = parseFloat($("target_fps").value);
  const smooth = parseFloat($("smooth_seconds").value);
  if (fps > 0) { options.target_fps = fps; }
  if (smooth > 0) { options.smooth_seconds = smooth; }
  const outputs = ["annotated", "plots"].filter((name) => $(`want_${name}`).checked);
  form.append("options", JSON.stringify(options));
  form.append("outputs", outputs.join(","));
  form.append("file", file, file.name);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/jobs");
    request.responseType = "json";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) { setProgress(`uploading ${file.name}`, event.loaded / event.total); }
    };
    request.onload = () => {
      const body = request.response || {};
      if (request.status === 202) { resolve(body); } else { reject(new Error(body.error || request.statusText)); }
    };
    request.onerror = () => reject(new Error("the upload failed (connection lost)"));
    request.send(form);
  });
}

async function follow(job) {
  while (job.status === "queued" || job.status === "running") {
    const { done, total } = job.progress;
    if (job.status === "queued") {
      setProgress("queued", null);
    } else if (total && done >= total) {
      setProgress("writing the outputs", null);
    } else {
      setProgress(`analysing: ${done} of ${total || "?"} frames`, total ? done / total : null);
    }
    await new Promise((resume) => setTimeout(resume, POLL_MS));
    job = await api(`/v1/jobs/${job.id}`);
  }
  if (job.status === "failed") { throw new Error(job.error || "the job failed"); }
  return job;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, value));
  node.textContent = text;
  return node;
}

function number(value) {
  if (value === null || value === undefined) { return "-"; }
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(2) : String(value);
}

async function showSummary(job) {
  const rows = await api(`${job.links.summary}?format=json`);
  const head = $("summary").tHead;
  const body = $("summary").tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  const header = head.insertRow();
  SUMMARY_COLUMNS.forEach((name) => header.appendChild(element("th", {}, name.replace("_", " "))));
  rows.forEach((row) => {
    const line = body.insertRow();
    SUMMARY_COLUMNS.forEach((name) => { line.insertCell().textContent = number(row[name]); });
  });
  if (!rows.length) {
    body.insertRow().appendChild(element("td", { colspan: SUMMARY_COLUMNS.length }, "no faces found"));
  }
}

function showMedia(job) {
  const media = $("media");
  media.replaceChildren();
  if (!job.links.annotated) { return; }
  if (job.kind === "video") {
    media.appendChild(element("video", { src: job.links.annotated, controls: "", muted: "", playsinline: "" }));
  } else {
    media.appendChild(element("img", { src: job.links.annotated, alt: `annotated ${job.name}` }));
  }
}

function showPlots(job) {
  const plots = $("plots");
  plots.replaceChildren();
  [["expressions", "expression timeline"], ["valence_arousal", "valence-arousal circumplex"]].forEach(
    ([name, title]) => {
      const link = job.links[`plots/${name}`];
      if (link) { plots.appendChild(element("img", { src: link, alt: title, title, class: name })); }
    });
}

function showDownloads(job) {
  const list = $("downloads");
  list.replaceChildren();
  const files = [["table (CSV)", `${job.links.table}?format=csv`],
                 ["table (Parquet)", `${job.links.table}?format=parquet`],
                 ["table (JSON lines)", `${job.links.table}?format=jsonl`],
                 ["summary (CSV)", `${job.links.summary}?format=csv`]];
  if (job.links.annotated) { files.push([job.kind === "video" ? "annotated video" : "annotated image",
                                         job.links.annotated]); }
  if (job.links.embeddings) { files.push(["embeddings (.npy)", job.links.embeddings]); }
  files.forEach(([label, href]) => {
    const item = document.createElement("li");
    item.appendChild(element("a", { href, download: "" }, label));
    list.appendChild(item);
  });
}

async function showResult(job) {
  const result = job.result;
  $("result-title").textContent = job.name;
  const tracks = job.kind === "video" ? `, ${result.tracks} track${result.tracks === 1 ? "" : "s"}` : "";
  $("result-facts").textContent = `${result.frames} frame${result.frames === 1 ? "" : "s"}, `
    + `${result.faces} face${result.faces === 1 ? "" : "s"}${tracks}; model ${result.model}`
    + (result.has_va ? "" : " (no valence-arousal)");
  showMedia(job);
  showPlots(job);
  showDownloads(job);
  await showSummary(job);
  show("progress", false);
  show("result", true);
  $("result").dataset.job = job.id;
}

async function analyse(file) {
  show("error", false);
  show("result", false);
  try {
    const job = await follow(await upload(file));
    await showResult(job);
  } catch (error) {
    fail(error.message);
  }
  await listJobs();
}

async function listJobs() {
  const { jobs } = await api("/v1/jobs");
  const list = $("jobs");
  list.replaceChildren();
  jobs.forEach((job) => {
    const item = document.createElement("li");
    item.appendChild(element("span", { class: "state" }, job.status));
    const name = element("a", { href: `#${job.id}` }, job.name);
    name.onclick = () => { if (job.status === "done") { showResult(job); } };
    item.appendChild(name);
    item.appendChild(element("span", { class: "state" }, new Date(job.created * 1000).toLocaleString()));
    const remove = element("button", { type: "button" }, "delete");
    remove.onclick = async () => { await api(`/v1/jobs/${job.id}`, { method: "DELETE" }); await listJobs(); };
    item.appendChild(remove);
    list.appendChild(item);
  });
  if (!jobs.length) { list.appendChild(element("li", {}, "none yet")); }
}

function start() {
  const drop = $("drop");
  $("file").onchange = () => { if ($("file").files.length) { analyse($("file").files[0]); } };
  drop.ondragover = (event) => { event.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) { analyse(event.dataTransfer.files[0]); }
  };
  api("/v1/models").then(({ loaded }) => {
    $("model").textContent = `model ${loaded.name}: ${loaded.labels.length} expressions`
      + (loaded.has_va ? ", valence and arousal" : " (no valence-arousal)");
  }).catch((error) => fail(error.message));
  listJobs().catch((error) => fail(error.message));
}

document.addEventListener("DOMContentLoaded", start);
