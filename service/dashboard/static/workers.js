/* Workers: who is alive, which job each holds and until when, queue depths, and the jobs
   that have waited longest; refreshed every few seconds. */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const fill = (id, rows) => $(id).tBodies[0].replaceChildren(...rows.map(NNQ.row));
  const jobLink = (id) => (id === null || id === undefined ? null : NNQ.link(`/jobs/${id}`, id));

  async function refresh() {
    let data;
    try {
      data = await NNQ.get("/workers");
    } catch (err) {
      const missing = err instanceof NNQ.ApiError && err.status === 404;
      $("workers-message").textContent = missing
        ? "This service has no workers endpoint (GET /api/v1/workers)."
        : `Could not read the workers: ${err.message}`;
      return !missing;
    }
    fill("workers-table", data.workers.map((w) => [w.name, w.host, w.pid, w.queues.join(", "),
      jobLink(w.job_id), NNQ.when(w.lease_expires_at)]));
    fill("queues-table", data.queues.map((q) => [q.name, q.depth]));
    fill("waiting-table", data.waiting.map((job) => [jobLink(job.id), job.name, job.device,
      NNQ.when(job.created_at), NNQ.duration(job.created_at)]));
    const count = data.workers.length;
    $("workers-message").textContent = `${count} live worker${count === 1 ? "" : "s"}; updated ${new Date().toLocaleTimeString()}`;
    return true;
  }

  NNQ.poll(refresh);
})();
