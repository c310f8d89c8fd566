// Refresh the till code (barcode, digits, QR) when its 60-second window ends, as WeChat's
// dynamic member card code does; the server makes and checks the code and draws both images.
(function () {
  var box = document.getElementById("till-code");
  if (!box) return;
  var bars = document.getElementById("till-barcode");
  var qr = document.getElementById("till-qr");
  var left = document.getElementById("till-left");
  var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 60;
  var busy = false;
  function show() {
    if (left) left.textContent = "(" + Math.max(seconds, 0) + "s)";
  }
  function refresh() {
    busy = true;
    fetch(box.getAttribute("data-url"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (d) {
        // The SVGs are drawn by this app's server from digits only.
        box.textContent = d.code;
        if (bars) bars.innerHTML = d.barcode;
        if (qr) qr.innerHTML = d.qrcode;
        seconds = d.seconds_left;
      })
      .catch(function () { seconds = 5; })
      .then(function () { busy = false; show(); });
  }
  show();
  setInterval(function () {
    if (busy) return;
    seconds -= 1;
    show();
    if (seconds <= 0) refresh();
  }, 1000);
  // A phone that slept keeps an old code on screen: fetch a fresh one when the page shows again.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !busy) refresh();
  });
})();
