// Template fields in the workflow editor: insert a variable at the cursor, and offer
// completions after "{{". No dependencies; served from static/ (the CSP forbids inline
// script). Everything is delegated from the document, so it keeps working after htmx
// swaps the node form.
(function () {
  "use strict";

  var FIELD = "[data-template]";
  var LIST_ID = "template-suggestions";
  var last = { field: null, start: 0, end: 0 };
  var open = { field: null, list: null, options: [], active: -1, from: 0 };

  function isField(el) {
    return el instanceof HTMLElement && el.matches(FIELD);
  }

  function remember(field) {
    last.field = field;
    last.start = field.selectionStart === null ? field.value.length : field.selectionStart;
    last.end = field.selectionEnd === null ? field.value.length : field.selectionEnd;
  }

  function changed(field) {
    // The live check (htmx, "input changed") and anything else listening see the new text.
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function insert(field, text, start, end) {
    field.focus();
    field.setRangeText(text, start, end, "end");
    remember(field);
    changed(field);
  }

  document.addEventListener("focusin", function (event) {
    if (isField(event.target)) remember(event.target);
  });
  document.addEventListener("keyup", function (event) {
    if (isField(event.target)) remember(event.target);
  });
  document.addEventListener("mouseup", function (event) {
    if (isField(event.target)) remember(event.target);
  });

  // A variable in the list: insert it where the cursor was in the last template field.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest(".var-insert") : null;
    if (!button) return;
    event.preventDefault();
    var field = last.field && document.contains(last.field) ? last.field : null;
    var start, end;
    if (field) {
      // A field keeps its selection when it loses the focus: that is where the cursor was.
      start = field.selectionStart === null ? last.start : field.selectionStart;
      end = field.selectionEnd === null ? last.end : field.selectionEnd;
    } else {
      field = document.querySelector("#node-form " + FIELD);
      if (!field) return;
      start = end = field.value.length;
    }
    insert(field, button.getAttribute("data-insert") || "", start, end);
  });

  // --- completions after "{{" -------------------------------------------------------

  function variablesFor(field) {
    var form = field.closest("form");
    try {
      return JSON.parse((form && form.getAttribute("data-variables")) || "[]");
    } catch (error) {
      return [];
    }
  }

  function close() {
    if (open.list) open.list.remove();
    if (open.field) {
      open.field.removeAttribute("aria-activedescendant");
      open.field.setAttribute("aria-expanded", "false");
    }
    open = { field: null, list: null, options: [], active: -1, from: 0 };
  }

  function highlight(index) {
    if (!open.list) return;
    var items = open.list.querySelectorAll("[role=option]");
    open.active = (index + items.length) % items.length;
    items.forEach(function (item, i) {
      item.setAttribute("aria-selected", i === open.active ? "true" : "false");
    });
    open.field.setAttribute("aria-activedescendant", LIST_ID + "-" + open.active);
    items[open.active].scrollIntoView({ block: "nearest" });
  }

  function choose(index) {
    var field = open.field;
    var choice = open.options[index];
    var caret = field.selectionStart;
    var after = field.value.slice(caret);
    var closing = /^\s*\}\}/.test(after) ? "" : " }}";
    var from = open.from;
    close();
    insert(field, " " + choice + closing, from, caret);
  }

  function suggest(field) {
    var caret = field.selectionStart;
    var before = field.value.slice(0, caret);
    var match = /\{\{\s*([A-Za-z0-9_.\[\]"'-]*)$/.exec(before);
    if (!match) return close();
    var typed = match[1].toLowerCase();
    var options = variablesFor(field).filter(function (name) {
      return name.toLowerCase().indexOf(typed) !== -1;
    });
    if (!options.length) return close();
    options.sort(function (a, b) {
      return (a.toLowerCase().indexOf(typed) === 0 ? 0 : 1) - (b.toLowerCase().indexOf(typed) === 0 ? 0 : 1);
    });
    options = options.slice(0, 12);
    if (open.field !== field) close();
    var list = open.list || document.createElement("ul");
    list.id = LIST_ID;
    list.className = "template-suggestions";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Variables");
    list.textContent = "";
    options.forEach(function (name, i) {
      var item = document.createElement("li");
      item.id = LIST_ID + "-" + i;
      item.setAttribute("role", "option");
      item.textContent = name;
      item.addEventListener("mousedown", function (event) {
        event.preventDefault(); // keep the focus (and the caret) in the field
        choose(i);
      });
      list.appendChild(item);
    });
    if (!open.list) field.insertAdjacentElement("afterend", list);
    open = { field: field, list: list, options: options, active: -1, from: caret - match[0].length + 2 };
    field.setAttribute("aria-controls", LIST_ID);
    field.setAttribute("aria-expanded", "true");
    field.setAttribute("aria-autocomplete", "list");
    highlight(0);
  }

  document.addEventListener("input", function (event) {
    if (isField(event.target) && event.isTrusted) suggest(event.target);
  });

  document.addEventListener("keydown", function (event) {
    if (!open.list || event.target !== open.field) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      highlight(open.active + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault(); // choose, rather than apply the form or leave the field
      choose(open.active < 0 ? 0 : open.active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });

  document.addEventListener("focusout", function (event) {
    if (event.target === open.field) close();
  });
  document.addEventListener("htmx:beforeSwap", close);
})();
