// After an htmx swap the user asked for (a click or a form submit), move focus to the new or
// changed content and announce it in the page's polite live region (#live-region), so
// keyboard and screen-reader users are not left on <body> when the control they used is
// replaced. Swaps nobody asked for (polling, hx-trigger="load", typing in a search box)
// leave focus alone. Where focus lands, first match wins:
//   1. a field the response marked invalid (aria-invalid="true"),
//   2. an element marked data-focus-on-swap in the swapped content,
//   3. the control that was used, if the swap brought back an element with its id,
//   4. the first heading of the first swapped region, else the region itself.
(function () {
  "use strict";
  var USER_EVENTS = ["click", "submit"];
  var pending = null; // {triggerId, regions: []} for the user request being answered
  var timer = null;

  function userTriggered(detail) {
    var config = detail && detail.requestConfig;
    var event = config && config.triggeringEvent;
    return Boolean(event && USER_EVENTS.indexOf(event.type) !== -1);
  }

  function focusable(element) {
    if (!element.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus({ preventScroll: false });
    return document.activeElement === element;
  }

  function announce(text) {
    var region = document.getElementById("live-region");
    if (!region || !text) return;
    region.textContent = "";
    // A new text node after a tick is what screen readers reliably announce.
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function describe(region) {
    var marked = region.closest("[data-announce]") || region.querySelector("[data-announce]");
    if (marked) return marked.getAttribute("data-announce");
    var message = region.querySelector("[role='alert'], [role='status'], .notice, .error");
    if (message && message.textContent.trim()) return message.textContent.trim();
    var heading = region.querySelector("h1, h2, h3, h4");
    if (heading) return heading.textContent.trim() + ": updated";
    return "Content updated";
  }

  function settle() {
    timer = null;
    var state = pending;
    pending = null;
    if (!state) return;
    var regions = state.regions.filter(function (r) { return r.isConnected; });
    if (!regions.length) return;
    var active = document.activeElement;
    var movedOn = active && active !== document.body && active !== state.focused && active.isConnected;
    var invalid = null, marked = null;
    regions.forEach(function (r) {
      invalid = invalid || r.querySelector("[aria-invalid='true']");
      marked = marked || (r.hasAttribute("data-focus-on-swap") ? r : r.querySelector("[data-focus-on-swap]"));
    });
    var again = state.triggerId ? document.getElementById(state.triggerId) : null;
    var target = invalid || marked || (again && again.isConnected ? again : null);
    var region = target ? (target.closest("section, [id]") || regions[0]) : regions[0];
    if (target && target.matches("section, [role='region'], [id$='-panel']")) {
      target = target.querySelector("h1, h2, h3") || target;
    }
    if (!target) target = regions[0].querySelector("h1, h2, h3") || regions[0];
    // Someone who has already moved on (clicked or tabbed elsewhere) keeps their place.
    if (!movedOn) focusable(target);
    announce(invalid ? describe(invalid.closest(".field, form, section") || region) : describe(region));
  }

  function remember(element) {
    if (!pending || !element || element.nodeType !== 1) return;
    pending.regions.push(element);
    if (timer) window.clearTimeout(timer);
    timer = window.setTimeout(settle, 60);
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (!userTriggered(event.detail)) return;
    var elt = event.detail.elt;
    var control = document.activeElement && document.activeElement !== document.body
      ? document.activeElement : elt;
    pending = { triggerId: control && control.id ? control.id : null, focused: document.activeElement, regions: [] };
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var detail = event.detail;
    if (detail && detail.requestConfig && !userTriggered(detail)) return;
    var target = detail && detail.target;
    // An outerHTML swap replaces the target: find its successor by id.
    if (target && !target.isConnected && target.id) target = document.getElementById(target.id);
    remember(target);
  });
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && !target.isConnected && target.id) target = document.getElementById(target.id);
    remember(target);
  });
})();
