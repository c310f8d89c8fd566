/* Staff redemption: fill the coupon code from a scan.
 * Inside WeChat (the JS-SDK loaded and signed): JSAPI scanQRCode.
 * In any other browser with a camera (getUserMedia): frames from the camera read by jsQR.
 * Otherwise the button stays hidden and the code is typed. */
(function () {
  "use strict";
  var form = document.getElementById("redeem-form");
  var button = document.getElementById("scan");
  var code = document.getElementById("code");
  if (!form || !button || !code) { return; }
  var next = document.getElementById("order_id");

  function fill(value) {
    code.value = String(value || "").split(",").pop().trim();
    if (next) { next.focus(); }
  }

  var inWeChat = /MicroMessenger/i.test(navigator.userAgent);
  var wxConfig = form.getAttribute("data-wx-config");
  if (inWeChat && wxConfig && window.wx) {
    var c = JSON.parse(wxConfig);
    window.wx.config({
      debug: false, appId: c.appId, timestamp: c.timestamp, nonceStr: c.nonceStr,
      signature: c.signature, jsApiList: ["scanQRCode"]
    });
    button.hidden = false;
    button.addEventListener("click", function () {
      window.wx.scanQRCode({
        needResult: 1, scanType: ["qrCode", "barCode"],
        success: function (r) { fill(r.resultStr); }
      });
    });
    return;
  }

  var media = navigator.mediaDevices;
  if (!media || typeof media.getUserMedia !== "function" || typeof window.jsQR !== "function") {
    return;
  }
  var box = document.getElementById("scanner");
  var video = document.getElementById("scanner-video");
  var stopButton = document.getElementById("scanner-stop");
  var error = document.getElementById("scan-error");
  var canvas = document.createElement("canvas");
  var context = canvas.getContext("2d", { willReadFrequently: true });
  var stream = null;

  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    stream = null;
    box.style.display = "none";
    button.hidden = false;
  }

  function tick() {
    if (!stream) { return; }
    if (video.readyState >= 2 && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var image = context.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      if (found && found.data) { stop(); fill(found.data); return; }
    }
    window.requestAnimationFrame(tick);
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    error.hidden = true;
    media.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
      stream = s;
      video.srcObject = s;
      box.style.display = "block";
      button.hidden = true;
      var played = video.play();
      if (played && played.catch) { played.catch(function () {}); }
      window.requestAnimationFrame(tick);
    }).catch(function () {
      error.textContent = error.getAttribute("data-denied");
      error.hidden = false;
      code.focus();
    });
  });
  stopButton.addEventListener("click", stop);
}());
