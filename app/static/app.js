// doggo's upload page: send the photo to /api/predict, show the breeds, then the Grad-CAM.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("upload");
  let current = 0; // id of the latest upload, so a slow old answer never overwrites a new one

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", Boolean(isError));
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

  function showBreeds(data) {
    const list = $("breeds");
    list.replaceChildren();
    for (const breed of data.predictions) {
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
      list.append(item);
    }
    const verdict = $("verdict");
    verdict.classList.toggle("not-dog", !data.is_dog);
    verdict.textContent = data.is_dog
      ? `Looks like a ${data.answer}`
      : `That does not look like a dog (dog probability ${percent(data.dog_probability)})`;
    $("model-name").textContent = `${data.model.name}`;
    const t = data.timing_ms;
    $("timing").textContent = `Model ${data.model.name} v${data.model.version}: ` +
      `${t.inference.toFixed(0)} ms inference, ${t.total.toFixed(0)} ms on the server.`;
  }

  async function handle(file) {
    if (!file) return;
    const id = ++current;
    $("result").hidden = false;
    $("heatmap-figure").hidden = true;
    $("breeds").replaceChildren();
    $("verdict").textContent = "";
    $("timing").textContent = "";
    const preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    setStatus("Looking at your photo\u2026");
    try {
      const data = await post("/api/predict?top_k=5", file);
      if (id !== current) return;
      showBreeds(data);
      setStatus("Finding where the model looked\u2026");
      const explained = await post("/api/explain?top_k=1", file);
      if (id !== current) return;
      $("heatmap").src = explained.explanation.image;
      $("heatmap-caption").textContent = `Where the model looked for "${explained.explanation.class}"`;
      $("heatmap-figure").hidden = false;
      setStatus("");
    } catch (err) {
      if (id === current) setStatus(err.message, true);
    }
  }

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
