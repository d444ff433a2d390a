/* Activation statistics (one histogram per layer and epoch): indexing the API's items,
   drawing one histogram, and the epoch slider shared by the job and compare pages. */
"use strict";

const Activations = (() => {
  const TICK_DIGITS = 2;

  /** {epochs, layers: [{layer, name, type, kind}], at(epoch, layer)} over the API's items.
      ``kind`` ("relu #2": the second relu) lines up the same layer of different networks, so
      a network with BatchNorm compares relu to relu with one without it. */
  function index(items) {
    const byKey = new Map();
    const layers = new Map();
    for (const item of items) {
      byKey.set(`${item.epoch}:${item.layer}`, item);
      if (!layers.has(item.layer)) layers.set(item.layer, {layer: item.layer, name: item.name, type: item.type});
    }
    const epochs = [...new Set(items.map((item) => item.epoch))].sort((a, b) => a - b);
    const sorted = [...layers.values()].sort((a, b) => a.layer - b.layer);
    const seen = new Map();
    for (const layer of sorted) {
      seen.set(layer.type, (seen.get(layer.type) || 0) + 1);
      layer.kind = `${layer.type} #${seen.get(layer.type)}`;
    }
    return {
      epochs,
      layers: sorted,
      at: (epoch, layer) => byKey.get(`${epoch}:${layer}`) || null,
    };
  }

  /** The recorded epoch nearest to a slider value. */
  function nearest(epochs, value) {
    return epochs.reduce((best, epoch) => (Math.abs(epoch - value) < Math.abs(best - value) ? epoch : best), epochs[0]);
  }

  function histogram(node, item, title) {
    if (!item) {
      echarts.dispose(node);
      delete node.dataset.ready;
      node.textContent = `${title}: not recorded at this epoch`;
      return;
    }
    const centers = item.counts.map((_, i) => (item.edges[i] + item.edges[i + 1]) / 2);
    Charts.draw(node, {
      title: {text: title, subtext: `mean ${NNQ.number(item.mean)} · std ${NNQ.number(item.std)}`,
              left: "center", textStyle: {fontSize: 13}},
      legend: {show: false},
      grid: {left: 56, right: 16, top: 64, bottom: 40},
      xAxis: {type: "category", name: "activation", nameLocation: "middle", nameGap: 26,
              data: centers.map((c) => (Number.isFinite(c) ? c.toFixed(TICK_DIGITS) : "?"))},
      yAxis: {type: "value", name: "count"},
      series: [{type: "bar", name: "count", data: item.counts, barCategoryGap: "0%"}],
    }, true);
  }

  /** Point the slider at the recorded epochs; onEpoch(epoch) draws. The slider follows new
      epochs while it sits at the newest one. */
  function slider(input, output, epochs, onEpoch) {
    const atNewest = input.disabled || Number(input.value) === Number(input.max);
    input.min = epochs[0];
    input.max = epochs[epochs.length - 1];
    input.disabled = epochs.length < 2;
    if (atNewest) input.value = input.max;
    const show = () => {
      const epoch = nearest(epochs, Number(input.value));
      output.textContent = `epoch ${epoch}`;
      onEpoch(epoch);
    };
    input.oninput = show;
    show();
  }

  return {histogram, index, slider};
})();
