// gsmgate web console: live updates and the broadcast recipient count (docs/web.md).
// No framework and no inline script (the Content-Security-Policy forbids it). Pages work
// without this file; it only refreshes the parts marked data-live when the event stream
// (/console/events) says something changed, by fetching the same page again and swapping those
// elements. Event data is never put into the page: only the server's escaped HTML is.
(function () {
  "use strict";

  var pending = null;

  function playing() {
    var media = document.querySelectorAll("audio");
    for (var i = 0; i < media.length; i++) {
      if (!media[i].paused) return true;
    }
    return false;
  }

  function refresh() {
    pending = null;
    if (playing()) return;
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error("no page");
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh) el.replaceWith(document.importNode(fresh, true));
        });
      })
      .catch(function () { /* the next event or poll tries again */ });
  }

  function soon() {
    if (pending === null) pending = setTimeout(refresh, 300);
  }

  function listen() {
    if (!document.querySelector("[data-live]") || !window.EventSource) return;
    var es = new EventSource("/console/events");
    ["modem_state", "message_in", "message_sent", "message_failed", "delivery_report",
     "call", "possible_opt_out", "lagged"].forEach(function (kind) {
      es.addEventListener(kind, soon);
    });
  }

  // A broadcast's progress also moves without events (queued → sending); poll it until done.
  function pollProgress() {
    var p = document.getElementById("progress");
    if (!p) return;
    setInterval(function () {
      var now = document.getElementById("progress");
      if (now && now.getAttribute("data-percent") !== "100") soon();
    }, 3000);
  }

  function countAsYouType() {
    var form = document.getElementById("broadcast");
    var segment = document.getElementById("segment");
    var output = document.getElementById("count");
    if (!form || !segment || !output) return;
    var text = document.getElementById("text");
    var timer = null;
    function ask() {
      var url = "/console/broadcast/count?segment=" + encodeURIComponent(segment.value) +
        "&text=" + encodeURIComponent(text ? text.value : "");
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (typeof j.recipients === "number") {
            output.textContent = String(j.recipients);
            output.removeAttribute("title");
          } else if (j.error) {
            output.textContent = "";
            output.setAttribute("title", j.error);
          }
        })
        .catch(function () {});
    }
    function later() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(ask, 350);
    }
    segment.addEventListener("input", later);
    segment.addEventListener("change", ask);
    if (output.textContent === "") ask();
  }

  document.addEventListener("DOMContentLoaded", function () {
    listen();
    pollProgress();
    countAsYouType();
  });
})();
