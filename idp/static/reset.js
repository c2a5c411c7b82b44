// リセット clears every field. A type="reset" button alone only brings back
// the value attributes the page was served with, and the server fills those
// back (the iTSCOM ID after a failed login, what a step was given before), so
// it would restore them instead of clearing them. Hidden fields (the CSRF
// token) are kept. Without JavaScript the plain reset still works.
(function () {
  var KEEP = { hidden: true, submit: true, button: true, reset: true, image: true };
  function clear(form) {
    Array.prototype.forEach.call(form.elements, function (element) {
      var type = (element.type || "").toLowerCase();
      if (KEEP[type] || element.tagName === "BUTTON" || element.tagName === "FIELDSET") return;
      if (type === "checkbox" || type === "radio") element.checked = false;
      else if (element.tagName === "SELECT") element.selectedIndex = 0;
      else element.value = "";
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
    if (!form.querySelector('button[type="reset"], input[type="reset"]')) return;
    form.addEventListener("reset", function (event) {
      event.preventDefault();
      clear(form);
    });
  });
})();
