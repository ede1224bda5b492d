// sekisho web UI: times in the viewer's zone (UTC on hover), countdowns, the request form,
// and keeping live regions from wiping what someone is typing. No library besides htmx.
(function () {
  "use strict";

  var zone = (Intl.DateTimeFormat().resolvedOptions().timeZone || "");
  var local = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });

  // <time datetime="...Z" title="... UTC" data-local>: the text becomes the viewer's time;
  // the title (shown on hover) keeps UTC.
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at.getTime())) { el.textContent = local.format(at); }
    });
  }

  function human(seconds) {
    var units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]], parts = [];
    for (var i = 0; i < units.length && parts.length < 2; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n > 0 || parts.length) { if (n > 0) { parts.push(n + units[i][0]); } seconds -= n * units[i][1]; }
    }
    return parts.length ? parts.join(" ") : "0s";
  }

  // Countdowns start from the seconds the server computed with its own clock, so a viewer
  // whose clock is wrong still sees the right time left.
  var timers = [];
  function countdowns(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el.dataset.armed) { return; }
      el.dataset.armed = "1";
      var left = Number(el.dataset.countdown);
      timers.push({ el: el, end: performance.now() + left * 1000, announce: left > 0 });
    });
  }
  setInterval(function () {
    var now = performance.now();
    for (var i = timers.length - 1; i >= 0; i--) {
      var t = timers[i];
      if (!t.el.isConnected) { timers.splice(i, 1); continue; }
      var left = Math.max(0, Math.round((t.end - now) / 1000));
      t.el.textContent = left > 0 ? human(left) + " left" : "ended";
      if (left === 0) {
        timers.splice(i, 1);
        // Only a countdown that ran out here asks for a refresh: one that was already at zero
        // would otherwise refresh in a loop until the scheduler catches up.
        if (t.announce) { document.body.dispatchEvent(new CustomEvent("countdown-ended")); }
      }
    }
  }, 1000);

  // The new-request form: the browser's zone goes with datetime-local values; the end picker
  // shows when "until" is chosen, and choosing a date chooses "until".
  function forms(root) {
    root.querySelectorAll("[data-browser-tz]").forEach(function (el) { el.value = zone; });
    root.querySelectorAll("[data-tz-name]").forEach(function (el) {
      if (zone) { el.textContent = zone + " (your browser)"; }
    });
    document.querySelectorAll("[data-until-field]").forEach(function (field) {
      var form = field.closest("form");
      var toggle = form && form.querySelector("[data-until-toggle]");
      if (!toggle || field.dataset.wired) { return; }
      field.dataset.wired = "1";
      var sync = function () { field.hidden = !toggle.checked; };
      form.querySelectorAll("input[name=end]").forEach(function (r) { r.addEventListener("change", sync); });
      field.querySelector("input").addEventListener("input", function () { toggle.checked = true; sync(); });
      sync();
    });
  }

  // A poll must not replace a box someone is typing in (a revocation reason, say).
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var region = evt.detail.elt;
    if (!region || !region.classList || !region.classList.contains("live")) { return; }
    var active = document.activeElement;
    if (active && region.contains(active) && active.matches("input, textarea, select")) {
      evt.preventDefault();
      return;
    }
    var boxes = region.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].value) { evt.preventDefault(); return; }
    }
  });

  function init(root) {
    localTimes(root);
    countdowns(root);
    forms(root);
  }

  function start() {
    var summary = document.querySelector(".form-summary");
    if (summary) { summary.setAttribute("tabindex", "-1"); summary.focus(); }
  }

  if (window.htmx) {
    window.htmx.onLoad(init);
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  }
  document.addEventListener("DOMContentLoaded", start);
})();
