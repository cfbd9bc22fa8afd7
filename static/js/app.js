// Page behaviour beyond htmx, kept out of the HTML so the Content-Security-Policy
// can forbid inline script: a control marked data-autosubmit submits its form on change.
document.addEventListener("change", function (event) {
  var control = event.target;
  if (control instanceof HTMLElement && control.hasAttribute("data-autosubmit") && control.form) {
    control.form.requestSubmit();
  }
});

// An error answer to an htmx request (403, 404, 413, 500, 503, ...) is a page part that
// names where it goes (HX-Retarget: #main, app/error_pages.py). htmx does not swap error
// answers by default, so without this the click would seem to do nothing.
document.addEventListener("htmx:beforeSwap", function (event) {
  var xhr = event.detail.xhr;
  if (xhr.status >= 400 && xhr.getResponseHeader("HX-Retarget")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
