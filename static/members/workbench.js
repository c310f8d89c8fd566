// The workbench's copy buttons: [data-copy="<id of the element whose text to copy>"].
(function () {
  "use strict";
  var toast = document.getElementById("wb-toast");
  function shown() {
    if (!toast) return;
    toast.hidden = false;
    setTimeout(function () { toast.hidden = true; }, 1500);
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selectable */ }
    document.body.removeChild(area);
    shown();
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    ev.preventDefault();
    var src = document.getElementById(btn.getAttribute("data-copy"));
    if (!src) return;
    var text = src.innerText;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(shown, function () { fallback(text); });
    } else {
      fallback(text);
    }
    btn.setAttribute("data-copied", "1");
  });
})();

// A picture chosen in a file field shows at once: <input type=file data-preview="<img id>">.
(function () {
  "use strict";
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input.matches || !input.matches("input[type=file][data-preview]")) return;
    var img = document.getElementById(input.getAttribute("data-preview"));
    var file = input.files && input.files[0];
    if (!img || !file || !window.URL || !/^image\//.test(file.type)) return;
    img.src = URL.createObjectURL(file);
    img.hidden = false;
    document.querySelectorAll('[data-preview-of="' + img.id + '"]').forEach(function (el) {
      el.hidden = true;
    });
  });
})();
