// The game pages: the wheel, the scratch card, the nine-grid and the check-in.
// The server draws; these animations only show what it drew. Every tap sends a fresh request
// key, and a retry after a network error sends the same key again, so the server (idempotent
// on the key) never draws twice for one tap. The texts come from the page (data-t-*) and from
// the server's answer, never from this file.
(function () {
  "use strict";
  var root = document.getElementById("game");
  if (!root) return;
  var kind = root.getAttribute("data-kind");
  var csrf = root.getAttribute("data-csrf") || "";
  var playUrl = root.getAttribute("data-play-url");
  var msg = document.getElementById("game-msg");
  var dialog = document.getElementById("game-dialog");
  var playsLeft = document.querySelector("[data-plays-left]");

  function t(name) { return root.getAttribute("data-t-" + name) || ""; }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function send(key, tries) {
    return fetch(playUrl, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf},
      body: JSON.stringify({request_key: key})
    }).then(function (r) {
      return r.json().then(function (body) { return {status: r.status, body: body}; },
                           function () { return {status: r.status, body: null}; });
    }, function (err) {
      // The request may have reached the server: ask again with the same key.
      if (tries > 0) {
        return new Promise(function (ok) { setTimeout(ok, 800); })
          .then(function () { return send(key, tries - 1); });
      }
      throw err;
    });
  }

  // One play: resolves with the server's answer, or rejects with a message to show.
  function play() {
    say("");
    return send(newKey(), 2).then(function (res) {
      var body = res.body || {};
      if (res.status >= 400 || body.error) {
        if (res.status === 401 && body.error && body.error.signin_url) {
          window.location.href = body.error.signin_url;
        }
        throw new Error((body.error && body.error.message) || t("failed"));
      }
      if (playsLeft && body.plays_left !== undefined && body.plays_left !== null) {
        playsLeft.textContent = body.plays_left;
      }
      return body;
    }, function () { throw new Error(t("network")); });
  }

  function say(text) { if (msg) msg.textContent = text; }

  function show(result) {
    if (!dialog) return;
    dialog.querySelector("[data-title]").textContent = result.title || "";
    dialog.querySelector("[data-prize]").textContent = result.prize_name || "";
    dialog.querySelector("[data-text]").textContent = result.message || "";
    var action = dialog.querySelector("[data-action]");
    if (result.action_url) {
      action.href = result.action_url;
      action.textContent = result.action_label || "";
      action.hidden = false;
    } else {
      action.hidden = true;
    }
    dialog.setAttribute("data-draw", result.id || "");
    dialog.hidden = false;
  }

  if (dialog) {
    dialog.addEventListener("click", function (e) {
      if (e.target.closest("[data-close]") || e.target.classList.contains("weui-mask")) {
        e.preventDefault();
        dialog.hidden = true;
      }
    });
  }

  // The elements standing for the drawn prize ("thanks" when it has none).
  function matching(items, draw) {
    var want = draw.prize_id === null || draw.prize_id === undefined ? "" : String(draw.prize_id);
    var found = items.filter(function (el) { return el.getAttribute("data-prize-id") === want; });
    if (!found.length) {
      found = items.filter(function (el) { return el.getAttribute("data-kind") === "none"; });
    }
    return found.length ? found : items;
  }

  function pickOne(list) { return list[Math.floor(Math.random() * list.length)]; }

  // --- the wheel ------------------------------------------------------------------------
  function wheel() {
    var disc = root.querySelector(".g-wheel__disc");
    var go = root.querySelector("[data-go]");
    var sectors = Array.prototype.slice.call(disc.querySelectorAll("[data-sector]"));
    var step = 360 / sectors.length;
    var turned = 0;
    var busy = false;

    go.addEventListener("click", function () {
      if (busy) return;
      busy = true;
      go.disabled = true;
      play().then(function (body) {
        var draw = body.draw;
        var target = pickOne(matching(sectors, draw));
        var index = sectors.indexOf(target);
        // Anywhere inside the sector, never on its edge.
        var at = index * step + step / 2 + (Math.random() - 0.5) * step * 0.6;
        var rest = ((360 - at) % 360 + 360) % 360;
        turned = turned - (turned % 360) + 360 * 6 + rest;
        var done = false;
        function finish() {
          if (done) return;
          done = true;
          disc.classList.remove("spinning");
          busy = false;
          go.disabled = body.can_play === false;
          root.setAttribute("data-stopped", String(index));
          show(draw);
        }
        disc.classList.add("spinning");
        disc.addEventListener("transitionend", finish, {once: true});
        setTimeout(finish, 5000);
        // next frame, so the transition starts from where the disc stands
        requestAnimationFrame(function () { disc.style.transform = "rotate(" + turned + "deg)"; });
      }, function (err) {
        busy = false;
        go.disabled = false;
        say(err.message);
      });
    });
  }

  // --- the nine-grid --------------------------------------------------------------------
  function grid() {
    var go = root.querySelector("[data-go]");
    var cells = Array.prototype.slice.call(root.querySelectorAll("[data-cell]"));
    cells.sort(function (a, b) { return a.getAttribute("data-cell") - b.getAttribute("data-cell"); });
    var pos = 0;
    var busy = false;

    function light(i) {
      cells.forEach(function (c, k) { c.classList.toggle("on", k === i); });
    }

    go.addEventListener("click", function () {
      if (busy) return;
      busy = true;
      go.disabled = true;
      play().then(function (body) {
        var draw = body.draw;
        var target = cells.indexOf(pickOne(matching(cells, draw)));
        var n = cells.length;
        var steps = n * 3 + ((target - pos) % n + n) % n;
        var done = 0;
        (function tick() {
          pos = (pos + 1) % n;
          light(pos);
          done += 1;
          if (done >= steps) {
            busy = false;
            go.disabled = body.can_play === false;
            root.setAttribute("data-stopped", String(pos));
            setTimeout(function () { show(draw); }, 300);
            return;
          }
          // fast at first, slowing over the last round
          var left = steps - done;
          setTimeout(tick, left > n ? 55 : 55 + (n - left) * 38);
        })();
      }, function (err) {
        busy = false;
        go.disabled = false;
        say(err.message);
      });
    });
  }

  // --- the scratch card -----------------------------------------------------------------
  function scratch() {
    var box = root.querySelector(".g-scratch");
    var canvas = box.querySelector("canvas");
    var result = box.querySelector("[data-result]");
    var detail = box.querySelector("[data-detail]");
    var again = root.querySelector("[data-again]");
    var ctx = canvas.getContext("2d");
    var state, drawn, moves, last;

    function coat() {
      var ratio = window.devicePixelRatio || 1;
      var w = box.clientWidth, h = box.clientHeight;
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.globalCompositeOperation = "source-over";
      var g = ctx.createLinearGradient(0, 0, w, h);
      g.addColorStop(0, "#b9b9b9");
      g.addColorStop(0.5, "#e4e4e4");
      g.addColorStop(1, "#a9a9a9");
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = "#7d7d7d";
      ctx.font = "600 20px -apple-system, 'PingFang SC', 'Noto Sans CJK SC', sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(t("scratch"), w / 2, h / 2);
      canvas.classList.remove("gone");
      result.textContent = t("drawing");
      detail.textContent = "";
      state = "ready";
      drawn = null;
      moves = 0;
      last = null;
      if (again) again.hidden = true;
    }

    function where(e) {
      var r = canvas.getBoundingClientRect();
      return {x: e.clientX - r.left, y: e.clientY - r.top};
    }

    function rub(p) {
      ctx.globalCompositeOperation = "destination-out";
      ctx.lineWidth = 36;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(last ? last.x : p.x, last ? last.y : p.y);
      ctx.lineTo(p.x + 0.01, p.y);
      ctx.stroke();
      last = p;
    }

    function cleared() {
      var data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      var clear = 0, seen = 0;
      for (var i = 3; i < data.length; i += 4 * 16) {
        seen += 1;
        if (data[i] === 0) clear += 1;
      }
      return seen ? clear / seen : 1;
    }

    function reveal() {
      if (state !== "open" || !drawn) return;
      state = "done";
      canvas.classList.add("gone");
      if (again) again.hidden = drawn.can_play === false;
      setTimeout(function () { show(drawn.draw); }, 400);
    }

    function begin() {
      if (state !== "ready") return;
      state = "asking";
      play().then(function (body) {
        drawn = body;
        result.textContent = body.draw.prize_name || body.draw.title;
        detail.textContent = body.draw.prize_id ? body.draw.title : "";
        root.setAttribute("data-result", body.draw.prize_name || "");
        state = "open";
        if (cleared() > 0.45) reveal();
      }, function (err) {
        say(err.message);
        coat();
        state = "ready";
      });
    }

    canvas.addEventListener("pointerdown", function (e) {
      if (state === "done") return;
      e.preventDefault();
      if (canvas.setPointerCapture) canvas.setPointerCapture(e.pointerId);
      last = null;
      begin();
      if (state === "asking" || state === "open") rub(where(e));
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!(e.buttons & 1) && e.pointerType === "mouse") return;
      if (state !== "asking" && state !== "open") return;
      e.preventDefault();
      rub(where(e));
      moves += 1;
      if (state === "open" && moves % 8 === 0 && cleared() > 0.45) reveal();
    });
    canvas.addEventListener("pointerup", function () {
      last = null;
      if (state === "open" && cleared() > 0.45) reveal();
    });
    if (again) again.addEventListener("click", function () { say(""); coat(); });
    coat();
  }

  // --- the check-in ---------------------------------------------------------------------
  function checkin() {
    var go = root.querySelector("[data-go]");
    var streak = root.querySelector("[data-streak]");
    go.addEventListener("click", function () {
      if (go.disabled) return;
      go.disabled = true;
      play().then(function (body) {
        var draw = body.draw;
        var cell = root.querySelector("[data-date='" + body.day + "']");
        if (cell) cell.classList.add("done");
        if (streak && body.streak !== undefined) streak.textContent = body.streak;
        Array.prototype.forEach.call(root.querySelectorAll("[data-day]"), function (li) {
          li.classList.toggle("reached", Number(li.getAttribute("data-day")) <= body.streak);
        });
        go.textContent = t("done");
        show(draw);
      }, function (err) {
        go.disabled = false;
        say(err.message);
      });
    });
  }

  var games = {wheel: wheel, grid: grid, scratch: scratch, checkin: checkin};
  if (games[kind] && playUrl) games[kind]();
})();
