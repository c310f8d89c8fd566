// Console catalog pages: SKU rows added and removed in the product form, previews of the
// images chosen for upload, and the stock adjustment dialog of the product list.
(function () {
  "use strict";

  var rows = document.querySelector("[data-sku-rows]");
  var template = document.querySelector("[data-sku-template]");
  var add = document.querySelector("[data-sku-add]");
  if (rows && template && add) {
    add.addEventListener("click", function () {
      var row = template.content.firstElementChild.cloneNode(true);
      rows.appendChild(row);
      row.querySelector("input[name=sku_code]").focus();
    });
    rows.addEventListener("click", function (event) {
      var button = event.target.closest("[data-sku-remove]");
      if (!button) return;
      var row = button.closest("[data-sku-row]");
      if (rows.querySelectorAll("[data-sku-row]").length > 1) {
        row.remove();
      } else {
        row.querySelectorAll("input:not([type=hidden])").forEach(function (input) { input.value = ""; });
      }
    });
  }

  var images = document.querySelector("[data-images]");
  if (images) {
    images.addEventListener("click", function (event) {
      var button = event.target.closest("[data-image-remove]");
      if (button) button.closest("figure").remove();
    });
  }

  var input = document.querySelector("[data-image-input]");
  var previews = document.querySelector("[data-image-previews]");
  if (input && previews) {
    input.addEventListener("change", function () {
      previews.textContent = "";
      Array.prototype.forEach.call(input.files, function (file) {
        var figure = document.createElement("figure");
        figure.className = "shop-image shop-image--new";
        var img = document.createElement("img");
        img.alt = file.name;
        img.src = URL.createObjectURL(file);
        var caption = document.createElement("figcaption");
        caption.textContent = file.name;
        figure.appendChild(img);
        figure.appendChild(caption);
        previews.appendChild(figure);
      });
    });
  }

  var dialog = document.getElementById("stock-dialog");
  if (dialog) {
    var form = dialog.querySelector("[data-stock-form]");
    document.addEventListener("click", function (event) {
      var open = event.target.closest("[data-stock-open]");
      if (open) {
        form.action = open.getAttribute("data-action");
        dialog.querySelector("[data-stock-label]").textContent = open.getAttribute("data-sku-label");
        dialog.querySelector("[data-stock-current]").textContent = open.getAttribute("data-sku-stock");
        form.reset();
        dialog.showModal();
        dialog.querySelector("input[name=delta]").focus();
      }
      if (event.target.closest("[data-stock-close]")) dialog.close();
    });
  }
})();
