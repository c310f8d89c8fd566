// The segment builder: edits a condition tree (groups of and / or, a group may exclude),
// writes it as JSON into the form's hidden "definition" field, and asks the server for the
// live count a moment after each edit (the latest answer wins).
(function () {
  "use strict";

  var root = document.getElementById("segment-builder");
  if (!root) return;
  var cfg = JSON.parse(root.getAttribute("data-builder"));
  var csrf = root.getAttribute("data-csrf");
  var hidden = document.getElementById("definition");
  var countEl = document.getElementById("live-count");
  var noteEl = document.getElementById("live-count-note");
  var T = cfg.text;
  var FIELDS = {};
  cfg.fields.forEach(function (f) { FIELDS[f.name] = f; });
  var labels = cfg.labels || {};
  var MAX_NESTING = 2; // the top group and one level of groups inside it

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function button(text, cls, onClick) {
    var b = el("button", cls, text);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  // --- the model ----------------------------------------------------------------------
  function fromTree(node) {
    if (!node || typeof node !== "object") return { op: "and", negated: false, items: [] };
    if (node.field !== undefined) return cond(node);
    if (node.op === "not") {
      var inner = (node.items || [])[0];
      if (inner && inner.field !== undefined) {
        return { op: "and", negated: true, items: [cond(inner)] };
      }
      var g = fromTree(inner);
      g.negated = !g.negated;
      return g;
    }
    return {
      op: node.op === "or" ? "or" : "and",
      negated: false,
      items: (node.items || []).map(function (item) {
        return item && item.field === undefined ? fromTree(item) : cond(item);
      }),
    };
  }

  function cond(node) {
    return {
      field: node.field || "",
      op: node.op || "",
      value: node.value === undefined ? null : node.value,
      days: node.days === undefined ? null : node.days,
      channel: node.channel || "any",
    };
  }

  function opOf(c) {
    var f = FIELDS[c.field];
    if (!f) return null;
    for (var i = 0; i < f.ops.length; i++) if (f.ops[i].op === c.op) return f.ops[i];
    return null;
  }

  function defaultValue(kind, op) {
    if (kind === "ids" || kind === "texts" || kind === "choices") return [];
    if (kind === "number" || kind === "money") return op === "between" ? [0, 0] : 0;
    if (kind === "days") return 30;
    if (kind === "dates") return ["", ""];
    return null;
  }

  function toTree(g) {
    var inner = {
      op: g.op,
      items: g.items.map(function (item) {
        if (item.items) return toTree(item);
        var out = { field: item.field, op: item.op, value: item.value };
        var f = FIELDS[item.field];
        if (f && f.window) out.days = item.days;
        if (f && f.channel) out.channel = item.channel;
        return out;
      }),
    };
    return g.negated ? { op: "not", items: [inner] } : inner;
  }

  var state = fromTree(cfg.tree);

  // --- the count ----------------------------------------------------------------------
  var timer = null;
  var seq = 0;

  function conditionCount(g) {
    return g.items.reduce(function (n, item) {
      return n + (item.items ? conditionCount(item) : 1);
    }, 0);
  }

  function changed() {
    var tree = toTree(state);
    hidden.value = conditionCount(state) ? JSON.stringify(tree) : "";
    clearTimeout(timer);
    if (!conditionCount(state)) {
      countEl.textContent = "—";
      noteEl.textContent = T.empty;
      return;
    }
    noteEl.textContent = T.counting;
    timer = setTimeout(function () { count(tree); }, 450);
  }

  function count(tree) {
    var mine = ++seq;
    fetch(cfg.count_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ definition: tree }),
    })
      .then(function (resp) {
        return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
      })
      .then(function (r) {
        if (mine !== seq) return;
        if (!r.ok) {
          countEl.textContent = "—";
          noteEl.textContent = (r.data && r.data.error && r.data.error.message) || T.count_error;
          return;
        }
        if (r.data.timeout) {
          countEl.textContent = "—";
          noteEl.textContent = r.data.message || T.timeout;
          return;
        }
        countEl.textContent = r.data.display + " " + T.members;
        noteEl.textContent = "";
      })
      .catch(function () {
        if (mine !== seq) return;
        noteEl.textContent = T.count_error;
      });
  }

  // --- drawing ------------------------------------------------------------------------
  function draw() {
    root.textContent = "";
    root.appendChild(drawGroup(state, null, 1));
  }

  function drawGroup(g, parent, depth) {
    var box = el("div", "seg-group" + (g.negated ? " negated" : ""));
    box.setAttribute("data-testid", "seg-group");
    var head = el("div", "seg-group-head");
    var op = el("select");
    op.setAttribute("aria-label", T.all + " / " + T.any);
    [["and", T.all], ["or", T.any]].forEach(function (o) {
      var opt = el("option", null, o[1]);
      opt.value = o[0];
      op.appendChild(opt);
    });
    op.value = g.op;
    op.addEventListener("change", function () { g.op = op.value; changed(); });
    head.appendChild(op);
    var negLabel = el("label");
    var neg = el("input");
    neg.type = "checkbox";
    neg.checked = g.negated;
    neg.addEventListener("change", function () {
      g.negated = neg.checked;
      box.classList.toggle("negated", g.negated);
      changed();
    });
    negLabel.appendChild(neg);
    negLabel.appendChild(document.createTextNode(T.not));
    head.appendChild(negLabel);
    if (parent) {
      head.appendChild(button(T.remove_group, "small seg-remove", function () {
        parent.items.splice(parent.items.indexOf(g), 1);
        draw();
        changed();
      }));
    }
    box.appendChild(head);
    g.items.forEach(function (item) {
      box.appendChild(item.items ? drawGroup(item, g, depth + 1) : drawCond(item, g));
    });
    var actions = el("div", "seg-group-actions");
    var add = button("+ " + T.add, "small", function () {
      g.items.push(cond({}));
      draw();
      var selects = box.querySelectorAll(".seg-cond > select.seg-field");
      if (selects.length) selects[selects.length - 1].focus();
    });
    add.setAttribute("data-testid", "add-condition");
    actions.appendChild(add);
    if (depth < MAX_NESTING) {
      var addGroup = button("+ " + T.add_group, "small", function () {
        g.items.push({ op: "or", negated: false, items: [cond({})] });
        draw();
      });
      addGroup.setAttribute("data-testid", "add-group");
      actions.appendChild(addGroup);
    }
    box.appendChild(actions);
    return box;
  }

  function drawCond(c, parent) {
    var row = el("div", "seg-cond");
    row.setAttribute("data-testid", "seg-condition");
    var field = el("select", "seg-field");
    field.setAttribute("aria-label", T.choose_field);
    var none = el("option", null, T.choose_field);
    none.value = "";
    field.appendChild(none);
    var groups = {};
    cfg.fields.forEach(function (f) {
      if (!groups[f.group]) {
        groups[f.group] = el("optgroup");
        groups[f.group].label = f.group;
        field.appendChild(groups[f.group]);
      }
      var opt = el("option", null, f.label);
      opt.value = f.name;
      groups[f.group].appendChild(opt);
    });
    field.value = c.field;
    field.addEventListener("change", function () {
      var f = FIELDS[field.value];
      c.field = field.value;
      c.op = f ? f.ops[0].op : "";
      c.value = f ? defaultValue(f.ops[0].kind, c.op) : null;
      c.days = f && f.window === "required" ? 30 : null;
      c.channel = "any";
      redraw();
    });
    row.appendChild(field);
    var f = FIELDS[c.field];
    if (f) {
      var op = el("select", "seg-op");
      op.setAttribute("aria-label", f.label);
      f.ops.forEach(function (o) {
        var opt = el("option", null, o.label);
        opt.value = o.op;
        op.appendChild(opt);
      });
      op.value = c.op;
      op.addEventListener("change", function () {
        var before = opOf(c);
        c.op = op.value;
        var after = opOf(c);
        if (!before || before.kind !== after.kind || (c.op === "between") !== Array.isArray(c.value)) {
          c.value = defaultValue(after.kind, c.op);
        }
        redraw();
      });
      row.appendChild(op);
      var value = el("div", "seg-value");
      drawValue(value, c, f, opOf(c));
      row.appendChild(value);
    }
    row.appendChild(button(T.remove, "small seg-remove", function () {
      parent.items.splice(parent.items.indexOf(c), 1);
      draw();
      changed();
    }));

    function redraw() {
      var fresh = drawCond(c, parent);
      row.parentNode.replaceChild(fresh, row);
      var sel = fresh.querySelector("select.seg-op") || fresh.querySelector("select.seg-field");
      if (sel) sel.focus();
      changed();
    }
    return row;
  }

  function numberInput(val, money, onChange) {
    var input = el("input");
    input.type = "number";
    input.min = "0";
    input.step = money ? "0.01" : "1";
    input.value = val === null || val === undefined ? "" : (money ? val / 100 : val);
    input.addEventListener("input", function () {
      var n = parseFloat(input.value);
      onChange(isNaN(n) ? null : (money ? Math.round(n * 100) : Math.round(n)));
    });
    return input;
  }

  function inline(parent, nodes) {
    var span = el("span", "seg-inline");
    nodes.forEach(function (n) {
      span.appendChild(typeof n === "string" ? document.createTextNode(n) : n);
    });
    parent.appendChild(span);
  }

  function drawValue(box, c, f, op) {
    var kind = op ? op.kind : "none";
    if (kind === "ids" || kind === "texts") drawChips(box, c, f, kind);
    else if (kind === "choices") {
      f.options.forEach(function (o) {
        var label = el("label", "seg-inline");
        var cb = el("input");
        cb.type = "checkbox";
        cb.checked = (c.value || []).indexOf(o.id) >= 0;
        cb.addEventListener("change", function () {
          var v = (c.value || []).filter(function (x) { return x !== o.id; });
          if (cb.checked) v.push(o.id);
          c.value = v;
          changed();
        });
        label.appendChild(cb);
        label.appendChild(document.createTextNode(o.label));
        box.appendChild(label);
      });
    } else if (kind === "number" || kind === "money") {
      var money = kind === "money";
      var unit = money ? T.yuan : "";
      if (c.op === "between") {
        var v = Array.isArray(c.value) ? c.value : [0, 0];
        inline(box, [
          numberInput(v[0], money, function (n) { v[0] = n; c.value = v; changed(); }),
          T.to,
          numberInput(v[1], money, function (n) { v[1] = n; c.value = v; changed(); }),
          unit,
        ]);
      } else {
        inline(box, [numberInput(c.value, money, function (n) { c.value = n; changed(); }), unit]);
      }
    } else if (kind === "days") {
      inline(box, [numberInput(c.value, false, function (n) { c.value = n; changed(); }), T.day_unit]);
    } else if (kind === "dates") {
      var d = Array.isArray(c.value) ? c.value : ["", ""];
      var a = el("input"), b = el("input");
      a.type = b.type = "date";
      a.value = d[0] || "";
      b.value = d[1] || "";
      a.addEventListener("change", function () { d[0] = a.value; c.value = d; changed(); });
      b.addEventListener("change", function () { d[1] = b.value; c.value = d; changed(); });
      inline(box, [a, T.to, b]);
    }
    if (f.window) {
      var days = numberInput(c.days, false, function (n) { c.days = n; changed(); });
      days.setAttribute("aria-label", f.window === "required" ? T.days : T.days_optional);
      days.placeholder = f.window === "required" ? "" : "—";
      inline(box, [f.window === "required" ? T.days : T.days_optional, days, T.day_unit]);
    }
    if (f.channel) {
      var ch = el("select");
      cfg.channels.forEach(function (o) {
        var opt = el("option", null, o.label);
        opt.value = o.id;
        ch.appendChild(opt);
      });
      ch.value = c.channel || "any";
      ch.addEventListener("change", function () { c.channel = ch.value; changed(); });
      box.appendChild(ch);
    }
  }

  // Chips with a search box: ids found through the console's pickers, or typed texts.
  function drawChips(box, c, f, kind) {
    if (!Array.isArray(c.value)) c.value = [];
    var chips = el("ul", "seg-chips");
    var wrap = el("div", "seg-search");
    var input = el("input");
    input.type = "search";
    input.autocomplete = "off";
    input.placeholder = kind === "ids" ? T.search : T.type_values;
    input.setAttribute("aria-label", f.label);
    var list = el("ul", "seg-results");
    list.hidden = true;
    var searchSeq = 0;

    function labelOf(id) {
      if (kind === "texts") return id;
      var key = f.ref + ":" + id;
      if (labels[key]) return labels[key];
      var found = (f.options || []).filter(function (o) { return o.id === id; })[0];
      return found ? found.label : String(id);
    }

    function drawChipList() {
      chips.textContent = "";
      c.value.forEach(function (id) {
        var li = el("li", null, labelOf(id));
        var x = button("×", null, function () {
          c.value = c.value.filter(function (v) { return v !== id; });
          drawChipList();
          changed();
        });
        x.setAttribute("aria-label", T.remove + " " + labelOf(id));
        li.appendChild(x);
        chips.appendChild(li);
      });
    }

    function add(id, label) {
      if (kind === "ids" && label) labels[f.ref + ":" + id] = label;
      if (c.value.indexOf(id) < 0) c.value.push(id);
      input.value = "";
      list.hidden = true;
      drawChipList();
      changed();
    }

    function show(results) {
      list.textContent = "";
      if (!results.length) {
        list.appendChild(el("li", "muted", T.nothing));
      }
      results.forEach(function (r) {
        var li = el("li", null, r.label);
        li.setAttribute("role", "option");
        li.addEventListener("mousedown", function (ev) {
          ev.preventDefault();
          add(r.id, r.label);
        });
        list.appendChild(li);
      });
      list.hidden = false;
    }

    function search() {
      var q = input.value.trim();
      if (f.options) {
        show(f.options.filter(function (o) { return !q || o.label.indexOf(q) >= 0; }).slice(0, 30));
        return;
      }
      var mine = ++searchSeq;
      fetch(f.picker + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (resp) { return resp.json(); })
        .then(function (data) { if (mine === searchSeq) show(data.results || []); })
        .catch(function () {});
    }

    function addTyped() {
      input.value.split(/[,，\s]+/).forEach(function (t) {
        t = t.trim();
        if (t && c.value.indexOf(t) < 0) c.value.push(t);
      });
      input.value = "";
      drawChipList();
      changed();
    }

    input.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      if (kind === "texts") addTyped();
      else {
        var first = list.querySelector("li[role=option]");
        if (first && !list.hidden) first.dispatchEvent(new MouseEvent("mousedown"));
      }
    });
    if (kind === "ids") {
      input.addEventListener("input", search);
      input.addEventListener("focus", search);
      input.addEventListener("blur", function () { setTimeout(function () { list.hidden = true; }, 150); });
    } else {
      input.addEventListener("change", addTyped);
    }
    wrap.appendChild(input);
    wrap.appendChild(list);
    box.appendChild(chips);
    box.appendChild(wrap);
    drawChipList();
  }

  // Enter in a builder's input never submits the form half-built.
  root.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && ev.target.tagName === "INPUT") ev.preventDefault();
  });

  draw();
  if (cfg.tree) changed();
  else {
    hidden.value = hidden.value || "";
    noteEl.textContent = T.empty;
  }
})();
