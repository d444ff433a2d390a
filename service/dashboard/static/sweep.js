/* One sweep: live status, counts and ranking; the metric over each searched parameter (log
   axes for log-uniform ones), parallel coordinates, every trial's curve with pruned trials
   marked where they stopped; promote the best to an alias. */
"use strict";

(() => {
  const page = document.getElementById("sweep-page");
  const sweepId = page.dataset.sweepId;
  const metric = page.dataset.metric;
  const $ = (id) => document.getElementById(id);
  const COMPARE_TOP = Number(page.dataset.compareTop); // the server's count, one definition
  const curves = new Map(); // job id -> {epochs, rows}: a trial's curve, refetched when it grows

  /** An ECharts axis for a searched parameter: log for log ranges, categories for choices. */
  function axisFor(spec, values) {
    const kind = Object.keys(spec)[0];
    if (kind === "loguniform" || kind === "int_log") return {type: "log"};
    if (kind === "uniform" || kind === "int") return {type: "value", scale: true};
    return {type: "category", data: [...new Set(values.map(String))]};
  }

  const coordinate = (axis, value) => (axis.type === "category" ? String(value) : value);

  function showHead(sweep) {
    NNQ.setStatus($("sweep-status"), sweep.status);
    for (const node of $("sweep-counts").querySelectorAll("[data-count]")) {
      node.textContent = sweep.counts[node.dataset.count];
    }
    const top = sweep.trials.filter((t) => t.job_id !== null).slice(0, COMPARE_TOP).map((t) => t.job_id);
    $("compare-top").href = NNQ.page(`/compare?jobs=${top.join(",")}`);
    $("compare-top").textContent = `Compare the top ${top.length} trials`;
  }

  function showBest(best) {
    const section = $("best-trial");
    const parts = [NNQ.el("h2", "Best trial")];
    if (!best) {
      parts.push(NNQ.el("p", "No trial has succeeded yet.", "empty"));
    } else {
      const line = NNQ.el("p", `trial ${best.index} · `);
      line.append(NNQ.link(`/jobs/${best.job_id}`, `job ${best.job_id}`), ` · ${metric} ${NNQ.accuracy(best[metric])}`);
      if (best.model_id) line.append(" · ", NNQ.link(`/models/${best.model_id}`, `model ${best.model_id}`));
      const params = NNQ.el("p");
      params.append(NNQ.el("code", JSON.stringify(best.params)));
      parts.push(line, params);
    }
    section.replaceChildren(...parts);
  }

  function showTrials(sweep) {
    const body = $("trials-table").tBodies[0];
    sweep.trials.forEach((trial, rank) => {
      const row = body.querySelector(`tr[data-trial-index="${Number(trial.index)}"]`);
      if (!row) return;
      row.cells[0].textContent = rank + 1;
      if (trial.job_id !== null && !row.cells[2].firstChild) row.cells[2].append(NNQ.link(`/jobs/${trial.job_id}`, trial.job_id));
      row.querySelector(".trial-status").textContent = trial.status;
      row.querySelector(".trial-metric").textContent = NNQ.accuracy(trial[metric]);
      row.querySelector(".trial-test").textContent = NNQ.accuracy(trial.test_acc);
      row.querySelector(".trial-epochs").textContent = trial.epochs;
      row.classList.toggle("best", Boolean(sweep.best) && sweep.best.index === trial.index);
      body.append(row);
    });
  }

  function drawObjectives(sweep) {
    const space = sweep.request.space || {};
    const scored = sweep.trials.filter((t) => t[metric] !== null);
    const container = $("objective-charts");
    const params = Object.keys(space);
    if (!scored.length) {
      container.textContent = container.dataset.empty;
      return;
    }
    if (container.querySelectorAll(".objective-chart").length !== params.length) {
      container.replaceChildren(...params.map(() => NNQ.el("div", null, "objective-chart chart")));
    }
    const nodes = container.querySelectorAll(".objective-chart");
    params.forEach((param, i) => {
      const axis = axisFor(space[param], scored.map((t) => t.params[param]));
      const statuses = [...new Set(scored.map((t) => t.status))];
      Charts.draw(nodes[i], {
        title: {text: param, left: "center", bottom: 0, textStyle: {fontSize: 13}},
        tooltip: {trigger: "item"},
        xAxis: {...axis, name: param, nameLocation: "middle", nameGap: 28},
        yAxis: {type: "value", name: metric, scale: true},
        series: statuses.map((status) => ({
          type: "scatter", name: status,
          data: scored.filter((t) => t.status === status)
            .map((t) => [coordinate(axis, t.params[param]), t[metric], `trial ${t.index}`]),
        })),
      }, true);
    });
  }

  function drawParallel(sweep) {
    const space = sweep.request.space || {};
    const params = Object.keys(space);
    const scored = sweep.trials.filter((t) => t[metric] !== null);
    const axes = params.map((param, dim) => ({dim, name: param, ...axisFor(space[param], scored.map((t) => t.params[param]))}));
    axes.push({dim: params.length, name: metric, type: "value", scale: true});
    const values = scored.map((t) => t[metric]);
    Charts.draw($("parallel-chart"), {
      legend: {show: false},
      tooltip: {trigger: "item"},
      parallel: {left: 80, right: 140, top: 48, bottom: 40},
      parallelAxis: axes,
      visualMap: {type: "continuous", dimension: params.length, min: Math.min(...values),
                  max: Math.max(...values), right: 0, top: "middle", calculable: true},
      series: [{type: "parallel", name: "trials", lineStyle: {width: 2, opacity: 0.7},
                data: scored.map((t) => [...params.map((p, i) => coordinate(axes[i], t.params[p])), t[metric]])}],
    }, scored.length > 0);
  }

  async function loadCurves(trials) {
    const stale = trials.filter((t) => t.job_id !== null && t.epochs > 0
      && (!curves.has(t.job_id) || curves.get(t.job_id).epochs !== t.epochs));
    await Promise.all(stale.map(async (t) => {
      const metrics = await NNQ.get(`/jobs/${t.job_id}/metrics`);
      curves.set(t.job_id, {epochs: t.epochs, rows: metrics.items});
    }));
  }

  function drawCurves(sweep) {
    const series = [];
    const stops = [];
    for (const trial of sweep.trials) {
      const curve = curves.get(trial.job_id);
      if (!curve) continue;
      const points = curve.rows.filter((r) => r[metric] !== null).map((r) => [r.epoch, r[metric]]);
      const pruned = trial.status === "pruned";
      series.push(Charts.line(`trial ${trial.index}`, points, {lineStyle: {type: pruned ? "dashed" : "solid"}}));
      if (pruned && points.length) stops.push(points[points.length - 1]);
    }
    series.push({type: "scatter", name: "pruned here", symbol: "diamond", symbolSize: 12,
                 itemStyle: {color: "#c0392b"}, data: stops});
    Charts.draw($("trial-curves"), {
      xAxis: {type: "value", name: "epoch", minInterval: 1},
      yAxis: {type: "value", name: metric, scale: true}, series,
    }, series.length > 1);
  }

  async function refresh() {
    const sweep = await NNQ.get(`/sweeps/${sweepId}`);
    showHead(sweep);
    showBest(sweep.best);
    showTrials(sweep);
    drawObjectives(sweep);
    drawParallel(sweep);
    await loadCurves(sweep.trials);
    drawCurves(sweep);
    return NNQ.LIVE.has(sweep.status);
  }

  $("promote-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const alias = event.target.elements.alias.value.trim();
    try {
      const out = await NNQ.send("POST", `/sweeps/${sweepId}/promote`, {alias});
      $("promote-message").textContent = `${out.alias} → model ${out.model_id} (trial ${out.trial.index})`;
    } catch (err) {
      $("promote-message").textContent = err.message;
    }
  });

  NNQ.poll(refresh);
})();
