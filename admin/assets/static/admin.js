// gworker admin: progressive enhancement only. Every page works without
// this script; with it, the parts marked data-live refresh themselves
// (pausable), and destructive buttons ask before they post.
(function () {
  "use strict";

  var body = document.body;
  var interval = parseInt(body.getAttribute("data-refresh"), 10) || 5000;
  var key = "gworker-admin-paused"; // a preference, not a secret
  var paused = sessionStorage.getItem(key) === "1";
  var toggle = document.getElementById("live-toggle");
  var status = document.getElementById("live-status");
  var timer = null;
  var live = document.querySelectorAll("[data-live][id]");

  function show() {
    if (!toggle || !status) return;
    toggle.hidden = live.length === 0;
    status.hidden = live.length === 0;
    toggle.textContent = paused ? "Resume updates" : "Pause updates";
    toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    status.textContent = paused ? "paused" : "live";
    status.classList.toggle("paused", paused);
  }

  // busy: the user is in the middle of something a refresh would undo.
  function busy(region) {
    if (region.hasAttribute("data-keep-if-checked") && region.querySelector("input[type=checkbox]:checked")) return true;
    var a = document.activeElement;
    return a && region.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }

  function refresh() {
    if (paused || document.hidden) return schedule();
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) throw new Error("signed out");
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        live.forEach(function (region) {
          var fresh = doc.getElementById(region.id);
          // Unchanged parts stay as they are: no flicker, no lost hover.
          if (fresh && !busy(region) && fresh.innerHTML !== region.innerHTML) {
            region.replaceWith(document.importNode(fresh, true));
          }
        });
        live = document.querySelectorAll("[data-live][id]");
        wire();
        if (status) status.title = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function () { /* the next tick tries again */ })
      .then(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    if (live.length > 0) timer = setTimeout(refresh, interval);
  }

  if (toggle) {
    toggle.addEventListener("click", function () {
      paused = !paused;
      sessionStorage.setItem(key, paused ? "1" : "0");
      show();
      if (!paused) refresh();
    });
  }

  // wire hooks up the controls inside live regions, which refreshes replace.
  function wire() {
    var all = document.getElementById("select-all");
    if (all && !all.dataset.wired) {
      all.dataset.wired = "1";
      all.hidden = false;
      all.addEventListener("change", function () {
        document.querySelectorAll("input[type=checkbox][name=id]").forEach(function (b) { b.checked = all.checked; });
      });
    }
  }

  document.addEventListener("submit", function (e) {
    var btn = e.submitter || e.target.querySelector("[data-confirm]");
    var msg = btn && btn.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  show();
  wire();
  schedule();
})();
