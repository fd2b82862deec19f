// Charts of daily spend and tokens per model, drawn with uPlot from the JSON that the page
// embeds (<script type="application/json" id="chart-data">). The page also renders the same
// figures as a table, for screen readers and for browsers without JavaScript.
(function () {
  "use strict";

  const PALETTE = ["#2f5bd3", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#be185d"];
  const charts = [];

  function readData() {
    const node = document.getElementById("chart-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function money(value) {
    if (value == null) return "";
    return "$" + (value >= 0.01 || value === 0 ? value.toFixed(2) : value.toPrecision(2));
  }

  function tokens(value) {
    return value == null ? "" : Math.round(value).toLocaleString("en-US");
  }

  function dayLabel(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 10);
  }

  function widthOf(element) {
    return Math.max(element.clientWidth, 240);
  }

  function spendChart(element, data) {
    const spend = data.spend.map(Number);
    const options = {
      width: widthOf(element),
      height: 220,
      scales: { x: { time: true } },
      axes: [{}, { values: function (u, ticks) { return ticks.map(money); }, size: 60 }],
      series: [
        { value: function (u, v) { return v == null ? "" : dayLabel(v); } },
        {
          label: "Spend",
          stroke: PALETTE[0],
          fill: "rgba(47, 91, 211, 0.35)",
          paths: uPlot.paths.bars({ size: [0.7, 40] }),
          value: function (u, v) { return money(v); },
        },
      ],
      legend: { show: true },
    };
    return new uPlot(options, [data.days, spend], element);
  }

  function tokensChart(element, data) {
    const series = [{ value: function (u, v) { return v == null ? "" : dayLabel(v); } }];
    const columns = [data.days];
    data.models.forEach(function (model, index) {
      series.push({
        label: model.name,
        stroke: PALETTE[index % PALETTE.length],
        width: 2,
        points: { show: data.days.length < 40 },
        value: function (u, v) { return tokens(v); },
      });
      columns.push(model.tokens);
    });
    if (data.models.length === 0) {
      series.push({ label: "No usage", stroke: "#9ca3af" });
      columns.push(data.days.map(function () { return 0; }));
    }
    const options = {
      width: widthOf(element),
      height: 220,
      scales: { x: { time: true } },
      axes: [{}, { values: function (u, ticks) { return ticks.map(tokens); }, size: 60 }],
      series: series,
    };
    return new uPlot(options, columns, element);
  }

  function draw() {
    while (charts.length) charts.pop().destroy();
    const data = readData();
    if (!data) return;
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      element.textContent = "";
      const make = element.dataset.chart === "spend" ? spendChart : tokensChart;
      charts.push(make(element, data));
    });
  }

  let resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      charts.forEach(function (chart) {
        chart.setSize({ width: widthOf(chart.root.parentElement), height: 220 });
      });
    }, 150);
  });
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
