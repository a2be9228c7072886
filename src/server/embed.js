/* tributary embed: renders the merged listings into <div data-tributary-events> and
 * <div data-tributary-organisations> on any page. No dependencies. Filters and looks come from the
 * div's data- attributes (data-partner, data-category, data-postcode-area, data-from, data-to,
 * data-q, data-limit, data-layout, data-accent); the listing is the server's own HTML, so the
 * page shows the same thing as the <iframe> embed, and whatever the div held (a link, say) stays
 * until the listing arrives. */
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = script && script.src ? new URL(script.src).origin : window.location.origin;
  var names = ["partner", "category", "postcode_area", "near", "within", "from", "to", "q",
    "limit", "layout", "accent"];

  function listingUrl(el, kind) {
    var q = new URLSearchParams();
    names.forEach(function (n) {
      var v = el.getAttribute("data-" + n.replace("_", "-"));
      if (v) { q.set(n, v); }
    });
    q.set("fragment", "true");
    return origin + "/embed/" + kind + "?" + q.toString();
  }

  // The listing's own links (the next page, an event's .ics) are relative to the server.
  function fetchFragment(url) {
    return fetch(url, { credentials: "omit" }).then(function (r) {
      return r.text().then(function (text) {
        var t = document.createElement("template");
        t.innerHTML = text;
        t.content.querySelectorAll("a[href^='/']").forEach(function (a) {
          a.setAttribute("href", origin + a.getAttribute("href"));
        });
        return t.content;
      });
    });
  }

  function fragmentOf(href) {
    var u = new URL(href, origin);
    u.searchParams.set("fragment", "true");
    return u.toString();
  }

  // "More" appends the next page's items in place and moves focus to the first of them.
  function more(el, link) {
    link.setAttribute("aria-busy", "true");
    fetchFragment(fragmentOf(link.href)).then(function (next) {
      var list = el.querySelector("ol");
      var items = next.querySelectorAll("ol > li");
      var first = null;
      items.forEach(function (li) {
        if (list) { list.appendChild(li); }
        if (!first) { first = li.querySelector("a, h3"); }
      });
      var nav = link.closest("nav");
      var nextNav = next.querySelector("nav");
      if (nav && nextNav) { nav.replaceWith(nextNav); } else if (nav) { nav.remove(); }
      if (first) {
        if (!first.hasAttribute("href")) { first.setAttribute("tabindex", "-1"); }
        first.focus();
      }
    }).catch(function () {
      link.removeAttribute("aria-busy");
    });
  }

  function render(el, kind) {
    fetchFragment(listingUrl(el, kind)).then(function (content) {
      el.replaceChildren(content);
      el.addEventListener("click", function (e) {
        var link = e.target.closest && e.target.closest("a.trib-more");
        if (link && el.contains(link)) {
          e.preventDefault();
          more(el, link);
        }
      });
    }).catch(function () {
      // Leave what the host put in the div (its fallback link) in place.
    });
  }

  function start() {
    document.querySelectorAll("[data-tributary-events]").forEach(function (el) {
      render(el, "events");
    });
    document.querySelectorAll("[data-tributary-organisations]").forEach(function (el) {
      render(el, "organisations");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
