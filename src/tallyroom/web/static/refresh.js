/* tallyroom: reload a live results page when a newer snapshot changes it.
   Optional: every page works the same without it. It asks /current.json (a few hundred
   bytes) which snapshot is current, every 30 s while the page is visible; when the number
   changes it asks for the page's own headers and reloads only if the page itself changed
   (its ETag), so a reader is not moved for news elsewhere. Pages of a numbered snapshot
   (/snapshots/N/...) never change and are left alone. */
(function () {
  "use strict";
  if (!window.fetch || location.protocol === "file:" || location.pathname.indexOf("/snapshots/") === 0) {
    return;
  }
  var every = 30000;
  var seen = null;
  var etag = null;
  function tag() {
    return fetch(location.href, {method: "HEAD", cache: "no-cache"}).then(function (r) {
      return r.ok ? r.headers.get("ETag") : null;
    });
  }
  function later() {
    setTimeout(check, every + Math.floor(Math.random() * 5000));
  }
  function check() {
    if (document.hidden) {
      later();
      return;
    }
    fetch("/current.json", {cache: "no-cache"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (c) {
        if (!c || typeof c.snapshot !== "number") {
          return null;
        }
        if (seen === null) {
          seen = c.snapshot;
          return tag().then(function (t) { etag = t; });
        }
        if (c.snapshot === seen) {
          return null;
        }
        seen = c.snapshot;
        return tag().then(function (t) {
          if (!t || t !== etag) {
            location.reload();
          }
        });
      })
      .catch(function () {})
      .then(later);
  }
  check();
})();
