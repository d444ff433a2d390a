/* Compare: the chosen jobs' losses and accuracies overlaid, their activation histograms side
   by side per layer (one epoch slider for all), refreshed while any of them runs. */
"use strict";

(() => {
  const page = document.getElementById("compare-page");
  const ids = page.dataset.jobs.split(",").filter(Boolean);
  const $ = (id) => document.getElementById(id);
  const ACCURACIES = [["train_acc", "train", "dashed", true], ["val_acc", "val", "dotted", false],
                      ["test_acc", "test", "solid", true]];

  async function load(id) {
    const [job, metrics, losses, activations] = await Promise.all([
      NNQ.get(`/jobs/${id}`), NNQ.get(`/jobs/${id}/metrics`), NNQ.optional(`/jobs/${id}/losses`),
      NNQ.optional(`/jobs/${id}/activations`)]);
    return {job, label: `#${job.id} ${job.name}`, metrics: metrics.items,
            losses: losses ? losses.items : [], activations: Activations.index(activations ? activations.items : [])};
  }

  function drawLosses(runs) {
    const series = runs.map((run) => Charts.line(run.label, run.losses.filter((r) => r.loss !== null).map((r) => [r.iteration, r.loss])));
    Charts.draw($("compare-loss"), {
      xAxis: {type: "value", name: "iteration", min: "dataMin"},
      yAxis: {type: "value", name: "loss", scale: true}, dataZoom: [{type: "inside"}], series,
    }, runs.some((run) => run.losses.length));
  }

  function drawAccuracies(runs) {
    const series = [];
    const selected = {};
    for (const run of runs) {
      for (const [key, name, style, shown] of ACCURACIES) {
        const label = `${run.label} ${name}`;
        selected[label] = shown;
        series.push(Charts.line(label, run.metrics.filter((r) => r[key] !== null).map((r) => [r.epoch, r[key]]),
                                {lineStyle: {type: style}}));
      }
    }
    Charts.draw($("compare-accuracy"), {
      legend: {type: "scroll", top: 0, selected},
      xAxis: {type: "value", name: "epoch", minInterval: 1},
      yAxis: {type: "value", name: "accuracy", scale: true}, series,
    }, runs.some((run) => run.metrics.length));
  }

  /** One row per kind of layer ("relu #2": each network's second relu), one cell per job:
      its histogram, or a note when its network has no such layer. */
  function drawActivations(runs) {
    const container = $("compare-activations");
    const epochs = [...new Set(runs.flatMap((run) => run.activations.epochs))].sort((a, b) => a - b);
    if (!epochs.length) {
      container.textContent = container.dataset.empty;
      return;
    }
    const kinds = [...new Set(runs.flatMap((run) => run.activations.layers.map((l) => l.kind)))];
    const layerOf = (run, kind) => run.activations.layers.find((l) => l.kind === kind) || null;
    if (container.querySelectorAll(".activation-row").length !== kinds.length) {
      container.replaceChildren(...kinds.map((kind) => {
        const row = NNQ.el("div", null, "activation-row chart-grid");
        row.dataset.kind = kind;
        row.append(...runs.map(() => NNQ.el("div", null, "activation-cell chart")));
        return row;
      }));
    }
    const rows = [...container.querySelectorAll(".activation-row")];
    Activations.slider($("compare-epoch-slider"), $("compare-epoch-label"), epochs, (epoch) => {
      kinds.forEach((kind, i) => {
        const nodes = rows[i].querySelectorAll(".activation-cell");
        runs.forEach((run, j) => {
          const layer = layerOf(run, kind);
          nodes[j].classList.toggle("activation-chart", layer !== null);
          nodes[j].classList.toggle("chart", layer !== null);
          if (layer === null) {
            echarts.dispose(nodes[j]);
            nodes[j].textContent = `${run.label}: no ${kind} layer in this network`;
            return;
          }
          const item = run.activations.at(epoch, layer.layer);
          Activations.histogram(nodes[j], item, `${run.label} · layer ${layer.name}`);
        });
      });
    });
  }

  async function refresh() {
    if (!ids.length) return false;
    const runs = await Promise.all(ids.map(load));
    drawLosses(runs);
    drawAccuracies(runs);
    drawActivations(runs);
    return runs.some((run) => NNQ.LIVE.has(run.job.status));
  }

  NNQ.poll(refresh);
})();
