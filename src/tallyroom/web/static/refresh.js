/* tallyroom: reload a live results page when a newer snapshot changes it.
   Optional: every page works the same without it. It asks /current.json (a few hundred
   bytes) which snapshot is current, every 30 s while the page is visible; when the number
   changes it asks for the page's own headers and reloads only if the page itself changed
   (its ETag), so a reader is not moved for news elsewhere. Pages of a numbered snapshot
   (/snapshots/N/...) never change and are left alone.

   A reader can stop the reloading (WCAG 2.2, 2.2.2 "Pause, Stop, Hide"): a switch at the top
   of the page, remembered in this browser. With it off, a changed page says so in a polite
   status line with a button to show the new results, and stays as it is. The switch's words
   come from the script element's data-auto, data-news and data-show attributes, in the
   page's language; a page without them reloads as before, with no switch. */
(function () {
  "use strict";
  if (!window.fetch || location.protocol === "file:" || location.pathname.indexOf("/snapshots/") === 0) {
    return;
  }
  var script = document.currentScript;
  var words = script && script.dataset && script.dataset.auto ? script.dataset : null;
  var KEY = "tallyroom.autoRefresh";
  var every = 30000;
  var seen = null;
  var etag = null;
  var told = false;
  function stored() {
    try {
      return window.localStorage.getItem(KEY) !== "off";
    } catch (e) {
      return true;
    }
  }
  var auto = stored();
  function remember(on) {
    auto = on;
    try {
      if (on) {
        window.localStorage.removeItem(KEY);
      } else {
        window.localStorage.setItem(KEY, "off");
      }
    } catch (e) { /* private browsing: the choice lasts for this page only */ }
  }
  var main = document.getElementById("main");
  if (words && main) {
    var p = document.createElement("p");
    p.className = "live-ctl";
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.id = "live-auto";
    box.checked = auto;
    box.addEventListener("change", function () { remember(box.checked); });
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + words.auto));
    p.appendChild(label);
    main.insertBefore(p, main.firstChild);
  }
  function tell() {
    if (told || !main) {
      return;
    }
    told = true;
    var news = document.createElement("p");
    news.className = "live-news";
    news.setAttribute("role", "status");
    news.appendChild(document.createTextNode(words.news + " "));
    var show = document.createElement("button");
    show.type = "button";
    show.textContent = words.show;
    show.addEventListener("click", function () { location.reload(); });
    news.appendChild(show);
    main.insertBefore(news, main.firstChild);
  }
  function tag() {
    return fetch(location.href, {method: "HEAD", cache: "no-cache"}).then(function (r) {
      return r.ok ? r.headers.get("ETag") : null;
    });
  }
  function later() {
    if (!told) {
      setTimeout(check, every + Math.floor(Math.random() * 5000));
    }
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
            if (auto || !words) {
              location.reload();
            } else {
              tell();
            }
          }
        });
      })
      .catch(function () {})
      .then(later);
  }
  check();
})();
