/* The jobs list: keeps status, progress, accuracies and durations current from the JSON API,
   adds new jobs on the first page, and opens the comparison of the ticked jobs. */
"use strict";

(() => {
  const table = document.getElementById("jobs-table");
  const body = table.tBodies[0];
  const template = document.getElementById("job-row-template");
  const compareButton = document.getElementById("compare-selected");
  const summary = document.getElementById("jobs-summary");
  const query = table.dataset;
  const firstPage = query.page === "1";
  const limit = Number(query.limit);

  const rows = () => [...body.querySelectorAll("tr[data-job-id]")];
  const rowOf = (id) => body.querySelector(`tr[data-job-id="${Number(id)}"]`);
  const cell = (row, name) => row.querySelector(`.${name}`);

  function newRow(job) {
    const row = template.content.firstElementChild.cloneNode(true);
    row.dataset.jobId = job.id;
    cell(row, "compare-pick").value = job.id;
    cell(row, "job-id").append(NNQ.link(`/jobs/${job.id}`, job.id));
    cell(row, "job-name").append(NNQ.link(`/jobs/${job.id}`, job.name));
    cell(row, "job-created").textContent = NNQ.when(job.created_at);
    return row;
  }

  function insert(row) {
    const newer = rows().find((other) => Number(other.dataset.jobId) < Number(row.dataset.jobId));
    body.insertBefore(row, newer || null);
    for (const extra of rows().slice(limit)) extra.remove();
    for (const note of document.querySelectorAll("p.empty")) note.hidden = true;
  }

  function show(row, job) {
    const {epoch, iteration, total_iterations: total} = job.progress;
    row.dataset.status = job.status;
    row.dataset.epoch = epoch;
    row.dataset.startedAt = job.started_at || "";
    row.dataset.finishedAt = job.finished_at || "";
    cell(row, "job-status").textContent = job.status;
    const bar = cell(row, "job-progress");
    bar.max = total || 1;
    bar.value = iteration;
    cell(row, "job-progress-text").textContent = `epoch ${epoch} · ${iteration}/${total}`;
    const sweep = cell(row, "job-sweep");
    if (job.sweep_id && !sweep.firstChild) sweep.append(NNQ.link(`/sweeps/${job.sweep_id}`, job.sweep_id));
  }

  async function showAccuracies(row, jobId) {
    const metrics = await NNQ.get(`/jobs/${jobId}/metrics`);
    const last = metrics.items[metrics.items.length - 1] || {};
    cell(row, "job-train").textContent = NNQ.accuracy(last.train_acc);
    cell(row, "job-val").textContent = NNQ.accuracy(last.val_acc);
    cell(row, "job-test").textContent = NNQ.accuracy(last.test_acc);
  }

  async function apply(job) {
    let row = rowOf(job.id);
    if (!row) {
      if (!firstPage) return;
      row = newRow(job);
      insert(row);
    }
    const changed = row.dataset.status !== job.status || row.dataset.epoch !== String(job.progress.epoch);
    show(row, job);
    if (changed) await showAccuracies(row, job.id);
  }

  function tickDurations() {
    for (const row of rows()) {
      if (row.dataset.startedAt) {
        cell(row, "job-duration").textContent = NNQ.duration(row.dataset.startedAt, row.dataset.finishedAt);
      }
    }
  }

  /** "N jobs, showing a–b", kept true as jobs arrive. */
  function showTotal(total) {
    const shown = rows().length;
    const first = Math.min(total, Number(query.offset) + 1);
    summary.textContent = `${total} job${total === 1 ? "" : "s"}` +
      (shown ? `, showing ${first}–${Number(query.offset) + shown}` : "");
  }

  async function refresh() {
    const seen = new Set();
    const params = new URLSearchParams({limit: query.limit, offset: query.offset});
    if (query.status) params.set("status", query.status);
    if (query.name) params.set("name", query.name);
    if (query.sweep) params.set("sweep_id", query.sweep);
    const listed = await NNQ.get(`/jobs?${params}`);
    for (const job of listed.items) {
      seen.add(job.id);
      await apply(job);
    }
    showTotal(listed.total);
    for (const row of rows()) {
      const id = Number(row.dataset.jobId);
      if (!seen.has(id) && NNQ.LIVE.has(row.dataset.status)) await apply(await NNQ.get(`/jobs/${id}`));
    }
    tickDurations();
    return true;
  }

  function picked() {
    return [...body.querySelectorAll("input.compare-pick:checked")].map((box) => box.value);
  }

  body.addEventListener("change", () => {
    compareButton.disabled = picked().length === 0;
  });
  compareButton.addEventListener("click", () => {
    window.location.href = NNQ.page(`/compare?jobs=${picked().join(",")}`);
  });
  compareButton.disabled = picked().length === 0;
  NNQ.poll(refresh);
})();
