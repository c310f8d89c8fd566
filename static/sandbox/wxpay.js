/* A stand-in for WeixinJSBridge outside WeChat when the sandbox is on: getBrandWCPayRequest
   opens a pay sheet; "confirm" sends the page's pay parameters to the sandbox, which checks
   the paySign, marks the order paid and posts the signed notify to the app. The callback
   gets WeChat's err_msg: get_brand_wcpay_request:ok / :cancel / :fail. */
(function () {
  "use strict";
  if (window.WeixinJSBridge) return;
  var script = document.currentScript;
  var base = (script.getAttribute("data-sandbox") || "").replace(/\/$/, "");
  var text = function (name) { return script.getAttribute("data-" + name) || name; };

  function yuan(fen) { return "¥" + (fen / 100).toFixed(2); }

  function sheet(info, onPay, onCancel, labels) {
    labels = labels || {pay: text("pay"), cancel: text("cancel")};
    var mask = document.createElement("div");
    mask.className = "wxpay-sandbox";
    mask.setAttribute("role", "dialog");
    mask.setAttribute("aria-modal", "true");
    mask.style.cssText = "position:fixed;inset:0;z-index:5000;background:rgba(0,0,0,.6);" +
      "display:flex;align-items:flex-end;justify-content:center";
    var box = document.createElement("div");
    box.style.cssText = "background:#fff;width:100%;max-width:480px;border-radius:12px 12px 0 0;" +
      "padding:24px 16px calc(16px + env(safe-area-inset-bottom));text-align:center;" +
      "font-family:system-ui,-apple-system,sans-serif";
    var title = document.createElement("div");
    title.style.cssText = "font-size:15px;color:rgba(0,0,0,.55)";
    title.textContent = text("title");
    var what = document.createElement("div");
    what.style.cssText = "margin-top:12px;font-size:16px;color:rgba(0,0,0,.9)";
    what.textContent = info.description || "";
    var amount = document.createElement("div");
    amount.className = "wxpay-sandbox__amount";
    amount.style.cssText = "margin:8px 0 24px;font-size:34px;font-weight:600";
    amount.textContent = yuan(info.total || 0);
    var error = document.createElement("p");
    error.className = "wxpay-sandbox__error";
    error.setAttribute("role", "alert");
    error.style.cssText = "color:#fa5151;min-height:1.2em;margin:0 0 8px";
    var pay = document.createElement("button");
    pay.type = "button";
    pay.className = "weui-btn weui-btn_primary wxpay-sandbox__pay";
    pay.textContent = labels.pay;
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "weui-btn weui-btn_default wxpay-sandbox__cancel";
    cancel.style.marginTop = "12px";
    cancel.textContent = labels.cancel;
    [title, what, amount, error, pay, cancel].forEach(function (n) { box.appendChild(n); });
    mask.appendChild(box);
    document.body.appendChild(mask);
    var close = function () { mask.remove(); };
    pay.addEventListener("click", function () {
      pay.disabled = cancel.disabled = true;
      onPay(close, function (message) {
        error.textContent = message;
        cancel.disabled = false;
      });
    });
    cancel.addEventListener("click", function () { close(); onCancel(); });
  }

  function post(path, body) {
    // text/plain keeps it a simple cross-origin request (the sandbox may be another origin)
    return fetch(base + path, {method: "POST", headers: {"Content-Type": "text/plain"},
                               body: JSON.stringify(body)})
      .then(function (res) { return res.json(); });
  }

  function getBrandWCPayRequest(params, done) {
    var prepay = String(params.package || "").replace(/^prepay_id=/, "");
    fetch(base + "/_sandbox/pay/v3/prepay/" + encodeURIComponent(prepay))
      .then(function (res) { return res.ok ? res.json() : {}; })
      .catch(function () { return {}; })
      .then(function (info) {
        sheet(info, function (close, fail) {
          post("/_sandbox/pay/v3/jsapi", params).then(function (answer) {
            if (answer.err_msg === "get_brand_wcpay_request:ok") {
              close();
              done({err_msg: answer.err_msg});
            } else {
              fail(text("failed"));
            }
          }).catch(function () { fail(text("failed")); });
        }, function () { done({err_msg: "get_brand_wcpay_request:cancel"}); });
      });
  }

  // A merchant transfer waiting for the receiver (商家转账): "confirm" tells the sandbox the
  // receiver accepted it; the callback gets requestMerchantTransfer:ok / :cancel / :fail.
  function requestMerchantTransfer(params, done) {
    sheet({description: text("transfer"), total: Number(params.amount || 0)},
      function (close, fail) {
        post("/_sandbox/pay/v3/transfer/confirm", params).then(function (answer) {
          if (answer.err_msg === "requestMerchantTransfer:ok") {
            close();
            done({err_msg: answer.err_msg});
          } else {
            fail(text("failed"));
          }
        }).catch(function () { fail(text("failed")); });
      }, function () { done({err_msg: "requestMerchantTransfer:cancel"}); },
      {pay: text("receive"), cancel: text("cancel")});
  }

  window.WeixinJSBridge = {
    sandbox: true,
    invoke: function (name, params, callback) {
      var done = typeof callback === "function" ? callback : function () {};
      if (name === "getBrandWCPayRequest") return getBrandWCPayRequest(params || {}, done);
      if (name === "requestMerchantTransfer") return requestMerchantTransfer(params || {}, done);
      done({err_msg: name + ":fail"});
    },
    on: function () {}
  };
  var fire = function () { document.dispatchEvent(new Event("WeixinJSBridgeReady")); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fire);
  else fire();
})();
