// Searchable pickers: every <select multiple data-picker="URL"> becomes a search box with
// chips. The select stays in the form (hidden) and is what gets submitted, so the page
// works the same without this script.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setup(select) {
    var url = select.getAttribute("data-picker");
    var wrap = el("div", "picker");
    var chips = el("ul", "picker-chips");
    var input = el("input", "picker-search");
    var list = el("ul", "picker-results");
    var timer = null;
    var seq = 0;
    var quiet = false;

    input.type = "search";
    input.autocomplete = "off";
    input.placeholder = select.getAttribute("data-placeholder") || "";
    input.id = select.id + "-search";
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-expanded", "false");
    list.id = select.id + "-results";
    list.setAttribute("role", "listbox");
    input.setAttribute("aria-controls", list.id);
    list.hidden = true;

    // The field's label now names the search box.
    var label = document.querySelector('label[for="' + select.id + '"]');
    if (label) label.htmlFor = input.id;

    function drawChips() {
      chips.textContent = "";
      Array.prototype.forEach.call(select.options, function (opt) {
        if (!opt.selected) return;
        var chip = el("li", "picker-chip", opt.textContent);
        chip.setAttribute("data-id", opt.value);
        var remove = el("button", "picker-remove", "×");
        remove.type = "button";
        remove.setAttribute("aria-label", (select.getAttribute("data-remove") || "") + " " + opt.textContent);
        remove.addEventListener("click", function () {
          opt.selected = false;
          drawChips();
          input.focus();
        });
        chip.appendChild(remove);
        chips.appendChild(chip);
      });
    }

    function pick(id, text) {
      var opt = null;
      Array.prototype.forEach.call(select.options, function (o) {
        if (o.value === String(id)) opt = o;
      });
      if (!opt) {
        opt = new Option(text, String(id));
        select.appendChild(opt);
      }
      opt.selected = true;
      drawChips();
      close();
      input.value = "";
      if (document.activeElement !== input) {
        quiet = true; // back in the box after a pick: no list until the user types
        input.focus();
      }
    }

    function close() {
      // A search still waiting (typed just before the pick) must not reopen the list.
      clearTimeout(timer);
      seq++;
      list.hidden = true;
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
    }

    function show(results) {
      list.textContent = "";
      if (!results.length) {
        list.appendChild(el("li", "picker-empty", select.getAttribute("data-empty") || ""));
      }
      results.forEach(function (r) {
        var item = el("li", "picker-option", r.label);
        item.setAttribute("role", "option");
        item.setAttribute("data-id", r.id);
        item.tabIndex = -1;
        item.addEventListener("mousedown", function (ev) {
          ev.preventDefault(); // keep the focus in the search box
          pick(r.id, r.label);
        });
        item.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter") {
            ev.preventDefault();
            pick(r.id, r.label);
          }
        });
        list.appendChild(item);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function search() {
      var mine = ++seq;
      var sep = url.indexOf("?") < 0 ? "?" : "&";
      fetch(url + sep + "q=" + encodeURIComponent(input.value.trim()), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (resp) {
          return resp.ok ? resp.json() : { results: [] };
        })
        .then(function (data) {
          if (mine === seq && document.activeElement === input) show(data.results || []);
        })
        .catch(function () {
          /* offline: the user can try again by typing */
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 200);
    });
    input.addEventListener("focus", function () {
      if (quiet) {
        quiet = false;
        return;
      }
      search();
    });
    input.addEventListener("blur", function () {
      setTimeout(close, 150);
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault(); // Enter picks, it does not submit the form
        var first = list.querySelector(".picker-option");
        if (first) pick(first.getAttribute("data-id"), first.textContent);
      } else if (ev.key === "ArrowDown") {
        var opt = list.querySelector(".picker-option");
        if (opt) {
          ev.preventDefault();
          opt.focus();
        }
      } else if (ev.key === "Escape") {
        close();
      }
    });
    list.addEventListener("keydown", function (ev) {
      var current = document.activeElement;
      if (ev.key === "ArrowDown" && current.nextElementSibling) {
        ev.preventDefault();
        current.nextElementSibling.focus();
      } else if (ev.key === "ArrowUp") {
        ev.preventDefault();
        (current.previousElementSibling || input).focus();
      }
    });

    select.hidden = true;
    select.setAttribute("aria-hidden", "true");
    select.tabIndex = -1;
    select.parentNode.insertBefore(wrap, select);
    wrap.appendChild(chips);
    wrap.appendChild(input);
    wrap.appendChild(list);
    wrap.appendChild(select);
    drawChips();
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-picker]"), setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
