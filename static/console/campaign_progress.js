// Live progress of a push campaign: polls the progress JSON while it is being sent and
// reloads the page (funnel, charts) once it has finished.
(function () {
  var box = document.getElementById("campaign-progress");
  if (!box || box.dataset.live !== "yes") return;
  var url = box.dataset.url;
  function set(k, v) {
    var el = box.querySelector('[data-k="' + k + '"]');
    if (!el) return;
    if (el.tagName === "PROGRESS") el.value = v;
    else el.textContent = typeof v === "number" ? v.toLocaleString("zh-CN") : v;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) return;
        ["done", "targets", "sent", "skipped", "failed", "chunks_done", "chunks_total"].forEach(
          function (k) { set(k, p[k]); });
        set("percent", p.percent);
        set("percent_text", p.percent + "%");
        if (p.status !== box.dataset.status) { window.location.reload(); return; }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
