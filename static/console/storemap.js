// Store maps drawn offline: China's provinces (a GeoJSON vendored with ECharts 4.9.0's map of
// China), city names when zoomed in, the brand's stores as dots and one store marked.
//
// An element with data-storemap (JSON from members/views_console_config.py::_map_config)
// becomes a map. With "picker" true it edits the form field #coords: typing coordinates
// moves the mark, clicking the map puts the mark there and fills the field ("经度,纬度",
// GCJ-02). Without it, clicking a store's dot opens that store. Buttons carrying
// data-map-zoom ("china", "here") or data-map-city (a city's name) move the view.
(function () {
  "use strict";
  var CHINA_CENTER = [104.2, 35.9];
  var CITY_ZOOM = 60; // a city's stores a few kilometres apart stand apart
  var SHOW_CITIES = 4; // zoom from which city names show
  var SHOW_STORES = 25; // zoom from which store names show
  var LNG = [73, 136], LAT = [3, 54];
  var NUMBER = /[-+]?\d+(?:\.\d+)?/g;
  var SEPARATORS = /^[\s,;:、\/|()\[\]经纬度坐标]*$/;

  // (lng, lat) from pasted text, as members.store_locations.parse_coordinates reads it.
  function parse(text) {
    var raw = (text || "").normalize("NFKC").trim();
    if (!raw) return { error: "empty" };
    var numbers = raw.match(NUMBER) || [];
    if (numbers.length !== 2 || !SEPARATORS.test(raw.replace(NUMBER, " "))) {
      return { error: "bad" };
    }
    var a = parseFloat(numbers[0]), b = parseFloat(numbers[1]);
    function inside(lng, lat) {
      return lng >= LNG[0] && lng <= LNG[1] && lat >= LAT[0] && lat <= LAT[1];
    }
    if (inside(a, b)) return { lng: a, lat: b };
    if (inside(b, a)) return { lng: b, lat: a };
    return { error: "outside" };
  }

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(r.status);
      return r.json();
    });
  }

  // A view that holds the given points: their middle, zoomed to their spread.
  function fit(points) {
    if (!points.length) return { center: CHINA_CENTER, zoom: 1 };
    var lngs = points.map(function (p) { return p[0]; });
    var lats = points.map(function (p) { return p[1]; });
    var minLng = Math.min.apply(null, lngs), maxLng = Math.max.apply(null, lngs);
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var span = Math.max(maxLng - minLng, (maxLat - minLat) * 1.4, 0.05);
    return {
      center: [(minLng + maxLng) / 2, (minLat + maxLat) / 2],
      zoom: Math.max(1, Math.min(CITY_ZOOM * 2, 40 / span)),
    };
  }

  function draw(el, geo, cities) {
    var cfg = JSON.parse(el.getAttribute("data-storemap"));
    var text = cfg.text || {};
    var section = el.closest("[data-storemap-scope]") || document;
    var input = cfg.picker ? section.querySelector("#coords") : null;
    var status = section.querySelector("[data-storemap-status]");
    var current = cfg.current && cfg.current.lng != null ? cfg.current : null;
    if (!window.echarts.getMap("china")) window.echarts.registerMap("china", geo);
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    var zoom = 1;

    function say(message) {
      if (status) status.textContent = message || "";
    }
    function markedText(lng, lat) {
      return (text.marked || "{lng},{lat}")
        .replace("{lng}", lng.toFixed(6))
        .replace("{lat}", lat.toFixed(6));
    }
    function storeData() {
      return cfg.stores.map(function (s) {
        return { name: s.name, value: [s.lng, s.lat], url: s.url, city: s.city };
      });
    }
    function currentData() {
      return current ? [{ name: current.name, value: [current.lng, current.lat] }] : [];
    }
    function labels() {
      return [
        { id: "cities", label: { show: zoom >= SHOW_CITIES } },
        { id: "stores", label: { show: zoom >= SHOW_STORES } },
      ];
    }
    var start = current
      ? { center: [current.lng, current.lat], zoom: CITY_ZOOM }
      : fit(cfg.stores.map(function (s) { return [s.lng, s.lat]; }));
    zoom = start.zoom;
    chart.setOption({
      animation: false,
      tooltip: { trigger: "item", confine: true },
      geo: {
        map: "china",
        roam: true,
        center: start.center,
        zoom: start.zoom,
        scaleLimit: { min: 0.8, max: 3000 },
        label: { show: false },
        itemStyle: { areaColor: "#f5f7fa", borderColor: "#c4c9d2", borderWidth: 0.8 },
        emphasis: { label: { show: false }, itemStyle: { areaColor: "#eaf0fb" } },
        select: { disabled: true },
        tooltip: { show: false },
      },
      series: [
        {
          id: "cities",
          type: "scatter",
          coordinateSystem: "geo",
          data: cities.map(function (c) { return { name: c[0], value: [c[1], c[2]] }; }),
          symbolSize: 4,
          itemStyle: { color: "#b8bdc6" },
          label: { show: zoom >= SHOW_CITIES, formatter: "{b}", position: "right", color: "#8a8f99", fontSize: 11 },
          labelLayout: { hideOverlap: true },
          silent: true,
          tooltip: { show: false },
          z: 1,
        },
        {
          id: "stores",
          type: "scatter",
          coordinateSystem: "geo",
          data: storeData(),
          symbolSize: 11,
          itemStyle: { color: "#155bd4", borderColor: "#fff", borderWidth: 1.5 },
          label: { show: zoom >= SHOW_STORES, formatter: "{b}", position: "top", color: "#323233", fontSize: 12 },
          tooltip: { formatter: function (p) { return p.data.city ? p.name + "（" + p.data.city + "）" : p.name; } },
          labelLayout: { hideOverlap: true },
          cursor: cfg.picker ? "crosshair" : "pointer",
          z: 3,
        },
        {
          id: "current",
          type: "effectScatter",
          coordinateSystem: "geo",
          data: currentData(),
          symbolSize: 16,
          rippleEffect: { scale: 2.5, brushType: "stroke" },
          itemStyle: { color: "#ee0a24", borderColor: "#fff", borderWidth: 2 },
          label: { show: true, formatter: "{b}", position: "top", color: "#ee0a24", fontSize: 12, fontWeight: "bold" },
          z: 4,
        },
      ],
    });
    el.setAttribute("data-storemap-ready", "1");

    function view(center, z) {
      zoom = z;
      chart.setOption({ geo: { center: center, zoom: z }, series: labels() });
    }
    function mark(lng, lat, recenter) {
      current = { name: (cfg.current && cfg.current.name) || "", lng: lng, lat: lat };
      chart.setOption({ series: [{ id: "current", data: currentData() }] });
      if (recenter) view([lng, lat], Math.max(zoom, CITY_ZOOM));
      el.setAttribute("data-lnglat", lng.toFixed(6) + "," + lat.toFixed(6));
    }

    chart.on("georoam", function () {
      var z = chart.getOption().geo[0].zoom || 1;
      if (z !== zoom) {
        zoom = z;
        chart.setOption({ series: labels() });
      }
    });

    if (cfg.picker && input) {
      var down = null;
      chart.getZr().on("mousedown", function (e) { down = [e.offsetX, e.offsetY]; });
      chart.getZr().on("click", function (e) {
        // A drag that pans the map also ends in a click: only a click in place marks.
        if (down && Math.abs(e.offsetX - down[0]) + Math.abs(e.offsetY - down[1]) > 4) return;
        var pt = chart.convertFromPixel({ geoIndex: 0 }, [e.offsetX, e.offsetY]);
        if (!pt) return;
        var got = parse(pt[0].toFixed(6) + "," + pt[1].toFixed(6));
        if (got.error) {
          say(text[got.error]);
          return;
        }
        input.value = got.lng.toFixed(6) + "," + got.lat.toFixed(6);
        mark(got.lng, got.lat, false);
        say(markedText(got.lng, got.lat));
      });
      input.addEventListener("input", function () {
        var got = parse(input.value);
        if (got.error) {
          say(input.value.trim() ? text[got.error] : "");
          return;
        }
        mark(got.lng, got.lat, true);
        say(markedText(got.lng, got.lat));
      });
      if (current) say(markedText(current.lng, current.lat));
    } else {
      chart.on("click", { seriesId: "stores" }, function (p) {
        if (p.data && p.data.url) window.location.href = p.data.url;
      });
    }

    section.querySelectorAll("[data-map-zoom], [data-map-city]").forEach(function (button) {
      button.addEventListener("click", function () {
        var how = button.getAttribute("data-map-zoom");
        var city = button.getAttribute("data-map-city");
        if (how === "china") return view(CHINA_CENTER, 1);
        if (how === "here" && current) return view([current.lng, current.lat], CITY_ZOOM);
        var points = cfg.stores.filter(function (s) { return s.city === city; })
          .map(function (s) { return [s.lng, s.lat]; });
        if (current && (!city || (cfg.current || {}).city === city)) points.push([current.lng, current.lat]);
        var f = fit(points);
        view(f.center, Math.max(f.zoom, points.length > 1 ? 1 : CITY_ZOOM));
      });
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function start() {
    var maps = document.querySelectorAll("[data-storemap]");
    if (!maps.length) return;
    var cfg = JSON.parse(maps[0].getAttribute("data-storemap"));
    Promise.all([fetchJson(cfg.geo), fetchJson(cfg.cities)]).then(
      function (got) {
        maps.forEach(function (el) { draw(el, got[0], got[1]); });
      },
      function () {
        maps.forEach(function (el) {
          var text = JSON.parse(el.getAttribute("data-storemap")).text || {};
          el.classList.add("storemap-failed");
          el.textContent = text.failed || "";
        });
      }
    );
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
