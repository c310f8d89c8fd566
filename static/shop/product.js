// The member's product page: the chosen SKU's price, stock and flash-sale countdown, and the
// quantity stepper (kept within the stock and the per-member limit).
(function () {
  "use strict";
  var data = document.getElementById("sku-data");
  var form = document.querySelector("[data-buy-form]");
  if (!data || !form) return;
  var skus = {};
  JSON.parse(data.textContent).forEach(function (s) { skus[s.id] = s; });
  var price = document.querySelector("[data-price]");
  var original = document.querySelector("[data-original]");
  var tag = document.querySelector("[data-flash-tag]");
  var stock = document.querySelector("[data-stock]");
  var countdown = document.querySelector("[data-countdown]");
  var quantity = form.querySelector("[data-quantity]");
  var buttons = form.querySelectorAll("[data-add-cart], [data-buy-now]");
  // A flash-sale price is bought at once (立即购买), never kept in the cart.
  var addCart = form.querySelector("[data-add-cart]");
  var limit = parseInt(quantity.getAttribute("data-limit"), 10) || 0;

  function yuan(fen) { return "¥" + Math.floor(fen / 100) + "." + ("0" + (fen % 100)).slice(-2); }

  function maxQuantity(sku) {
    var max = Math.max(sku.stock, 1);
    if (limit) max = Math.min(max, limit);
    if (sku.flash_limit) max = Math.min(max, sku.flash_limit);
    return max;
  }

  function show(sku) {
    price.textContent = yuan(sku.price_fen);
    original.textContent = yuan(sku.original_fen);
    original.hidden = !(sku.original_fen > sku.price_fen);
    tag.hidden = !sku.flash_ends;
    countdown.hidden = !sku.flash_ends;
    countdown.setAttribute("data-ends", sku.flash_ends || "");
    if (sku.stock <= 0) stock.textContent = stock.getAttribute("data-out");
    else if (sku.state === "low") stock.textContent = stock.getAttribute("data-low").replace("{n}", sku.stock);
    else stock.textContent = stock.getAttribute("data-in");
    quantity.max = maxQuantity(sku);
    if (parseInt(quantity.value, 10) > quantity.max) quantity.value = quantity.max;
    buttons.forEach(function (b) { b.disabled = sku.stock <= 0; });
    addCart.hidden = !!sku.flash_ends;
    tick();
  }

  function selected() {
    var checked = form.querySelector("input[name=sku_id]:checked");
    return checked ? skus[checked.value] : null;
  }

  form.addEventListener("change", function (event) {
    if (event.target.name === "sku_id") show(skus[event.target.value]);
  });
  form.addEventListener("click", function (event) {
    var step = event.target.closest("[data-qty]");
    if (!step) return;
    var n = (parseInt(quantity.value, 10) || 1) + parseInt(step.getAttribute("data-qty"), 10);
    quantity.value = Math.max(1, Math.min(n, parseInt(quantity.max, 10) || 1));
  });

  function pad(n) { return ("0" + n).slice(-2); }
  function tick() {
    var ends = countdown.getAttribute("data-ends");
    if (!ends) return;
    var left = Math.max(0, Math.floor((new Date(ends) - new Date()) / 1000));
    var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
    var m = Math.floor(left % 3600 / 60), s = left % 60;
    countdown.textContent = countdown.getAttribute("data-label") + " " +
      (d ? d + "天 " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }
  tick();
  setInterval(tick, 1000);
  var first = selected();
  if (first) quantity.max = maxQuantity(first);
})();
