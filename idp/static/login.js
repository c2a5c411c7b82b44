// パスワードを表示: toggles the password field's visibility without a reload.
(function () {
  var toggle = document.getElementById("show-password");
  var password = document.getElementById("password");
  var form = document.getElementById("login-form");
  if (!toggle || !password) return;
  function sync() { password.type = toggle.checked ? "text" : "password"; }
  toggle.addEventListener("change", sync);
  // リセット clears the form (reset.js, which runs first); the password goes
  // back to hidden text with its checkbox.
  if (form) form.addEventListener("reset", function () { setTimeout(sync, 0); });
  sync();
})();
