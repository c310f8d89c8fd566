// Phone simulator: sends what the consumer does, polls the sandbox chat log, draws bubbles.
(function () {
  "use strict";
  // Choosing an account or a consumer reloads the page for it.
  var selects = document.querySelectorAll("select[data-autosubmit]");
  for (var i = 0; i < selects.length; i++) {
    selects[i].addEventListener("change", function (e) { e.target.form.submit(); });
  }
})();
(function () {
  "use strict";
  var screen = document.getElementById("screen");
  var chat = document.getElementById("chat");
  var bottom = document.getElementById("bottom");
  var T = JSON.parse(document.getElementById("phone-strings").textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var brand = screen.dataset.brand;
  var consumer = screen.dataset.consumer;
  var accountName = document.getElementById("account-name").textContent.trim();
  var lastSeq = 0;
  var polling = false;

  function fmt(s, vars) {
    return s.replace(/%\((\w+)\)s/g, function (_, k) { return vars[k] == null ? "" : vars[k]; });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function pick(obj, names) {
    for (var i = 0; i < names.length; i++) {
      var v = obj && obj[names[i]];
      if (v != null && v !== "") return v;
    }
    return null;
  }

  // Text as WeChat shows it: plain text plus <a href="..."> links and bare URLs.
  function richText(target, text) {
    var re = /<a\s+[^>]*href=["']([^"']+)["'][^>]*>([\s\S]*?)<\/a>|(https?:\/\/[^\s<>"]+)/gi;
    var pos = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > pos) target.appendChild(document.createTextNode(text.slice(pos, m.index)));
      var url = m[1] || m[3];
      var a = el("a", null, m[1] ? m[2].replace(/<[^>]*>/g, "") : m[3]);
      a.href = url;
      a.dataset.url = url;
      target.appendChild(a);
      pos = re.lastIndex;
    }
    if (pos < text.length) target.appendChild(document.createTextNode(text.slice(pos)));
  }

  function row(direction, content, via) {
    var msg = el("div", "msg " + direction);
    var avatar = el("div", "avatar", direction === "in" ? "我" : (accountName[0] || "公"));
    msg.appendChild(avatar);
    if (via && T[via]) {
      var wrap = el("div");
      wrap.appendChild(el("span", "via", T[via]));
      wrap.appendChild(content);
      content = wrap;
    }
    msg.appendChild(content);
    chat.appendChild(msg);
    return msg;
  }

  function systemLine(text) {
    var p = el("p", "system");
    p.appendChild(el("span", null, text));
    chat.appendChild(p);
  }

  function card(title, desc, url, pic) {
    var c = el("div", "card" + (url ? " link" : ""));
    c.appendChild(el("div", "card-title", title || ""));
    if (pic) {
      var img = el("img", "card-pic");
      img.src = pic;
      img.alt = "";
      c.appendChild(img);
    }
    if (desc) c.appendChild(el("div", "card-desc", desc));
    if (url) {
      c.dataset.url = url;
      c.appendChild(el("div", "card-foot", T.details + " ›"));
    }
    return c;
  }

  // A template or subscribe message as WeChat's service-notice card: the template's title,
  // the date, one line per keyword (its name from the template when known). WeChat shows
  // no first/remark line since May 2023, and never the template id or the field keys.
  function serviceNotice(m, type) {
    var data = m.data || {};
    var labels = m.labels || {};
    var c = el("div", "card notice" + (pick(m, ["url", "page"]) ? " link" : ""));
    c.appendChild(el("div", "card-title", m.title || T[type]));
    var when = m.at ? new Date(m.at * 1000) : new Date();
    c.appendChild(el("div", "notice-date", fmt(T.date, {
      month: when.getMonth() + 1, day: when.getDate() })));
    var dl = el("dl", "notice-fields");
    Object.keys(data).forEach(function (k) {
      if (k === "first" || k === "remark") return;
      var v = data[k] && typeof data[k] === "object" ? data[k].value : data[k];
      var line = el("div", "notice-field");
      if (labels[k]) line.appendChild(el("dt", null, labels[k]));
      line.appendChild(el("dd", null, v == null ? "" : String(v)));
      dl.appendChild(line);
    });
    c.appendChild(dl);
    var url = pick(m, ["url", "page"]);
    if (url) {
      c.dataset.url = url;
      c.appendChild(el("div", "card-foot", T.details + " ›"));
    }
    return c;
  }

  function eventText(m) {
    var ev = (m.event || "").toString();
    var key = m.eventKey || m.EventKey || "";
    var low = ev.toLowerCase();
    if (low === "subscribe") {
      return key ? fmt(T.you_scanned, { scene: key.replace(/^qrscene_/, "") }) : T.followed;
    }
    if (low === "scan") return fmt(T.you_scanned, { scene: key });
    if (low === "unsubscribe") return T.unfollowed;
    if (low === "click") return fmt(T.tapped, { key: key });
    if (low === "view") return fmt(T.opened, { url: key });
    return fmt(T.event, { event: ev });
  }

  function render(m) {
    var type = (m.msgtype || "text").toLowerCase();
    var via = m.via === "passive" || m.via === "user" ? null : m.via;
    if (m.direction === "in" && type === "event") return systemLine(eventText(m));
    if (m.via === "system") return systemLine(pick(m, ["content"]) || "");
    if (type === "text") {
      var text = pick(m, ["content"]) || pick(m.text || {}, ["content"]) || "";
      var bubble = el("div", "bubble");
      richText(bubble, String(text));
      return row(m.direction, bubble, via);
    }
    if (type === "news" || type === "mpnews") {
      var arts = m.articles || (m.news && m.news.articles) || [];
      if (!Array.isArray(arts)) arts = [arts];
      arts.forEach(function (a) {
        row(m.direction, card(pick(a, ["Title", "title"]), pick(a, ["Description", "description"]),
          pick(a, ["Url", "url"]), pick(a, ["PicUrl", "picurl", "thumb_url"])), via);
      });
      return;
    }
    if (type === "template" || type === "subscribe") {
      return row("out", serviceNotice(m, type), type);
    }
    if (type === "miniprogrampage") {
      var mp = m.miniprogrampage || m;
      return row(m.direction, card(T.miniprogram + " " + (mp.title || ""), mp.pagepath || "",
        null, null), via);
    }
    var label = T[type] || T.unsupported;
    return row(m.direction, el("div", "bubble", label), via);
  }

  function setFollowing(following) {
    var state = document.getElementById("follow-state");
    if (!state) return;
    state.dataset.following = following ? "yes" : "no";
    state.textContent = following ? T.following : T.not_following;
  }

  function poll() {
    if (!brand || !consumer || polling) return Promise.resolve();
    polling = true;
    var url = screen.dataset.messagesUrl + "?brand=" + encodeURIComponent(brand) +
      "&consumer=" + encodeURIComponent(consumer) + "&after=" + lastSeq;
    return fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 60;
        (data.messages || []).forEach(function (m) {
          if (m.seq <= lastSeq) return;
          lastSeq = m.seq;
          render(m);
        });
        setFollowing(data.following);
        if (atBottom || data.messages.length) chat.scrollTop = chat.scrollHeight;
      })
      .catch(function () { /* the next tick tries again */ })
      .finally(function () { polling = false; });
  }

  function act(action, value, ticket) {
    if (!brand || !consumer) return Promise.resolve();
    return fetch(screen.dataset.actUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRFToken": csrf },
      body: JSON.stringify({ brand: brand, consumer: consumer, action: action,
                             value: value || "", ticket: ticket || "" }),
    })
      .then(function (r) { return r.json().then(function (d) { return [r, d]; }); })
      .then(function (res) {
        var d = res[1];
        if (!res[0].ok) systemLine(fmt(T.failed, { error: (d.error && d.error.message) || res[0].status }));
        else setFollowing(d.following);
      })
      .catch(function (e) { systemLine(fmt(T.failed, { error: e.message })); })
      .then(poll);
  }

  function openLink(url) {
    var browser = document.getElementById("browser");
    var target = screen.dataset.openUrl + "?consumer=" + encodeURIComponent(consumer) +
      "&url=" + encodeURIComponent(url);
    document.getElementById("browser-frame").src = target;
    document.getElementById("browser-title").textContent = T.loading;
    document.getElementById("browser-newtab").href = target;
    browser.hidden = false;
  }

  // WeChat's in-app browser titles the page it shows: follow every navigation in the frame.
  var frame = document.getElementById("browser-frame");
  frame.addEventListener("load", function () {
    var title = document.getElementById("browser-title");
    var doc = null, loc = null;
    try {
      doc = frame.contentDocument;
      loc = frame.contentWindow.location;
    } catch (e) { /* another origin: only its address is known to the frame element */ }
    if (loc && loc.href === "about:blank") return;
    var name = doc && doc.title ? doc.title.trim() : "";
    title.textContent = name || (loc ? loc.host : "");
    title.title = loc ? loc.href : "";
    if (loc) document.getElementById("browser-newtab").href = loc.href;
  });

  document.getElementById("browser-close").addEventListener("click", function () {
    document.getElementById("browser").hidden = true;
    document.getElementById("browser-frame").src = "about:blank";
  });

  chat.addEventListener("click", function (e) {
    var link = e.target.closest("[data-url]");
    if (!link || !consumer) return;
    e.preventDefault();
    openLink(link.dataset.url);
  });

  document.getElementById("inputbar").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("message-input");
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    act("text", text);
  });

  document.getElementById("mode-toggle").addEventListener("click", function () {
    bottom.dataset.mode = bottom.dataset.mode === "menu" ? "input" : "menu";
    if (bottom.dataset.mode === "input") document.getElementById("message-input").focus();
  });

  document.getElementById("menubar").addEventListener("click", function (e) {
    var b = e.target.closest(".menu-button");
    if (!b) return;
    document.querySelectorAll(".submenu").forEach(function (s) {
      if (s.id !== "submenu-" + b.dataset.sub) s.hidden = true;
    });
    if (b.classList.contains("has-sub")) {
      var sub = document.getElementById("submenu-" + b.dataset.sub);
      sub.hidden = !sub.hidden;
      return;
    }
    var type = (b.dataset.type || "").toLowerCase();
    if (type === "view") {
      act("view", b.dataset.url);
      openLink(b.dataset.url);
    } else if (b.dataset.key) {
      act("click", b.dataset.key);
    }
  });

  document.querySelectorAll(".scan-button").forEach(function (b) {
    b.addEventListener("click", function () { act("scan", b.dataset.scene, b.dataset.ticket); });
  });
  var sceneForm = document.getElementById("scene-form");
  if (sceneForm) {
    sceneForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var v = document.getElementById("scene-input").value.trim();
      if (v) act("scan", v);
    });
  }
  var follow = document.getElementById("follow-button");
  if (follow) follow.addEventListener("click", function () { act("follow"); });
  var unfollow = document.getElementById("unfollow-button");
  if (unfollow) unfollow.addEventListener("click", function () { act("unfollow"); });

  poll();
  setInterval(poll, 1000);
})();
