// doggo's upload page: one request to /api/predict?explain=1 gives the breeds and the Grad-CAM
// of the class the answer names; the answer is announced in a live region.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("upload");
  let current = 0; // id of the latest upload, so a slow old answer never overwrites a new one

  // The visible status line, and the live region a screen reader announces.
  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
    $("announce").textContent = text;
  }

  async function post(url, file) {
    const body = new FormData();
    body.append("image", file, "upload");
    const response = await fetch(url, { method: "POST", body: body });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      throw new Error(`The server answered ${response.status} ${response.statusText}.`);
    }
    if (!response.ok) {
      throw new Error(data && data.error ? data.error.message : `Error ${response.status}`);
    }
    return data;
  }

  function percent(p) {
    return (p * 100).toFixed(p >= 0.1 ? 0 : 1) + "%";
  }

  function breedItem(breed) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = breed.name;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(breed.probability);
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = Math.max(0.5, breed.probability * 100) + "%"; // CSSOM: allowed by CSP
    bar.append(fill);
    item.append(label, value, bar);
    return item;
  }

  // The sentence the server worded from the confidence, with the dog mass when it is no dog.
  function verdictText(data) {
    return data.is_dog
      ? data.headline
      : `${data.headline} (dog probability ${percent(data.dog_probability)})`;
  }

  function showAnswer(data) {
    // Under "not a dog" the breeds' near-zero bars say nothing: none are shown.
    $("breeds").replaceChildren(...(data.is_dog ? data.predictions.map(breedItem) : []));
    const verdict = $("verdict");
    verdict.classList.toggle("not-dog", !data.is_dog);
    verdict.textContent = verdictText(data);
    $("model-name").textContent = `${data.model.name}`;
    const t = data.timing_ms;
    $("timing").textContent = `Model ${data.model.name} v${data.model.version}: ` +
      `${t.inference.toFixed(0)} ms inference, ${t.total.toFixed(0)} ms on the server.`;
    const explanation = data.explanation;
    if (explanation) {
      $("heatmap").src = explanation.image;
      $("heatmap-caption").textContent = `Where the model looked for "${explanation.class}"`;
      $("heatmap-figure").hidden = false;
    }
  }

  function reset() {
    $("result").hidden = true;
    $("heatmap-figure").hidden = true;
    $("heatmap").removeAttribute("src");
    $("breeds").replaceChildren();
    $("verdict").textContent = "";
    $("timing").textContent = "";
  }

  function showPreview(file) {
    const preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    $("preview-figure").hidden = true; // shown once the browser has decoded it (not for HEIC)
    preview.src = URL.createObjectURL(file);
  }

  async function handle(file) {
    if (!file) return;
    const id = ++current;
    reset();
    showPreview(file);
    setStatus("Looking at your photo\u2026");
    try {
      const data = await post("/api/predict?explain=1&top_k=5", file);
      if (id !== current) return;
      showAnswer(data);
      $("result").hidden = false;
      $("status").textContent = "";
      $("announce").textContent = verdictText(data);
      $("verdict").focus({ preventScroll: true });
    } catch (err) {
      if (id === current) setStatus(err.message, true);
    }
  }

  $("preview").addEventListener("load", () => { $("preview-figure").hidden = false; });
  $("preview").addEventListener("error", () => { $("preview-figure").hidden = true; });
  for (const input of [$("file"), $("camera")]) {
    input.addEventListener("change", () => handle(input.files[0]));
  }
  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("dragover", (event) => {
    event.preventDefault();
    form.classList.add("dragging");
  });
  form.addEventListener("dragleave", () => form.classList.remove("dragging"));
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    form.classList.remove("dragging");
    handle(event.dataTransfer.files[0]);
  });
})();
