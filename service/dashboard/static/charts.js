/* Drawing with the vendored Apache ECharts: every chart of the dashboard goes through draw(),
   which marks the container data-ready="true" once it shows data. Tooltips are rendered as
   canvas text (renderMode "richText"), so no job name is ever parsed as HTML. */
"use strict";

const Charts = (() => {
  const BASE = {
    animation: false,
    grid: {left: 64, right: 32, top: 48, bottom: 56},
    legend: {type: "scroll", top: 0},
  };
  const TOOLTIP = {trigger: "axis", renderMode: "richText", confine: true};

  /** Draw option into node, or show the node's data-empty text while there is no data. */
  function draw(node, option, hasData) {
    let chart = echarts.getInstanceByDom(node);
    if (!hasData) {
      if (!chart) node.textContent = node.dataset.empty || "no data yet";
      return null;
    }
    if (!chart) {
      node.textContent = "";
      chart = echarts.init(node);
    }
    const tooltip = {...TOOLTIP, ...(option.tooltip || {})};
    chart.setOption({...BASE, ...option, tooltip}, {notMerge: true});
    node.dataset.ready = "true";
    return chart;
  }

  /** A line series of [x, y] points. */
  function line(name, points, extra) {
    return {type: "line", name, data: points, showSymbol: points.length < 60, ...(extra || {})};
  }

  window.addEventListener("resize", () => {
    for (const node of document.querySelectorAll("[data-ready]")) {
      const chart = echarts.getInstanceByDom(node);
      if (chart) chart.resize();
    }
  });

  return {draw, line};
})();
