// The console sidebar: each group's heading opens and closes it. The group of the page being
// shown is always open; what the operator opened or closed elsewhere is remembered in
// localStorage. Without this script every group stays open.
(function () {
  "use strict";
  var KEY = "wmb.console.nav";
  var state = {};
  try {
    state = JSON.parse(window.localStorage.getItem(KEY) || "{}") || {};
  } catch (e) {
    state = {};
  }
  function save() {
    try {
      window.localStorage.setItem(KEY, JSON.stringify(state));
    } catch (e) { /* private mode: the state lasts for this page only */ }
  }
  function show(group, open) {
    var button = group.querySelector(".nav-group-title");
    var items = group.querySelector(".nav-group-items");
    button.setAttribute("aria-expanded", open ? "true" : "false");
    items.hidden = !open;
  }
  document.querySelectorAll(".sidebar .nav-group").forEach(function (group) {
    var key = group.getAttribute("data-group");
    var current = group.hasAttribute("data-current");
    // Closed unless it holds this page or the operator left it open.
    show(group, current || state[key] === true);
    group.querySelector(".nav-group-title").addEventListener("click", function () {
      var open = this.getAttribute("aria-expanded") !== "true";
      show(group, open);
      state[key] = open;
      save();
    });
  });
})();
