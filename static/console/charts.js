// Draws every element carrying a data-echart attribute (an ECharts option as JSON).
(function () {
  "use strict";
  function draw() {
    var charts = [];
    document.querySelectorAll("[data-echart]").forEach(function (el) {
      var option;
      try {
        option = JSON.parse(el.getAttribute("data-echart"));
      } catch (e) {
        return;
      }
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option);
      el.setAttribute("data-echart-ready", "1");
      charts.push(chart);
    });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        charts.forEach(function (c) { c.resize(); });
      }, 100);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
