// Top-up form: typing a custom amount selects the "custom" preset (no inline scripts: CSP).
document.addEventListener("input", (event) => {
  if (event.target.name !== "custom_yuan") return;
  const custom = event.target.form.querySelector('input[name="preset"][value="custom"]');
  if (custom) custom.checked = true;
});
