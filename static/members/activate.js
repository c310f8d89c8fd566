// Activation: the SMS code is sent without leaving the page (the code step appears in place
// of the phone form, as on WeChat's own pages), and the resend button counts down the minute
// before another code may be sent (the server's limit) instead of letting the server refuse
// it. Without this script the forms post and the server redirects to the code step.
(function () {
  // Answered by the OAuth return: its address (a spent code) is replaced by the page's own.
  var own = document.querySelector("[data-address]");
  if (own && window.history && history.replaceState) {
    history.replaceState(null, "", own.getAttribute("data-address"));
  }

  function countdown(btn, seconds) {
    if (!btn) return;
    if (btn._timer) clearInterval(btn._timer);
    var left = seconds;
    var label = btn.getAttribute("data-label");
    var wait = btn.getAttribute("data-wait");
    function show() {
      btn.disabled = left > 0;
      btn.textContent = left > 0 ? wait.replace("{n}", left) : label;
    }
    show();
    if (left > 0) {
      btn._timer = setInterval(function () {
        left -= 1;
        show();
        if (left <= 0) clearInterval(btn._timer);
      }, 1000);
    }
  }

  // POST the form from the script (JSON back): ok(answer), or the phone's message shown in
  // err.
  function sendInPlace(form, err, button, ok) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button) button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (resp) {
          return resp.json().then(function (body) {
            return { ok: resp.ok, body: body };
          });
        })
        .then(function (answer) {
          if (button) button.disabled = false;
          var refused = answer.body.error;
          if (answer.ok) {
            ok(answer.body);
          } else if (err && refused && refused.field === "phone") {
            err.textContent = refused.message;
            err.hidden = false;
          } else {
            // Anything else (an expired page, a resend refused): the server's own page says it.
            form.submit();
          }
        })
        .catch(function () {
          // The network failed: let the form post the ordinary way.
          form.submit();
        });
    });
  }

  function codeStep(root) {
    countdown(root.querySelector("#resend"),
      parseInt(root.querySelector("#resend").getAttribute("data-seconds"), 10) || 0);
    var again = root.querySelector("#resend-form");
    if (again) {
      sendInPlace(again, null, null, function (body) {
        countdown(root.querySelector("#resend"), body.resend_in);
      });
    }
  }

  var phoneForm = document.getElementById("phone-form");
  var template = document.getElementById("code-step");
  if (phoneForm && template && window.fetch) {
    sendInPlace(phoneForm, document.getElementById("phone-error"),
      document.getElementById("send-code"), function (body) {
        var holder = document.createElement("div");
        holder.appendChild(template.content.cloneNode(true));
        holder.querySelectorAll("input[name=phone]").forEach(function (input) {
          input.value = body.phone;
        });
        holder.querySelector("[data-sent]").textContent = body.sent;
        var inbox = holder.querySelector("[data-inbox]");
        if (inbox) {
          if (body.inbox) inbox.href = body.inbox;
          else inbox.remove();
        }
        holder.querySelector("#resend").setAttribute("data-seconds", body.resend_in);
        var parent = phoneForm.parentNode;
        while (holder.firstChild) parent.insertBefore(holder.firstChild, phoneForm);
        phoneForm.remove();
        template.remove();
        codeStep(parent);
        parent.querySelector("#code").focus();
      });
  } else if (document.getElementById("resend")) {
    codeStep(document);
  }
})();
