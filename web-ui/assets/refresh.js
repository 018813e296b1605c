// Re-fetches the page every few seconds and swaps the #live region in place, so the dashboard
// stays current without a full reload (no flicker, scroll position kept). Pages without
// data-refresh (forms, confirmation) are left alone. With JavaScript off, a <noscript> meta
// refresh does the same job.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.refresh) return;
  var every = Math.max(1, Number(live.dataset.refresh)) * 1000;
  var note = document.getElementById("refresh-note");
  var busy = false;

  function say(text, failed) {
    if (!note) return;
    note.textContent = text;
    note.className = failed ? "stale" : "";
  }

  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      var response = await fetch(window.location.href, {
        cache: "no-store",
        headers: { "X-Requested-With": "refresh" },
      });
      if (!response.ok && response.status !== 404) throw new Error("HTTP " + response.status);
      var page = new DOMParser().parseFromString(await response.text(), "text/html");
      var fresh = page.getElementById("live");
      if (fresh) {
        live.replaceChildren.apply(live, Array.from(fresh.childNodes));
        document.title = page.title;
      }
      say("Refreshed " + new Date().toLocaleTimeString() + ", every " + every / 1000 + " s.", false);
    } catch (e) {
      say("Cannot reach the server (" + e.message + "); retrying every " + every / 1000 + " s.", true);
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, every);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
