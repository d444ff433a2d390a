/* One model: point an alias at it, and classify a drawing (white on black, averaged down to
   28×28 values in [0, 1]) or an uploaded PNG through the predict endpoint. */
"use strict";

(() => {
  const page = document.getElementById("model-page");
  const modelId = page.dataset.modelId;
  const classes = JSON.parse(page.dataset.classes);
  const $ = (id) => document.getElementById(id);
  const canvas = $("draw-canvas");
  const pen = canvas.getContext("2d", {willReadFrequently: true});
  const SIDE = 28; // the model's input is 28×28
  const BRUSH = 22; // stroke width on the 280×280 canvas
  const MAX_CHANNEL = 255;
  const RGBA = 4;

  function clear() {
    pen.fillStyle = "black";
    pen.fillRect(0, 0, canvas.width, canvas.height);
  }

  function drawing() {
    let last = null;
    const at = (event) => {
      const box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * canvas.width / box.width,
              (event.clientY - box.top) * canvas.height / box.height];
    };
    canvas.addEventListener("pointerdown", (event) => {
      canvas.setPointerCapture(event.pointerId);
      last = at(event);
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!last) return;
      const next = at(event);
      pen.strokeStyle = "white";
      pen.lineWidth = BRUSH;
      pen.lineCap = "round";
      pen.beginPath();
      pen.moveTo(...last);
      pen.lineTo(...next);
      pen.stroke();
      last = next;
    });
    for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, () => { last = null; });
  }

  /** The canvas averaged over SIDE×SIDE blocks: 784 brightness values in [0, 1]. */
  function pixels() {
    const block = canvas.width / SIDE;
    const data = pen.getImageData(0, 0, canvas.width, canvas.height).data;
    const out = new Array(SIDE * SIDE).fill(0);
    for (let y = 0; y < canvas.height; y++) {
      for (let x = 0; x < canvas.width; x++) {
        out[Math.floor(y / block) * SIDE + Math.floor(x / block)] += data[(y * canvas.width + x) * RGBA];
      }
    }
    return out.map((sum) => sum / (block * block * MAX_CHANNEL));
  }

  function showPrediction(result) {
    const probabilities = result.probabilities[0];
    const label = result.labels[0];
    const names = probabilities.map((_, i) => classes[i] || String(i));
    Charts.draw($("probabilities-chart"), {
      legend: {show: false},
      xAxis: {type: "category", data: names, axisLabel: {interval: 0, rotate: 30}},
      yAxis: {type: "value", name: "probability", min: 0, max: 1},
      series: [{type: "bar", name: "probability", data: probabilities}],
    }, true);
    $("predicted-label").textContent = `${label}: ${names[label]} (${NNQ.accuracy(probabilities[label])})`;
  }

  async function predict(body) {
    try {
      showPrediction(await NNQ.send("POST", `/models/${modelId}/predict`, body));
    } catch (err) {
      $("predicted-label").textContent = err.message;
    }
  }

  $("predict-button").addEventListener("click", () => predict({inputs: [pixels()]}));
  $("clear-canvas").addEventListener("click", clear);
  $("png-upload").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    predict(form);
  });

  $("alias-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = event.target.elements.alias.value.trim();
    try {
      await NNQ.send("PUT", `/models/aliases/${encodeURIComponent(name)}`, {model_id: Number(modelId)});
      const list = $("model-aliases");
      if (![...list.children].some((item) => item.textContent === name)) list.append(NNQ.el("li", name, "alias"));
      $("alias-message").textContent = `${name} → model ${modelId}`;
    } catch (err) {
      $("alias-message").textContent = err.message;
    }
  });

  clear();
  drawing();
})();
