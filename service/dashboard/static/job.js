/* One job: status and progress while it runs, loss and accuracy curves with the overfitting
   gap, activation histograms with an epoch slider, the attempts timeline, and cancel. */
"use strict";

(() => {
  const page = document.getElementById("job-page");
  const jobId = page.dataset.jobId;
  const $ = (id) => document.getElementById(id);
  const GAP_OPENS = 0.02; // train − test above this counts as an open overfitting gap
  const ACCURACIES = [["train_acc", "train"], ["val_acc", "val"], ["test_acc", "test"]];
  const seen = {epoch: null, status: null};

  function showJob(job) {
    const {epoch, iteration, total_iterations: total} = job.progress;
    NNQ.setStatus($("job-status"), job.status);
    $("job-progress").max = total || 1;
    $("job-progress").value = iteration;
    $("job-progress-text").textContent = `epoch ${epoch} · iteration ${iteration}/${total}`;
    $("job-error").textContent = job.error || "";
    $("job-error").hidden = !job.error;
    $("cancel-job").disabled = !NNQ.LIVE.has(job.status) || job.cancel_requested;
  }

  function drawLosses(losses) {
    const points = losses ? losses.items.filter((r) => r.loss !== null).map((r) => [r.iteration, r.loss]) : [];
    const note = losses && losses.every > 1 ? ` (every ${losses.every}-th iteration)` : "";
    Charts.draw($("loss-chart"), {
      xAxis: {type: "value", name: "iteration", min: "dataMin"},
      yAxis: {type: "value", name: "loss", scale: true},
      dataZoom: [{type: "inside"}],
      series: [Charts.line(`loss${note}`, points)],
    }, points.length > 0);
  }

  function gapText(gap) {
    if (!gap.length) return "The overfitting gap (train − test accuracy) shows once epochs are recorded.";
    const [epoch, value] = gap[gap.length - 1];
    const opened = gap.find(([, v]) => v > GAP_OPENS);
    const now = `Overfitting gap (train − test) at epoch ${epoch}: ${NNQ.accuracy(value)}`;
    return opened ? `${now}; it opened at epoch ${opened[0]}.` : `${now}; no gap has opened.`;
  }

  function drawAccuracies(rows) {
    const series = ACCURACIES.map(([key, name]) =>
      Charts.line(name, rows.filter((r) => r[key] !== null).map((r) => [r.epoch, r[key]])));
    const epochAxis = {type: "value", name: "epoch", minInterval: 1};
    Charts.draw($("accuracy-chart"), {xAxis: epochAxis, yAxis: {type: "value", name: "accuracy", scale: true}, series},
                rows.length > 0);
    const gap = rows.filter((r) => r.train_acc !== null && r.test_acc !== null)
      .map((r) => [r.epoch, r.train_acc - r.test_acc]);
    Charts.draw($("gap-chart"), {
      xAxis: epochAxis, yAxis: {type: "value", name: "train − test"},
      series: [Charts.line("train − test", gap, {areaStyle: {opacity: 0.2}})],
    }, gap.length > 0);
    $("gap-note").textContent = gapText(gap);
  }

  function showMetricsTable(rows) {
    const cells = (r) => [r.epoch, NNQ.number(r.train_loss), NNQ.accuracy(r.train_acc),
      NNQ.accuracy(r.val_acc), NNQ.accuracy(r.test_acc),
      r.train_acc === null || r.test_acc === null ? null : NNQ.accuracy(r.train_acc - r.test_acc),
      NNQ.number(r.seconds)];
    $("metrics-table").tBodies[0].replaceChildren(...rows.map((r) => NNQ.row(cells(r))));
  }

  function drawActivations(data) {
    const container = $("activation-charts");
    const found = Activations.index(data ? data.items : []);
    if (!found.epochs.length) {
      container.textContent = container.dataset.empty;
      return;
    }
    let nodes = [...container.querySelectorAll(".activation-chart")];
    if (nodes.length !== found.layers.length) {
      nodes = found.layers.map(() => NNQ.el("div", null, "activation-chart chart"));
      container.replaceChildren(...nodes);
    }
    Activations.slider($("epoch-slider"), $("epoch-label"), found.epochs, (epoch) => {
      found.layers.forEach((layer, i) => {
        Activations.histogram(nodes[i], found.at(epoch, layer.layer),
                              `layer ${layer.layer}: ${layer.name} (${layer.type})`);
      });
    });
  }

  function showTimeline(job, attempts) {
    if (!attempts || !attempts.items.length) return;
    const lines = [`queued ${NNQ.when(job.created_at)}`];
    for (const a of attempts.items) {
      const resumed = a.resumed_from_epoch > 0 ? `, resumed from epoch ${a.resumed_from_epoch}` : "";
      lines.push(`attempt ${a.attempt} started ${NNQ.when(a.started_at)} on ${a.host} (worker ${a.worker})${resumed}`);
      if (a.ended_at) lines.push(`attempt ${a.attempt} ended ${NNQ.when(a.ended_at)}${a.outcome ? `: ${a.outcome}` : ""}`);
    }
    if (job.finished_at) lines.push(`ended ${NNQ.when(job.finished_at)}: ${job.status}`);
    $("job-timeline").replaceChildren(...lines.map((text) => NNQ.el("li", text)));
  }

  async function refresh() {
    const job = await NNQ.get(`/jobs/${jobId}`);
    showJob(job);
    const {epoch} = job.progress;
    // Losses, metrics and activations are all written when an epoch ends (one transaction),
    // so a new epoch or status is the only time they can have changed.
    if (epoch !== seen.epoch || job.status !== seen.status) {
      const [losses, metrics, activations, attempts] = await Promise.all([
        NNQ.optional(`/jobs/${jobId}/losses`), NNQ.get(`/jobs/${jobId}/metrics`),
        NNQ.optional(`/jobs/${jobId}/activations`), NNQ.optional(`/jobs/${jobId}/attempts`)]);
      drawLosses(losses);
      drawAccuracies(metrics.items);
      showMetricsTable(metrics.items);
      drawActivations(activations);
      showTimeline(job, attempts);
    }
    Object.assign(seen, {epoch, status: job.status});
    return NNQ.LIVE.has(job.status);
  }

  $("cancel-job").addEventListener("click", async () => {
    const button = $("cancel-job");
    button.disabled = true;
    try {
      const job = await NNQ.send("POST", `/jobs/${jobId}/cancel`);
      showJob(job);
      $("cancel-message").textContent = job.status === "cancelled"
        ? "cancelled" : "cancel requested: the worker stops between iterations";
    } catch (err) {
      $("cancel-message").textContent = err.message;
      button.disabled = false;
    }
  });

  NNQ.poll(refresh);
})();
