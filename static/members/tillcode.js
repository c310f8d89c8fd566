// Refresh the till code when its 60-second window ends (the server makes and checks it).
(function () {
  var box = document.getElementById("till-code");
  if (!box) return;
  var left = document.getElementById("till-left");
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 60;
  function refresh() {
    fetch(box.getAttribute("data-url"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) { box.textContent = d.code; seconds = d.seconds_left; })
      .catch(function () { seconds = 5; });
  }
  setInterval(function () {
    seconds -= 1;
    if (left) left.textContent = Math.max(seconds, 0) + "s";
    if (seconds <= 0) { seconds = 60; refresh(); }
  }, 1000);
})();
