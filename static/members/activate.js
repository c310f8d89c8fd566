// The resend button of the SMS code counts down the minute before another code may be sent
// (the server's limit), as WeChat's own pages do, instead of letting the server refuse it.
(function () {
  var btn = document.getElementById("resend");
  if (!btn) return;
  var left = parseInt(btn.getAttribute("data-seconds"), 10) || 0;
  var label = btn.getAttribute("data-label");
  var wait = btn.getAttribute("data-wait");
  function show() {
    if (left > 0) {
      btn.disabled = true;
      btn.textContent = wait.replace("{n}", left);
    } else {
      btn.disabled = false;
      btn.textContent = label;
    }
  }
  show();
  if (left > 0) {
    var timer = setInterval(function () {
      left -= 1;
      show();
      if (left <= 0) clearInterval(timer);
    }, 1000);
  }
})();
