// Page behaviour beyond htmx, kept out of the HTML so the Content-Security-Policy
// can forbid inline script: a control marked data-autosubmit submits its form on change.
document.addEventListener("change", function (event) {
  var control = event.target;
  if (control instanceof HTMLElement && control.hasAttribute("data-autosubmit") && control.form) {
    control.form.requestSubmit();
  }
});
